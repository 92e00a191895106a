"""One loop for every iterative method: progress, history, stop rules, cancellation and the divergence guard.

As CIL's ``Algorithm`` (update, objective every k iterations, should_stop) and deepinv's one-step iterators with
one driver: a method writes its iteration as an :class:`Algorithm` and :func:`iterate` (or a :class:`Driver`
shared by several runs) runs it. ``ctx.progress`` gets a step per iteration (a cancelled run stops there:
:class:`recon.progress.Cancelled`); :meth:`Algorithm.record` runs every ``ctx.history_every`` iterations and after
the last, so that costly values are computed only when recorded; after each record the stop rules (which see the
free per-slice residual norms, :meth:`Algorithm.residual_norms`) and the :class:`Guard` may end the run.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from recon.methods import Result, RunContext


class Algorithm(ABC):
    """The state of an iterative method; ``x`` (or an overriding :attr:`estimate`) is its current iterate."""

    @abstractmethod
    def update(self) -> None:
        """One iteration."""

    @abstractmethod
    def record(self) -> dict[str, float]:
        """The history values at the current iterate (called only on recorded iterations)."""

    @property
    def estimate(self) -> torch.Tensor:
        """The current iterate in the method's layout and unit; before the first update, its start."""
        return self.x

    def residual_norms(self) -> torch.Tensor | None:
        """||A x - y|| per slice (S,) in the file's units when the iteration has it for free, else None."""
        return None


@dataclass
class State:
    """What a stop rule sees after a recorded iteration."""

    iteration: int
    record: dict[str, float]
    history: dict[str, list[float]]
    algorithm: Algorithm


StopRule = Callable[[State], str | None]
"""Returns why the run should stop now, or None to go on."""


@dataclass(frozen=True)
class Tolerance:
    """Stop once every value of ``keys`` is at most ``tol``; with ``relative_change``, once each changed by at most
    ``tol`` times its size since the previous record."""

    tol: float
    keys: tuple[str, ...]
    relative_change: bool = False

    def __call__(self, state: State) -> str | None:
        def settled(values: list[float]) -> bool:
            if not self.relative_change:
                return values[-1] <= self.tol
            return len(values) > 1 and abs(values[-2] - values[-1]) <= self.tol * abs(values[-1])

        if all(settled(state.history[key]) for key in self.keys):
            return f"{', '.join(self.keys)} within the tolerance {self.tol:g}"
        return None


@dataclass(frozen=True)
class Guard:
    """The divergence guard of the learned iterative methods (lpn, pnp-admm, pnp-pgd, red, dds).

    After each record it stops the run when the data term (``key``) grew at ``patience`` consecutive records and
    reached ``growth`` times its lowest, or when more than ``outside`` of the iterate's values (magnitudes with
    ``magnitude``) lie outside [``low``, ``high``] of the normalised unit, where data lie in about [0, 1]. The run
    then returns its recorded iterate of lowest data term among those in range, else its start.
    """

    key: str = "data"
    patience: int = 10
    growth: float = 2.0
    low: float = -1.0
    high: float = 2.0
    outside: float = 0.05
    magnitude: bool = False

    def out_of_range(self, x: torch.Tensor) -> float:
        if self.magnitude:
            return float((torch.linalg.vector_norm(x, dim=1) > self.high).float().mean())
        return float(((x < self.low) | (x > self.high)).float().mean())


@dataclass
class _Watch:
    """A run's guard state: the growth streak and the best iterate so far."""

    guard: Guard
    best: torch.Tensor
    best_value: float = math.inf
    best_iteration: int = 0
    lowest: float = math.inf
    previous: float = math.inf
    streak: int = 0

    def check(self, iteration: int, value: float, x: torch.Tensor) -> str | None:
        outside = self.guard.out_of_range(x)
        if outside <= self.guard.outside and value < self.best_value:
            self.best, self.best_value, self.best_iteration = x.detach().clone(), value, iteration
        self.streak = self.streak + 1 if value > self.previous else 0
        self.previous, self.lowest = value, min(self.lowest, value)
        if outside > self.guard.outside:
            return f"{outside:.1%} of the normalised image lies outside [{self.guard.low:g}, {self.guard.high:g}]"
        if self.streak >= self.guard.patience and value >= self.guard.growth * self.lowest:
            return (f"the data term grew at {self.streak} consecutive iterations, to {value:.4g} "
                    f"({value / self.lowest:.3g} times its lowest)")
        return None

    def fallback(self) -> str:
        if not self.best_iteration:
            return "its first estimate"
        return f"iteration {self.best_iteration}'s estimate (the lowest data term, {self.best_value:.4g})"


@dataclass
class Run:
    """A run's outcome: the estimate to use (the last iterate, or the guard's fallback), the iterations done, why
    it stopped early (None: it did them all) and the guard's message when the guard stopped it."""

    estimate: torch.Tensor
    iterations: int
    stopped: str | None = None
    guard: str | None = None


@dataclass
class Driver:
    """One progress bar of ``total`` steps and one history for the runs of a method call (``with Driver(...)``)."""

    ctx: RunContext
    name: str
    total: int
    stop: Sequence[StopRule] = ()
    guard: Guard | None = None
    history: dict[str, list[float]] = field(default_factory=dict)

    def __enter__(self) -> Driver:
        self._progress = self.ctx.progress(self.name, self.total)
        self._step = self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def run(self, algorithm: Algorithm, iterations: int) -> Run:
        """At most ``iterations`` updates of ``algorithm``; stop rules and guard start afresh."""
        watch = _Watch(self.guard, algorithm.estimate) if self.guard is not None else None
        record: dict[str, float] = {}
        for iteration in range(1, iterations + 1):
            algorithm.update()
            recorded = iteration % max(1, self.ctx.history_every) == 0 or iteration == iterations
            if recorded:
                record = algorithm.record()
                for key, value in record.items():
                    self.history.setdefault(key, []).append(value)
            self._step(**record)
            if not recorded:
                continue
            if watch and (reason := watch.check(iteration, record[watch.guard.key], algorithm.estimate)):
                message = f"{self.name} stopped at iteration {iteration} of {iterations}: {reason}; returned "
                return Run(watch.best, iteration, reason, message + watch.fallback())
            state = State(iteration, record, self.history, algorithm)
            for reason in filter(None, (rule(state) for rule in self.stop)):
                return Run(algorithm.estimate, iteration, reason)
        return Run(algorithm.estimate, iterations)


def iterate(ctx: RunContext, name: str, algorithm: Algorithm, iterations: int, stop: Sequence[StopRule] = (),
            guard: Guard | None = None) -> tuple[Run, dict[str, list[float]]]:
    """One run of ``algorithm`` with its own progress bar: (the run, the history)."""
    with Driver(ctx, name, iterations, stop, guard) as driver:
        return driver.run(algorithm, iterations), driver.history


def guarded_result(x: torch.Tensor, history: dict[str, list[float]], messages: Sequence[str], ctx: RunContext
                   ) -> Result:
    """A guarded method's result: the guard's messages, if it stopped a run, go into the output attribute ``guard``
    (after "warning: ") and on stderr (``ctx.warn``)."""
    result = Result(x, history)
    if messages:
        result.extras["attrs"] = {"guard": "warning: " + "; ".join(messages)}
        ctx.warn("; ".join(messages))
    return result
