"""Tune the C-SALSA radar defaults (tv, l1, mimo-pnp) on training-like scenes: draws of the seed-0 generator of
recon.scenes (the radar denoiser's training scenes came from it too; the benchmark uses seeds >= 1).

    .venv/bin/python scripts/tune_mimo.py [--scenes 3] [--frequencies 20] [--snr 30] [--grid 25,25,49]
        [--methods tv,l1,mimo-pnp] [--iterations 30[,40,...]]

The mimo-pnp iterations: ``--scenes 3 --methods mimo-pnp --iterations 30,35,40,45,50`` (sigma 0.175 and 0.225 at 40
iterations, kappa and an annealed sigma were tried by hand on the same scenes: recon.methods.radar).

Scores PSNR of normalised magnitudes for a small grid of (kappa, lam | sigma) per method, prints a table and the
best setting by mean PSNR, and writes bench_results/tune_mimo.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recon.io.measurement import MeasurementFile, write_measurement
from recon.methods import RunContext, get_method
from recon.metrics import quality
from recon.problem import scored_pair
from recon.problems import build_problem
from recon.scenes import make_scene
from recon.simulate import radar_geometry, simulate_mimo_nearfield

GRID = {
    "tv": {"kappa": [0.01], "lam": [0.02, 0.05, 0.1]},
    "l1": {"kappa": [0.01], "lam": [0.02, 0.05, 0.1]},
    "mimo-pnp": {"kappa": [0.01], "sigma": [0.15, 0.2, 0.25]},
}
"""The settings tried (lam, sigma: fractions of the current peak magnitude); kappa 0.01 came first from a wider
look at kappa in [0.001, 1] (0.1 and more left the data ball far from reached in 30 iterations)."""


def radar_problem(scene: np.ndarray, n_freq: int, snr_db: float, grid: str, folder: Path, seed: int = 0):
    """The problem of ``scene`` seen by the paper's array at ``n_freq`` frequencies (4-16 GHz) and ``snr_db``,
    through a measurement file in ``folder`` (so the CLI's builder makes it)."""
    geometry = radar_geometry("diagonal-12x13", None, n_freq, 4e9, 16e9, grid)
    datasets, attrs = simulate_mimo_nearfield(scene, geometry, snr_db, np.random.default_rng(seed))
    path = folder / f"m{n_freq}-{snr_db:g}-{seed}.h5"
    write_measurement(path, "mimo-nearfield/1", datasets, attrs, overwrite=True)
    with MeasurementFile(path) as measurement:
        return build_problem(measurement, None, torch.device("cpu"))


def score(problem, name: str, raw: dict) -> tuple[float, float]:
    """(PSNR of normalised magnitudes, seconds) of method ``name`` with parameters ``raw``."""
    method = get_method(name)
    start = time.perf_counter()
    result = method.solve(problem, method.parse_params(raw), RunContext())
    elapsed = time.perf_counter() - start
    image = problem.to_output(result.x)["reconstruction"]
    return quality(*scored_pair(problem.spec, image, problem.ground_truth), images=False)["psnr"], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--frequencies", type=int, default=20)
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--grid", default="25,25,49", help="nx,ny,nz")
    parser.add_argument("--methods", default="tv,l1,mimo-pnp")
    parser.add_argument("--iterations", default="30", help="C-SALSA iterations, comma-separated")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nx, ny, nz = (int(n) for n in args.grid.split(","))
    rng = np.random.default_rng(0)  # the training generator: tuning scenes are training-like
    scenes = [make_scene("random", (nz, ny, nx), rng) for _ in range(args.scenes)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        problems = [radar_problem(s, args.frequencies, args.snr, args.grid, Path(folder), i) for i, s in
                    enumerate(scenes)]
        baseline = [score(p, "backprojection", {})[0] for p in problems]
        print(f"backprojection: {np.mean(baseline):.2f} dB ({', '.join(f'{b:.2f}' for b in baseline)})", flush=True)
        for name in args.methods.split(","):
            keys = list(GRID[name])
            for iterations, values in itertools.product((int(n) for n in args.iterations.split(",")),
                                                        itertools.product(*(GRID[name][k] for k in keys))):
                raw = {**dict(zip(keys, values, strict=True)), "iterations": iterations}
                scores = [score(p, name, raw) for p in problems]
                psnrs = [s[0] for s in scores]
                rows.append({"method": name, **raw, "psnr": psnrs, "mean": float(np.mean(psnrs)),
                             "seconds": float(np.mean([s[1] for s in scores]))})
                print(f"{name} {raw}: {np.mean(psnrs):.2f} dB ({', '.join(f'{p:.2f}' for p in psnrs)}) "
                      f"{rows[-1]['seconds']:.1f} s", flush=True)
    for name in args.methods.split(","):
        best = max((r for r in rows if r["method"] == name), key=lambda r: r["mean"])
        print(f"best {name}: {best}")
    out = Path("bench_results")
    out.mkdir(exist_ok=True)
    (out / "tune_mimo.json").write_text(json.dumps({"args": vars(args), "backprojection": baseline, "rows": rows},
                                                   indent=2))


if __name__ == "__main__":
    main()
