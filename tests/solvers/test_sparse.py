"""ISTA and IHT: monotone objective, the lasso optimality conditions, support recovery."""

import numpy as np
import pytest
import torch

from recon.methods import RunContext, get_method
from tests.solvers.helpers import sparse_problem


def run(name, problem, **raw):
    method = get_method(name)
    return method.solve(problem, method.parse_params(raw), RunContext())


def test_ista_objective_never_increases_and_reaches_the_lasso_solution():
    problem = sparse_problem()
    lam = 0.05
    result = run("ista", problem, lam=lam, iterations=3000)
    objective = np.array(result.history["objective"])
    assert np.all(np.diff(objective) <= 1e-9 * np.abs(objective[:-1]))
    # KKT: A^T (y - A x) = lam sign(x) on the support, |.| <= lam off it.
    x = result.x
    correlation = problem.physics.A_adjoint(problem.y - problem.physics.A(x))
    support = x != 0
    assert torch.allclose(correlation[support], lam * torch.sign(x[support]), atol=1e-4)
    assert correlation[~support].abs().max() <= lam + 1e-4


def test_iht_recovers_the_support_of_noiseless_sparse_signals():
    problem = sparse_problem(m=60, n=100, k=4, noise=0.0)
    result = run("iht", problem, lam=0.01, iterations=500)
    found = result.x[:, 0].numpy() != 0
    assert (found == (problem.ground_truth != 0)).all()
    assert np.abs(result.x[:, 0].numpy() - problem.ground_truth).max() < 1e-3


def test_ista_with_the_l0_prior_is_iht():
    problem = sparse_problem(noise=0.0)
    method = get_method("ista")
    params = method.parse_params({"lam": 0.01, "iterations": 50}, prior="l0")
    via_prior = method.solve(problem, params, RunContext()).x
    assert torch.equal(via_prior, run("iht", problem, lam=0.01, iterations=50).x)


def test_methods_that_take_no_prior_refuse_one():
    from recon.errors import UserError

    with pytest.raises(UserError, match="takes no prior"):
        get_method("cgls").parse_params({}, prior="l1")
