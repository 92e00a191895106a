"""Where units run: a local process pool (default, :mod:`recon.batch.local_pool`) or a dask.distributed
cluster, behind one interface: ``submit``, ``as_completed``, ``result``, ``close``, ``kill``.

Both run :func:`recon.batch.units.run_unit` in separate processes with ``threads`` torch threads each
(cores / workers by default, so workers do not oversubscribe the cores). A worker that dies surfaces as
:class:`~recon.batch.units.WorkerLost` from :meth:`result` for the unit it ran; the runner resubmits that
unit while it has run at most ``--retries`` times (its attempt log counts the runs). On a LocalCluster,
Dask's own rescheduling after a worker death is turned off (``distributed.scheduler.allowed-failures`` 0:
a task on a dead worker fails at once with KilledWorker), so that the runner's count is the only one, as on
the local pool. Dask counts a death against every task assigned to the worker, started or queued, and
counts per task key, which a resubmission renews: with its rescheduling on, one kill could fail a unit that
never started and a unit could run (allowed-failures + 1) times per resubmission. A remote scheduler keeps
its own setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

from recon.batch.local_pool import LocalPool
from recon.batch.units import Unit, UnitRecord, WorkerLost, run_unit
from recon.errors import UserError

ADDRESS = re.compile(r"((tcp|tls|ws|wss|ucx|inproc)://)?[\w.\-\[\]:]+:\d+")
"""A Dask scheduler address: ``[protocol://]host:port``."""


class DaskCluster:
    """A dask.distributed client: ``local:N`` starts a LocalCluster on loopback, anything else is the address
    of a running scheduler (``tcp://host:8786``, or a SLURMCluster's ``scheduler_address``)."""

    def __init__(self, scheduler: str, threads: int, gpu_resources: int = 0):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserError("--scheduler needs dask.distributed", key="--scheduler",
                            fix="pip install 'recon[dask]', or leave out --scheduler for the local pool") from None
        self._cluster = None
        if scheduler.startswith("local"):
            workers = int(scheduler.partition(":")[2])
            resources = {"GPU": 1} if gpu_resources else None
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # the runner retries
                self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                             host="127.0.0.1", dashboard_address="127.0.0.1:0", resources=resources,
                                             env={"OMP_NUM_THREADS": str(threads)})
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(scheduler, timeout="20s")
            except (OSError, ValueError) as error:
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
            raise WorkerLost(f"{error.__class__.__name__}: {error}".split(". ")[0]) from None
        finally:
            future.release()  # the worker may drop the result now (else a later death makes Dask recompute it)

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


def check_scheduler(scheduler: str | None) -> None:
    """UserError unless ``scheduler`` is None, ``local``, ``local:N`` or an address ``[protocol://]host:port``."""
    if scheduler is None or scheduler == "local":
        return
    if scheduler.startswith("local:"):
        _positive_int(scheduler.partition(":")[2], "--scheduler local:N")
    elif not ADDRESS.fullmatch(scheduler):
        raise UserError(f"{scheduler!r} is neither local:N nor a scheduler address", key="--scheduler",
                        fix="give local:2 for a LocalCluster, or tcp://host:8786 for a running scheduler")


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
    check_scheduler(scheduler)
    if scheduler.startswith("local"):
        n = _positive_int(scheduler.partition(":")[2] or str(cores), "--scheduler local:N")
        threads = threads or max(1, cores // n)
        return DaskCluster(f"local:{n}", threads, gpu_resources=int(gpu)), threads
    return DaskCluster(scheduler, 0), threads or 0
