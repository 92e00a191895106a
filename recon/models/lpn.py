"""Learned proximal networks (Fang, Buchanan, Sulam, ICLR 2024): a convex potential psi whose gradient is a prox.

psi is a fully convolutional input-convex network on images x (B, C, H, W) of any size:

    z_1 = s(W_0 x + b_0)
    z_{k+1} = s(W_k z_k + R_k x + b_k)        W_k >= 0 (clamped after every optimiser step), R_k free
    psi(x) = sum_pixels(w . z_L + r * x) + alpha ||x||^2      w >= 0

with s the softplus of sharpness beta, s(t) = log(1 + exp(beta t)) / beta (convex, non-decreasing), 3x3
convolutions and zero padding (linear maps, so convexity holds at the borders too). Non-negative combinations
of convex non-decreasing functions of convex functions are convex, so psi is convex in x; alpha > 0 makes it
strongly convex. The sum over pixels (a global sum pool followed by a linear layer) rather than a mean keeps
f = grad psi independent of the image size, so f acts on any image: the authors' fixed-size network had to
average patches, which is no longer an exact prox.

f(x) = grad_x psi(x) (autograd) is the gradient of a convex function, hence exactly the prox of some
(nonconvex) regulariser R: f(x) = argmin_z R(z) + ||z - x||^2 / 2. R is evaluated at a point x in the range of
f by inverting f: y = argmin_y psi(y) - <x, y> (convex; L-BFGS here), then
R(x) = <y, x> - ||x||^2 / 2 - psi(y), up to an additive constant.

Relaxation: for 0 < tau <= 1, f_tau = (1 - tau) x + tau f(x) is the gradient of the convex
psi_tau = (1 - tau) ||x||^2 / 2 + tau psi, so it is again an exact prox, of a regulariser R_tau (about tau R);
the functions below take ``tau`` and evaluate R_tau the same way.

Units: images are in the solvers' normalised unit (0.99 quantile of |x| about 1, see
:mod:`recon.training.data`); complex images have C = 2 (real, imaginary).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from recon.models import weights

FORMAT = "recon-lpn/1"


@dataclass(frozen=True)
class LPNConfig:
    """Architecture: input channels (1 real, 2 complex), hidden channels, number of hidden layers L, softplus
    sharpness beta, strong-convexity weight alpha and the noise level sigma the prox was trained for."""

    channels: int = 1
    hidden: int = 64
    layers: int = 4
    beta: float = 20.0
    alpha: float = 1e-6
    sigma: float = 0.1


class LPN(nn.Module):
    """psi (B, C, H, W) -> (B,) and its gradient f = prox (same shape as x); see the module docstring."""

    def __init__(self, config: LPNConfig):
        super().__init__()
        if config.channels < 1 or config.hidden < 1 or config.layers < 1 or config.beta <= 0 or config.alpha < 0:
            raise ValueError(f"invalid LPN config {config}")
        self.config = config
        c, h = config.channels, config.hidden
        self.inputs = nn.ModuleList([nn.Conv2d(c, h, 3, padding=1) for _ in range(config.layers)])  # W_0, R_k
        self.hidden = nn.ModuleList([nn.Conv2d(h, h, 3, padding=1, bias=False) for _ in range(config.layers - 1)])
        self.out = nn.Parameter(torch.full((h,), 1.0 / h))  # w >= 0
        self.linear = nn.Parameter(torch.zeros(c))  # r
        with torch.no_grad():
            for conv in self.hidden:  # non-negative, averaging the previous layer at the start
                conv.weight.uniform_(0.0, 2.0 / (h * 9))

    def nonnegative(self) -> list[torch.Tensor]:
        """The parameters that must stay >= 0 for psi to be convex."""
        return [conv.weight for conv in self.hidden] + [self.out]

    @torch.no_grad()
    def clamp_weights(self) -> None:
        """Project the constrained weights onto >= 0; call after every optimiser step."""
        for weight in self.nonnegative():
            weight.clamp_(min=0.0)

    def psi_map(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel terms of psi, (B, 1, H, W): psi(x) is their sum."""
        beta = self.config.beta
        z = F.softplus(self.inputs[0](x), beta=beta)
        for conv, skip in zip(self.hidden, self.inputs[1:], strict=True):
            z = F.softplus(conv(z) + skip(x), beta=beta)
        terms = torch.einsum("bchw,c->bhw", z, self.out) + torch.einsum("bchw,c->bhw", x, self.linear)
        return (terms + self.config.alpha * (x**2).sum(dim=1))[:, None]

    def psi(self, x: torch.Tensor) -> torch.Tensor:
        """psi(x) per image, (B,)."""
        return self.psi_map(x).flatten(1).sum(dim=1)

    def forward(self, x: torch.Tensor, create_graph: bool | None = None) -> torch.Tensor:
        """f(x) = grad psi(x), the learned prox, like x. ``create_graph`` (default: in training mode) keeps the
        graph so that a loss on f can be differentiated with respect to the weights."""
        create_graph = self.training if create_graph is None else create_graph
        with torch.enable_grad():
            x = x if x.requires_grad else x.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(self.psi(x).sum(), x, create_graph=create_graph)
        return gradient


@dataclass
class Inversion:
    """y with f(y) ~ x, and the relative residual ||f(y) - x|| / ||x|| per image (B,)."""

    y: torch.Tensor
    residual: torch.Tensor


def psi_tau_map(model: LPN, y: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Per-pixel terms of psi_tau(y) = (1 - tau) ||y||^2 / 2 + tau psi(y), (B, 1, H, W)."""
    terms = model.psi_map(y)
    return terms if tau == 1.0 else tau * terms + (1 - tau) * (y**2).sum(dim=1, keepdim=True) / 2


def invert(model: LPN, x: torch.Tensor, iterations: int = 300, tol: float = 1e-5, tau: float = 1.0) -> Inversion:
    """Solve min_y psi_tau(y) - <x, y> (convex, gradient f_tau(y) - x) by L-BFGS with a strong Wolfe line search,
    from y = x, until ``iterations`` or a gradient below ``tol`` times ||x||. The images of a batch are
    independent, so one L-BFGS on the sum of their objectives solves them all."""
    x = x.detach()
    y = x.clone().requires_grad_(True)
    scale = float(torch.linalg.vector_norm(x)) or 1.0
    optimizer = torch.optim.LBFGS([y], lr=1.0, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe",
                                  tolerance_grad=tol * scale / x.numel() ** 0.5, tolerance_change=0.0)

    def closure() -> torch.Tensor:
        with torch.enable_grad():  # the gradient with respect to y only, not the weights
            objective = psi_tau_map(model, y, tau).sum() - (x * y).sum()
            (y.grad,) = torch.autograd.grad(objective, y)
        return objective.detach()

    optimizer.step(closure)
    y = y.detach()
    residual = torch.linalg.vector_norm((torch.lerp(y, model(y, create_graph=False), tau) - x).flatten(1), dim=1)
    return Inversion(y, residual / torch.linalg.vector_norm(x.flatten(1), dim=1).clamp_min(1e-30))


def regulariser_map(model: LPN, x: torch.Tensor, inversion: Inversion | None = None, tau: float = 1.0) -> torch.Tensor:
    """Per-pixel terms of R_tau(x), (B, 1, H, W), summing to :func:`regulariser_value`:
    y_p . x_p - |x_p|^2 / 2 - psi_p(y) at each pixel p (. and |.| over channels), with psi_p the pixel's term
    of psi_tau (which depends on y near p). ``inversion``: a precomputed :func:`invert` of x."""
    inversion = inversion or invert(model, x, tau=tau)
    with torch.no_grad():
        y = inversion.y
        return ((y * x).sum(dim=1) - (x**2).sum(dim=1) / 2)[:, None] - psi_tau_map(model, y, tau)


def regulariser_value(model: LPN, x: torch.Tensor, inversion: Inversion | None = None,
                      tau: float = 1.0) -> torch.Tensor:
    """The learned regulariser R_tau(x) per image, (B,) (up to one additive constant shared by all x)."""
    return regulariser_map(model, x, inversion, tau).flatten(1).sum(dim=1)


def weight_tensors(model: LPN) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata (strings) that :func:`load_lpn` reads back."""
    return weights.weight_tensors(model, FORMAT, model.config)


def load_lpn(path: str | Path, device: torch.device | str = "cpu") -> LPN:
    """LPN weights from ``path`` (safetensors written by ``recon train lpn``) in eval mode; UserError if unusable."""
    return weights.load_weights(path, FORMAT, LPNConfig, LPN, "LPN", device)[0]
