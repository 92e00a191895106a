"""Declarations of the classical methods: adjoint, fbp, cgls, ista, iht and tv (implementations in
:mod:`recon.solvers.analytic`, :mod:`~recon.solvers.least_squares`, :mod:`~recon.solvers.sparse` and
:mod:`~recon.solvers.total_variation`)."""

from __future__ import annotations

from recon.methods import Method
from recon.methods.radar import TV_RADAR_ITERATIONS, TV_RADAR_LAM
from recon.params import AUTO, Param
from recon.physics import FBP_FILTERS
from recon.specs import spec_ids

RADAR = "mimo-nearfield/1"

SPARSE_PARAMS = (
    Param("lam", float, 0.05, "weight of the sparsity term lam R(x), in the units of 1/2||y - Ax||^2", low=0.0),
    Param("iterations", int, 500, "iterations", low=1, high=1_000_000),
)

TV_LAM = {"ct-parallel/1": 2e-4, "mri-cartesian/1": 2e-3}
"""tv's fixed lam, tuned on the phantoms of the test suite at 1% noise: the CT normal operator damps high
frequencies (A^T A ~ 1/|w|), so CT needs a smaller weight than MRI, whose A^H A is a projection. On MRI the
default is ``auto``, whose search starts from it (docs/guides/parameters-from-data.md: on the study's MRI cases
the rule was never below the number, +1.4 and +2.9 dB at 1 % and 0.3 % on 64^2 4x, and +1.3 dB on real 2-coil
k-space); on CT it is the number, which the rule fell below by 0.45 to 0.85 dB in 3 of 12 cases."""
TV_LAM_DEFAULT = {**TV_LAM, "mri-cartesian/1": AUTO}
TV_ITERATIONS = 300
CGLS_ITERATIONS = 20
"""cgls' fixed count where the noise level cannot be known (iterations=auto)."""

METHODS = (
    Method("adjoint", "classical", "The adjoint A^T y: back-projection for CT, coil-combined zero-filled image for "
           "MRI.", spec_ids(), (), "recon.solvers.analytic:adjoint", slice_separable=True),
    Method("fbp", "classical", "Filtered back-projection (ramp, Shepp-Logan or Hann filter); frame by frame for "
           "dynamic CT.", ("ct-parallel/1", "ct-dynamic/1"), (
               Param("filter", str, "ramp", "filter applied along the detector", choices=FBP_FILTERS),
               Param("static", bool, False, "ct-dynamic: one FBP of the views of all frames pooled, repeated over "
                                            "the frames (a baseline that ignores the motion)")),
           "recon.solvers.analytic:fbp", slice_separable=lambda params: not params["static"]),
    Method("cgls", "classical", "Least squares by conjugate gradients on the normal equations, from zero, stopped "
           "early.", spec_ids(lambda kind: not kind.reflectivity),
           (Param("iterations", int, {**dict.fromkeys(spec_ids(lambda kind: kind.linear_slices), AUTO),
                                      **dict.fromkeys(spec_ids(lambda kind: kind.dynamic or kind.image_dims == 1),
                                                      CGLS_ITERATIONS)},
                  "CG iterations (fewer regularise more); auto (CT and MRI slices): each slice stops when "
                  "||Ax - y|| reaches tau x the noise norm (the discrepancy principle; noise from the file or "
                  f"estimated), at most 300; {CGLS_ITERATIONS} on dynamic and sparse files and where no noise "
                  "level is known", low=1,
                  high=10000, auto=True),),
           "recon.solvers.least_squares:cgls_method", slice_separable=True),  # auto: noise estimated per slice
    Method("ista", "classical", "ISTA: proximal gradient with soft thresholding (l1), or the prox of any --prior.",
           spec_ids(lambda kind: kind.image_dims == 1), SPARSE_PARAMS, "recon.solvers.sparse:ista",
           prior_capability="prox", default_prior="l1",
           slice_separable=True),
    Method("iht", "classical", "Iterative hard thresholding (l0), or the prox of any --prior.",
           spec_ids(lambda kind: kind.image_dims == 1),
           SPARSE_PARAMS, "recon.solvers.sparse:ista", prior_capability="prox", default_prior="l0",
           slice_separable=True),
    Method("tv", "classical", "Isotropic total variation: PDHG (Chambolle-Pock), 2D per slice or 3D; radar: tv-radar.",
           spec_ids(lambda kind: kind.linear_slices or kind.reflectivity), (
               Param("lam", float, {**TV_LAM_DEFAULT, RADAR: TV_RADAR_LAM}, "TV weight in the normalised "
                     "problem (larger: smoother); auto (the MRI default): chosen by the discrepancy principle ||Ax - "
                     "y|| = tau x the noise norm (noise from the file or estimated; several solves, warm-started), "
                     f"from the fixed {TV_LAM['mri-cartesian/1']:g} on MRI; best on CT where the noise differs from "
                     "the 1 % the numbers were tuned at (low-dose CT); radar: tv-radar's, a fraction of the peak "
                     "magnitude", low=0.0, auto=True),
               Param("iterations", int, {**dict.fromkeys(spec_ids(lambda kind: kind.linear_slices), TV_ITERATIONS),
                                         RADAR: TV_RADAR_ITERATIONS},
                     "PDHG iterations; radar: tv-radar's C-SALSA iterations", low=1, high=100000),
               Param("dims", int, 3, "3: TV across slices as well (volumes); 2: each slice on its own (not radar)",
                     choices=(2, 3)),
               Param("nonneg", bool, True, "constrain the image to be non-negative (real images only)"),
               Param("step_ratio", float, 50.0, "PDHG primal step / dual step (convergence speed, not the solution)",
                     low=1e-6)),
           "recon.solvers.total_variation:tv",
           halo=4),  # scripts/bench_halo.py: max |streamed - whole| 0.098 without a halo, 0.014 with 2, 0.0075 with 4
)
