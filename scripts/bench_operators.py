"""Time our operators against deepinv's on the same problems: forward, adjoint, build, adjointness.

Each case builds both operators and their inputs on the device; forward and adjoint are timed in one
process, interleaved (ours, theirs, ours, ...) after a warm-up, and the medians are reported with the
ratio theirs / ours. Results are printed as a table and written to JSON.

    .venv/bin/python scripts/bench_operators.py [--repeats 5] [--device auto|cpu|cuda] [--threads N]
                                                [--out bench_results/operators.json]

To add a family, write a generator like ``ct_cases`` and append it to ``CASE_SOURCES``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import deepinv
import numpy as np
import torch
from deepinv.physics import LinearPhysics, MultiCoilMRI, Tomography
from rich.console import Console
from rich.table import Table

from recon.device import DEVICE_CHOICES, resolve_device
from recon.physics.coil_maps import synthetic_coil_maps
from recon.physics.ct import ParallelBeamCT, system_matrices
from recon.physics.masks import make_mask
from recon.physics.mri import CartesianMRI


@dataclass
class OperatorPair:
    """One case on one device: our operator and deepinv's on the same problem, with their inputs."""

    name: str
    ours: LinearPhysics
    theirs: LinearPhysics
    x_ours: torch.Tensor
    x_theirs: torch.Tensor
    build_s: float | None = None  # our first (uncached) construction, seconds
    cached_build_s: float | None = None  # our second construction of the same geometry, seconds


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes, device work included."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def time_pair(ours: Callable[[], object], theirs: Callable[[], object], repeats: int,
              device: torch.device) -> tuple[float, float]:
    """Median seconds of ``ours`` and ``theirs``: one warm-up each, then ``repeats`` interleaved calls."""
    ours()
    theirs()
    times_ours, times_theirs = [], []
    for _ in range(repeats):
        times_ours.append(timed(ours, device))
        times_theirs.append(timed(theirs, device))
    return statistics.median(times_ours), statistics.median(times_theirs)


def ct_cases(device: torch.device) -> Iterator[OperatorPair]:
    """ParallelBeamCT against deepinv's Tomography (exact adjoint via backprop), 60 views over 180 degrees."""
    angles = np.linspace(0, np.pi, 60, endpoint=False)
    theirs = Tomography(angles=torch.from_numpy(np.degrees(angles)).float(), img_width=256, circle=False,
                        adjoint_via_backprop=True, normalize=False, device=device)
    system_matrices.cache_clear()
    start = time.perf_counter()
    ours = ParallelBeamCT((256, 256), angles, device=device)
    build_s = time.perf_counter() - start
    cached_build_s = timed(lambda: ParallelBeamCT((256, 256), angles, device=device), device)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 256, 256, generator=generator).to(device)
    yield OperatorPair("ct 2D 256^2, 60 views", ours, theirs, x, x, build_s, cached_build_s)
    volume = torch.rand(64, 256, 256, generator=generator).to(device)
    yield OperatorPair("ct 3D 64x256^2, 60 views", ours, theirs, volume[None, None], volume[:, None],
                       build_s, cached_build_s)


def mri_cases(device: torch.device) -> Iterator[OperatorPair]:
    """CartesianMRI (a thin subclass of deepinv's MultiCoilMRI) against MultiCoilMRI: 8 coils, 256^2, 4x."""
    rng = np.random.default_rng(0)
    mask = make_mask("uniform1d", (256, 256), 4.0, rng=rng)
    maps = torch.from_numpy(synthetic_coil_maps(8, (256, 256), rng=rng))
    start = time.perf_counter()
    ours = CartesianMRI(mask, coil_maps=maps, device=device)
    build_s = time.perf_counter() - start
    theirs = MultiCoilMRI(mask=torch.from_numpy(mask), coil_maps=maps, img_size=(1, 2, 256, 256), device=device)
    x = torch.randn(1, 2, 256, 256, generator=torch.Generator().manual_seed(0)).to(device)
    yield OperatorPair("mri 8-coil 256^2, 4x", ours, theirs, x, x, build_s)


CASE_SOURCES: list[Callable[[torch.device], Iterator[OperatorPair]]] = [ct_cases, mri_cases]


def run_case(pair: OperatorPair, repeats: int, device: torch.device) -> dict:
    """Timings and adjointness of one case, as a JSON-ready dict."""
    y_ours, y_theirs = pair.ours.A(pair.x_ours), pair.theirs.A(pair.x_theirs)
    result = {"case": pair.name, "x_ours": list(pair.x_ours.shape), "x_theirs": list(pair.x_theirs.shape),
              "build_s": pair.build_s, "cached_build_s": pair.cached_build_s}
    for op, ours, theirs in (
        ("forward", lambda: pair.ours.A(pair.x_ours), lambda: pair.theirs.A(pair.x_theirs)),
        ("adjoint", lambda: pair.ours.A_adjoint(y_ours), lambda: pair.theirs.A_adjoint(y_theirs)),
    ):
        t_ours, t_theirs = time_pair(ours, theirs, repeats, device)
        result[op] = {"ours_s": t_ours, "theirs_s": t_theirs, "ratio": t_theirs / t_ours}
    torch.manual_seed(0)
    result["adjoint_rel_error"] = {"ours": pair.ours.adjointness_test(pair.x_ours).item(),
                                   "theirs": pair.theirs.adjointness_test(pair.x_theirs).item()}
    return result


def print_tables(results: list[dict], console: Console) -> None:
    timing = Table(title="forward / adjoint, median seconds (ratio = deepinv / ours)")
    for column in ("case", "op", "ours (ms)", "deepinv (ms)", "ratio"):
        timing.add_column(column, justify="left" if column in ("case", "op") else "right")
    details = Table(title="our first / cached build, adjointness relative error")
    for column in ("case", "build (s)", "cached (ms)", "adj. err ours", "adj. err deepinv"):
        details.add_column(column, justify="left" if column == "case" else "right")
    for r in results:
        for op in ("forward", "adjoint"):
            t = r[op]
            timing.add_row(r["case"], op, f"{1e3 * t['ours_s']:.1f}", f"{1e3 * t['theirs_s']:.1f}",
                           f"{t['ratio']:.1f}x")
        details.add_row(r["case"], "-" if r["build_s"] is None else f"{r['build_s']:.2f}",
                        "-" if r["cached_build_s"] is None else f"{1e3 * r['cached_build_s']:.2f}",
                        f"{r['adjoint_rel_error']['ours']:.1e}", f"{r['adjoint_rel_error']['theirs']:.1e}")
    console.print(timing)
    console.print(details)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per operator and op (median)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path("bench_results/operators.json"))
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    console = Console(width=None if sys.stdout.isatty() else 120)  # no wrapping when piped to a log
    results = []
    for source in CASE_SOURCES:
        for pair in source(device):
            console.log(f"running {pair.name}")
            results.append(run_case(pair, args.repeats, device))
    print_tables(results, console)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "cpu_threads": torch.get_num_threads(), "repeats": args.repeats, "torch": torch.__version__,
              "deepinv": deepinv.__version__, "cases": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    console.log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
