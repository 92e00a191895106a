"""Pick the sampler defaults of dds on training volumes, never on the benchmark's Colin27 or the tests' phantoms.

    .venv/bin/python scripts/training_data.py     # once
    .venv/bin/python scripts/tune_diffusion.py [--cases ct8 mri4x] [--try '{"eta": 0.5}' ...] [--threads 2]

Volumes: MNI152 template slices (scripts/training_data.py; part of the shipped diffusion priors' training data,
as the pnp defaults were tuned on training images, scripts/tune_pnp.py), resized to 128^2, each volume scaled to
its 0.99 quantile 1. The MNI152 part the diffusion trainer holds out (its top 20% along z) is nearly empty, so
it cannot serve here. Cases as in scripts/bench_diffusion.py: ct8, 16 slices 2 mm apart (slices 60..90), 8
parallel views, 1% noise; mri4x, 8 slices 10 mm apart (55..125), 8 coils, 4x uniform 1D mask with ACS, 1%
noise. Each setting (``--try``, a JSON object of dds parameters; default: one-at-a-time variations around the
current defaults, :data:`TRIES`) runs with seed 0 beside tv (3D on ct8, 2D on mri4x). Prints PSNR and time per
setting; appends the rows to bench_results/tune_diffusion.json (rewritten after every run, so a cut run keeps
its rows and earlier runs stay in the file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_priors import scaled_stack  # noqa: E402
from training_data import DEFAULT_OUT  # noqa: E402
from tune_pnp import measured_problem, score  # noqa: E402

DATA = DEFAULT_OUT / "mni152.npy"
CASES = ("ct8", "mri4x")
TRIES = ({}, {"eta": 0.5}, {"eta": 1.0}, {"gamma": 3.0}, {"gamma": 30.0}, {"gamma": 100.0}, {"cg_iterations": 10},
         {"cg_iterations": 20}, {"lam": 0.0}, {"lam": 0.01}, {"start": 0.7}, {"start": 0.5}, {"nfe": 100})
"""One-at-a-time variations of the dds defaults ({}: the defaults themselves)."""


def mni152(slices: np.ndarray, size: int = 128) -> np.ndarray:
    """(len(slices), size, size) float32: MNI152 axial slices resized, the volume scaled to 0.99 quantile 1."""
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing: run scripts/training_data.py")
    return scaled_stack(np.load(DATA)[slices], size)


def simulate(case: str):
    """(spec, datasets, attrs) of a tuning case."""
    rng = np.random.default_rng(11)
    if case == "ct8":
        return "ct-parallel/1", *simulate_ct_parallel(mni152(60 + 2 * np.arange(16)), 8, noise_std=0.01, rng=rng)
    return "mri-cartesian/1", *simulate_mri_cartesian(mni152(55 + 10 * np.arange(8)), 8, 4.0, "uniform1d",
                                                      noise_std=0.01, rng=rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--try", dest="tries", action="append", type=json.loads, metavar="JSON",
                        help="dds parameters to score (repeatable); default: the one-at-a-time TRIES")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_results" / "tune_diffusion.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    folder = args.out.parent / "tune_diffusion"
    folder.mkdir(parents=True, exist_ok=True)
    table = json.loads(args.out.read_text()) if args.out.exists() else []
    for case in args.cases:
        problem = measured_problem(folder / f"{case}.h5", *simulate(case), device)
        tv = score(problem, "tv", {"dims": 3 if case == "ct8" else 2}, device)[0]
        print(f"{case}: tv {tv:.2f} dB", flush=True)
        for raw in args.tries or TRIES:
            psnr, elapsed = score(problem, "dds", raw, device)
            table.append({"case": case, "settings": raw, "psnr": psnr, "tv": tv, "seconds": elapsed})
            print(f"  dds {json.dumps(raw)}: {psnr:.2f} dB ({psnr - tv:+.2f} over tv, {elapsed:.0f} s)", flush=True)
            args.out.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
