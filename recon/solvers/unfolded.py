"""Methods ``unfolded-ista`` and ``unfolded-iht``: trained unfolded networks (:mod:`recon.models.unfolded`).

Sparse-linear problems are solved as ``ista``/``iht`` state them: 1/2 ||y - A x||^2 + lam R(x) with
R = ||x||_1 / ||x||_0, so lam means the same for all four methods.

Images are solved per slice in normalised units, so that lam is unit-free and serves CT and MRI alike:
y and x are divided by s, the 0.99 quantile of the first estimate's magnitude (FBP for CT, A^T y for MRI)
of that slice, and the problem is 1/2 ||A u - y/s||^2 + lam ||A||^2 ||W u||_1 (Haar detail coefficients),
i.e. lam weighs the l1 term against the data term divided by its Lipschitz constant (as ``tv`` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from recon.errors import UserError
from recon.methods import Result, RunContext
from recon.models.unfolded import load_unfolded, objective
from recon.problem import Problem
from recon.solvers.driver import Algorithm, iterate
from recon.solvers.normalised import Normalised, slice_scale
from recon.weights import shipped

SHIPPED = {
    ("ista", "sparse-linear/1"): "unfolded-ista-sparse-linear",
    ("iht", "sparse-linear/1"): "unfolded-iht-sparse-linear",
    ("ista", "mri-cartesian/1"): "unfolded-ista-mri-cartesian",
}


def sample_scale(problem: Problem) -> torch.Tensor:
    """Per-sample scale s (S,): 1 for signals (sparse-linear), else :func:`slice_scale` of the first estimate."""
    if problem.kind.image_dims == 1:
        return torch.ones(problem.y.shape[0], device=problem.device, dtype=problem.dtype)
    return slice_scale(problem.initial())


def penalty_weight(problem: Problem, lam: float, sqnorm: float) -> float:
    """The weight of R in the objective: lam for signals (sparse-linear), lam ||A||^2 for images (see the module)."""
    return lam if problem.kind.image_dims == 1 else lam * sqnorm


def default_weights(algo: str, spec: str) -> Path:
    """The shipped weights for ``algo`` on ``spec``; UserError when none ship."""
    if (algo, spec) not in SHIPPED:
        raise UserError(f"no shipped unfolded-{algo} weights for {spec}", key="--set weights",
                        fix=f"train some with `recon train unfolded --algo {algo} --spec {spec.split('/')[0]} "
                            "--data ...` and pass --set weights=W.safetensors")
    return shipped(SHIPPED[(algo, spec)])


class Layers(Algorithm):
    """The network's layers as iterations (``layers``: its iterates, (x_t, R(x_t)) per layer); records the
    objective 1/2 ||y - A x||^2 + weight R(x) of the normalised problem (mean over samples)."""

    def __init__(self, layers: Iterator[tuple[torch.Tensor, torch.Tensor]], normalised: Normalised, weight: float):
        self.layers, self.normalised, self.weight = layers, normalised, weight
        self.x = normalised.problem.zeros()

    def update(self) -> None:
        self.x, self.penalty = next(self.layers)

    def record(self) -> dict[str, float]:
        n = self.normalised
        return {"objective": float(objective(n.physics, n.y, self.x, self.penalty, self.weight).mean())}


@torch.no_grad()
def unfolded(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Methods ``unfolded-ista`` and ``unfolded-iht``: load the weights, run the T layers on the (scaled) problem and
    record the objective per layer."""
    algo = ctx.method.removeprefix("unfolded-")
    path = Path(params["weights"]) if params["weights"] else default_weights(algo, problem.spec)
    model = load_unfolded(path, ctx.device)
    config = model.config
    if config.algo != algo or config.spec != problem.spec:
        raise UserError(f"these are unfolded-{config.algo} weights for {config.spec}, not unfolded-{algo} for "
                        f"{problem.spec}", path=path, key="--set weights",
                        fix=f"use weights trained with --algo {algo} on {problem.spec} files")
    lam = config.lam if params["lam"] is None else params["lam"]
    normalised = Normalised.by(problem, sample_scale(problem))
    weight = penalty_weight(problem, lam, normalised.sqnorm)
    layers = model.iterates(problem.physics, normalised.y, problem.x_shape, normalised.sqnorm, weight)
    run, history = iterate(ctx, ctx.method, Layers(layers, normalised, weight), config.layers)
    return Result(normalised.units(run.estimate), history, extras={"params": {"weights": str(path), "lam": lam}})

