"""Near-field MIMO operator: the matrix-free chunked operator against a dense complex matrix of the same operator.

    .venv/bin/python scripts/bench_mimo.py [--frequencies 20] [--grid 25,25,49] [--threads 1] [--repeat 3]

Each variant runs in a fresh process, so that its peak resident memory (ru_maxrss, minus that process's
baseline after importing torch and building the inputs) is its own. Times are the best of ``--repeat`` calls
of A and of A^H on the paper's geometry (12 Tx x 13 Rx diagonals, 0.3 m aperture, 4-16 GHz). Prints a table
and writes bench_results/mimo_operator.json. The reconstruction methods' rows come with the C-SALSA methods.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, resource, sys, time
import numpy as np, torch
from recon.physics.mimo import NearFieldMIMO
from recon.simulate import radar_geometry
variant, n_freq, grid, threads, repeat = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
physics = NearFieldMIMO(radar_geometry("diagonal-12x13", None, n_freq, 4e9, 16e9, grid))
x = torch.randn(1, 2, *physics.grid_shape)
y = physics.A(x) if variant == "dense" else None
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if variant == "dense":
    matrix = physics.dense_matrix()
    xc = torch.view_as_complex(x.movedim(1, -1).contiguous()).reshape(-1)
    yc = torch.view_as_complex(y.movedim(1, -1).contiguous()).reshape(-1)
    forward, adjoint = (lambda: matrix @ xc), (lambda: matrix.conj().T @ yc)
else:
    y = physics.A(x)
    forward, adjoint = (lambda: physics.A(x)), (lambda: physics.A_adjoint(y))
times = {}
for name, call in (("A", forward), ("A^H", adjoint)):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter(); call(); best = min(best, time.perf_counter() - start)
    times[name] = best
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024
print(json.dumps({"variant": variant, "A_s": times["A"], "AH_s": times["A^H"], "peak_MiB": peak}))
"""


def run(variant: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-c", CHILD, variant, str(args.frequencies), args.grid, str(args.threads),
               str(args.repeat)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frequencies", type=int, default=20)
    parser.add_argument("--grid", default="25,25,49", help="nx,ny,nz")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = [run(variant, args) for variant in ("matrix-free", "dense")]
    free, dense = rows
    print(f"| operator | A (s) | A^H (s) | peak memory (MiB) |  [{args.frequencies} frequencies, grid {args.grid}, "
          f"{args.threads} thread(s)]")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['A_s']:.3f} | {row['AH_s']:.3f} | {row['peak_MiB']:.0f} |")
    print(f"matrix-free / dense: time A {free['A_s'] / dense['A_s']:.2f}x, A^H {free['AH_s'] / dense['AH_s']:.2f}x, "
          f"memory {free['peak_MiB'] / dense['peak_MiB']:.3f}x")
    out = Path("bench_results")
    out.mkdir(exist_ok=True)
    (out / "mimo_operator.json").write_text(json.dumps({"args": vars(args), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
