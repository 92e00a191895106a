"""The local process pool of ``recon batch``: ``workers`` spawned processes under a supervisor thread.

Each worker runs one unit at a time (:func:`recon.batch.units.run_unit`) and is reused for the next. The
supervisor knows which unit each worker holds, so a worker that dies (killed, out of memory, a crash in a
library) fails only that unit's future, with :class:`~recon.batch.executors.WorkerLost` and the cause (the
signal or exit code), and a fresh worker takes its place; queued units and units running in other workers
are untouched. (concurrent.futures.ProcessPoolExecutor cannot do this: one dead worker breaks the whole pool
and fails every pending future, started or not.)

Workers ignore SIGINT: Ctrl-C goes to the parent, which lets running units finish (:meth:`LocalPool.close`
with ``cancel``) or terminates the workers (:meth:`LocalPool.kill`).
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, as_completed
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from recon.batch.units import Unit, UnitRecord, WorkerLost, run_unit

STARTUP_FAILURES = 3
"""Workers that die before taking any unit, in a row, after which the pool fails the queued units."""


def _worker_main(conn: Connection) -> None:
    """A worker: say ready, then run each unit received until told to stop (None) or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send(("ready", None))
    while True:
        try:
            unit = conn.recv()
        except (EOFError, OSError):
            return
        if unit is None:
            return
        conn.send(("done", run_unit(unit)))


def death_cause(exitcode: int | None) -> str:
    """Words for a worker's exit code: ``killed by SIGKILL`` or ``exited with code 3``."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else f"signal {-exitcode}"
        oom = " (also how the OS stops a process that runs out of memory)" if exitcode == -signal.SIGKILL else ""
        return f"killed by {name}{oom}"
    return f"exited with code {exitcode}"


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    job: tuple[Unit, Future] | None = None


@dataclass
class _State:
    queue: deque = field(default_factory=deque)
    workers: list[_Worker] = field(default_factory=list)
    closing: bool = False
    startup_failures: int = 0


class LocalPool:
    """A pool of ``workers`` spawned processes on this machine (see the module's docstring)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.description = f"local process pool, {workers} worker{'s' * (workers > 1)}"
        self._context = multiprocessing.get_context("spawn")
        self._state = _State()
        self._lock = threading.Lock()
        self._wake_receive, self._wake_send = multiprocessing.Pipe(duplex=False)
        self._thread = threading.Thread(target=self._supervise, name="recon-pool", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------------------------------- interface

    def submit(self, unit: Unit, gpu: bool = False) -> Future:
        future: Future = Future()
        with self._lock:
            self._state.queue.append((unit, future))
        self._wake()
        return future

    def as_completed(self, futures: Iterable[Future]) -> Iterator[Future]:
        return as_completed(list(futures))

    def result(self, future: Future) -> UnitRecord:
        """The unit's record; WorkerLost when the worker running it died."""
        return future.result()

    def close(self, cancel: bool = False) -> None:
        """Stop once the running units are done: with ``cancel`` queued units are dropped, else they run first."""
        with self._lock:
            if cancel:
                while self._state.queue:
                    self._state.queue.popleft()[1].cancel()
            self._state.closing = True
        self._wake()
        self._thread.join()

    def kill(self) -> None:
        """Stop now: terminate the workers (their temporary outputs are left for the next run to report)."""
        with self._lock:
            self._state.closing = True
            while self._state.queue:
                self._state.queue.popleft()[1].cancel()
            for worker in self._state.workers:
                worker.process.terminate()
        self._wake()
        self._thread.join(timeout=10)

    # ----------------------------------------------------------------------------------------- supervisor

    def _wake(self) -> None:
        self._wake_send.send(None)

    def _start_worker(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child,), name="recon-batch-worker", daemon=True)
        process.start()
        child.close()
        self._state.workers.append(_Worker(process, parent))

    def _dispatch(self) -> bool:
        """Start workers and hand queued units to idle ones; False once closing and nothing is left to do."""
        state = self._state
        with self._lock:
            if state.startup_failures >= STARTUP_FAILURES:
                while state.queue:
                    state.queue.popleft()[1].set_exception(WorkerLost(
                        f"{STARTUP_FAILURES} worker processes in a row died before taking a unit"))
            busy = sum(worker.job is not None for worker in state.workers)
            wanted = min(self.workers, busy + len(state.queue))
            while len(state.workers) < wanted:
                self._start_worker()
            for worker in state.workers:
                if worker.ready and worker.job is None and state.queue:
                    worker.job = state.queue.popleft()
                    if worker.job[1].set_running_or_notify_cancel():
                        with suppress(OSError):  # a worker that just died: its sentinel fails the unit
                            worker.conn.send(worker.job[0])
                    else:
                        worker.job = None
            if state.closing and not state.queue and not any(worker.job for worker in state.workers):
                for worker in state.workers:
                    with suppress(OSError):
                        worker.conn.send(None)
                return False
        return True

    def _supervise(self) -> None:
        try:
            self._run()
        except BaseException as error:  # never leave a future waiting on a supervisor that is gone
            with self._lock:
                jobs = [w.job for w in self._state.workers if w.job] + list(self._state.queue)
                self._state.queue.clear()
            for _, future in jobs:
                if not future.done():
                    future.set_exception(WorkerLost(f"the pool's supervisor failed: {error!r}"))
            raise

    def _run(self) -> None:
        while self._dispatch():
            watched = [self._wake_receive] + [w.conn for w in self._state.workers]
            watched += [w.process.sentinel for w in self._state.workers]
            ready = wait(watched)
            if self._wake_receive in ready:
                while self._wake_receive.poll():
                    self._wake_receive.recv()
            for worker in list(self._state.workers):
                if worker.conn in ready:
                    self._receive(worker)
                if worker.process.sentinel in ready:
                    self._bury(worker)
        for worker in self._state.workers:
            worker.process.join(timeout=30)

    def _receive(self, worker: _Worker) -> None:
        """Read what ``worker`` sent (ready, or a unit's record) unless its pipe is closed (then it died)."""
        try:
            while worker.conn.poll():
                kind, record = worker.conn.recv()
                if kind == "ready":
                    worker.ready = True
                    self._state.startup_failures = 0
                elif worker.job is not None:
                    worker.job[1].set_result(record)
                    worker.job = None
        except (EOFError, OSError):
            pass  # the sentinel reports the death

    def _bury(self, worker: _Worker) -> None:
        """``worker`` exited: fail its unit (if it held one) with the cause; a fresh worker takes its place."""
        self._receive(worker)  # a record sent just before dying still counts
        worker.process.join()
        with self._lock:
            self._state.workers.remove(worker)
            if worker.job is not None:
                worker.job[1].set_exception(WorkerLost(death_cause(worker.process.exitcode)))
            elif not worker.ready and not self._state.closing:
                self._state.startup_failures += 1
        worker.conn.close()
