"""Where units run: a local process pool (default) or a dask.distributed cluster, behind one interface.

Both run :func:`recon.batch.units.run_unit` in separate processes with ``threads`` torch threads each
(cores / workers by default, so workers do not oversubscribe the cores). A worker that dies surfaces as
:class:`WorkerLost` from :meth:`result`; the runner resubmits its unit.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from recon.batch.units import Unit, UnitRecord, run_unit
from recon.errors import UserError


class WorkerLost(Exception):
    """The process running a unit died (killed, out of memory in the OS's eyes, node lost)."""


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the parent, which lets running units finish and cancels the rest."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalPool:
    """A pool of ``workers`` spawned processes on this machine."""

    def __init__(self, workers: int):
        self.workers = workers
        self.description = f"local process pool, {workers} worker{'s' * (workers > 1)}"
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_ignore_sigint)

    def submit(self, unit: Unit, gpu: bool = False) -> Future:
        try:
            return self._pool.submit(run_unit, unit)
        except BrokenProcessPool:  # a worker died earlier: start a fresh pool for what is resubmitted
            self._pool = self._new_pool()
            return self._pool.submit(run_unit, unit)

    def as_completed(self, futures: Iterable[Future]) -> Iterator[Future]:
        return as_completed(list(futures))

    def result(self, future: Future) -> UnitRecord:
        try:
            return future.result()
        except BrokenProcessPool as error:
            raise WorkerLost(str(error) or "a worker process died") from None

    def close(self, cancel: bool = False) -> None:
        """Stop: with ``cancel``, drop queued units and wait only for the running ones."""
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def kill(self) -> None:
        """Stop now: terminate the worker processes (their temporary outputs are removed by atomic writes
        only when they exit cleanly; a killed one may leave a hidden ``.*.tmp`` file behind)."""
        for child in multiprocessing.active_children():
            child.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)


class DaskCluster:
    """A dask.distributed client: ``local:N`` starts a LocalCluster on loopback, anything else is the address
    of a running scheduler (``tcp://host:8786``, or a SLURMCluster's ``scheduler_address``)."""

    def __init__(self, scheduler: str, threads: int, gpu_resources: int = 0):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserError("--scheduler needs dask.distributed", key="--scheduler",
                            fix="pip install 'recon[dask]', or leave out --scheduler for the local pool") from None
        self._cluster = None
        if scheduler.startswith("local"):
            workers = int(scheduler.partition(":")[2])
            resources = {"GPU": 1} if gpu_resources else None
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                         dashboard_address="127.0.0.1:0", resources=resources,
                                         env={"OMP_NUM_THREADS": str(threads)})
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(scheduler, timeout="20s")
            except OSError as error:
                raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({error})", key="--scheduler",
                                fix="check the address (tcp://host:port) and that the scheduler runs") from None
        self.description = f"dask scheduler {self._client.scheduler.address}"
        self.dashboard = self._client.dashboard_link

    def submit(self, unit: Unit, gpu: bool = False) -> Any:
        resources = {"GPU": 1} if gpu else None
        return self._client.submit(run_unit, unit, key=f"recon-{unit.name}-{os.urandom(4).hex()}", pure=False,
                                   resources=resources)

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed as dask_as_completed

        return dask_as_completed(list(futures))

    def result(self, future: Any) -> UnitRecord:
        from distributed import KilledWorker

        try:
            return future.result()
        except (KilledWorker, OSError) as error:
            raise WorkerLost(f"{error.__class__.__name__}: {error}") from None

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self._client.cancel(list(self._client.futures.values()), force=True)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    kill = close


def _positive_int(text: str, key: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"{text!r} is not a positive number of workers", key=key, fix="e.g. --scheduler local:2")
    return int(text)


def make_executor(workers: int | None, scheduler: str | None, gpu: bool,
                  threads: int | None = None) -> tuple[LocalPool | DaskCluster, int]:
    """The executor for ``--workers``/``--scheduler`` and the torch threads each of its units uses: ``threads``
    when given, else cores / workers on this machine (0 = torch's default, for workers of a remote scheduler)."""
    cores = os.cpu_count() or 1
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads} is not positive", key="--threads", fix="use 1 or more")
    if scheduler is None:
        workers = cores if workers is None else workers
        if workers < 1:
            raise UserError(f"--workers {workers} is not positive", key="--workers", fix="use 1 or more")
        threads = threads or max(1, cores // workers)
        return LocalPool(workers), threads
    if scheduler.startswith("local"):
        n = _positive_int(scheduler.partition(":")[2] or str(cores), "--scheduler local:N")
        threads = threads or max(1, cores // n)
        return DaskCluster(f"local:{n}", threads, gpu_resources=int(gpu)), threads
    return DaskCluster(scheduler, 0), threads or 0
