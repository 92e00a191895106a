"""How much memory this process may still use, so that sizes declared by a file or an option are refused
before anything is allocated (a MemoryError or the OOM killer half-way through helps no one).

The figure is the smallest of: the memory the OS reports available (psutil), a cgroup limit minus the
cgroup's usage (containers, Slurm jobs), and the address-space limit (``ulimit -v``) minus what this
process has mapped. Checks compare *lower bounds* of what a run needs with it: passing does not promise
that the run fits, failing means it cannot.
"""

from __future__ import annotations

import resource
from pathlib import Path

import psutil

from recon.errors import UserError

_CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def _cgroup_headroom() -> int | None:
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            limit, usage = Path(limit_file).read_text().strip(), Path(usage_file).read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit() and int(limit) < 2**62:
            return max(0, int(limit) - int(usage))
    return None


def available_bytes() -> int:
    """Bytes this process can still allocate, by the OS, its cgroup and its address-space limit."""
    figures = [psutil.virtual_memory().available]
    cgroup = _cgroup_headroom()
    if cgroup is not None:
        figures.append(cgroup)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        figures.append(max(0, soft - psutil.Process().memory_info().vms))
    return min(figures)


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; binary units up to PiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check_fits(needed: int, what: str, fix: str, *, path: str | Path | None = None, key: str | None = None) -> None:
    """UserError when ``needed`` bytes (a lower bound of what ``what`` takes) exceed :func:`available_bytes`."""
    free = available_bytes()
    if needed > free:
        raise UserError(f"{what} needs at least {format_bytes(needed)} of memory, {format_bytes(free)} is available",
                        path=path, key=key, fix=fix)
