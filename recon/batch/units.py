"""Work units of a batch, and running one unit in a worker process.

A unit is one input file, or one slab of slices of it (``--slab N`` for slice-separable methods). Each
unit writes its own output atomically, so a unit either produced a complete, valid file or nothing.
:func:`run_unit` never raises for a failure of its unit: it returns a record with the error line, so one
bad file cannot stop the others.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from recon.errors import UserError
from recon.pipeline import Request


class WorkerLost(Exception):
    """The process running a unit died (killed, out of memory in the OS's eyes, node lost)."""


@dataclass(frozen=True)
class Unit:
    """One piece of work: the pipeline ``request`` (input, slices, output, method, ...) run with ``threads``."""

    name: str
    request: Request
    threads: int = 1
    final: Path | None = None
    """For a slab: the merged output this slab belongs to."""
    attempt_log: Path | None = None
    """File that gets one line (worker, time) each time the unit starts: how many times it really ran."""
    layout: str = ""
    """How the input was recognised: ``recon`` (a recon-spec file) or a layout name (``fastmri``, ``lodopab``...)."""
    ground_truth: Path | None = None
    """A separate ground-truth file its reader pairs with it (LoDoPaB's), for the summary."""

    @property
    def input(self) -> Path:
        return Path(self.request.input)

    @property
    def output(self) -> Path:
        return Path(self.request.output)


@dataclass
class UnitRecord:
    """What happened to a unit: status ok | failed | skipped | not run, time, scores, the error line."""

    unit: str
    input: str
    output: str
    status: str
    time_s: float = 0.0
    psnr: float | None = None
    ssim: float | None = None
    error: str = ""
    attempts: int = 1
    worker: str = ""
    layout: str = ""
    ground_truth: str = ""

    def row(self) -> dict[str, Any]:
        return asdict(self)


def unit_labels(unit: Unit) -> dict[str, str]:
    """The record fields that say what the unit's input is: its layout and paired ground-truth file."""
    return {"layout": unit.layout, "ground_truth": str(unit.ground_truth or "")}


def record_for(source: Unit, status: str, **fields: Any) -> UnitRecord:
    """A record of ``source`` with ``status`` and its labels; ``fields`` set the rest (``unit``/``output`` too:
    a merged volume's record is named after its slabs' file)."""
    return UnitRecord(**{"unit": source.name, "input": str(source.input), "output": str(source.output),
                         "status": status, **unit_labels(source), **fields})


def output_for(input_path: Path, out_dir: Path, method: str) -> Path:
    """``scan.h5`` reconstructed by ``tv`` into DIR is ``DIR/scan.tv.h5``."""
    return out_dir / f"{input_path.stem}.{method}.h5"


def slab_output(final: Path, start: int, stop: int) -> Path:
    """Slab outputs live in ``DIR/.slabs/`` until they are merged into ``final``."""
    return final.parent / ".slabs" / f"{final.stem}.slices-{start:06d}-{stop:06d}.h5"


def set_threads(threads: int) -> None:
    """Limit torch (and BLAS) to ``threads`` so that workers sharing the cores do not oversubscribe them
    (0: leave torch's default)."""
    import torch

    if threads <= 0:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(max(1, threads))


MMAP_THRESHOLD = 32 * 2**20
"""glibc's own ceiling for its adaptive mmap threshold on 64-bit (bytes)."""


def keep_large_blocks_in_heap() -> None:
    """Let glibc serve allocations below 32 MiB from the heap again in processes started by a Dask nanny.

    The nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` so that workers give memory back; setting it also
    freezes glibc's mmap threshold at 128 KiB, so every torch temporary above that is a fresh mmap and a
    page-faulting munmap. Measured on one 128^2 x 16-slice ``tv`` unit (150 iterations, 1 thread): 2.9 s
    (0.14 s system time) in a plain process, 5.1 s (2.4 s system) with that variable set, 3.2 s (0.3 s)
    after this call. Trimming still works. No-op off glibc (found among the process's own symbols).
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None) if sys.platform.startswith("linux") else None
    if mallopt is not None:
        m_mmap_threshold = -3  # from malloc.h
        mallopt(m_mmap_threshold, MMAP_THRESHOLD)


def attempt_log(folder: Path, name: str) -> Path:
    """Where the start marks of unit ``name`` go in ``folder`` (a file named by a hash of the name)."""
    return folder / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.log"


def attempts_started(unit: Unit) -> int:
    """How many times ``unit`` started running (lines of its attempt log; 0 without one)."""
    try:
        return len(unit.attempt_log.read_text().splitlines()) if unit.attempt_log else 0
    except FileNotFoundError:
        return 0


def _mark_start(unit: Unit, worker: str) -> None:
    """Append ``worker`` and the time to the unit's attempt log, before any work (a crash later still counts)."""
    if unit.attempt_log is not None:
        with open(unit.attempt_log, "a") as log:
            log.write(f"{worker} {time.time():.3f} {unit.name}\n")


def run_unit(unit: Unit) -> UnitRecord:
    """Reconstruct one unit (in whatever process runs it) and report how it went."""
    from recon.errors import ComputationFailed
    from recon.pipeline import reconstruct

    worker = f"{socket.gethostname()}:{os.getpid()}"
    _mark_start(unit, worker)
    set_threads(unit.threads)
    keep_large_blocks_in_heap()
    start = time.perf_counter()
    record = record_for(unit, "ok", worker=worker)
    try:
        unit.output.parent.mkdir(parents=True, exist_ok=True)
        summary = reconstruct(unit.request)
        record.psnr, record.ssim = summary.metrics.get("psnr"), summary.metrics.get("ssim")
    except (UserError, ComputationFailed) as error:
        record.status, record.error = "failed", str(error)
    except Exception as error:  # out of memory, a bug: recorded, the batch goes on
        record.status = "failed"
        record.error = f"internal error: {error.__class__.__name__}: {error}".splitlines()[0]
        record.error += f" ({traceback.extract_tb(error.__traceback__)[-1].filename.split('/')[-1]})"
    record.time_s = time.perf_counter() - start
    return record
