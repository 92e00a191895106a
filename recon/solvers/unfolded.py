"""Methods ``unfolded-ista`` and ``unfolded-iht``: trained unfolded networks (:mod:`recon.models.unfolded`).

Sparse-linear problems are solved as ``ista``/``iht`` state them: 1/2 ||y - A x||^2 + lam R(x) with
R = ||x||_1 / ||x||_0, so lam means the same for all four methods.

Images are solved per slice in normalised units, so that lam is unit-free and serves CT and MRI alike:
y and x are divided by s, the 0.99 quantile of the first estimate's magnitude (FBP for CT, A^T y for MRI)
of that slice, and the problem is 1/2 ||A u - y/s||^2 + lam ||A||^2 ||W u||_1 (Haar detail coefficients),
i.e. lam weighs the l1 term against the data term divided by its Lipschitz constant (as ``tv`` does).
"""

from __future__ import annotations

from pathlib import Path

import torch

from recon.errors import UserError
from recon.methods import Result, RunContext, method
from recon.models.unfolded import load_unfolded, objective
from recon.params import Param
from recon.problem import Problem
from recon.solvers.linalg import operator_sqnorm, per_sample, slice_scale
from recon.weights import shipped

SHIPPED = {
    ("ista", "sparse-linear/1"): "unfolded-ista-sparse-linear",
    ("iht", "sparse-linear/1"): "unfolded-iht-sparse-linear",
    ("ista", "mri-cartesian/1"): "unfolded-ista-mri-cartesian",
}

PARAMS = (
    Param("weights", str, None, "W.safetensors from `recon train unfolded`; default: the shipped weights for "
          "the file's spec"),
    Param("lam", float, None, "sparsity weight (sparse: in 1/2||y - Ax||^2 + lam R(x); images: relative to "
          "||A||^2); default: the weights' training value", low=0.0),
)


def sample_scale(problem: Problem) -> torch.Tensor:
    """Per-sample scale s (S,): 1 for sparse-linear, else :func:`slice_scale` of the first estimate."""
    if problem.spec == "sparse-linear/1":
        return torch.ones(problem.y.shape[0], device=problem.device, dtype=problem.dtype)
    return slice_scale(problem.initial())


def penalty_weight(problem: Problem, lam: float, sqnorm: float) -> float:
    """The weight of R in the objective: lam for sparse-linear, lam ||A||^2 for images (see the module)."""
    return lam if problem.spec == "sparse-linear/1" else lam * sqnorm


def default_weights(algo: str, spec: str) -> Path:
    """The shipped weights for ``algo`` on ``spec``; UserError when none ship."""
    if (algo, spec) not in SHIPPED:
        raise UserError(f"no shipped unfolded-{algo} weights for {spec}", key="--set weights",
                        fix=f"train some with `recon train unfolded --algo {algo} --spec {spec.split('/')[0]} "
                            "--data ...` and pass --set weights=W.safetensors")
    return shipped(SHIPPED[(algo, spec)])


@torch.no_grad()
def solve_unfolded(algo: str, problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Load the weights, run the T layers on the (scaled) problem and record the objective per layer."""
    path = Path(params["weights"]) if params["weights"] else default_weights(algo, problem.spec)
    model = load_unfolded(path, ctx.device)
    config = model.config
    if config.algo != algo or config.spec != problem.spec:
        raise UserError(f"these are unfolded-{config.algo} weights for {config.spec}, not unfolded-{algo} for "
                        f"{problem.spec}", path=path, key="--set weights",
                        fix=f"use weights trained with --algo {algo} on {problem.spec} files")
    lam = config.lam if params["lam"] is None else params["lam"]
    scale = sample_scale(problem)
    y = problem.y / per_sample(scale, problem.y)
    sqnorm = operator_sqnorm(problem)
    weight = penalty_weight(problem, lam, sqnorm)
    history = []
    with ctx.progress(f"unfolded-{algo}", config.layers) as step:
        for x, penalty in model.iterates(problem.physics, y, problem.x_shape, sqnorm, weight):
            value = float(objective(problem.physics, y, x, penalty, weight).mean())
            history.append(value)
            step(objective=value)
    return Result(x * per_sample(scale, x), {"objective": history},
                  extras={"params": {"weights": str(path), "lam": lam}})


@method("unfolded-ista", family="deep unfolding", specs=("sparse-linear/1", "mri-cartesian/1", "ct-parallel/1"),
        params=PARAMS)
def unfolded_ista(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Deep unfolded ISTA: T soft-thresholding layers with learned step sizes (wavelet basis for images)."""
    return solve_unfolded("ista", problem, params, ctx)


@method("unfolded-iht", family="deep unfolding", specs=("sparse-linear/1",), params=PARAMS)
def unfolded_iht(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Deep unfolded IHT: T hard-thresholding layers with learned step sizes."""
    return solve_unfolded("iht", problem, params, ctx)
