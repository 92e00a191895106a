"""Declarations of the radar methods (``mimo-nearfield/1``): back-projection, Kirchhoff migration and C-SALSA with
the TV (``tv-radar``), l1 and learned (``mimo-pnp``) priors on the magnitude (implementations in
:mod:`recon.solvers.radar` and :mod:`recon.solvers.csalsa`).

Defaults tuned by scripts/tune_mimo.py on scenes of the seed-0 generator (training-like; the benchmark draws its
scenes from seeds >= 1) at 20 frequencies and 30 dB. First two scenes, 30 iterations: kappa in [0.001, 1] (0.1 and
more leave the noise ball far from reached in 30 iterations), lam and sigma on a small grid; mean PSNR
back-projection 20.4 dB, tv 20.1 (lam 0.02; 17.4 at 0.05), l1 23.1 (lam 0.02; 23.0 at 0.05), mimo-pnp 26.2 (sigma
0.2; 23.3 at 0.15, 25.6 at 0.25). Then three scenes (back-projection 19.8): mimo-pnp with 30, 35, 40, 45, 50
iterations 25.2, 25.5, 25.8, 25.6, 25.5 dB (at 40: sigma 0.175 25.4, 0.225 25.0; kappa 0.005 and 0.02 at 30
iterations 25.0; a sigma annealed from 0.25 to 0.15 or 0.3 to 0.1 25.0 and 24.2), l1 22.4 with 30 and with 40, tv
worse with 40 (20.4, 19.8 dB on the first two scenes with 30; 19.2, 18.9 with 40).
"""

from __future__ import annotations

from recon.methods import Method
from recon.params import Param
from recon.specs import spec_ids
from recon.weights import describe_shipped

REFLECTIVITY = spec_ids(lambda kind: kind.reflectivity)
TV_RADAR_LAM = 0.02
TV_RADAR_ITERATIONS = 30
KAPPA = 0.01


def csalsa_params(iterations: int) -> tuple[Param, ...]:
    """The C-SALSA parameters every radar method shares, with its default number of iterations."""
    return (
        Param("kappa", float, KAPPA, "C-SALSA penalty relative to ||A||^2 (larger: slower, smaller steps)", low=1e-8),
        Param("iterations", int, iterations, "C-SALSA iterations", low=1, high=100000),
        Param("cg_iterations", int, 5, "CG steps per x-update (warm started)", low=1, high=1000),
        Param("snr_db", float, None, "signal-to-noise ratio of the measurements, for the noise ball eps; default: "
              "from the file's noise_std attribute"),
        Param("eps_scale", float, 1.0, "factor on the noise-ball radius eps", low=0.0),
    )


METHODS = (
    Method("backprojection", "radar", "Back-projection: the matched filter sum_{f,t,r} y exp(+j k_f (R_t + R_r)) at "
           "every voxel.", REFLECTIVITY, (), "recon.solvers.radar:backprojection"),
    Method("kirchhoff", "radar", "Kirchhoff migration: the matched filter with spreading undone, obliquity cos theta "
           "and the ramp k_f.", REFLECTIVITY, (), "recon.solvers.radar:kirchhoff"),
    Method("tv-radar", "radar", "C-SALSA with the isotropic 3D total variation of the magnitude (what tv runs on "
           "radar files).", REFLECTIVITY, (
               Param("lam", float, TV_RADAR_LAM, "TV prox weight as a fraction of the peak magnitude", low=0.0),
               *csalsa_params(TV_RADAR_ITERATIONS),
               Param("tv_iterations", int, 20, "FGP steps of the TV prox per C-SALSA iteration (warm started)", low=1,
                     high=10000)),
           "recon.solvers.csalsa:tv_radar"),
    Method("l1", "radar", "C-SALSA with the l1 norm of the magnitude: min sum |x| s.t. ||A x - y|| <= eps.",
           REFLECTIVITY, (Param("lam", float, 0.02, "soft threshold as a fraction of the peak magnitude", low=0.0),
                         *csalsa_params(30)), "recon.solvers.csalsa:l1"),
    Method("mimo-pnp", "radar", "Plug-and-play C-SALSA: a trained 3D denoiser of the magnitude as the prox, the phase "
           "kept.", REFLECTIVITY, (
               Param("sigma", float, 0.2, "denoiser noise level as a fraction of the peak magnitude", low=0.0),
               *csalsa_params(40),
               Param("weights", str, None, "3D magnitude denoiser W.safetensors from `recon train radar-denoiser`; "
                     f"default: the prior's shipped weights ({describe_shipped(['drunet-radar'])})")),
           "recon.solvers.csalsa:mimo_pnp", prior_capability="denoise", default_prior="drunet-radar", prior_dims=3),
)
