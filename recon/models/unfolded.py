"""Deep unfolded ISTA / IHT (Nagahisa, Hayakawa, Iiguni, arXiv 2509.01331): T proximal-gradient layers, the
trainable form of :mod:`recon.proximal_gradient` (whose step each layer takes).

Layer t, on any deepinv ``LinearPhysics`` and in an orthonormal basis W (identity for sparse signals, Haar
wavelets for images, see :mod:`recon.shrinkage`):

    v = W (x_t + a_t A^T (y - A x_t))
    DU-ISTA: x_{t+1} = W^T S_{a_t lam}(v)               soft threshold = prox of a_t lam ||.||_1
    DU-IHT:  x_{t+1} = W^T H_{sqrt(2 a_t lam)}(v)       hard threshold = prox of a_t lam ||.||_0

from x_0 = 0. Learned: the step sizes a_t = exp(s_t) / ||A||^2 (positive, and s_t = 0 is plain ISTA/IHT
with step 1/L, so the same weights serve operators of any norm) and, optionally, a per-layer factor
exp(b_t) on lam inside the threshold. Thresholds act on the detail coefficients only, and on channel
groups (complex magnitude for MRI).

Training the hard threshold: its gate 1[|v| > theta] has zero derivative almost everywhere, so neither the
threshold nor the l0 count ||x_T||_0 passes any gradient. In training mode the gate is straight-through:
the forward pass is the exact hard threshold and count, the backward pass uses the derivative of the
sigmoid gate sigma((|v| - theta) / (0.2 theta)) in its place (whenever autograd records, i.e. in
training; inference under ``torch.no_grad`` uses the plain gate).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from deepinv.physics import LinearPhysics

from recon.models import weights
from recon.proximal_gradient import ProximalGradient, data_terms
from recon.shrinkage import HaarBasis, group_norm, penalised_sum, soft_threshold

ALGOS = ("ista", "iht")
FORMAT = "recon-unfolded/1"
GATE_TEMPERATURE = 0.2  # width of the straight-through sigmoid gate, as a fraction of the threshold


@dataclass(frozen=True)
class UnfoldedConfig:
    """What a set of unfolded weights is: algorithm, depth, basis, and the problem it was trained on."""

    algo: str
    layers: int
    lam: float
    spec: str
    wavelet_levels: int = 0
    learn_thresholds: bool = False


def objective(physics: LinearPhysics, y: torch.Tensor, x: torch.Tensor, penalty: torch.Tensor,
              lam: float) -> torch.Tensor:
    """1/2 ||y - A x||^2 + lam R(x) per batch element (B,), given the penalty R(x) (B,) the model reported."""
    return data_terms(physics.A(x) - y) + lam * penalty


class UnfoldedThresholding(torch.nn.Module):
    """T unfolded ISTA or IHT layers (see the module docstring); parameters ``log_step`` (T,) and,
    with ``learn_thresholds``, ``log_threshold`` (T,). Signals x are (B, C, ...) in the problem layout."""

    def __init__(self, config: UnfoldedConfig):
        super().__init__()
        if config.algo not in ALGOS or config.layers < 1:
            raise ValueError(f"need algo in {ALGOS} and layers >= 1, got {config.algo!r}, {config.layers}")
        self.config = config
        self.log_step = torch.nn.Parameter(torch.zeros(config.layers))
        self.log_threshold = torch.nn.Parameter(torch.zeros(config.layers)) if config.learn_thresholds else None

    def step_sizes(self, sqnorm: float, dtype: torch.dtype) -> torch.Tensor:
        """a_t = exp(s_t) / ||A||^2, shape (T,), computed in ``dtype``."""
        return torch.exp(self.log_step.to(dtype)) / sqnorm

    def iterates(self, physics: LinearPhysics, y: torch.Tensor, x_shape: tuple[int, ...], sqnorm: float,
                 lam: float) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x_t, R(x_t)) for t = 1..T: x_t (B, C, ...) and the penalty ||W x_t||_1 or ||W x_t||_0 (B,)."""
        basis = HaarBasis(x_shape[2:], self.config.wavelet_levels)
        detail = basis.detail.to(y.device)
        iteration = ProximalGradient(physics, y, torch.zeros(x_shape, device=y.device, dtype=y.dtype), residual=-y)
        for t, step in enumerate(self.step_sizes(sqnorm, y.dtype)):
            weight = lam if self.log_threshold is None else lam * torch.exp(self.log_threshold[t].to(y.dtype))
            penalty = []

            def prox(v: torch.Tensor, step=step, weight=weight, penalty=penalty) -> torch.Tensor:
                c, value = self._threshold(basis.analysis(v), step * weight, detail)
                penalty.append(value)
                return basis.synthesis(c)

            yield iteration.step(step, prox), penalty[0]

    def _threshold(self, v: torch.Tensor, tau: torch.Tensor, detail: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """The prox of tau ||.||_1 (ista) or tau ||.||_0 (iht) on the detail coefficients v, and the penalty of the
        result (B,)."""
        if self.config.algo == "ista":
            c = soft_threshold(v, tau, detail)
            return c, penalised_sum(group_norm(c), detail)
        gate = self._gate(group_norm(v), torch.sqrt(2 * tau))
        return torch.where(detail, v * gate, v), penalised_sum(gate, detail)

    def forward(self, physics: LinearPhysics, y: torch.Tensor, x_shape: tuple[int, ...], sqnorm: float,
                lam: float, depth: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x_depth (x_shape) and its penalty R(x_depth) (B,), after the first ``depth`` layers (None: all T)."""
        layers = self.iterates(physics, y, x_shape, sqnorm, lam)
        return next(islice(layers, (depth or self.config.layers) - 1, None))

    def _gate(self, size: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """1[size > theta]; straight-through sigmoid derivative when gradients are being recorded."""
        hard = (size > theta).to(size.dtype)
        if not torch.is_grad_enabled():
            return hard
        soft = torch.sigmoid((size - theta) / (GATE_TEMPERATURE * theta))
        return hard + (soft - soft.detach())  # exactly hard in the forward pass


def weight_tensors(model: UnfoldedThresholding) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata (strings) that :func:`load_unfolded` reads back."""
    return weights.weight_tensors(model, FORMAT, model.config)


def load_unfolded(path: str | Path, device: torch.device | str = "cpu") -> UnfoldedThresholding:
    """Unfolded weights from ``path`` (safetensors written by ``recon train unfolded``); UserError if unusable."""
    return weights.load_weights(path, FORMAT, UnfoldedConfig, UnfoldedThresholding, "unfolded", device)[0]
