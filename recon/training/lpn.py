"""Training a learned proximal network by proximal matching (Fang, Buchanan, Sulam, ICLR 2024).

Clean patches x (:class:`recon.training.data.PatchDataset`, normalised unit) get white noise of one level
sigma; the network f should map x + sigma n back to x. Schedule over ``steps`` Adam steps:

- first half: L1 loss mean |f(x + sigma n) - x| at lr 1e-3 (a warm start: its minimiser is the posterior median);
- second half: proximal matching loss mean_batch 1 - exp(-||f(x + sigma n) - x||^2 / gamma^2) at lr 1e-4, with
  gamma halving over 4 equal stages down to gamma_min = 0.08 sqrt(values per patch). As gamma -> 0 its
  minimiser tends to the MAP denoiser, the prox of -sigma^2 log p(x).

The non-negative weights are clamped after every step, so psi stays convex and f stays an exact prox. Seeds fix
the initialisation and the data stream; checkpoints and resume come from :func:`recon.training.loop.fit`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

import recon
from recon.models.lpn import LPN, LPNConfig, load_lpn, weight_tensors
from recon.progress import Progress, silent_progress
from recon.training.data import PatchDataset, hold_out, noisy_pair
from recon.training.loop import FitConfig, Speed, fit
from recon.training.weights_files import init_state, write_weights_and_card

VALIDATION_PATCHES = 64


@dataclass(frozen=True)
class LPNSchedule:
    """Steps, patches per batch, patch side, learning rates of the two phases, proximal-matching stages and
    gamma_min per sqrt(value) (see the module), seed."""

    steps: int = 4000
    batch: int = 16
    patch: int = 40
    lr_l1: float = 1e-3
    lr_pm: float = 1e-4
    stages: int = 4
    gamma_min: float = 0.08
    seed: int = 0

    def gamma(self, step: int, values: int) -> float | None:
        """gamma at optimiser step ``step`` (1-based) for patches of ``values`` values; None in the L1 phase."""
        half = self.steps // 2
        if step <= half:
            return None
        stage = min(self.stages - 1, (step - half - 1) * self.stages // max(1, self.steps - half))
        return self.gamma_min * math.sqrt(values) * 2.0 ** (self.stages - 1 - stage)

    def lr(self) -> Callable[[int], float]:
        """Learning rate by (0-based) step: lr_l1 for the first half, lr_pm after."""
        half, l1, pm = self.steps // 2, self.lr_l1, self.lr_pm

        def lr(step: int) -> float:
            return l1 if step < half else pm

        lr.__qualname__ = f"lpn_lr({l1}, {pm}, {half})"
        return lr


def lpn_loss(output: torch.Tensor, clean: torch.Tensor, gamma: float | None) -> torch.Tensor:
    """L1 (gamma None) or proximal matching loss between f's ``output`` and the ``clean`` patches (B, C, p, p)."""
    if gamma is None:
        return (output - clean).abs().mean()
    error = ((output - clean) ** 2).flatten(1).sum(dim=1)
    return (1 - torch.exp(-error / gamma**2)).mean()


def psnr(output: torch.Tensor, clean: torch.Tensor) -> float:
    """PSNR in dB with peak 1 (the normalised unit), over the whole batch."""
    return float(10 * torch.log10(1 / ((output - clean) ** 2).mean().clamp_min(1e-20)))


@dataclass
class LPNTraining:
    """A trained model with its losses, validation scores and the card that goes beside its weights."""

    model: LPN
    card: dict


def train_lpn(volumes: Sequence[np.ndarray], config: LPNConfig, schedule: LPNSchedule, *,
              device: torch.device | None = None, checkpoint: Path | None = None, resume: bool = False,
              data: dict | None = None, command: str = "", progress: Progress = silent_progress,
              speed: Speed | None = None, init: str | None = None) -> LPNTraining:
    """Train an LPN on patches of ``volumes`` (normalised (z, y, x) arrays, see :func:`load_sources`).

    The last 20% of each volume is held out; the card's validation compares the PSNR of the noisy and the
    denoised held-out patches (``VALIDATION_PATCHES`` of them, fixed by the seed) at ``config.sigma``.
    ``speed``: accelerator options (time budget, precision, a patch bank on the device; all off by default).
    ``init``: weights of the same architecture to start from (fine-tuning), else random.
    """
    device, speed = device or torch.device("cpu"), speed or Speed()
    train_part, held_part = hold_out(volumes)
    patches = speed.source(PatchDataset(train_part, schedule.patch, channels=config.channels), device,
                           schedule.seed + 3)
    held = PatchDataset(held_part, min(schedule.patch, *(min(v.shape[1:]) for v in held_part)),
                        channels=config.channels)
    generator = torch.Generator().manual_seed(schedule.seed + 1)
    val_clean = held.sample(VALIDATION_PATCHES, generator)
    val_noisy, _ = noisy_pair(val_clean, (config.sigma, config.sigma), generator)
    val_clean, val_noisy = val_clean.to(device), val_noisy.to(device)
    values = config.channels * schedule.patch**2

    torch.manual_seed(schedule.seed)
    model = LPN(config)
    if init is not None:
        model.load_state_dict(_init_state(init, config))

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        clean = patches.sample(schedule.batch, generator)
        return noisy_pair(clean, (config.sigma, config.sigma), generator)[0], clean

    def loss(model: LPN, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> torch.Tensor:
        noisy, clean = batch
        return lpn_loss(model(noisy), clean, schedule.gamma(step, values))

    def validate(model: LPN) -> dict[str, float]:
        return {"psnr": psnr(model(val_noisy, create_graph=False), val_clean)}

    result = fit(model, loss, sample, FitConfig(schedule.steps, schedule.lr(), schedule.seed,
                                                validate_every=max(1, schedule.steps // 4), **speed.fit_options()),
                 device=device, checkpoint=checkpoint, resume=resume, validate=validate,
                 after_step=LPN.clamp_weights, progress=progress)
    window = max(1, min(50, len(result.losses) // 10))
    half = schedule.steps // 2
    l1_steps = sum(position <= half for position in result.positions)  # the L1 phase's losses come first
    card = {
        "kind": "lpn", "config": asdict(config), "schedule": asdict(schedule), "data": data or {},
        "command": command, "device": str(device), "elapsed_s": round(result.elapsed_s, 2), "init": init,
        "resumed_from": result.resumed_from, "recon_version": recon.__version__, **speed.card(result),
        "loss_l1_last": float(np.mean(result.losses[max(0, l1_steps - window):l1_steps] or [np.nan])),
        "loss_pm_last": float(np.mean(result.losses[-window:])) if schedule.steps > half else None,
        "gamma_min": schedule.gamma(schedule.steps, values),
        "validation": {"sigma": config.sigma, "patches": VALIDATION_PATCHES,
                       "psnr_noisy": psnr(val_noisy, val_clean), "psnr_denoised": validate(model)["psnr"],
                       "history": result.validation},
    }
    return LPNTraining(model, card)


def _init_state(path: str, config: LPNConfig) -> dict:
    """The float32 state of the LPN weights in ``path``; UserError unless they have ``config``'s architecture.
    Their noise level may differ: the prox is then retrained for ``config.sigma`` (fine-tuning to a new level)."""
    network = load_lpn(path)
    same_architecture = replace(network.config, sigma=config.sigma) == config
    return init_state(path, network, same_architecture, f"{network.config}, not the LPN to train ({config})",
                      "--channels/--hidden/--layers/--beta")


def write_lpn(training: LPNTraining, path: Path, overwrite: bool = False) -> None:
    """Write the weights to ``path`` and the card beside it, atomically (see :mod:`.weights_files`)."""
    write_weights_and_card(*weight_tensors(training.model), path, training.card, overwrite)
