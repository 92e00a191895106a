"""Progress of long loops: a rich bar on a terminal, plain one-line logs otherwise.

Solvers call ``ctx.progress(description, total)`` and ``step(**fields)`` once per iteration (the iteration driver,
:mod:`recon.solvers.driver`, does it for them); the reporter decides how to show it, so numerical code never
prints. Warnings about a result go through ``ctx.warn`` (:func:`warn_on_stderr` by default).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class StepReporter(Protocol):
    def __call__(self, **fields: float) -> None: ...


class Progress(Protocol):
    def __call__(self, description: str, total: int) -> Iterator[StepReporter]: ...


def _format_fields(fields: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in fields.items())


@contextmanager
def silent_progress(description: str, total: int) -> Iterator[StepReporter]:
    """Reports nothing: for tests, library use and worker processes."""
    yield lambda **fields: None


@contextmanager
def log_progress(description: str, total: int, lines: int = 10) -> Iterator[StepReporter]:
    """Prints about ``lines`` plain lines to stderr over the loop, and one at its end."""
    every = max(1, total // lines)
    count = 0
    start = time.perf_counter()

    def step(**fields: float) -> None:
        nonlocal count
        count += 1
        if count % every == 0 or count == total:
            elapsed = time.perf_counter() - start
            print(f"{description}: {count}/{total} {_format_fields(fields)} ({elapsed:.1f} s)",
                  file=sys.stderr, flush=True)

    yield step


@contextmanager
def bar_progress(description: str, total: int) -> Iterator[StepReporter]:
    """A rich progress bar on stderr with the latest fields beside it."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[info]}"))
    with RichProgress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=total, info="")

        def step(**fields: float) -> None:
            bar.update(task, advance=1, info=_format_fields(fields))

        yield step


def default_progress() -> Progress:
    """A bar when stderr is a terminal, plain logs otherwise."""
    return bar_progress if sys.stderr.isatty() else log_progress


def warn_on_stderr(message: str) -> None:
    """How runs report what the user must know about a result (e.g. a divergence guard's fallback): one line on
    stderr, whatever the progress display."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


class Cancelled(Exception):
    """Raised inside a run's loop when its caller asked it to stop (the napari widget's cancel button)."""


def callback_progress(report: Callable[[str, int, int, dict[str, float]], None],
                      cancel: threading.Event | None = None) -> Progress:
    """Calls ``report(description, done, total, fields)`` after every step; raises Cancelled once ``cancel`` is set.

    For callers outside a terminal (GUI threads, services). ``report`` runs on the computing thread.
    """

    @contextmanager
    def progress(description: str, total: int) -> Iterator[StepReporter]:
        count = 0

        def step(**fields: float) -> None:
            nonlocal count
            count += 1
            report(description, count, total, fields)
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{description} cancelled at step {count}/{total}")

        report(description, 0, total, {})
        yield step

    return progress
