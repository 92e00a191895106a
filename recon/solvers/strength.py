"""A method's regularisation strength chosen inside its call (``auto``): tv's lam, pnp-admm's sigma, red's lam.

:func:`choose_strength` runs the discrepancy principle (:func:`recon.parameter_choice.discrepancy_search`:
||A x - y|| = tau ||noise||, the noise level from the file or estimated) through one :class:`~recon.solvers.driver.
Driver` (one progress bar, one history). The search starts at the method's fixed default scaled by the relative
noise (the defaults were tuned at 1 %), so that it starts near the answer. The first value runs all the iterations;
each later one continues from the state of the nearest value solved, for all of them too. Half of them was
measured worse for every method: pnp-admm on CT far from converged after a big step in sigma (693_UNCR 64^2, 30
views, 10 % noise: 19.10 dB against 24.02 from scratch), tv comparing and returning unconverged solves where PDHG
converges slowly (693_UNCR 128^2, 120 views: 35.27 / 28.34 dB at 1 / 3 % noise against 36.82 / 30.57 with all
of them; docs/guides/parameters-from-data.md). Without a noise level it runs once at the default. The method
supplies one ``attempt`` callback; the choice, the rule, the solves and the noise level go into the output's params.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from recon.methods import RunContext
from recon.noise import relative_noise
from recon.parameter_choice import SEARCH_START_EXPONENT, discrepancy_search, known_noise, noise_scaled, tau_for
from recon.problem import Problem
from recon.solvers.driver import Driver, Guard

SEARCH_SPAN = 100.0
"""A search stays within this factor of its noise-scaled start, on top of the method's bounds. Every oracle value
of the parameter study lay within 50 times the start (tv on MRI at 0.3 % noise, 8x: 46 times below it, where PSNR
is flat); far beyond, a residual that reaches the target says more about the model than the noise. On fastMRI-layout
files with estimated coil maps, the residual floor of tv came within 6 % of the target at lam 1e-7, 20000 times
below the start: a little more noise and the search would have taken that lam, an image of the noise."""


@dataclass(frozen=True)
class StrengthSearch:
    """How a method searches its strength: ``parameter`` (its name, e.g. "lam"), ``default`` (the fixed value, in
    the method's normalised unit), ``iterations`` of a solve (warm-started or not), at most ``max_evaluations``
    solves, values kept within [low, high]. ``floor``: why ``low`` is a deliberate floor (the principle asks for
    less than the method should take), or "" for a plain bound; a search held there is recorded with that reason
    instead of warned about."""

    parameter: str
    default: float
    iterations: int
    max_evaluations: int
    low: float
    high: float
    floor: str = ""
    fewest_iterations: int = 0
    """The method's default iterations, with which the rule was measured: a search with fewer is warned about (an
    unconverged solve has a larger residual, so the search under-regularises; tv on a 64^2 CT slice at 10 % noise
    gave 17.3 dB at 100 iterations against 23.7 at 300)."""


Attempt = Callable[[Driver, float, Any, int], tuple[torch.Tensor, float, Any]]
"""attempt(driver, value, warm, iterations) -> (x in the problem's units, ||A x - y||, state): ``iterations`` of the
method at strength ``value`` run through ``driver``, from scratch when ``warm`` is None, else continued from that
state (an earlier attempt's)."""


@dataclass
class Strength:
    """The outcome: the chosen ``value``, its solution ``x`` (problem units), the call's ``history`` and ``record``
    (what the output's params record: the value, the rule, the solves, the noise level)."""

    value: float
    x: torch.Tensor
    history: dict[str, list[float]]
    record: dict[str, object]


def choose_strength(problem: Problem, ctx: RunContext, search: StrengthSearch, attempt: Attempt,
                    guard: Guard | None = None) -> Strength:
    """The method at the strength the discrepancy principle chooses (see the module). Where no strength tried fits
    the data down to the target (a model that does not fit the data, or an under-estimated noise level: the weakest
    regularisation tried still leaves a larger residual), it runs at the fixed default instead and says so; where
    the target lies only just out of reach, it keeps the closest value and warns. Without a noise level: the
    default."""
    name = search.parameter
    noise, unknown = known_noise(problem)
    if noise is None:
        with Driver(ctx, ctx.method, search.iterations, guard=guard) as driver:
            x, _, _ = attempt(driver, search.default, None, search.iterations)
        return Strength(search.default, x, driver.history,
                        {name: search.default, f"{name}_rule": f"fixed default (no noise level: {unknown})"})
    tau = tau_for(ctx.method, problem.spec)
    target = tau * noise.norm
    start = noise_scaled(search.default, relative_noise(float(torch.linalg.vector_norm(problem.y)), noise.norm),
                         SEARCH_START_EXPONENT)
    if search.iterations < search.fewest_iterations:
        ctx.warn(f"{ctx.method}: {name}=auto with {search.iterations} iterations (fewer than the default "
                 f"{search.fewest_iterations}): the search compares unconverged residuals and may choose too little "
                 f"regularisation; give {name} a number, or keep the default iterations")
    # the evaluations, and one more solve at the fixed default where no value fits the data
    with Driver(ctx, ctx.method, (search.max_evaluations + 1) * search.iterations, guard=guard) as driver:
        def solve(value: float, warm: Any):
            return attempt(driver, value, warm, search.iterations)

        low, high = max(search.low, start / SEARCH_SPAN), min(search.high, start * SEARCH_SPAN)
        choice = discrepancy_search(solve, target, min(max(start, low), high), max_evaluations=search.max_evaluations,
                                    low=low, high=high)
        value, x, rule = choice.value, choice.x, f"{choice.rule} (tau {tau:g})"
        unfit = not choice.reached and min(residual for _, residual in choice.evaluations) > target
        if unfit and search.floor and value <= search.low:  # the method's floor, not the span's
            rule += f", held at its floor {search.low:g} ({search.floor})"
        elif unfit:  # no strength fits the data to the noise level: the principle does not apply
            lowest = min(choice.evaluations)
            ctx.warn(f"{ctx.method}: {name}=auto found no {name} whose residual falls to the noise level (target "
                     f"{target:.4g}; {lowest[1]:.4g} even at {name} {lowest[0]:.4g}): the model does not fit the data "
                     f"(coil maps, geometry) or the noise is under-estimated; ran the fixed {name} "
                     f"{search.default:g} instead")
            rule += f"; not reachable ({lowest[1]:.4g} at {name} {lowest[0]:.4g}): the fixed default instead"
            value = search.default
            if value != choice.value:
                x, _, _ = attempt(driver, value, None, search.iterations)
        elif not choice.reached:
            ctx.warn(f"{ctx.method}: {name}=auto did not reach the discrepancy target {target:.4g} (closest "
                     f"residual {choice.residual:.4g} at {name} {choice.value:.4g}); set {name} by hand if the image "
                     "looks wrong")
    record = {name: value, f"{name}_rule": rule,
              f"{name}_solves": len(choice.evaluations), f"{name}_reached": choice.reached, **noise.record()}
    return Strength(value, x, driver.history, record)
