"""Third-party methods and priors through the ``recon.methods`` and ``recon.priors`` entry-point groups: a method
declared with its solve function and per-spec defaults runs through the registry (defaults resolved, parameters
recorded), and a prior subclassing ``recon.priors.Prior`` serves the built-in methods of its capability."""

from importlib.metadata import EntryPoint

import pytest
import torch

import recon.methods
import recon.plugins
import recon.priors
from recon.methods import Method, Result, RunContext, compatible_priors, get_method
from recon.params import Param
from recon.priors import Prior
from tests.solvers.helpers import sparse_problem


def scaled_adjoint(problem, params, ctx):
    return Result(params["factor"] * problem.physics.A_adjoint(problem.y))


TOY_METHOD = Method("toy-adjoint", "test", "A multiple of the adjoint.", ("sparse-linear/1",),
                    (Param("factor", float, {"sparse-linear/1": 2.0}, "the multiple"),), scaled_adjoint)


class ToyPrior(Prior):
    """R(x) = ||x||^2 / 2: prox(x, tau) = x / (1 + tau)."""

    name = "toy-l2"
    summary = "squared l2 norm"
    capabilities = frozenset({"prox"})

    def prox(self, x, tau):
        return x / (1 + tau)

    def value(self, x):
        return 0.5 * (x**2).flatten(1).sum(1)


@pytest.fixture
def plugins(monkeypatch):
    """The registries reloaded with the two entry points above, and restored afterwards."""
    points = {"recon.methods": [EntryPoint("toy-adjoint", "tests.test_plugins:TOY_METHOD", "recon.methods")],
              "recon.priors": [EntryPoint("toy-l2", "tests.test_plugins:ToyPrior", "recon.priors")]}
    monkeypatch.setattr(recon.plugins, "entry_points", lambda group: points.get(group, []))

    def reload():
        recon.methods._METHODS.clear()
        recon.methods._load.cache_clear()
        recon.priors._PRIORS.clear()
        recon.priors._load_plugins.cache_clear()

    reload()
    yield
    monkeypatch.undo()
    reload()


def test_a_third_party_method_and_prior_run_through_the_registries(plugins):
    problem = sparse_problem()
    method = get_method("toy-adjoint")
    result = method.solve(problem, method.parse_params({}), RunContext())
    assert torch.allclose(result.x, 2.0 * problem.physics.A_adjoint(problem.y))
    assert result.extras["params"] == {"factor": 2.0}

    assert "toy-l2" in compatible_priors("ista", "sparse-linear/1")
    ista = get_method("ista")
    with_toy = ista.solve(problem, ista.parse_params({"lam": 0.5, "iterations": 3}, prior="toy-l2"), RunContext())
    with_l1 = ista.solve(problem, ista.parse_params({"lam": 0.5, "iterations": 3}), RunContext())
    assert not torch.allclose(with_toy.x, with_l1.x)
