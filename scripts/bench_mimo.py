"""Near-field MIMO radar: the matrix-free operator against a dense matrix, and the methods' PSNR and time.

    .venv/bin/python scripts/bench_mimo.py [--frequencies 20] [--grid 25,25,49] [--threads 1] [--repeat 3]
        [--method-frequencies 5,10,20,40] [--snr 20,30] [--scenes 2] [--skip-operator] [--skip-methods]
        [--methods backprojection,...] [--out bench_results/mimo_methods.json] [--merge A.json B.json ...]

Operator rows: each variant runs in a fresh process, so that its peak resident memory (ru_maxrss, minus that
process's baseline after importing torch and building the inputs) is its own. Times are the best of ``--repeat``
calls of A and of A^H on the paper's geometry (12 Tx x 13 Rx diagonals, 0.3 m aperture, 4-16 GHz). Written to
bench_results/mimo_operator.json.

Method rows: backprojection, kirchhoff, tv, l1 and mimo-pnp with their defaults (the same on every scene) on
``--scenes`` random scenes of recon.scenes drawn with numpy.random.default_rng(seed) for seed = 1, 2, ... (the
radar denoiser was trained, and the defaults tuned, on seed 0 only), at every number of frequencies and SNR.
Score: PSNR of the magnitudes each divided by its maximum (recon.problem.scored_pair), mean over scenes; time:
wall seconds of the method, its ||A|| estimate included, one thread by default. Written to
bench_results/mimo_methods.json (``--out``: elsewhere, e.g. one file per SNR from runs side by side).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("backprojection", "kirchhoff", "tv", "l1", "mimo-pnp")

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


def operator_rows(args: argparse.Namespace) -> None:
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


def method_rows(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from recon.methods import RunContext, get_method
    from recon.metrics import quality
    from recon.problem import scored_pair
    from recon.scenes import make_scene

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tune_mimo import radar_problem

    torch.set_num_threads(args.threads)
    nx, ny, nz = (int(n) for n in args.grid.split(","))
    scenes = [make_scene("random", (nz, ny, nx), np.random.default_rng(seed)) for seed in range(1, args.scenes + 1)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n_freq in (int(f) for f in args.method_frequencies.split(",")):
            for snr in (float(v) for v in args.snr.split(",")):
                for index, scene in enumerate(scenes):
                    problem = radar_problem(scene, n_freq, snr, args.grid, Path(folder), seed=index + 1)
                    for name in args.methods.split(","):
                        problem.sqnorm = None  # every method pays for its own ||A|| estimate
                        method = get_method(name)
                        start = time.perf_counter()
                        result = method.solve(problem, method.parse_params({}), RunContext())
                        elapsed = time.perf_counter() - start
                        image = problem.to_output(result.x)["reconstruction"]
                        psnr = quality(*scored_pair(problem.spec, image, problem.ground_truth), images=False)["psnr"]
                        rows.append({"frequencies": n_freq, "snr_db": snr, "scene_seed": index + 1, "method": name,
                                     "psnr": psnr, "seconds": elapsed})
                        print(f"  {n_freq} freq, {snr:g} dB, scene {index + 1}: {name} {psnr:.2f} dB "
                              f"{elapsed:.1f} s", flush=True)
    write_table(rows, args)


def write_table(rows: list[dict], args: argparse.Namespace) -> None:
    """Print the mean PSNR / seconds per (frequencies, SNR) and method of ``rows``; write them to ``args.out``."""
    import numpy as np

    methods = [name for name in METHODS if any(r["method"] == name for r in rows)]
    scenes = len({r["scene_seed"] for r in rows})
    print(f"| frequencies | SNR (dB) | {' | '.join(methods)} |  [PSNR dB / s, mean of {scenes} scene(s), grid "
          f"{args.grid}, {args.threads} thread(s)]")
    print("|---|---|" + "---|" * len(methods))
    table = []
    for n_freq in sorted({r["frequencies"] for r in rows}):
        for snr in sorted({r["snr_db"] for r in rows}):
            cells = {}
            for name in methods:
                mine = [r for r in rows if (r["frequencies"], r["snr_db"], r["method"]) == (n_freq, snr, name)]
                cells[name] = (float(np.mean([r["psnr"] for r in mine])), float(np.mean([r["seconds"] for r in mine])))
            table.append({"frequencies": n_freq, "snr_db": snr,
                          **{name: {"psnr": p, "seconds": t} for name, (p, t) in cells.items()}})
            print(f"| {n_freq} | {snr:g} | " + " | ".join(f"{p:.2f} / {t:.1f}" for p, t in cells.values()) + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "table": table, "rows": rows}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frequencies", type=int, default=20, help="operator rows")
    parser.add_argument("--grid", default="25,25,49", help="nx,ny,nz")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--method-frequencies", default="5,10,20,40")
    parser.add_argument("--snr", default="20,30", help="dB, comma-separated")
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--skip-operator", action="store_true")
    parser.add_argument("--skip-methods", action="store_true")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, among " + ", ".join(METHODS))
    parser.add_argument("--out", default="bench_results/mimo_methods.json", help="JSON of the method rows")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="no runs: the table of the rows in these files (e.g. of --methods or --snr subsets "
                             "run side by side), written to --out")
    args = parser.parse_args()
    if args.merge:
        write_table([row for path in args.merge for row in json.loads(Path(path).read_text())["rows"]], args)
        return
    if not args.skip_operator:
        operator_rows(args)
    if not args.skip_methods:
        method_rows(args)


if __name__ == "__main__":
    main()
