"""The learned methods against silent garbage: lpn (with and without its box constraint) and the other guarded
methods on a real-anatomy CT volume, with the divergence guard's verdict.

    .venv/bin/python scripts/bench_guard.py [--cases ct8 ct30 mri4x] [--methods fbp lpn lpn-nobox pnp-admm ...]
        [--slices 16] [--threads 1] [--reuse]

Cases: scripts/bench_diffusion.py's, with ``--slices`` (16) axial Colin27 slices at 128^2 as an attenuation volume:
ct8 / ct30 with 8 / 30 parallel views and 1 % noise; mri4x (8 slices, 8 coils, 4x) for the complex path. Methods:
fbp (adjoint for MRI), lpn with its defaults (box on), ``lpn-nobox`` (``box=false``: the method as it was before the
box), pnp-admm, pnp-pgd, red and dds with their defaults. Per run: PSNR and SSIM, the output's range against the
truth's, the guard's message (or "-"), and what the guard watched in the history: the longest run of growing data
terms and the largest ratio of a data term to the lowest before it (the guard stops at 10 and 2x together).
Prints a markdown table and writes bench_results/bench_guard.json; the measurement files are
scripts/bench_diffusion.py's (bench_results/bench_diffusion/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from recon.pipeline import Request, compute

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_diffusion import measurement_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASES = ("ct8", "ct30", "mri4x")
METHODS = {"fbp": ("fbp", {}), "adjoint": ("adjoint", {}), "lpn": ("lpn", {}), "lpn-nobox": ("lpn", {"box": False}),
           "pnp-admm": ("pnp-admm", {}), "pnp-pgd": ("pnp-pgd", {}), "red": ("red", {}), "dds": ("dds", {})}


def watched(data: np.ndarray) -> tuple[int, float]:
    """(the longest run of consecutive increases, the largest data term / lowest one before or at it)."""
    longest = streak = 0
    for previous, value in zip(data[:-1], data[1:], strict=True):
        streak = streak + 1 if value > previous else 0
        longest = max(longest, streak)
    ratio = float(np.max(data / np.minimum.accumulate(data))) if len(data) else 1.0
    return longest, ratio


def run_case(case: str, args) -> list[dict]:
    path = measurement_file(case, args.slices, args.reuse)
    rows = []
    for label in args.methods:
        name, params = METHODS[label]
        if name == ("adjoint" if case.startswith("ct") else "fbp"):
            continue
        began = time.perf_counter()
        outcome = compute(Request(input=path, method=name, params=params, seed=0))
        elapsed = time.perf_counter() - began
        truth = outcome.datasets["ground_truth"]
        streak, ratio = watched(np.asarray(outcome.history.get("data", [])))
        row = {"case": case, "method": label, "psnr": outcome.summary.metrics["psnr"],
               "ssim": outcome.summary.metrics.get("ssim"), "min": float(outcome.image.min()),
               "max": float(outcome.image.max()), "truth_min": float(truth.min()), "truth_max": float(truth.max()),
               "guard": outcome.attrs.get("guard", "-"), "growth_streak": streak, "growth_ratio": ratio,
               "seconds": elapsed}
        rows.append(row)
        print(f"| {case} | {label} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['min']:.2f}..{row['max']:.2f} "
              f"({row['truth_min']:.2f}..{row['truth_max']:.2f}) | {streak} | {ratio:.2f} | {elapsed:.0f} | "
              f"{row['guard']} |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="reuse the measurement files")
    parser.add_argument("--json", type=Path, default=ROOT / "bench_results" / "bench_guard.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| case | method | PSNR | SSIM | range (truth) | growth streak | growth ratio | s | guard |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = [row for case in args.cases for row in run_case(case, args)]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.json.read_text()) if args.json.exists() else []
    done = {(r["case"], r["method"]) for r in rows}
    args.json.write_text(json.dumps([r for r in previous if (r["case"], r["method"]) not in done] + rows, indent=1)
                         + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
