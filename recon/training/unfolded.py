"""Training deep unfolded ISTA / IHT: supervised (MSE to the truth) or unsupervised (the objective itself).

Losses, averaged over a batch of B signals with T layers:

- supervised: ||x_T - x*||^2 per signal (needs ground truth; for complex MRI images |x_T| against the
  stored magnitude);
- unsupervised: 1/2 ||y - A x_T||^2 + lam R(x_T), the problem ISTA/IHT solve, from measurements alone
  (R = ||.||_1 / ||.||_0, or the wavelet l1 norm for images; for IHT the l0 count is differentiated
  straight-through, see :mod:`recon.models.unfolded`).

Schedule: Adam on the log step sizes. With ``incremental`` (the default, as usual for deep unfolding) the
first half of the steps trains layer-wise: generation g = 1..T trains layers 1..g on the loss at x_g;
the second half trains all T layers on the loss at x_T with a cosine-decaying learning rate.

Data: a batch is one :class:`Batch` (an operator with its measurements): chunks of measurement files
(the operator is the file's, so with several files it changes from batch to batch), or synthetic
sparse-linear batches with a fresh Gaussian A each (as in the paper). Everything is seeded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import recon
from recon.errors import UserError
from recon.io.measurement import MeasurementFile
from recon.models.unfolded import UnfoldedConfig, UnfoldedThresholding, objective, weight_tensors
from recon.physics.sparse import MatrixOperator
from recon.problem import Problem
from recon.problems import build_problem
from recon.progress import Progress, silent_progress
from recon.shrinkage import group_norm
from recon.simulate import simulate_sparse_linear
from recon.solvers.linalg import operator_sqnorm, per_sample
from recon.solvers.unfolded import penalty_weight, sample_scale
from recon.training.weights_files import write_weights_and_card

LOSSES = ("supervised", "unsupervised")

DEFAULT_LAM = {("ista", "sparse-linear/1"): 0.1, ("iht", "sparse-linear/1"): 0.05, ("ista", "mri-cartesian/1"): 1e-3,
               ("ista", "ct-parallel/1"): 1e-3}
"""lam per (algo, spec): sparse-linear as in the study (best converged NMSE at m=75, n=150, k=12, 10 dB);
images relative to ||A||^2 (see :mod:`recon.solvers.unfolded`)."""
TRAINABLE = tuple(DEFAULT_LAM)
HELD_OUT = 0.2  # fraction of the file batches kept for the card's validation figures


@dataclass
class Batch:
    """A problem with its measurements divided by the per-sample scale, the scaled truth (None without
    ground truth; (B, 1, ...) magnitudes for complex images, else in the x layout), ||A||^2 and the factor
    from lam to the weight of R (1, or ||A||^2 for images; see :func:`recon.solvers.unfolded.penalty_weight`)."""

    problem: Problem
    y: torch.Tensor
    truth: torch.Tensor | None
    sqnorm: float
    lam_factor: float


def make_batch(problem: Problem) -> Batch:
    """Scale the problem as the ``unfolded-*`` methods do (see :func:`recon.solvers.unfolded.sample_scale`)."""
    scale = sample_scale(problem)
    truth = None
    if problem.ground_truth is not None:
        shape = (problem.x_shape[0], 1, *problem.x_shape[2:]) if problem.complex_image else problem.x_shape
        truth = torch.as_tensor(problem.ground_truth, device=problem.device, dtype=problem.dtype).reshape(shape)
        truth = truth / per_sample(scale, truth)
    sqnorm = operator_sqnorm(problem)
    return Batch(problem, problem.y / per_sample(scale, problem.y), truth, sqnorm, penalty_weight(problem, 1.0, sqnorm))


def estimate(x: torch.Tensor, problem: Problem) -> torch.Tensor:
    """What the truth is compared with: |x| (B, 1, ...) for complex images, x otherwise."""
    return group_norm(x) if problem.complex_image else x


def run_batch(model: UnfoldedThresholding, batch: Batch, lam: float,
              depth: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """x after ``depth`` layers and its objective per sample (B,)."""
    weight = lam * batch.lam_factor
    x, penalty = model(batch.problem.physics, batch.y, batch.problem.x_shape, batch.sqnorm, weight, depth)
    return x, objective(batch.problem.physics, batch.y, x, penalty, weight)


def batch_loss(model: UnfoldedThresholding, batch: Batch, loss: str, lam: float,
               depth: int | None = None) -> torch.Tensor:
    """The training loss (a scalar) of ``batch`` at layer ``depth`` (None: T)."""
    x, values = run_batch(model, batch, lam, depth)
    if loss == "unsupervised":
        return values.mean()
    return ((estimate(x, batch.problem) - batch.truth) ** 2).flatten(1).sum(dim=1).mean()


@dataclass(frozen=True)
class Schedule:
    """Optimiser settings: total steps, Adam learning rate, layer-wise first half or not, seed."""

    steps: int = 2000
    lr: float = 0.02
    incremental: bool = True
    seed: int = 0

    def phases(self, layers: int) -> list[tuple[int, int, bool]]:
        """(depth, steps, cosine decay) per phase: T layer-wise generations then the whole network."""
        if not self.incremental:
            return [(layers, self.steps, True)]
        per_generation = max(1, self.steps // (2 * layers))
        generations = [(depth, per_generation, False) for depth in range(1, layers + 1)]
        return [*generations, (layers, max(1, self.steps - per_generation * layers), True)]


def train(model: UnfoldedThresholding, sample: Callable[[], Batch], loss: str, schedule: Schedule,
          progress: Progress = silent_progress) -> list[float]:
    """Train ``model`` in place on batches drawn by ``sample``; returns the loss of every step."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    torch.manual_seed(schedule.seed)
    lam = model.config.lam
    history = []
    phases = schedule.phases(model.config.layers)
    with progress(f"train unfolded-{model.config.algo} ({loss})", sum(n for _, n, _ in phases)) as step:
        for depth, steps, decay in phases:
            optimizer = torch.optim.Adam(model.parameters(), lr=schedule.lr)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if decay else None
            for _ in range(steps):
                value = batch_loss(model, sample(), loss, lam, depth)
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                history.append(float(value.detach()))
                step(loss=history[-1], layers=depth)
    return history


@torch.no_grad()
def evaluate(model: UnfoldedThresholding, batches: Sequence[Batch]) -> dict[str, float]:
    """Mean objective per signal and, with ground truth, NMSE sum||x - x*||^2 / sum||x*||^2 over ``batches``."""
    objectives, error, energy = [], 0.0, 0.0
    for batch in batches:
        x, values = run_batch(model, batch, model.config.lam)
        objectives.append(values)
        if batch.truth is not None:
            error += float(((estimate(x, batch.problem) - batch.truth) ** 2).sum())
            energy += float((batch.truth**2).sum())
    result = {"objective": float(torch.cat(objectives).mean())}
    if energy > 0:
        result["nmse"] = error / energy
    return result


def file_batches(paths: Sequence[Path], batch_size: int, device: torch.device, spec: str | None = None,
                 need_truth: bool = False) -> tuple[str, list[Batch]]:
    """The files' spec and their batches: each file split into chunks of about ``batch_size`` slices/samples.

    UserError when a file is unreadable, has another spec than ``spec`` (or than the first file), or lacks
    ``ground_truth`` while ``need_truth``. Memory: all the files' measurements (with coil maps for MRI) are
    held on ``device`` for the whole training, so train on a subset of a large collection.
    """
    batches = []
    for path in paths:
        with MeasurementFile(path) as measurement:
            found = measurement.spec.id
            spec = spec or found
            if found != spec:
                raise UserError(f"is a {found} file, but the training data are {spec}", path=path, key="--data",
                                fix="train on files of one spec (and --spec, when given, must match them)")
            if need_truth and not measurement.has("ground_truth"):
                raise UserError("has no ground_truth, which the supervised loss needs", path=path,
                                key="ground_truth", fix="use --loss unsupervised, or files with ground truth")
            chunks = np.array_split(np.arange(measurement.n_slices), math.ceil(measurement.n_slices / batch_size))
            for chunk in chunks:
                problem = build_problem(measurement, slice(int(chunk[0]), int(chunk[-1]) + 1), device)
                batches.append(make_batch(problem))
    return spec, batches


def synthetic_sparse_sampler(m: int, n: int, k: int, snr_db: float, batch_size: int, seed: int,
                             device: torch.device) -> Callable[[], Batch]:
    """Batches of ``batch_size`` signals with a fresh Gaussian A (m, n) per batch, from
    :func:`recon.simulate.simulate_sparse_linear` (k nonzeros N(0, 1), noise at ``snr_db``)."""
    rng = np.random.default_rng(seed)

    def sample() -> Batch:
        datasets, _ = simulate_sparse_linear(m, n, k, snr_db, batch_size, rng=rng)
        return make_batch(sparse_linear_problem(datasets, device))

    return sample


def sparse_linear_problem(datasets: dict[str, np.ndarray], device: torch.device) -> Problem:
    """A sparse-linear problem from in-memory arrays ``A`` (m, n), ``y`` (S, m), ``ground_truth`` (S, n)."""
    y = torch.as_tensor(datasets["y"], device=device)[:, None]
    samples, n = y.shape[0], datasets["A"].shape[1]
    return Problem(spec="sparse-linear/1", physics=MatrixOperator(datasets["A"], device=device), y=y,
                   x_shape=(samples, 1, n), output_shape=(samples, n),
                   initial=lambda: torch.zeros((samples, 1, n), device=device), norm_shape=(1, 1, n),
                   ground_truth=datasets.get("ground_truth"))


def write_weights(model: UnfoldedThresholding, path: Path, card: dict, overwrite: bool = False) -> None:
    """Write the model's weights to ``path`` and ``card`` beside it, atomically (see :mod:`.weights_files`)."""
    write_weights_and_card(*weight_tensors(model), path, card, overwrite)


def make_card(model: UnfoldedThresholding, loss: str, schedule: Schedule, losses: list[float], data: dict,
              validation: dict, command: str, device: torch.device, elapsed_s: float) -> dict:
    """The JSON card: what was trained, on what, how, and how it scores on held-out batches."""
    config = model.config
    window = max(1, min(50, len(losses) // 10))
    return {
        "algo": config.algo, "loss": loss, "layers": config.layers, "lambda": config.lam, "spec": config.spec,
        "wavelet_levels": config.wavelet_levels, "learn_thresholds": config.learn_thresholds,
        "data": data, "command": command, "steps": schedule.steps, "lr": schedule.lr,
        "incremental": schedule.incremental, "seed": schedule.seed, "device": str(device),
        "elapsed_s": round(elapsed_s, 2), "recon_version": recon.__version__,
        "loss_first": float(np.mean(losses[:window])), "loss_last": float(np.mean(losses[-window:])),
        "step_sizes_times_L": _rounded_exp(model.log_step),
        "threshold_factors": None if model.log_threshold is None else _rounded_exp(model.log_threshold),
        "validation": validation,
    }


def _rounded_exp(parameter: torch.Tensor) -> list[float]:
    return [round(float(v), 4) for v in torch.exp(parameter.detach()).cpu()]


def timed_train(model: UnfoldedThresholding, sample: Callable[[], Batch], loss: str, schedule: Schedule,
                progress: Progress, validation: Sequence[Batch]) -> tuple[list[float], dict, float]:
    """Train, scoring ``validation`` before (plain ISTA/IHT with T iterations) and after; returns
    (losses, {"init": ..., "trained": ...}, seconds)."""
    before = evaluate(model, validation)
    start = time.perf_counter()
    losses = train(model, sample, loss, schedule, progress)
    elapsed = time.perf_counter() - start
    return losses, {"init": before, "trained": evaluate(model, validation)}, elapsed


def train_from_files(paths: Sequence[Path], algo: str, loss: str, layers: int, schedule: Schedule, *,
                     lam: float | None = None, spec: str | None = None, batch_size: int = 32,
                     learn_thresholds: bool = False, wavelet_levels: int = 4, device: torch.device | None = None,
                     command: str = "", progress: Progress = silent_progress) -> tuple[UnfoldedThresholding, dict]:
    """Train unfolded weights on measurement files; returns the model and its card.

    The last 20% of the batches (when there are at least two) are held out for the card's validation
    figures; batches are drawn at random (seeded) from the others. UserError for unusable files or an
    (algo, spec) pair that recon cannot train.
    """
    device = device or torch.device("cpu")
    spec, batches = file_batches(paths, batch_size, device, spec, need_truth=loss == "supervised")
    if (algo, spec) not in TRAINABLE:
        raise UserError(f"unfolded-{algo} does not take {spec} files", key="--algo",
                        fix="unfolded-iht is for sparse-linear only; use --algo ista for images")
    held_out = math.ceil(HELD_OUT * len(batches)) if len(batches) > 1 else 0
    training, validation = batches[:len(batches) - held_out], batches[len(batches) - held_out:] or batches
    config = UnfoldedConfig(algo, layers, DEFAULT_LAM[(algo, spec)] if lam is None else lam, spec,
                            wavelet_levels=0 if spec == "sparse-linear/1" else wavelet_levels,
                            learn_thresholds=learn_thresholds)
    model = UnfoldedThresholding(config).to(device)
    rng = np.random.default_rng(schedule.seed)
    losses, scores, elapsed = timed_train(model, lambda: training[rng.integers(len(training))], loss, schedule,
                                          progress, validation)
    data = {"files": [str(p) for p in paths], "batches": len(training), "batch_size": batch_size,
            "held_out_batches": held_out,
            "validated_on": "held-out batches" if held_out else "the training batch (only one batch)"}
    return model, make_card(model, loss, schedule, losses, data, scores, command, device, elapsed)
