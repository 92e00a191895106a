"""Sparse-linear measurements ``y = A x`` with a stored dense matrix A of shape (m, n)."""

from __future__ import annotations

import numpy as np
import torch
from deepinv.physics import LinearPhysics

from recon.physics.registry import register_example


class MatrixOperator(LinearPhysics):
    """``A x`` for signals x of shape (B, 1, n) giving y of shape (B, 1, m); A is (m, n), unitless.

    The matrix is a buffer, so ``.to(device, dtype)`` moves it; inputs of another dtype use a cast copy.
    """

    def __init__(self, matrix: np.ndarray | torch.Tensor, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.register_buffer("matrix", torch.as_tensor(np.asarray(matrix), dtype=dtype, device=device))

    def _matrix_like(self, x: torch.Tensor) -> torch.Tensor:
        return self.matrix.to(device=x.device, dtype=x.dtype)

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return x @ self._matrix_like(x).T

    def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        return y @ self._matrix_like(y)


@register_example("sparse-linear")
def _example(device: torch.device, dtype: torch.dtype) -> tuple[MatrixOperator, tuple[int, ...]]:
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((15, 30)) / np.sqrt(15)
    return MatrixOperator(matrix, device=device, dtype=dtype), (3, 1, 30)
