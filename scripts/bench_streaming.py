"""Peak RSS of `recon reconstruct` against the slice count, whole and streamed (`--memory`).

    .venv/bin/python scripts/bench_streaming.py [--size 256] [--views 180] [--slices 4 8 16 32]
        [--methods fbp cgls] [--memory 64M] [--threads 1]

Simulates one ct-parallel file of max(--slices) slices (a Shepp-Logan slice scaled per slice, --size^2, --views
views, 1 % noise) with `recon simulate`, then runs `recon reconstruct --slices 0:N` per method and slice count in a
fresh process, whole and with `--memory` (streamed once the estimate exceeds it). Per run: wall time, the peak RSS of
the process (getrusage of the child), PSNR. The growth of RSS per slice of the whole runs is what
recon/streaming.py's WORKING_COPIES are set from; the streamed rows should stay flat beyond one slab.
Prints a markdown table and writes bench_results/bench_streaming.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RECON = str(Path(sys.executable).with_name("recon"))
_CHILD = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
          "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_rss(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MB of ``command`` run in a fresh wrapper process, wall seconds)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _CHILD, *command], capture_output=True, text=True, env=env,
                            check=True)
    return int(result.stdout.split()[-1]) / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--views", type=int, default=180)
    parser.add_argument("--slices", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--methods", nargs="+", default=["fbp", "cgls"])
    parser.add_argument("--memory", default="64M", help="budget of the streamed runs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    from recon.io.reconstruction import read_reconstruction

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        slice_ = resize(shepp_logan_phantom(), (args.size, args.size)).astype(np.float32)
        np.save(work / "volume.npy", np.stack([slice_ * (0.6 + 0.4 * np.cos(k / 10)) for k in range(max(args.slices))]))
        subprocess.run([RECON, "simulate", "ct-parallel", "--volume", work / "volume.npy", "--views", str(args.views),
                        "--noise-std", "0.01", "--out", work / "ct.h5"], check=True, env=env, capture_output=True)
        for method in args.methods:
            for count in args.slices:
                for memory in (None, args.memory):
                    out = work / "out.h5"
                    command = [RECON, "reconstruct", str(work / "ct.h5"), "--method", method, "--slices",
                               f"0:{count}", "--out", str(out), "--overwrite"]
                    rss, wall = peak_rss(command + (["--memory", memory] if memory else []), env)
                    psnr = read_reconstruction(out)[1].get("psnr")
                    rows.append({"method": method, "slices": count, "memory": memory or "-", "peak_rss_mb": rss,
                                 "wall_s": wall, "psnr": psnr})
                    print(f"{method} {count} {memory or '-'}: {rss:.0f} MB, {wall:.1f} s", file=sys.stderr)
    print(f"| method | slices ({args.size}^2, {args.views} views) | --memory | peak RSS (MB) | wall (s) | PSNR (dB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['slices']} | {r['memory']} | {r['peak_rss_mb']:.0f} | {r['wall_s']:.1f} | "
              f"{r['psnr']:.2f} |")
    out = ROOT / "bench_results" / "bench_streaming.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
