"""CGLS: monotone residual, convergence to the least-squares solution, per-sample independence."""

import functools

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


def test_cgls_discrepancy_stop_freezes_each_slice_at_its_own_iteration():
    from recon.noise import NoiseEstimate

    problem = sparse_problem(m=30, n=60, samples=3, noise=0.05)
    residual_after_3 = get_method("cgls").solve(problem, {"iterations": 3}, RunContext()).x
    norms = torch.linalg.vector_norm((problem.physics.A(residual_after_3) - problem.y).flatten(1), dim=1)
    sq_norms = np.array([4.0, 1.0, 0.25]) * float(norms.max()) ** 2  # targets that stop the slices apart
    problem.noise = lambda: NoiseEstimate(0.05, sq_norms, "file", "test")
    method = get_method("cgls")
    result = method.solve(problem, method.parse_params({"iterations": "auto"}), RunContext())
    stopped = result.extras["params"]["stopped_at"]
    assert result.extras["params"]["iterations_rule"].startswith("discrepancy principle")
    assert len(set(stopped)) > 1, stopped
    for index, iterations in enumerate(stopped):  # a stopped slice is exactly cgls run for its count
        alone = method.solve(problem, {"iterations": iterations}, RunContext()).x
        assert torch.allclose(result.x[index], alone[index], atol=1e-10)


def test_cgls_without_a_noise_level_runs_its_fixed_default():
    from recon.noise import problem_noise

    problem = sparse_problem(samples=2)
    problem.noise = functools.partial(problem_noise, problem, {})  # sparse-linear: no estimator (UserError)
    method = get_method("cgls")
    result = method.solve(problem, method.parse_params({"iterations": "auto"}), RunContext())
    assert result.extras["params"]["iterations"] == 20
    assert "no noise level" in result.extras["params"]["iterations_rule"]


def test_slices_whose_residual_never_reaches_the_noise_level_take_the_fixed_count():
    """A noise level far below what any image explains (a model that does not fit, an under-estimate): running on
    to the cap would fit the noise, so a slice that never stops takes the fixed 20 iterations, said in the rule and
    a warning; the slice that stops keeps its own count."""
    from recon.noise import NoiseEstimate

    problem = sparse_problem(m=60, n=30, samples=2, noise=0.05)  # overdetermined: a residual floor above zero
    fitted = get_method("cgls").solve(problem, {"iterations": 60}, RunContext()).x
    floor = torch.linalg.vector_norm((problem.physics.A(fitted) - problem.y).flatten(1), dim=1)
    sq_norms = np.array([4.0, 1e-4]) * float(floor.max()) ** 2  # slice 0 stops, slice 1 never can
    problem.noise = lambda: NoiseEstimate(0.05, sq_norms, "file", "test")
    method, warnings = get_method("cgls"), []
    result = method.solve(problem, method.parse_params({"iterations": "auto"}), RunContext(warn=warnings.append))
    params = result.extras["params"]
    assert params["stopped_at"][1] == 20 and params["stopped_at"][0] < 20, params
    assert "1 slice(s) never reached it" in params["iterations_rule"]
    assert any("never fell to the noise level" in w for w in warnings), warnings
    twenty = method.solve(problem, {"iterations": 20}, RunContext()).x
    assert torch.allclose(result.x[1], twenty[1], atol=1e-10)
