"""Throughput of ``recon batch``: 1 and 2 workers on the local pool and a Dask LocalCluster, against a plain loop.

    .venv/bin/python scripts/bench_batch.py [--files 16] [--size 128] [--slices 16] [--iterations 150]

Writes FILES small sparse-view CT files, then reconstructs all of them with ``tv`` (a few seconds per unit):
a plain in-process loop over :func:`recon.pipeline.reconstruct` (1 thread, and all cores), and ``run_batch``
with the local pool and with LocalCluster at 1 and 2 workers of 1 torch thread each (how the batch scales
with workers), plus the pool with 1 worker of 2 threads (the same cores spent on intra-op threads instead).
Wall times include starting the workers. Prints a table (units per minute, speed-up over the same executor
with 1 worker, per-unit overhead against the 1-thread loop) and writes bench_results/batch.json. Run it on
an otherwise idle machine: other load skews the 2-worker figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recon.batch.runner import BatchRequest, run_batch
from recon.io.measurement import write_measurement
from recon.phantoms import shepp_logan_3d
from recon.pipeline import Request, reconstruct
from recon.simulate import simulate_ct_parallel


def write_files(folder: Path, count: int, size: int, slices: int) -> list[Path]:
    volume = shepp_logan_3d(size, slices)
    paths = []
    for i in range(count):
        datasets, attrs = simulate_ct_parallel(volume, views=30, noise_std=0.01, rng=np.random.default_rng(i))
        path = folder / f"scan{i:02d}.h5"
        write_measurement(path, "ct-parallel/1", datasets, attrs)
        paths.append(path)
    return paths


def plain_loop(paths: list[Path], out: Path, params: dict, threads: int) -> float:
    out.mkdir()
    torch.set_num_threads(threads)
    start = time.perf_counter()
    for path in paths:
        reconstruct(Request(input=path, method="tv", output=out / path.name, params=params))
    return time.perf_counter() - start


def batch(folder: Path, out: Path, params: dict, workers: int, threads: int, dask: bool) -> float:
    request = BatchRequest(inputs=[str(folder)], method="tv", out_dir=out, params=params, threads=threads,
                           workers=None if dask else workers, scheduler=f"local:{workers}" if dask else None)
    start = time.perf_counter()
    records = run_batch(request, show_progress=False)
    elapsed = time.perf_counter() - start
    assert all(r.status == "ok" for r in records), [r.error for r in records if r.status != "ok"]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=150)
    args = parser.parse_args()
    params = {"iterations": args.iterations}
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        paths = write_files(root / "in", args.files, args.size, args.slices)
        rows = {"plain loop, 1 thread": plain_loop(paths, root / "loop1", params, 1),
                f"plain loop, {cores} threads": plain_loop(paths, root / "loopN", params, cores)}
        runs = [(dask, workers, 1) for dask in (False, True) for workers in (1, 2)] + [(False, 1, cores)]
        for dask, workers, threads in runs:
            label = (f"{'LocalCluster' if dask else 'local pool'}, {workers} worker{'s' * (workers > 1)} x "
                     f"{threads} thread{'s' * (threads > 1)}")
            rows[label] = batch(root / "in", root / f"run{len(rows)}", params, workers, threads, dask)

    loop = rows["plain loop, 1 thread"]
    results = []
    print(f"| executor | wall (s) | units/min | vs 1 worker | overhead per unit vs loop (s) |  "
          f"[{args.files} units: tv {args.iterations} it, {args.slices} x {args.size}^2, {cores} cores]")
    print("|---|---|---|---|---|")
    for label, wall in rows.items():
        one = rows.get(label.replace("2 workers", "1 worker"), wall)  # the same executor, 1 worker
        result = {"executor": label, "wall_s": wall, "units_per_min": 60 * args.files / wall,
                  "speedup_vs_1_worker": one / wall, "overhead_per_unit_s": (wall - loop) / args.files}
        results.append(result)
        print(f"| {label} | {wall:.1f} | {result['units_per_min']:.1f} | {result['speedup_vs_1_worker']:.2f}x | "
              f"{result['overhead_per_unit_s']:+.2f} |")
    out = Path("bench_results")
    out.mkdir(exist_ok=True)
    (out / "batch.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
