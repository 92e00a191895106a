"""Declarations of the diffusion-prior methods, dds and diffusion-mbir (implementations in
:mod:`recon.solvers.diffusion`).

Defaults per spec in the normalised unit. diffusion-mbir's TV_z is gentler (rho 0.01): its data step sees noisy
iterates, and the carried v holds the z-differences of earlier, noisier ones; with dds's rho 0.1 they fed back and
the sampler diverged (Colin27, 8 views: -8 dB; 18.5 dB with these). dds on MRI: tuned by scripts/tune_diffusion.py
on 8 MNI152 training slices (4x, 8 coils; tv 30.49 dB): the CT defaults gave 30.15 dB, eta 1.0 30.87, gamma 100
30.68, start 0.5 30.89, the three together 31.99. dds on CT: from pure noise (start 1, the paper's) it fell 1.3 to
6.4 dB below tv on held-out real CT slices; it now starts from pnp-admm's reconstruction noised to start 0.02,
chosen on the CT_small training slice at 8/16/30 views (tv 28.86 / 30.43 / 31.53 dB; dds from pure noise 24.92 /
28.58 / 30.90; from pnp-admm at start 0.02 27.88 / 30.05 / 31.53, at 0.05 26.98 / 30.07 / 32.09, at 0.1 26.08 /
30.04 / 32.15, at 0.2 24.94 / 29.57 at 8 / 16 views): 0.02 is best at 8 views, where dds fell furthest.
docs/benchmarks/learned-priors.md has the held-out check.
"""

from __future__ import annotations

from recon.methods import Method
from recon.params import Param
from recon.weights import describe_shipped

CT, MRI = "ct-parallel/1", "mri-cartesian/1"


def shared_params(nfe: int, lam: dict, rho: dict, gamma: dict) -> tuple[Param, ...]:
    return (
        Param("nfe", int, nfe, "network evaluations per slice", low=2, high=100000),
        Param("cg_iterations", int, 5, "CG steps of the data step (M)", low=1, high=1000),
        Param("lam", float, lam, "TV_z weight (0: slices independent)", low=0.0),
        Param("rho", float, rho, "ADMM penalty of TV_z", low=1e-8),
        Param("gamma", float, gamma, "proximal weight of the data step, (I + gamma N) x = x0 + gamma b; 0: the "
              "noiseless form N x = b from x0 (unstable with TV_z here)", low=0.0),
        Param("slice_batch", int, 8, "slices per network call (bounds memory)", low=1, high=100000),
        Param("samples", int, 1, "posterior samples: K > 1 writes their mean and the per-voxel std as "
              "'uncertainty'", low=1, high=1000),
        Param("weights", str, None, "W.safetensors from `recon train diffusion`; default: the prior's shipped weights "
              f"({describe_shipped(['diffusion-ct', 'diffusion-mri'])})"),
    )


METHODS = (
    Method("dds", "diffusion", "Decomposed diffusion sampler: DDIM steps with Tweedie denoising and CG data "
           "consistency (+ TV_z in 3D).", (CT, MRI), (
               *shared_params(50, lam={CT: 0.003, MRI: 0.0}, rho={CT: 0.1, MRI: 0.1}, gamma={CT: 10.0, MRI: 100.0}),
               Param("eta", float, {CT: 0.85, MRI: 1.0}, "share of fresh noise in each DDIM step (0: deterministic)",
                     low=0.0, high=1.0),
               Param("start", float, {CT: 0.02, MRI: 0.5}, "start at this fraction of the schedule: 1 from pure "
                     "noise; below 1 from the first estimate (init) noised to that level (fewer steps cover the rest)",
                     low=0.01, high=1.0),
               Param("init", str, {CT: "pnp-admm", MRI: "tv"}, "the first estimate, which sets the image scale and "
                     "where start < 1 begins: tv (a quick 100-step 2D TV) or pnp-admm (at its defaults)",
                     choices=("tv", "pnp-admm"))),
           "recon.solvers.diffusion:dds", prior_capability="eps", default_prior="diffusion",
           halo=4),  # tv's, whose TV_z it shares: its sampling noise dominates the difference at any halo (bench_halo)
    Method("diffusion-mbir", "diffusion", "DiffusionMBIR: predictor-corrector diffusion per slice with an ADMM-TV_z "
           "data step carried across steps.", (CT, MRI), (
               *shared_params(1000, lam={CT: 0.0003, MRI: 0.0}, rho={CT: 0.01, MRI: 0.01}, gamma={CT: 10.0, MRI: 10.0}),
               Param("snr", float, 0.16, "signal-to-noise ratio of the Langevin corrector step", low=0.0)),
           "recon.solvers.diffusion:diffusion_mbir", prior_capability="eps", default_prior="diffusion"),
)
