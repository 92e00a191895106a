"""Real raw 2-coil k-space (tests/data/twix_gre_2coil.h5, twixtools' gre.dat phantom) retrospectively undersampled
4x (fastMRI random columns plus 16 calibration columns: ``--read acceleration=4 --read center_fraction=0.1``),
reconstructed with recon's estimated coil maps, against the fully sampled root-sum-of-squares.

Rows: each method at its defaults (cgls, tv and pnp-admm choose their parameter from the estimated noise level), tv
and pnp-admm at the fixed numbers their defaults start from, and two rows with the noise level measured on the fully
sampled file instead: cgls stopped by the discrepancy principle (the first iteration whose residual ||y - A x||
falls to sqrt(M) sigma, M complex samples) and pnp-admm with its denoiser strength set to the image noise (sigma /
the slice's scale, the unit pnp-admm works in). sigma is the k-space noise standard deviation measured in the
outer k-space corners of the fully sampled file (where the phantom has no signal left), which the file itself does
not state.

    python scripts/bench_real_kspace.py   # about 5 minutes on one core
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from recon.io.layouts import open_measurement
from recon.methods import RunContext, get_method
from recon.methods.classical import TV_LAM
from recon.methods.plug_and_play import MRI, PNP_ADMM_SIGMA
from recon.metrics import quality
from recon.problems import build_problem
from recon.solvers.least_squares import cgls
from recon.solvers.normalised import slice_scale

ROOT = Path(__file__).resolve().parents[1]
FILE = ROOT / "tests" / "data" / "twix_gre_2coil.h5"
READ = {"acceleration": "4", "center_fraction": "0.1"}


def corner_noise(path: Path, fraction: float = 0.15) -> float:
    """Complex noise std of the fully sampled k-space, from its four corners (``fraction`` of each side)."""
    with h5py.File(path) as file:
        kspace = file["kspace"][()]
    n = max(2, round(fraction * kspace.shape[-1]))
    corners = np.concatenate([kspace[..., :n, :n], kspace[..., :n, -n:], kspace[..., -n:, :n], kspace[..., -n:, -n:]])
    return float(np.sqrt(np.mean(np.abs(corners) ** 2)))


def solve(problem, name: str, **params) -> np.ndarray:
    method = get_method(name)
    torch.manual_seed(0)
    with torch.no_grad():
        result = method.solve(problem, method.parse_params(params), RunContext())
    return problem.to_output(result.x)["reconstruction"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_results" / "real_kspace.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sigma = corner_noise(FILE)
    with open_measurement(FILE, **READ) as measurement:
        problem = build_problem(measurement, None, torch.device("cpu"))
    truth = problem.ground_truth

    def score(image: np.ndarray) -> float:
        return quality(image, truth)["psnr"]

    rows = []
    for name, params in (("adjoint", {}), ("cgls", {}), ("tv", {}), ("pnp-admm", {}),
                         ("tv", {"lam": TV_LAM[MRI]}), ("pnp-admm", {"sigma": PNP_ADMM_SIGMA[MRI]})):
        start = time.perf_counter()
        label = f"{name}, fixed " + ", ".join(f"{k} {v:g}" for k, v in params.items()) if params else \
            f"{name} (defaults)"
        rows.append((label, score(solve(problem, name, **params)), time.perf_counter() - start))
    y = problem.y
    samples = int(problem.physics.mask[:, 0].sum()) * y.shape[2]  # complex samples: sampled points x coils
    x, residuals = cgls(problem.physics, y, problem.zeros(), 40)
    y_norm = float(torch.linalg.vector_norm(y))
    stop = next((i + 1 for i, r in enumerate(residuals) if r * y_norm <= math.sqrt(samples) * sigma), 40)
    x_stop, _ = cgls(problem.physics, y, problem.zeros(), stop)
    rows.append((f"cgls, discrepancy stop ({stop} iterations)", score(problem.to_output(x_stop)["reconstruction"]), 0))
    scale = float(slice_scale(problem.initial()).flatten()[0])
    rows.append((f"pnp-admm, sigma = noise ({sigma / scale:.3f})",
                 score(solve(problem, "pnp-admm", sigma=sigma / scale)), 0))
    print(f"k-space noise sigma {sigma:.3g} (corners), coil maps {problem.coil_maps}\n")
    print("| method | PSNR (dB) | time (s) |\n|---|---|---|")
    for name, psnr, seconds in rows:
        print(f"| {name} | {psnr:.2f} | {seconds:.1f} |")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"sigma": sigma, "coil_maps": problem.coil_maps,
                                    "rows": [dict(zip(("method", "psnr", "seconds"), r, strict=True)) for r in rows]},
                                   indent=2) + "\n")


if __name__ == "__main__":
    main()
