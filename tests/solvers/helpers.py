"""Small in-memory problems for solver tests (no files)."""

import numpy as np
import torch

from recon.physics.sparse import MatrixOperator
from recon.problem import Problem


def sparse_problem(m=40, n=80, k=5, samples=4, noise=0.01, seed=0, dtype=torch.float64) -> Problem:
    """y = A x + noise with Gaussian A (m, n) and k-sparse x (nonzeros of magnitude >= 1); truth (samples, n)."""
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((m, n)) / np.sqrt(m)
    x = np.zeros((samples, n))
    for row in x:
        row[rng.choice(n, k, replace=False)] = rng.choice([-1.0, 1.0], k) * (1 + 0.5 * np.abs(rng.standard_normal(k)))
    y = x @ matrix.T + noise * rng.standard_normal((samples, m))
    physics = MatrixOperator(matrix, dtype=dtype)
    y_t = torch.as_tensor(y, dtype=dtype)[:, None]
    return Problem(spec="sparse-linear/1", physics=physics, y=y_t, x_shape=(samples, 1, n),
                   output_shape=(samples, n), initial=lambda: torch.zeros(samples, 1, n, dtype=dtype),
                   norm_shape=(1, 1, n), ground_truth=x.astype(np.float32))
