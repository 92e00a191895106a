"""A VP (DDPM) diffusion model on 2D slices: an epsilon-predicting UNet and its noise schedule.

Forward process (Ho et al. 2020): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t = 0 .. T-1 (T = 1000),
betas linear from 1e-4 to 0.02, abar_t = prod_{s <= t} (1 - beta_s) — the schedule deepinv's DiffPIR and DPS
assume. The network eps_theta(x_t, t) predicts eps. It works in the *model unit* z = 2 x - 1, x being recon's
normalised image unit (0.99 quantile of the image about 1, :mod:`recon.training.data`), so clean images lie
about in [-1, 1] as in the DDPM papers; :func:`to_model` / :func:`from_model` convert.

The backbone is deepinv's ``ADMUNet`` (the ADM UNet of EDM) called raw, ``forward_unet(x, t)`` with the time
step as its noise label: residual blocks with time embedding, self-attention only in the mid-block (which ADMUNet
always has), widths small enough to train on a CPU. :class:`DiffusionDenoiser` is the same network as a deepinv
``Denoiser`` D(x, sigma) (x in recon's unit), so that deepinv's DPS and DiffPIR can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from deepinv.models import ADMUNet, Denoiser
from torch import nn

FORMAT = "recon-diffusion/1"
GROUPS = 32
"""ADMUNet's GroupNorm groups: every width must be a multiple of it."""
X0_RANGE = (-1.0, 3.0)
"""Tweedie's x0 is clipped to this range of the model unit (recon's unit [0, 2]: images are non-negative, their 0.99
quantile about 1): at large t, x0 divides the network's error by sqrt(abar_t), about 0.006 at t = T-1."""


@dataclass(frozen=True)
class DiffusionConfig:
    """Architecture and schedule: image ``channels`` (1 real, 2 complex as real/imaginary), base ``width`` (a
    multiple of 32), width multipliers ``mult`` per scale (the image side must be divisible by 2^(len - 1), else
    it is padded), residual ``blocks`` per scale, ``timesteps`` T and the linear beta range."""

    channels: int = 1
    width: int = 32
    mult: tuple[int, ...] = (1, 2, 2, 2)
    blocks: int = 1
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def __post_init__(self) -> None:
        object.__setattr__(self, "mult", tuple(self.mult))  # JSON gives a list
        if self.width % GROUPS or self.channels not in (1, 2) or not self.mult or self.blocks < 1:
            raise ValueError(f"width must be a multiple of {GROUPS}, channels 1 or 2, mult non-empty, blocks >= 1")

    @property
    def multiple(self) -> int:
        """Image sides the UNet takes without padding are multiples of this."""
        return 2 ** (len(self.mult) - 1)


def alphas_cumprod(config: DiffusionConfig) -> torch.Tensor:
    """abar_t for t = 0 .. T-1, float64 (T,)."""
    betas = torch.linspace(config.beta_start, config.beta_end, config.timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def to_model(x: torch.Tensor) -> torch.Tensor:
    """Normalised image unit (about [0, 1]) -> model unit (about [-1, 1])."""
    return 2.0 * x - 1.0


def from_model(z: torch.Tensor) -> torch.Tensor:
    """Model unit -> normalised image unit."""
    return 0.5 * (z + 1.0)


def noised(z: torch.Tensor, abar: torch.Tensor | float, eps: torch.Tensor) -> torch.Tensor:
    """The forward process: x_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps (``abar`` a number or broadcasting)."""
    return abar**0.5 * z + (1 - abar) ** 0.5 * eps


def tweedie(x_t: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor | float) -> torch.Tensor:
    """Tweedie's estimate of z from x_t and the predicted eps, x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar),
    clipped to :data:`X0_RANGE`."""
    return ((x_t - (1 - abar) ** 0.5 * eps) / abar**0.5).clamp(*X0_RANGE)


class EpsilonUNet(nn.Module):
    """eps_theta(x_t, t): x_t (B, C, ny, nx) in the model unit, t (B,) time steps (float, 0 .. T-1) -> (B, C, ny, nx).

    ``alphas_cumprod`` (T,) float64 is a buffer (not saved: the config rebuilds it)."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        # img_resolution only names the layers (64x64_block0, ...): fixed so that files do not depend on it
        self.unet = ADMUNet(img_resolution=64, in_channels=config.channels, out_channels=config.channels,
                            model_channels=config.width, channel_mult=config.mult, num_blocks=config.blocks,
                            attn_resolutions=(), dropout=0.0, pretrained=None)
        self.register_buffer("alphas_cumprod", alphas_cumprod(config), persistent=False)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ny, nx = x_t.shape[-2:]
        m = self.config.multiple
        pad = (0, -nx % m, 0, -ny % m)
        if any(pad):
            x_t = F.pad(x_t, pad, mode="reflect" if min(ny, nx) > m else "replicate")
        t = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device).expand(x_t.shape[0])
        return self.unet.forward_unet(x_t, t)[..., :ny, :nx]

    def abar(self, t: torch.Tensor | float) -> torch.Tensor:
        """abar at (possibly fractional) time steps ``t``, linearly interpolated in log abar (float64)."""
        t = torch.as_tensor(t, dtype=torch.float64, device=self.alphas_cumprod.device).clamp(0, len(self) - 1)
        low = t.floor().long()
        high = (low + 1).clamp(max=len(self) - 1)
        log = self.alphas_cumprod.log()
        return torch.exp(log[low] + (t - low) * (log[high] - log[low]))

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The fractional time step whose noise-to-signal ratio sqrt((1 - abar) / abar) is ``sigma`` (model unit)."""
        ratio = torch.sqrt((1 - self.alphas_cumprod) / self.alphas_cumprod)
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=ratio.device).clamp(ratio[0], ratio[-1])
        high = torch.searchsorted(ratio, sigma).clamp(1, len(self) - 1)
        low = high - 1
        return low + (sigma - ratio[low]) / (ratio[high] - ratio[low])

    def __len__(self) -> int:
        return self.config.timesteps


def build_diffusion(config: DiffusionConfig) -> EpsilonUNet:
    return EpsilonUNet(config)


def weight_tensors(model: EpsilonUNet, config: DiffusionConfig) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (float16: half the file) and metadata of a diffusion weights file."""
    from recon.models.weights import weight_tensors as tensors

    return tensors(model, FORMAT, config, dtype=torch.float16)


def load_diffusion(path: str | Path, device: torch.device | str = "cpu") -> tuple[EpsilonUNet, DiffusionConfig]:
    """The network stored by ``recon train diffusion`` (float32, eval mode) and its config."""
    from recon.models.weights import load_weights

    with torch.random.fork_rng(devices=[]):  # building initialises weights: keep the caller's random stream
        model, config = load_weights(path, FORMAT, DiffusionConfig, build_diffusion, "diffusion", device)
    return model.float(), config


class DiffusionDenoiser(Denoiser):
    """The diffusion network as deepinv's Gaussian denoiser D(x, sigma) (for its DPS and DiffPIR): x (B, C, ny, nx)
    in recon's normalised unit, sigma its noise std in that unit. x_t = (2 x - 1) sqrt(abar) is the model's input at
    the time step whose noise-to-signal ratio is 2 sigma; D returns Tweedie's x0 back in recon's unit."""

    def __init__(self, model: EpsilonUNet):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, *args, **kwargs) -> torch.Tensor:
        sigma_z = 2 * torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1)
        t = self.model.timestep(sigma_z).to(x.dtype).expand(x.shape[0])
        abar = self.model.abar(t).to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        x_t = to_model(x) * abar.sqrt()
        return from_model(tweedie(x_t, self.model(x_t, t), abar))
