"""Training a noise-level-aware denoiser (:mod:`recon.models.denoisers`) on clean patches with synthetic noise.

Loss: L1 between D(x + sigma n, sigma) and x (or, for ``config.noise`` "rician", D(|x + sigma (n1 + j n2)|,
sigma) and x), sigma uniform in [0, sigma_max] per patch (normalised unit, see :mod:`recon.training.data`), Adam
with a cosine learning rate; from random weights, or from ``init`` weights of the same architecture (fine-tuning).
Validation: PSNR (peak 1 in that unit) of the noisy and the denoised held-out patches at fixed noise levels evenly
spread over (0, sigma_max], on the last 20% of every source (:func:`recon.training.data.hold_out`), which training
never sees (and, when fine-tuning, of the ``init`` weights before the first step).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import recon
from recon.errors import UserError
from recon.models.denoisers import DenoiserConfig, apply_denoiser, build_denoiser, load_denoiser, weight_tensors
from recon.progress import Progress, silent_progress
from recon.training.data import PatchDataset, add_noise, hold_out, load_sources, noisy_pair
from recon.training.loop import FitConfig, Speed, cosine_lr, fit
from recon.training.weights_files import init_state, write_weights_and_card

VALIDATION_PATCHES = {2: 32, 3: 4}
HELD_OUT = 0.2


@dataclass(frozen=True)
class DenoiserTraining:
    """What to train on and how: ``data`` items (files, phantom:KIND, skimage:NAME), patch side, batch size."""

    data: tuple[str, ...]
    config: DenoiserConfig
    patch: int = 48
    batch: int = 16
    steps: int = 2000
    lr: float = 1e-3
    seed: int = 0
    hu: bool = False
    signed: bool = False
    init: str | None = None
    """Weights file to start from (same dim, channels, nc, nb), e.g. to fine-tune on another noise model."""
    speed: Speed = Speed()
    """Accelerator options (time budget, precision, a patch bank on the device); all off by default."""


def psnr(estimate: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """PSNR in dB with peak 1 (the normalised unit), per batch element (B,)."""
    mse = ((estimate - truth) ** 2).flatten(1).mean(dim=1)
    return -10 * torch.log10(mse.clamp_min(1e-12))


def validation_set(held: Sequence, training: DenoiserTraining, device: torch.device):
    """Fixed noisy/clean held-out patches and their noise levels: (noisy, clean, sigma)."""
    config = training.config
    first = 1 if config.dim == 2 else 0  # 2D patches come from single slices: only (y, x) must fit

    def side(volume) -> int:
        return min(volume.shape[first:])

    usable = [v for v in held if side(v) >= 16]
    if not usable:
        raise UserError("the held-out parts of the sources are smaller than 16 pixels", key="--data",
                        fix="give larger sources (at least 80 pixels per side) or more slices")
    patch = min(training.patch, min(side(v) for v in usable) // 8 * 8)
    clean = PatchDataset(usable, patch, config.dim, config.channels, augment=False, signed=training.signed).sample(
        VALIDATION_PATCHES[config.dim], torch.Generator().manual_seed(training.seed + 1))
    sigma = torch.linspace(config.sigma_max / len(clean), config.sigma_max, len(clean))
    noisy = add_noise(clean, sigma, torch.Generator().manual_seed(training.seed + 2), config.noise)
    return noisy.to(device), clean.to(device), sigma.to(device)


def train_denoiser(training: DenoiserTraining, *, device: torch.device, checkpoint: Path | None = None,
                   resume: bool = False, command: str = "", progress: Progress = silent_progress):
    """Train a denoiser; returns (model, card) with the card's data, settings and validation PSNR."""
    config = training.config
    volumes = load_sources(training.data, config.dim, training.hu, training.seed)
    train, held = hold_out(volumes, HELD_OUT)
    dataset = training.speed.source(PatchDataset(train, training.patch, config.dim, config.channels,
                                                 signed=training.signed), device, training.seed + 3)
    noisy_val, clean_val, sigma_val = validation_set(held, training, device)
    torch.manual_seed(training.seed)
    model = build_denoiser(config)
    if training.init is not None:
        model.load_state_dict(_init_state(training.init, config))
        model.eval()
        with torch.no_grad():
            psnr_init = float(psnr(apply_denoiser(model.to(device), noisy_val, sigma_val), clean_val).mean())

    def sample(generator: torch.Generator):
        clean = dataset.sample(training.batch, generator)
        noisy, sigma = noisy_pair(clean, (0.0, config.sigma_max), generator, config.noise)
        return noisy, clean, sigma

    def loss_fn(net, batch, step):
        noisy, clean, sigma = batch
        return (net(noisy, sigma) - clean).abs().mean()

    def validate(net) -> dict[str, float]:
        return {"psnr": float(psnr(apply_denoiser(net, noisy_val, sigma_val), clean_val).mean())}

    fit_config = FitConfig(steps=training.steps, lr=cosine_lr(training.lr, training.steps), seed=training.seed,
                           validate_every=max(1, training.steps // 5), **training.speed.fit_options())
    began = time.perf_counter()
    result = fit(model, loss_fn, sample, fit_config, device=device, checkpoint=checkpoint, resume=resume,
                 validate=validate, progress=progress)
    card = {
        "kind": "denoiser", "format": "recon-denoiser/1", "config": asdict(config),
        "summary": f"DRUNet {config.dim}D, {config.channels} channel(s), sigma in [0, {config.sigma_max}]",
        "data": {"sources": list(training.data), "hounsfield": training.hu, "signed": training.signed,
                 "noise": config.noise,
                 "held_out": f"the last {HELD_OUT:.0%} of every source (slices along z when it has >= 5, "
                             "else columns along x): validation only",
                 "normalisation": "each source divided by its 0.99 quantile of |value|"},
        "patch": training.patch, "batch": training.batch, "steps": training.steps, "lr": training.lr,
        "seed": training.seed, "init": training.init, "loss": "L1",
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_first": result.losses[0] if result.losses else None, "loss_last": result.losses[-1],
        "validation": {"patches": len(clean_val), "sigma": [round(float(s), 4) for s in sigma_val],
                       "psnr_noisy": round(float(psnr(noisy_val, clean_val).mean()), 2),
                       "psnr_denoised": round(result.validation[-1]["psnr"], 2),
                       **({"psnr_init": round(psnr_init, 2)} if training.init is not None else {}),
                       "history": result.validation},
        "command": command, "device": str(device), "elapsed_s": round(time.perf_counter() - began, 1),
        "recon_version": recon.__version__, **training.speed.card(result),
    }
    return model, card


def _init_state(path: str, config: DenoiserConfig) -> dict:
    """The float32 state of the weights in ``path``; UserError unless their architecture is ``config``'s."""
    network, found = load_denoiser(path)
    return init_state(path, network, (found.dim, found.channels, found.nc, found.nb) ==
                      (config.dim, config.channels, config.nc, config.nb),
                      f"a {found.dim}D DRUNet with {found.channels} channel(s), widths {list(found.nc)} and {found.nb} "
                      "block(s), not the one to train", "--width/--blocks")


def write_denoiser(model, config: DenoiserConfig, path: Path, card: dict, overwrite: bool = False) -> None:
    """Write the weights and their card atomically (see :mod:`recon.training.weights_files`)."""
    write_weights_and_card(*weight_tensors(model, config), path, card, overwrite)
