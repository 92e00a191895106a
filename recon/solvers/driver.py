"""One loop for every iterative method: progress, history, stopping rules, cancellation and the divergence guard.

In the spirit of CIL's ``Algorithm`` (``update``, the objective every k iterations, ``should_stop``) and deepinv's
one-step iterators with one driver: a method writes its iteration as an :class:`Algorithm` (its state, one
``update`` and the values it ``record``-s) and :func:`iterate` (or a :class:`Driver` shared by several runs)
runs it:

- progress: ``ctx.progress`` gets one step per iteration with the latest recorded values; a cancelled run (the
  napari Cancel button, :class:`recon.progress.Cancelled`) stops there;
- history: :meth:`Algorithm.record` runs every ``ctx.history_every`` iterations and after the last one, so that
  costly values (an objective that needs another A, a prior's value) are computed only when recorded;
- stopping: each :data:`StopRule` sees the :class:`State` at every record (the iteration, the record, the
  algorithm and so the per-slice data residual ||A x - y|| where the algorithm has it for free,
  :meth:`Algorithm.residual_norms`) and may stop the run with a reason; :class:`Tolerance` is the usual one.
  Parameter rules (e.g. a discrepancy principle for cgls) plug in here;
- the divergence guard (:class:`Guard`): a learned method watches its own iterates and falls back to its best one
  when they diverge, saying so (:func:`guarded_result` puts the message in the output and on stderr).
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
    """The state of an iterative method and one iteration of it."""

    @abstractmethod
    def update(self) -> None:
        """One iteration."""

    @abstractmethod
    def record(self) -> dict[str, float]:
        """The history values at the current iterate (called only on recorded iterations)."""

    @property
    @abstractmethod
    def estimate(self) -> torch.Tensor:
        """The current iterate in the layout (and unit) the method works in; before the first update, its start."""

    def residual_norms(self) -> torch.Tensor | None:
        """||A x - y|| per slice (S,) in the file's units when the iteration has it for free, else None."""
        return None


@dataclass
class State:
    """What a stop rule sees after a recorded iteration."""

    iteration: int
    iterations: int
    record: dict[str, float]
    history: dict[str, list[float]]
    algorithm: Algorithm


StopRule = Callable[[State], str | None]
"""Returns why the run should stop now, or None to go on."""


@dataclass(frozen=True)
class Tolerance:
    """Stop once every value of ``keys`` is at most ``tol``; with ``relative_change``, once each value changed by at
    most ``tol`` times its size since the previous record."""

    tol: float
    keys: tuple[str, ...]
    relative_change: bool = False

    def __call__(self, state: State) -> str | None:
        if self.relative_change:
            if len(state.history[self.keys[0]]) < 2:
                return None
            settled = all(abs(state.history[key][-2] - state.history[key][-1]) <= self.tol * abs(state.history[key][-1])
                          for key in self.keys)
        else:
            settled = all(state.record[key] <= self.tol for key in self.keys)
        return f"{', '.join(self.keys)} within the tolerance {self.tol:g}" if settled else None


@dataclass(frozen=True)
class Guard:
    """The divergence guard of learned iterative methods (lpn, pnp-admm, pnp-pgd, red, dds).

    It watches each record's data term (``key``) and the iterate in the normalised unit, where data lie in about
    [0, 1], and stops the run when

    - the data term grew at ``patience`` consecutive records and reached ``growth`` times its lowest value, or
    - more than ``outside`` of the iterate's values (magnitudes for complex images) lie outside [``low``, ``high``];

    the run then returns the recorded iterate of lowest data term whose values were in range, or its start when
    there is none. Thresholds: lpn diverging on a 16-slice head CT at 8 views (see scripts/bench_guard.py) grows its
    data term 3x over 100 iterations with values up to 7.5 in the file's unit; converging runs of every guarded
    method on the benchmark cases stay far from both limits (same script).
    """

    key: str = "data"
    patience: int = 10
    growth: float = 2.0
    low: float = -1.0
    high: float = 2.0
    outside: float = 0.05
    magnitude: bool = False
    """Complex images (real, imaginary) on the channel axis: test their magnitude against ``high``."""

    def out_of_range(self, x: torch.Tensor) -> float:
        """The fraction of x's values (magnitudes) outside [low, high]."""
        if self.magnitude:
            return float((torch.linalg.vector_norm(x, dim=1) > self.high).float().mean())
        return float(((x < self.low) | (x > self.high)).float().mean())


@dataclass
class _Watch:
    """One run's guard state: the growth streak and the best iterate so far."""

    guard: Guard
    start: torch.Tensor
    best: torch.Tensor | None = None
    best_value: float = math.inf
    best_iteration: int = 0
    lowest: float = math.inf
    streak: int = 0
    previous: float = math.inf

    def check(self, iteration: int, record: dict[str, float], x: torch.Tensor) -> str | None:
        value = record[self.guard.key]
        outside = self.guard.out_of_range(x)
        if outside <= self.guard.outside and value < self.best_value:
            self.best, self.best_value, self.best_iteration = x.detach().clone(), value, iteration
        self.streak = self.streak + 1 if value > self.previous else 0
        self.previous, self.lowest = value, min(self.lowest, value)
        if outside > self.guard.outside:
            return (f"{outside:.1%} of the normalised image lies outside [{self.guard.low:g}, {self.guard.high:g}] "
                    f"(data lie in about [0, 1])")
        if self.streak >= self.guard.patience and value >= self.guard.growth * self.lowest:
            return (f"the data term grew at {self.streak} consecutive iterations, to {value:.4g} "
                    f"({value / self.lowest:.3g} times its lowest)")
        return None

    def fallback(self) -> tuple[torch.Tensor, str]:
        if self.best is None:
            return self.start, "its first estimate"
        return self.best, f"iteration {self.best_iteration}'s estimate (the lowest data term, {self.best_value:.4g})"


@dataclass
class Run:
    """The outcome of :meth:`Driver.run`: the estimate to return (the last iterate, or the guard's fallback),
    the iterations done and why the run stopped early (None: it ran them all)."""

    estimate: torch.Tensor
    iterations: int
    stopped: str | None = None
    guard: str | None = None
    """The guard's message when it stopped the run (what was wrong and what is returned)."""


@dataclass
class Driver:
    """Progress and history shared by the runs of one method call (``with Driver(...) as driver``): one progress
    bar of ``total`` steps, one history; each :meth:`run` has its own stop rules' and guard's state."""

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
        """At most ``iterations`` updates of ``algorithm`` (see the module)."""
        every = max(1, self.ctx.history_every)
        watch = _Watch(self.guard, algorithm.estimate) if self.guard is not None else None
        record: dict[str, float] = {}
        for iteration in range(1, iterations + 1):
            algorithm.update()
            if iteration % every and iteration != iterations:
                self._step(**record)
                continue
            record = algorithm.record()
            for key, value in record.items():
                self.history.setdefault(key, []).append(value)
            self._step(**record)
            if watch is not None and (reason := watch.check(iteration, record, algorithm.estimate)) is not None:
                estimate, which = watch.fallback()
                message = f"{self.name} stopped at iteration {iteration} of {iterations}: {reason}; returned {which}"
                return Run(estimate, iteration, reason, message)
            state = State(iteration, iterations, record, self.history, algorithm)
            for rule in self.stop:
                if (reason := rule(state)) is not None:
                    return Run(algorithm.estimate, iteration, reason)
        return Run(algorithm.estimate, iterations)


def iterate(ctx: RunContext, name: str, algorithm: Algorithm, iterations: int, stop: Sequence[StopRule] = (),
            guard: Guard | None = None) -> tuple[Run, dict[str, list[float]]]:
    """One run of ``algorithm`` with its own progress bar: (the run, the history)."""
    with Driver(ctx, name, iterations, stop, guard) as driver:
        return driver.run(algorithm, iterations), driver.history


def guarded_result(x: torch.Tensor, history: dict[str, list[float]], messages: Sequence[str], ctx: RunContext,
                   **extras: Any) -> Result:
    """The result of a guarded method: the guard's messages, if any fired, go into the output attribute ``guard``
    and on stderr (``ctx.warn``)."""
    result = Result(x, history, extras=dict(extras))
    if messages:
        text = "; ".join(messages)
        result.extras.setdefault("attrs", {})["guard"] = "warning: " + text
        ctx.warn(text)
    return result
