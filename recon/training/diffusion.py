"""Training the slice diffusion model (:mod:`recon.models.diffusion`) by denoising score matching.

Data: every slice of every ``--data`` source (normalised as in :mod:`recon.training.data`) resized to
``size`` x ``size`` (whole slices, as the solvers will show them; optionally random ``patch`` x ``patch`` crops of
them, cheaper per step at the same scale), with random flips and quarter turns; ``channels``
2 gives complex slices (real, imaginary) with a smooth random phase. Loss (Ho et al. 2020): E ||eps_theta(x_t, t) -
eps||^2 with t uniform in 0 .. T-1 and x_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps, z the slice in the model unit.
Adam with a cosine learning rate; an exponential moving average (EMA) of the weights is kept and is what gets
written. Validation, on the last 20 % of every source (never trained on), with the EMA weights: the loss at fixed
time steps and noise, and the PSNR of Tweedie's (clipped) x0 (peak 1 in recon's unit) at those steps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import recon
from recon.models.diffusion import (
    DiffusionConfig,
    EpsilonUNet,
    build_diffusion,
    from_model,
    load_diffusion,
    noised,
    to_model,
    tweedie,
    weight_tensors,
)
from recon.progress import Progress, silent_progress
from recon.training.data import PatchDataset, hold_out, load_sources
from recon.training.denoiser import psnr
from recon.training.loop import FitConfig, Speed, cosine_lr, fit
from recon.training.weights_files import init_state, write_weights_and_card

HELD_OUT = 0.2
VALIDATION_STEPS = (50, 200, 500, 800)
"""Time steps of the validation loss and x0 PSNR (out of T = 1000)."""
VALIDATION_SLICES = 8


@dataclass(frozen=True)
class DiffusionTraining:
    """What to train on (``data`` items: files, phantom:KIND, skimage:NAME) and how."""

    data: tuple[str, ...]
    config: DiffusionConfig
    size: int = 64
    patch: int | None = None
    """Side of the random crops trained on (None: whole slices); the network is convolutional, so it then
    runs on whole size x size slices all the same."""
    batch: int = 8
    steps: int = 4000
    lr: float = 2e-4
    ema: float = 0.999
    seed: int = 0
    hu: bool = False
    init: str | None = None
    """Weights to start from (same architecture), e.g. to fine-tune a shipped model on other slices."""
    speed: Speed = Speed()
    """Accelerator options (time budget, precision, a patch bank on the device); all off by default."""


def resize_slices(volume: np.ndarray, size: int) -> np.ndarray:
    """Every slice of ``volume`` (z, y, x) resized to (size, size), bilinear with antialiasing, float32."""
    stack = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[:, None]
    if stack.shape[-2:] != (size, size):
        stack = torch.nn.functional.interpolate(stack, size=(size, size), mode="bilinear", antialias=True,
                                                align_corners=False)
    return stack[:, 0].numpy()


class WithEMA(nn.Module):
    """The trained network and its exponential moving average (what the loop checkpoints together)."""

    def __init__(self, net: EpsilonUNet, decay: float):
        super().__init__()
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.net = net
        self.ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.ema.requires_grad_(False)


def abar_at(net: EpsilonUNet, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """abar at integer time steps t (B,), shaped (B, 1, 1, 1) in ``like``'s dtype."""
    return net.alphas_cumprod[t].to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def validation_set(held: Sequence[np.ndarray], training: DiffusionTraining, device: torch.device):
    """Fixed held-out slices (model unit), time steps and noise: (z, t, eps), each repeated per time step."""
    dataset = PatchDataset(held, training.size, 2, training.config.channels, augment=False)
    clean = to_model(dataset.sample(VALIDATION_SLICES, torch.Generator().manual_seed(training.seed + 1)))
    z = clean.repeat(len(VALIDATION_STEPS), 1, 1, 1)
    t = torch.tensor(VALIDATION_STEPS).repeat_interleave(VALIDATION_SLICES)
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(training.seed + 2))
    return z.to(device), t.to(device), eps.to(device)


@torch.no_grad()
def validate_scores(net: EpsilonUNet, z: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> dict[str, float]:
    """Mean eps loss and x0 PSNR (recon unit, peak 1) per validation time step, and their means."""
    abar = abar_at(net, t, z)
    x_t = noised(z, abar, eps)
    predicted = torch.cat([net(a, b) for a, b in zip(x_t.split(16), t.float().split(16), strict=True)])
    loss = ((predicted - eps) ** 2).flatten(1).mean(1)
    scores_db = psnr(from_model(tweedie(x_t, predicted, abar)), from_model(z))
    scores = {"loss": float(loss.mean()), "psnr_x0": float(scores_db.mean())}
    for step in VALIDATION_STEPS:
        scores[f"psnr_x0_t{step}"] = float(scores_db[t == step].mean())
    return scores


def train_diffusion(training: DiffusionTraining, *, device: torch.device, checkpoint: Path | None = None,
                    resume: bool = False, command: str = "", progress: Progress = silent_progress):
    """Train the diffusion model; returns (EMA network, card)."""
    config = training.config
    volumes = load_sources(training.data, 2, training.hu, training.seed)
    train, held = hold_out(volumes, HELD_OUT)
    train = [resize_slices(v, training.size) for v in train]
    held = [resize_slices(v, training.size) for v in held]
    dataset = training.speed.source(PatchDataset(train, training.patch or training.size, 2, config.channels), device,
                                    training.seed + 3)
    z_val, t_val, eps_val = validation_set(held, training, device)
    torch.manual_seed(training.seed)
    net = build_diffusion(config)
    if training.init is not None:
        net.load_state_dict(_init_state(training.init, config))
    model = WithEMA(net, training.ema)
    steps = config.timesteps

    def sample(generator: torch.Generator):
        z = to_model(dataset.sample(training.batch, generator))
        t = torch.randint(0, steps, (training.batch,), generator=generator)
        return z, t, torch.randn(z.shape, generator=generator)

    def loss_fn(wrapped: WithEMA, batch, step: int) -> torch.Tensor:
        z, t, eps = batch
        return ((wrapped.net(noised(z, abar_at(wrapped.net, t, z), eps), t.float()) - eps) ** 2).mean()

    def after_step(wrapped: WithEMA) -> None:
        wrapped.ema.update_parameters(wrapped.net)

    def validate(wrapped: WithEMA) -> dict[str, float]:
        return validate_scores(wrapped.ema.module, z_val, t_val, eps_val)

    fit_config = FitConfig(steps=training.steps, lr=cosine_lr(training.lr, training.steps), seed=training.seed,
                           validate_every=max(1, training.steps // 10), checkpoint_every=100,
                           **training.speed.fit_options())
    began = time.perf_counter()
    result = fit(model, loss_fn, sample, fit_config, device=device, checkpoint=checkpoint, resume=resume,
                 validate=validate, after_step=after_step, progress=progress)
    network = model.ema.module.eval()
    last = result.validation[-1]
    window = result.losses[-min(len(result.losses), 100):]
    card = {
        "kind": "diffusion", "format": "recon-diffusion/1", "config": asdict(config),
        "summary": f"VP diffusion (eps) UNet, {config.channels} channel(s), {training.size}^2 slices",
        "data": {"sources": list(training.data), "hounsfield": training.hu, "size": training.size,
                 "patch": training.patch or training.size,
                 "held_out": f"the last {HELD_OUT:.0%} of every source (slices along z when it has >= 5, "
                             "else columns along x): validation only",
                 "normalisation": "each source divided by its 0.99 quantile of |value|, then x -> 2 x - 1",
                 "augmentation": "random flips of y and x, quarter turns"},
        "batch": training.batch, "steps": training.steps, "lr": training.lr, "ema": training.ema,
        "seed": training.seed, "init": training.init, "loss": "MSE on eps, t uniform in 0..T-1",
        "parameters": sum(p.numel() for p in network.parameters()),
        "loss_last_100_mean": round(float(np.mean(window)), 5),
        "validation": {"slices": VALIDATION_SLICES, "time_steps": list(VALIDATION_STEPS),
                       "loss": round(last["loss"], 5), "psnr_x0": round(last["psnr_x0"], 2),
                       **{k: round(v, 2) for k, v in last.items() if k.startswith("psnr_x0_t")},
                       "history": result.validation},
        "command": command, "device": str(device), "elapsed_s": round(time.perf_counter() - began, 1),
        "resumed_from": result.resumed_from, "recon_version": recon.__version__, **training.speed.card(result),
    }
    return network, card


def _init_state(path: str, config: DiffusionConfig) -> dict:
    """The float32 state of the weights in ``path``; UserError unless they have ``config``'s architecture."""
    network, found = load_diffusion(path)
    return init_state(path, network, found == config, f"{found}, not the model to train ({config})",
                      "--channels/--width/--mult/--blocks")


def write_diffusion(model: EpsilonUNet, config: DiffusionConfig, path: Path, card: dict,
                    overwrite: bool = False) -> None:
    """Write the weights (float16) and their card atomically (see :mod:`recon.training.weights_files`)."""
    write_weights_and_card(*weight_tensors(model, config), path, card, overwrite)

