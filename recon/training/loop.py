"""A generic training loop: Adam, seeded data, CPU or CUDA, checkpoints with resume, progress, validation.

    result = fit(model, loss_fn, sample_batch, FitConfig(steps=2000, lr=cosine_lr(1e-3, 2000), seed=0),
                 device=device, checkpoint=Path("run.ckpt"), validate=lambda m: {"psnr": ...},
                 progress=default_progress())

- ``sample_batch(generator)`` returns a batch (a tensor or a tuple of tensors, on the CPU; the loop moves it
  to ``device``) drawn with ``generator`` only, so that the data stream is fixed by the seed;
- ``loss_fn(model, batch, step)`` returns the scalar loss (``step`` lets a loss follow a schedule);
- ``after_step(model)`` runs after every optimiser step (e.g. clamping weights to a constraint set).

A checkpoint (model, optimiser, data generator, step, losses, validation) is written atomically every
``checkpoint_every`` steps and at the end (an interrupted run loses at most that many steps);
``resume=True`` continues from it, giving the same weights as an uninterrupted run on the same device.
The model must be built (and seeded) by the caller.

Options for accelerators (off by default, so that earlier runs and checkpoints stay as they were):

- ``budget_s``: a wall-clock budget. The schedule (learning rate, and the ``step`` a loss sees) then advances by
  time: optimiser step k runs at schedule position max(k, ceil(steps * elapsed / budget_s)), so the schedule ends
  at the deadline whatever the device's speed, skipping positions when the device is slower than ``steps`` in
  ``budget_s`` (a fast device stops early at ``steps``). Such runs depend on timing: not reproducible, not
  resumable;
- ``precision``: "fp32"; "tf32" (TensorFloat-32 matrix products and convolutions on CUDA); "bf16" (the loss under
  bfloat16 autocast, the weights and the optimiser in float32, plus TF32);
- ``channels_last``: the model and 4D batches in channels-last memory format (faster convolutions on tensor cores).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from recon.errors import UserError
from recon.progress import Progress, silent_progress

LearningRate = float | Callable[[int], float]


@dataclass(frozen=True)
class FitConfig:
    """Total optimiser ``steps``, learning rate (a number or a function of the step), ``seed`` of the data
    stream, validation every ``validate_every`` steps (and at the end), gradient-norm clip (None: off), and the
    accelerator options of the module: wall-clock ``budget_s``, ``precision``, ``channels_last``."""

    steps: int
    lr: LearningRate = 1e-3
    seed: int = 0
    validate_every: int = 500
    checkpoint_every: int = 200
    clip: float | None = 1.0
    budget_s: float | None = None
    precision: str = "fp32"
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}", key="--precision",
                            fix=f"choose one of {', '.join(PRECISIONS)}")
        if self.budget_s is not None and self.budget_s <= 0:
            raise UserError(f"a time budget of {self.budget_s} s", key="--minutes", fix="give a positive budget")

    def signature(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be resumed (a schedule function by its name; the accelerator options
        only where they are not at their defaults, so that checkpoints written before them still resume)."""
        values = asdict(self)
        values["lr"] = getattr(self.lr, "__qualname__", self.lr)
        for key, default in ACCELERATOR_DEFAULTS.items():
            if values[key] == default:
                del values[key]
        return values


PRECISIONS = ("fp32", "tf32", "bf16")
ACCELERATOR_DEFAULTS = {"budget_s": None, "precision": "fp32", "channels_last": False}


@dataclass(frozen=True)
class Speed:
    """How a trainer uses an accelerator (everything off by default): a wall-clock budget in ``minutes``, the
    ``precision`` and ``channels_last`` of :class:`FitConfig`, and ``bank``: that many patches drawn once (seeded)
    onto the training device, batches then drawn there (:class:`recon.training.data.PatchBank`), so that the
    device never waits for patches cut on the CPU."""

    minutes: float | None = None
    precision: str = "fp32"
    channels_last: bool = False
    bank: int | None = None

    def fit_options(self) -> dict[str, Any]:
        """The :class:`FitConfig` fields."""
        return {"budget_s": None if self.minutes is None else 60.0 * self.minutes, "precision": self.precision,
                "channels_last": self.channels_last}

    def source(self, dataset, device: torch.device, seed: int):
        """What batches are sampled from: ``dataset`` itself, or a bank of its patches on ``device``."""
        if self.bank is None:
            return dataset
        from recon.training.data import PatchBank

        return PatchBank.draw(dataset, self.bank, torch.Generator().manual_seed(seed), device)

    def card(self, result: FitResult) -> dict[str, Any]:
        """What a weights card records of these options: nothing when they are all off."""
        if self == Speed():
            return {}
        return {"speed": asdict(self), "optimiser_steps": result.optimiser_steps}


@dataclass
class FitResult:
    losses: list[float] = field(default_factory=list)
    validation: list[dict[str, float]] = field(default_factory=list)
    """One dict per validation, with its ``step``."""
    elapsed_s: float = 0.0
    resumed_from: int = 0
    positions: list[int] = field(default_factory=list)
    """The schedule position of every loss (1, 2, ... unless a budget skipped positions)."""
    optimiser_steps: int = 0
    """Optimiser steps taken in this run (fewer than the schedule's when a budget skipped positions)."""


def cosine_lr(base: float, steps: int, final: float = 0.05) -> Callable[[int], float]:
    """Cosine decay from ``base`` to ``final * base`` over ``steps``."""

    def lr(step: int) -> float:
        return base * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0))))

    lr.__qualname__ = f"cosine_lr({base}, {steps}, {final})"
    return lr


def _to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    return type(batch)(_to_device(item, device, channels_last) for item in batch)


@contextlib.contextmanager
def _precision(precision: str, device: torch.device) -> Iterator[Callable[[], contextlib.AbstractContextManager]]:
    """TF32 switched on for the duration (tf32, bf16; restored after); yields the context of one loss
    evaluation (bfloat16 autocast for bf16, nothing otherwise)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if precision != "fp32":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        if precision == "bf16":
            yield lambda: torch.autocast(device.type, dtype=torch.bfloat16)
        else:
            yield contextlib.nullcontext
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class _Schedule:
    """Schedule positions 1..steps of the optimiser steps: one each, or by the clock under a budget (see the
    module)."""

    def __init__(self, config: FitConfig, start: int):
        self.steps, self.budget, self.position = config.steps, config.budget_s, start
        self.began = time.perf_counter()

    def next(self) -> int | None:
        """The next step's position, None when the schedule (or the budget) is over."""
        if self.position >= self.steps:
            return None
        position = self.position + 1
        if self.budget is not None:
            elapsed = time.perf_counter() - self.began
            if elapsed >= self.budget:
                return None
            position = max(position, min(self.steps, math.ceil(self.steps * elapsed / self.budget)))
        return position

    def crossed(self, previous: int, position: int, every: int) -> bool:
        """Whether a multiple of ``every`` (or the last position) lies in (previous, position]."""
        return position // every > previous // every or position == self.steps


def _save(path: Path, state: dict) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def fit(model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, Any, int], torch.Tensor],
        sample_batch: Callable[[torch.Generator], Any], config: FitConfig, *, device: torch.device,
        checkpoint: Path | None = None, resume: bool = False,
        validate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
        after_step: Callable[[torch.nn.Module], None] | None = None,
        progress: Progress = silent_progress) -> FitResult:
    """Train ``model`` in place for ``config.steps`` Adam steps, or the schedule of ``steps`` positions within
    ``config.budget_s`` (see the module); returns losses and validation."""
    if resume and config.budget_s is not None:
        raise UserError("a run with a time budget cannot be resumed", key="--resume",
                        fix="leave out --resume (or --minutes) and train again")
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.0 if callable(config.lr) else config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    result = FitResult()
    start = 0
    if resume and checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        if state["config"] != config.signature():
            raise UserError("the checkpoint was made with other training settings", path=checkpoint, key="--resume",
                            fix=f"resume with the same options ({state['config']}) or delete the checkpoint")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        generator.set_state(state["generator"])
        start = result.resumed_from = state["step"]
        result.losses, result.validation = state["losses"], state["validation"]
        result.positions = list(range(1, start + 1))

    def save(step: int) -> None:
        if checkpoint is not None:
            _save(checkpoint, {"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                               "generator": generator.get_state(), "step": step, "losses": result.losses,
                               "validation": result.validation, "config": config.signature()})

    def run_validation(step: int) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            scores = {"step": step, **validate(model)}
        model.train()
        result.validation.append(scores)
        return scores

    began = time.perf_counter()
    model.train()
    schedule = _Schedule(config, start)
    step = start
    with progress("train", config.steps - start) as report, _precision(config.precision, device) as autocast:
        while (position := schedule.next()) is not None:
            if callable(config.lr):
                for group in optimiser.param_groups:
                    group["lr"] = config.lr(position - 1)
            batch = _to_device(sample_batch(generator), device, config.channels_last)
            with autocast():
                loss = loss_fn(model, batch, position)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimiser.step()
            if after_step is not None:
                with torch.no_grad():
                    after_step(model)
            result.losses.append(float(loss.detach()))
            result.positions.append(position)
            result.optimiser_steps += 1
            fields = {"loss": result.losses[-1]}
            if validate is not None and schedule.crossed(step, position, config.validate_every):
                fields.update({k: v for k, v in run_validation(position).items() if k != "step"})
            for _ in range(position - step):  # a budget may skip positions: the bar counts positions
                report(**fields)
            if schedule.crossed(step, position, config.checkpoint_every) and config.budget_s is None:
                save(position)
            step = schedule.position = position
        if validate is not None and step < config.steps:  # the budget ended the run: validate where it stopped
            run_validation(step)
    model.eval()
    result.elapsed_s = time.perf_counter() - began
    return result
