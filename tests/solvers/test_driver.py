"""The iteration driver: history every k iterations, stop rules (a tolerance, a discrepancy principle on the free
residual norms), cancellation, and the divergence guard stopping a diverging run with its best iterate and saying
so, through the methods' own path (pnp's ADMM) into the output's ``guard`` attribute and stderr."""

import numpy as np
import pytest
import torch

from recon.methods import RunContext
from recon.progress import Cancelled, callback_progress
from recon.solvers.driver import Algorithm, Guard, Tolerance, iterate
from recon.solvers.least_squares import CGLS
from recon.solvers.normalised import Normalised
from recon.solvers.pnp import ADMM, run_guarded
from tests.solvers.helpers import sparse_problem


class Geometric(Algorithm):
    """x_k = x_0 * growth^k, recording its size as ``data``: converging for growth < 1, diverging above."""

    def __init__(self, growth: float, start: torch.Tensor):
        self.growth, self.x = growth, start

    def update(self) -> None:
        self.x = self.x * self.growth

    def record(self) -> dict[str, float]:
        return {"data": float(self.x.abs().max())}

    @property
    def estimate(self) -> torch.Tensor:
        return self.x


def test_history_every_k_iterations_and_always_the_last():
    run, history = iterate(RunContext(history_every=4), "g", Geometric(0.5, torch.ones(2, 1, 4, 4)), 10)
    assert run.iterations == 10 and run.stopped is None
    assert np.allclose(history["data"], [0.5**4, 0.5**8, 0.5**10])


def test_tolerance_and_discrepancy_rules_stop_early():
    run, history = iterate(RunContext(), "g", Geometric(0.5, torch.ones(1, 1, 2, 2)), 50,
                           stop=[Tolerance(1e-3, ("data",))])
    assert run.iterations == 10 and history["data"][-1] <= 1e-3 < history["data"][-2] and "tolerance" in run.stopped

    problem = sparse_problem(m=60, n=30, samples=3, noise=0.01)  # overdetermined: the residual falls to the noise
    noise_norm = 0.01 * np.sqrt(60)

    def discrepancy(state):
        norms = state.algorithm.residual_norms()
        return "discrepancy" if bool((norms <= 1.5 * noise_norm).all()) else None

    run, history = iterate(RunContext(), "cgls", CGLS(problem.physics, problem.y, problem.zeros()), 200,
                           stop=[discrepancy])
    residual = torch.linalg.vector_norm((problem.physics.A(run.estimate) - problem.y).flatten(1), dim=1)
    assert run.stopped == "discrepancy" and run.iterations < 200
    assert bool((residual <= 1.5 * noise_norm + 1e-9).all())


def test_cancel_stops_at_the_next_iteration():
    import threading

    cancel, steps = threading.Event(), []

    def report(description, done, total, fields):
        steps.append(done)
        if done == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        iterate(RunContext(progress=callback_progress(report, cancel)), "g", Geometric(0.5, torch.ones(1)), 100)
    assert steps[-1] == 3


def test_guard_stops_a_diverging_run_and_returns_the_best_iterate():
    start = torch.full((1, 1, 4, 4), 0.5)
    run, history = iterate(RunContext(), "g", Geometric(1.2, start), 100, guard=Guard(patience=5, high=1e9))
    # data 0.6, 0.72, ... grows from the first record on: stopped once 5 growths and 2x the lowest coincide
    assert run.iterations == 6 and len(history["data"]) == 6
    assert torch.allclose(run.estimate, start * 1.2)  # the lowest data term: iteration 1
    assert "grew at 5 consecutive iterations" in run.guard and "iteration 1's estimate" in run.guard
    run, _ = iterate(RunContext(), "g", Geometric(1.5, start), 100, guard=Guard())
    assert "outside [-1, 2]" in run.guard and torch.all(run.estimate.abs() <= 2)
    converging, _ = iterate(RunContext(), "g", Geometric(0.9, start), 100, guard=Guard())
    assert converging.guard is None and converging.iterations == 100


def test_a_diverging_prior_in_pnp_admm_falls_back_and_says_so(capsys):
    problem = sparse_problem(samples=2)
    normalised = Normalised.per_slice(problem, torch.ones(problem.x_shape, dtype=problem.dtype))
    admm = ADMM(normalised, lambda v: 3.0 * v, rho=1.0, cg_iterations=5)  # a "prox" that blows the image up
    result = run_guarded(problem, normalised, admm, 50, RunContext(method="pnp-admm"))
    message = result.extras["attrs"]["guard"]
    assert message.startswith("warning: pnp-admm stopped at iteration") and "returned" in message
    assert float(result.x.abs().max()) <= 2.0  # the normalised unit's range, scale 1 here
    assert len(result.history["data"]) < 50
    assert "warning: pnp-admm stopped" in capsys.readouterr().err


def test_an_operators_own_normal_solve_replaces_cg():
    """ADMM's x-update asks the operator first (solve_normal): here an exact dense solve, whose solution satisfies
    the normal equations where one CG step would not."""
    problem = sparse_problem(samples=2)
    calls = []

    class Exact(type(problem.physics)):
        def solve_normal(self, rhs, *, rho, init, iterations, weight, tol):
            calls.append(iterations)
            normal = weight * self.matrix.T @ self.matrix + rho * torch.eye(self.matrix.shape[1], dtype=rhs.dtype)
            return torch.linalg.solve(normal, rhs[:, 0].T).T[:, None]

    problem.physics.__class__ = Exact
    normalised = Normalised.per_slice(problem, torch.ones(problem.x_shape, dtype=problem.dtype))
    admm = ADMM(normalised, lambda v: v.clamp(-1, 1), rho=0.5, cg_iterations=1)
    for _ in range(3):
        admm.update()
    rhs = admm.rhs + 0.5 * (admm.previous - (admm.u - admm.x + admm.z))  # the last update's right-hand side
    physics, w = problem.physics, normalised.weight
    assert calls == [1, 1, 1]
    assert torch.allclose(w * physics.A_adjoint(physics.A(admm.x)) + 0.5 * admm.x, rhs, atol=1e-10)
