"""Rules that choose a method's parameter from the measurements alone, without ground truth.

Solver-agnostic: a rule sees the method through a callable and the noise level through a
:class:`~recon.noise.NoiseEstimate`, so every iterative method can share it.

- :func:`discrepancy_search`: the discrepancy principle (Morozov) for a scalar regularisation parameter whose
  residual ||A x - y|| grows with it (tv's lam, a denoiser's strength): find the value whose residual is
  tau * ||noise|| by bracketing and then regula falsi on (log value, log residual). ``solve(value, warm) ->
  (x, residual, state)`` gets the state of the evaluated value nearest to the new one, so a solver may start
  there (a warm-started continuation); evaluations are recorded.
- :func:`discrepancy_stop`: the same principle as a stopping rule for iterations that regularise by stopping
  early (cgls' semi-convergence): the first iteration whose residual is at most tau * ||noise||.
- :func:`mc_sure`: Monte-Carlo SURE of the predicted risk ||A x(y) - A x_true||^2 with one random probe
  (Ramani, Blu, Unser 2008): two solves per evaluation.
- :func:`noise_scaled`: a default tuned at one noise level carried to another by a power law in the relative
  noise (dds' gamma, the proximal data weight).
- :func:`golden_search`: the maximiser of a unimodal score over a log-spaced interval (SURE, or an oracle).

The constants (tau per method, the exponents) and how they were measured: :data:`TAU`, :data:`NOISE_EXPONENT`,
docs/guides/parameters-from-data.md and scripts/study_parameters.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from recon.errors import UserError
from recon.noise import NoiseEstimate

TAU = {
    ("tv", "ct-parallel/1"): 0.92, ("tv", "mri-cartesian/1"): 0.87,
    ("cgls", "ct-parallel/1"): 1.0, ("cgls", "mri-cartesian/1"): 0.9,
    ("pnp-admm", "ct-parallel/1"): 0.95, ("pnp-admm", "mri-cartesian/1"): 1.0,
    ("pnp-pgd", "ct-parallel/1"): 1.0, ("pnp-pgd", "mri-cartesian/1"): 1.0,
    ("red", "ct-parallel/1"): 1.0, ("red", "mri-cartesian/1"): 1.0,
    ("lpn", "ct-parallel/1"): 1.0, ("lpn", "mri-cartesian/1"): 1.0,
}
"""tau of the discrepancy principle ||A x - y|| = tau ||noise|| per (method, spec), against the estimated noise norm
(so tau also absorbs the estimator's bias). Calibrated on the training image CT_small only (scripts/
study_parameters.py, cases train-*), never on the study's images: the ratio ||A x - y|| / ||noise|| at the oracle's
value. The solution fits part of the noise, so the right residual lies below the noise norm.

- tv: CT 0.90-0.96 over 30/60 views and 0.3-3 % and Poisson noise, median 0.92; MRI 4x 0.80 / 0.87 / 0.91 at
  0.3 / 1 / 3 %, median 0.87.
- cgls: CT 0.61-0.95, but PSNR is flat in the iteration count near the oracle and Morozov's 1 lost at most
  0.26 dB on the training cases; MRI 4x 0.78-0.88: 0.9, not lower, because an MRI residual cannot fall below
  about sqrt(m - n) sigma (8 coils at 4x: about 0.7 of the noise norm) and a tau near that floor never stops
  (tau 0.8: -17 and -30 dB on the training cases).
- pnp-admm CT: 0.956 on one training case (60 views, 1 %), rounded to 0.95.
- the others: Morozov's 1, not calibrated (red's lam=auto uses it; pnp-pgd's and lpn's only the study: their
  methods take numbers, docs/guides/parameters-from-data.md)."""
NOISE_EXPONENT = {"dds": -2.0}
"""p in value = default * (relative noise / TUNED_NOISE)^p for the rules that scale a tuned default. dds' gamma
(the weight of the data in its proximal step, prior variance over noise variance in a Gaussian reading) goes
as 1 / sigma^2: not measured (the study's dds rows were not run)."""
SEARCH_START_EXPONENT = 1.0
"""A discrepancy search starts at the default scaled by the relative noise to this power (TV's weight grows about
linearly with the noise), so that it starts near the answer; the principle alone decides where it ends."""
TUNED_NOISE = 0.01
"""The relative noise (``recon simulate --noise-std``) every fixed default of recon was tuned at."""

STATIC_SPEC = {"ct-dynamic/1": "ct-parallel/1", "mri-dynamic/1": "mri-cartesian/1"}
"""The spec whose tau a dynamic spec uses (same measurements frame by frame)."""


def tau_for(method: str, spec: str) -> float:
    """tau of ``method`` on files of ``spec`` (:data:`TAU`; dynamic specs take their static spec's; else 1)."""
    return TAU.get((method, STATIC_SPEC.get(spec, spec)), 1.0)


def known_noise(problem) -> tuple[NoiseEstimate | None, str]:
    """(the problem's noise level, "") or (None, why it cannot be known): the file states none and no estimator
    applies (radar without noise_std, sparse-linear, MRI without calibration data)."""
    if problem.noise is None:
        return None, "the problem was not built from a file"
    try:
        return problem.noise(), ""
    except UserError as error:
        return None, error.what


Solve = Callable[[float, Any], tuple[Any, float, Any]]
"""solve(value, warm_state) -> (x, residual norm ||A x - y||, state to warm-start a later solve from)."""


@dataclass
class Choice:
    """A chosen value, the rule that chose it, its solution and residual, and every evaluation (value, residual)."""

    value: float
    rule: str
    x: Any = None
    residual: float = math.nan
    evaluations: list[tuple[float, float]] = field(default_factory=list)
    reached: bool = True
    """Whether the residual came within the tolerance of the target; False when the target lies beyond what the
    parameter's range can reach (e.g. below the residual floor of an overdetermined problem): record a warning."""

    def record(self) -> dict[str, object]:
        return {"value": self.value, "rule": self.rule, "evaluations": len(self.evaluations),
                "reached": self.reached}


def discrepancy_search(solve: Solve, target: float, start: float, *, factor: float = 4.0, rtol: float = 0.05,
                       max_evaluations: int = 12, low: float = 1e-12, high: float = 1e12) -> Choice:
    """The value whose residual is ``target`` (see the module), starting at ``start`` and stepping by ``factor`` until
    the target is bracketed; stops when the residual is within ``rtol`` of it or after ``max_evaluations`` solves,
    returning the evaluated value whose residual is closest to the target in log. Values stay in [low, high].
    """
    states: dict[float, tuple[Any, float, Any]] = {}
    choice = Choice(start, f"discrepancy principle, ||Ax - y|| = {target:.4g}")

    def evaluate(value: float) -> float:
        value = min(max(value, low), high)
        warm = states[min(states, key=lambda v: abs(math.log(v / value)))][2] if states else None
        x, residual, state = solve(value, warm)
        states[value] = (x, residual, state)
        choice.evaluations.append((value, residual))
        return value

    def miss(value: float) -> float:
        return math.log(max(states[value][1], 1e-300) / target)

    value = evaluate(start)
    below = above = None  # largest value under the target, smallest over it
    while len(states) < max_evaluations and abs(miss(value)) > math.log1p(rtol):
        if miss(value) < 0:
            below = value if below is None or value > below else below
        else:
            above = value if above is None or value < above else above
        if below is None or above is None:
            step = factor if above is None else 1 / factor
            if (step > 1 and value >= high) or (step < 1 and value <= low):
                break
            value = evaluate(value * step)
            continue
        # regula falsi in logs, kept inside the middle 80 % of the bracket so it always shrinks
        a, b, fa, fb = math.log(below), math.log(above), miss(below), miss(above)
        t = min(max(fa / (fa - fb), 0.1), 0.9)
        value = evaluate(math.exp(a + t * (b - a)))
    best = min(states, key=lambda v: abs(miss(v)))
    choice.value, choice.x, choice.residual = best, states[best][0], states[best][1]
    choice.reached = abs(miss(best)) <= math.log1p(rtol)
    return choice


def discrepancy_stop(residuals: np.ndarray, targets: np.ndarray | float) -> np.ndarray:
    """Iterations to run (1-based) per slice: the first whose residual is at most its target, else all of them.

    ``residuals`` (iterations, S) or (iterations,): ||A x_k - y|| per slice after each iteration; ``targets``
    tau * ||noise|| per slice (S,) or one number. Returns an int array (S,) (or a 0-d array)."""
    residuals = np.asarray(residuals, dtype=np.float64)
    reached = residuals <= np.asarray(targets, dtype=np.float64)
    first = np.argmax(reached, axis=0) + 1
    return np.where(reached.any(axis=0), first, residuals.shape[0])


def mc_sure(forward: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, variance: torch.Tensor | float,
            epsilon: float | None = None, generator: torch.Generator | None = None) -> float:
    """Monte-Carlo SURE of the predicted risk E||A x(y) - A x_true||^2 for y = A x_true + n, n ~ N(0, diag(v)):

        ||A x(y) - y||^2 - sum v + 2 sum v b (A x(y + e b) - A x(y)) / e,   b ~ N(0, I), one probe,

    ``forward(y)`` = A x(y) (the method's solution mapped back to the measurements), ``variance`` v per value of y
    or one number (complex data: y's real and imaginary parts each carry half of E|n|^2), ``epsilon`` e (default
    a tenth of the mean noise std). Two solves."""
    variance = torch.as_tensor(variance, dtype=y.dtype, device=y.device)
    epsilon = epsilon if epsilon is not None else 0.1 * float(variance.mean().sqrt())
    probe = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
    fitted = forward(y)
    perturbed = forward(y + epsilon * probe)
    divergence = float((variance * probe * (perturbed - fitted)).sum()) / epsilon
    total_variance = float(variance.expand_as(y).sum())
    return float(((fitted - y) ** 2).sum()) - total_variance + 2 * divergence


def noise_scaled(default: float, relative_noise: float, exponent: float) -> float:
    """``default`` (tuned at TUNED_NOISE relative noise) times (relative_noise / TUNED_NOISE) ** exponent."""
    return default * (relative_noise / TUNED_NOISE) ** exponent


def golden_search(score: Callable[[float], float], low: float, high: float, *, ratio: float = 1.1,
                  max_evaluations: int = 20) -> tuple[float, dict[float, float]]:
    """The value in [low, high] (> 0) maximising a unimodal ``score``, by golden-section search on log value until
    the bracket is narrower than ``ratio``; returns (best value, every evaluated value -> score)."""
    scores: dict[float, float] = {}

    def at(log_value: float) -> float:
        value = math.exp(log_value)
        if value not in scores:
            scores[value] = score(value)
        return scores[value]

    golden = (math.sqrt(5) - 1) / 2
    a, b = math.log(low), math.log(high)
    c, d = b - golden * (b - a), a + golden * (b - a)
    while b - a > math.log(ratio) and len(scores) < max_evaluations:
        if at(c) >= at(d):
            b, d = d, c
            c = b - golden * (b - a)
        else:
            a, c = c, d
            d = a + golden * (b - a)
    return max(scores, key=scores.get), scores
