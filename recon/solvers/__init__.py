"""Reconstruction methods, one module per family; importing this package registers them all."""

from recon.solvers import analytic, csalsa, least_squares, lpn, pnp, psm, radar, sparse, total_variation, unfolded  # noqa: F401
