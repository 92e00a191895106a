"""Declarations of the plug-and-play methods with learned priors: pnp-admm, pnp-pgd, red (implementations in
:mod:`recon.solvers.pnp`) and lpn (:mod:`recon.solvers.lpn`).

Defaults per spec for the shipped denoisers, tuned by scripts/tune_pnp.py (on a GPU, one grid per method) on three
256^2 training images (two MNI152 slices and CT_small), never on test or benchmark images. Mean gain over ``tv``
there: CT 30 and 60 views, pnp-admm +4.4 dB, red +1.8, pnp-pgd -5.7; MRI 4x, pnp-admm +7.0, red +2.0, pnp-pgd
-0.4. CT needs a smaller rho than MRI: its normalised A^T A / ||A||^2 has mostly small eigenvalues
(~1/|frequency|), while MRI's is close to a projection. 30 ADMM iterations with 10 CG steps each: on the tuning
images more of either changes the PSNR by under 0.25 dB; 10 CG steps rather than 5 bring pnp-admm level with
deepinv's ADMM (whose prox_l2 runs CG to convergence) on the benchmark's MRI case (40.16 vs 40.18 dB; 5 steps:
39.43).
"""

from __future__ import annotations

from recon.methods import Method
from recon.params import AUTO, Param
from recon.specs import spec_ids
from recon.weights import describe_shipped

CT, MRI = "ct-parallel/1", "mri-cartesian/1"
LINEAR_SLICES = spec_ids(lambda kind: kind.linear_slices)

PNP_ADMM_SIGMA = {CT: 0.15, MRI: 0.03}
"""pnp-admm's fixed sigma (tuned at 1 % noise). On MRI the default is ``auto``, whose search starts from it and
never goes below it (recon.solvers.pnp.SIGMA_FLOOR_AT_DEFAULT): on real 2-coil k-space at 4x the number gave 15.08
dB, 4.8 dB below the zero-filled image, and auto 24.03; on the study's 64^2 MRI cases auto was +0.15, 0 and +7.5 dB
at 1 %, 0.3 % and 10 % noise (docs/guides/parameters-from-data.md). On CT it stays the number: auto gained 2.5 to
7.8 dB on the 2D cases but was not measured with planes 3, and it makes the method couple the slices."""
RED_LAM = {CT: 0.03, MRI: 0.1}
"""red's fixed lam; ``auto`` (opt-in) starts from it."""
TRIPLANAR_SIGMA = 0.08
"""pnp-admm's default sigma on CT volumes with ``planes=3``. Tuned by hand on a training volume (32 MNI152 slices
128^2, 60 views, 1% noise; rho kept): 3D tv 34.48 dB, pnp-admm slice-wise at sigma 0.15 / 0.08 33.74 / 35.42,
tri-planar at sigma 0.05 / 0.065 / 0.08 / 0.1 / 0.12 35.35 / 36.01 / 36.04 / 35.71 / 35.29. A volume-wide image
scale instead of the per-slice one changed it by 0.01 dB."""
VOLUME_SLICES = 8
"""Stacks with fewer slices are taken as separate images (planes 1 by default)."""


def volume_defaults(params: dict, spec: str, slices: int) -> dict:
    """pnp-admm's data-dependent defaults: ``planes`` 3 on CT volumes of at least ``VOLUME_SLICES`` slices (else 1),
    and with planes 3 on CT the tri-planar sigma."""
    planes = params["planes"] or (3 if spec == CT and slices >= VOLUME_SLICES else 1)
    return {"planes": planes, **({"sigma": TRIPLANAR_SIGMA} if planes == 3 and spec == CT else {})}


AUTO_HELP = ("; auto: chosen by the discrepancy principle ||Ax - y|| = tau x the noise norm (noise from the file or "
             "estimated; several warm-started solves), recorded with its rule")


def sigma(defaults: dict[str, float], note: str = "", auto: bool = False) -> Param:
    return Param("sigma", float, defaults, f"denoiser noise level in the normalised unit (image ~ [0, 1]){note}",
                 low=0.0, auto=auto)


DENOISER_WEIGHTS = Param("weights", str, None, "W.safetensors from `recon train denoiser`; default: the prior's "
                         f"shipped weights ({describe_shipped(['drunet-ct', 'drunet-mri'])})")

# lpn: tuned by scripts/tune_pnp.py on three 256^2 training images (CT 30 and 60 views, 1% noise): rho just above 1
# (Theorem 2) and tau 0.05, 100 iterations: mean 34.55 dB, tv 33.41. Smaller tau needs more iterations and does
# not do better (tau 0.02: 32.8 dB at 100, 34.1 at 300); larger tau weighs R too heavily (tau 0.2: 32.2 dB; tau 1
# diverges to a few dB). At 300 iterations tau 0.05 gives 34.1 dB: the early iterates are better than the limit.
LPN_PARAMS = (
    Param("rho", float, 1.05, "ADMM penalty = weight of the learned R relative to the data term, whose gradient is "
          "1-Lipschitz; convergence is guaranteed for rho > 1", low=1e-8),
    Param("tau", float, 0.05, "strength of the LPN prox in (0, 1]: z = (1 - tau) v + tau f(v), the exact prox of a "
          "regulariser of about tau R", low=1e-6, high=1.0),
    Param("iterations", int, 100, "ADMM iterations", low=1, high=100000),
    Param("cg_iterations", int, 5, "CG steps per x-update (warm started; tuned and measured with 5)", low=1,
          high=1000),
    Param("box", bool, True, "constrain the image to the box [box_min, box_max] of the normalised unit (complex "
          "images: magnitudes up to box_max), as the LPN paper does"),
    Param("box_min", float, 0.0, "lower end of the box (real images)"),
    Param("box_max", float, 1.5, "upper end of the box (the first estimate's 0.99 quantile is 1)", low=0.0),
    Param("weights", str, None, "W.safetensors from `recon train lpn`; default: the prior's shipped weights "
          f"({describe_shipped(['lpn-ct', 'lpn-mri'])})"),
    Param("report_prior", bool, False, "store R at the result per slice (prior_value) and per pixel (prior_map)"),
)

METHODS = (
    Method("pnp-admm", "learned proximal networks", "Plug-and-play ADMM: CG data step, then a trained denoiser as the "
           "prox.", LINEAR_SLICES, (
               sigma({**PNP_ADMM_SIGMA, MRI: AUTO}, f"; on CT volumes with planes 3: {TRIPLANAR_SIGMA:g}"
                     f"{AUTO_HELP}; the MRI default, from the fixed {PNP_ADMM_SIGMA[MRI]:g} and never below it",
                     auto=True),
               Param("planes", int, None, "1: denoise axial slices (slice-separable); 3: the mean of the denoiser "
                     "over axial, coronal and sagittal slices (3x the network cost); default 3 for CT volumes of "
                     f">= {VOLUME_SLICES} slices, else 1", choices=(1, 3)),
               Param("rho", float, {CT: 5e-3, MRI: 0.03}, "ADMM penalty relative to ||A||^2 (larger: trust the prior "
                     "more)", low=1e-8),
               Param("iterations", int, 30, "ADMM iterations", low=1, high=100000),
               Param("cg_iterations", int, 10, "CG steps per x-update (warm started)", low=1, high=1000),
               DENOISER_WEIGHTS),
           "recon.solvers.pnp:pnp_admm", prior_capability="denoise", default_prior="drunet",
           slice_separable=lambda params: params["planes"] == 1 and params["sigma"] != AUTO,  # auto: one sigma
           data_defaults=volume_defaults,
           halo=8),  # planes 3, bench_halo.py: max |streamed - whole| 0.115 without, 0.096 with 4, 0.0063 with 8
    Method("pnp-pgd", "learned proximal networks", "Plug-and-play proximal gradient: a gradient step on the data "
           "term, then the denoiser.", LINEAR_SLICES, (
               sigma({CT: 0.05, MRI: 0.02}),
               Param("step", float, 1.0, "gradient step times ||A||^2 (< 2)", low=1e-6, high=2.0),
               Param("iterations", int, 50, "iterations", low=1, high=100000),
               DENOISER_WEIGHTS),
           "recon.solvers.pnp:pnp_pgd", prior_capability="denoise", default_prior="drunet", slice_separable=True),
    Method("red", "learned proximal networks", "Regularisation by denoising, fixed-point iterations with a CG data "
           "step.", LINEAR_SLICES, (
               sigma({CT: 0.05, MRI: 0.02}),
               Param("lam", float, RED_LAM, "RED weight relative to ||A||^2 (larger: smoother)"
                     f"{AUTO_HELP}", low=1e-8, auto=True),
               Param("iterations", int, 30, "fixed-point iterations", low=1, high=100000),
               Param("cg_iterations", int, 5, "CG steps per iteration (warm started)", low=1, high=1000),
               DENOISER_WEIGHTS),
           "recon.solvers.pnp:red", prior_capability="grad", default_prior="drunet",
           slice_separable=lambda params: params["lam"] != AUTO),  # auto: one lam for all the slices
    Method("lpn", "learned proximal networks", "PnP-ADMM with a learned proximal network: an exact prox, convergent "
           "for rho > ||A^T A||, images kept in the data's range.", LINEAR_SLICES, LPN_PARAMS, "recon.solvers.lpn:lpn",
           prior_capability="prox", default_prior="lpn", slice_separable=True, priors=("lpn", "lpn-ct", "lpn-mri")),
)
