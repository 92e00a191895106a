"""The matrix-free CT projector's time per slice against the number of slices in one call, and with the forward
split into parts of ``FORWARD_SLICES`` (what the operator does) or sent in one call (what it did before).

For each slice count: forward and adjoint in one kernel call, and in equal parts of at most ``--part`` slices, each
the best of ``--repeats`` calls in this one process (compare rows within one run: this machine's speed varies from
day to day). Prints a markdown table and writes JSON.

    .venv/bin/python scripts/bench_projector_slices.py [--size 512] [--views 720] [--slices 32,64,128,256]
        [--part 32] [--threads 2] [--repeats 3] [--out bench_results/projector_slices.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from recon.physics.ct import ParallelGeometry
from recon.physics.joseph import FORWARD_SLICES, JosephPlan


def in_parts(call, stack: torch.Tensor, part: int) -> torch.Tensor:
    """``call`` on equal parts of at most ``part`` slices of ``stack``, concatenated."""
    size = math.ceil(stack.shape[0] / math.ceil(stack.shape[0] / part))
    return torch.cat([call(piece) for piece in stack.split(size)])


def best_ms_per_slice(call, stack: torch.Tensor, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call(stack)
        times.append(time.perf_counter() - began)
    return 1000 * min(times) / stack.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--views", type=int, default=720)
    parser.add_argument("--slices", default="32,64,128,256", help="comma-separated slice counts")
    parser.add_argument("--part", type=int, default=FORWARD_SLICES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench_results/projector_slices.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    angles = np.linspace(0, np.pi, args.views, endpoint=False)
    plan = JosephPlan(ParallelGeometry.checked((args.size, args.size), angles, None, 1.0))
    forward, adjoint = plan._forward_call, plan._adjoint_compiled  # one kernel call each, unsplit
    forward(torch.rand(2, args.size, args.size))  # compile or load the kernels
    rows = []
    for n_slices in (int(s) for s in args.slices.split(",")):
        images = torch.rand(n_slices, args.size, args.size)
        sinograms = forward(images)
        row = {"slices": n_slices,
               "forward_one_call_ms": best_ms_per_slice(forward, images, args.repeats),
               "forward_parts_ms": best_ms_per_slice(lambda t: in_parts(forward, t, args.part), images, args.repeats),
               "adjoint_one_call_ms": best_ms_per_slice(adjoint, sinograms, args.repeats),
               "adjoint_parts_ms": best_ms_per_slice(lambda t: in_parts(adjoint, t, args.part), sinograms,
                                                     args.repeats)}
        rows.append(row)
        print(row, flush=True)
    print(f"\n{args.size}^2, {args.views} views, {args.threads} threads, ms per slice (parts of {args.part})\n")
    print("| slices in the call | forward, one call | forward, parts | adjoint, one call | adjoint, parts |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['slices']} | {r['forward_one_call_ms']:.0f} | {r['forward_parts_ms']:.0f} | "
              f"{r['adjoint_one_call_ms']:.0f} | {r['adjoint_parts_ms']:.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"size": args.size, "views": args.views, "threads": args.threads,
                                    "part": args.part, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
