"""Reconstruction methods, one module per family; importing this package registers them all."""

from recon.solvers import (  # noqa: F401
    analytic,
    csalsa,
    diffusion,
    least_squares,
    lpn,
    pnp,
    psm,
    radar,
    sparse,
    total_variation,
    unfolded,
)
