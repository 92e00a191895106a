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
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
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
    stream, validation every ``validate_every`` steps (and at the end), gradient-norm clip (None: off)."""

    steps: int
    lr: LearningRate = 1e-3
    seed: int = 0
    validate_every: int = 500
    checkpoint_every: int = 200
    clip: float | None = 1.0

    def signature(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be resumed (a schedule function by its name)."""
        values = asdict(self)
        values["lr"] = getattr(self.lr, "__qualname__", self.lr)
        return values


@dataclass
class FitResult:
    losses: list[float] = field(default_factory=list)
    validation: list[dict[str, float]] = field(default_factory=list)
    """One dict per validation, with its ``step``."""
    elapsed_s: float = 0.0
    resumed_from: int = 0


def cosine_lr(base: float, steps: int, final: float = 0.05) -> Callable[[int], float]:
    """Cosine decay from ``base`` to ``final * base`` over ``steps``."""

    def lr(step: int) -> float:
        return base * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0))))

    lr.__qualname__ = f"cosine_lr({base}, {steps}, {final})"
    return lr


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return type(batch)(_to_device(item, device) for item in batch)


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
    """Train ``model`` in place for ``config.steps`` Adam steps (see the module); returns losses and validation."""
    model.to(device)
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
    with progress("train", config.steps - start) as report:
        for step in range(start + 1, config.steps + 1):
            if callable(config.lr):
                for group in optimiser.param_groups:
                    group["lr"] = config.lr(step - 1)
            loss = loss_fn(model, _to_device(sample_batch(generator), device), step)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimiser.step()
            if after_step is not None:
                with torch.no_grad():
                    after_step(model)
            result.losses.append(float(loss.detach()))
            fields = {"loss": result.losses[-1]}
            if validate is not None and (step % config.validate_every == 0 or step == config.steps):
                fields.update({k: v for k, v in run_validation(step).items() if k != "step"})
            report(**fields)
            if step % config.checkpoint_every == 0 or step == config.steps:
                save(step)
    model.eval()
    result.elapsed_s = time.perf_counter() - began
    return result
