"""CGLS: monotone residual, convergence to the least-squares solution, per-sample independence."""

import numpy as np
import torch

from recon.methods import RunContext, get_method
from tests.solvers.helpers import sparse_problem


def test_cgls_residual_decreases_and_converges_to_lstsq():
    problem = sparse_problem(m=60, n=30, samples=3)  # overdetermined: a unique least-squares solution
    method = get_method("cgls")
    result = method.solve(problem, method.parse_params({"iterations": 60}), RunContext())
    residual = np.array(result.history["relative_residual"])
    assert np.all(np.diff(residual) <= 1e-12)
    matrix = problem.physics.matrix.numpy()
    expected = np.linalg.lstsq(matrix, problem.y[:, 0].numpy().T, rcond=None)[0].T
    assert np.allclose(result.x[:, 0].numpy(), expected, atol=1e-8)


def test_cgls_treats_each_sample_on_its_own():
    problem = sparse_problem(m=30, n=60, samples=4)
    method = get_method("cgls")
    params = method.parse_params({"iterations": 7})
    together = method.solve(problem, params, RunContext()).x
    problem.y = problem.y[2:3]
    problem.x_shape = (1, *problem.x_shape[1:])
    alone = method.solve(problem, params, RunContext()).x
    assert torch.allclose(together[2:3], alone, atol=1e-10)
