"""Streamed z-coupled methods against their whole run, by halo: the difference the overlap leaves.

    .venv/bin/python scripts/bench_halo.py [--size 64] [--views 30] [--slices 16:48] [--slab 8]
        [--halos 0 2 4 8] [--methods tv pnp-admm dds] [--pnp-iterations 10] [--dds-nfe 10] [--threads 1]

Simulates a 3D Shepp-Logan CT file with `recon simulate ct-parallel --phantom shepp-logan-3d` (--size^3, --views
views, 1 % noise), then per method runs `recon reconstruct --slices` over the selection once whole and once per halo
with `--memory` set so that each slab keeps --slab slices (the budget counts the halo: it is the estimate of
--slab + 2 halo slices; the plan is checked to give exactly that). Methods: tv with dims=3 (its default 300
iterations), pnp-admm with planes=3 (tri-planar, DRUNet) and dds with its TV_z (--pnp-iterations and --dds-nfe keep
them short on a CPU). dds draws noise, so its streamed slabs draw other samples than the whole run: its table adds
the whole run with seed 1, the difference between two whole samples.

Per row: max |streamed - whole| over the selection (the phantom's range is 0 to 1), the RMS of that difference,
the PSNR of each against the truth (over the whole selection, as the merged file records it), the PSNR difference
and the wall time of the process. Prints a markdown table and writes bench_results/bench_halo.json.
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


def method_settings(method: str, args: argparse.Namespace) -> dict[str, int]:
    """The parameters of a z-coupled setting of ``method``."""
    return {"tv": {"dims": 3}, "pnp-admm": {"planes": 3, "iterations": args.pnp_iterations},
            "dds": {"nfe": args.dds_nfe}}[method]


def budget_for(ct: Path, method: str, params: dict, selection: str, slab: int, halo: int) -> int:
    """The --memory that gives slabs keeping ``slab`` slices with ``halo`` on each side (checked by the plan)."""
    from recon.io.layouts import open_measurement
    from recon.methods import get_method
    from recon.pipeline import Request
    from recon.streaming import WORKING_COPIES, plan_slabs

    with open_measurement(ct) as measurement:
        fixed, declared, _ = measurement.memory_need(measurement.check_slice_range(selection))
    copies = WORKING_COPIES["learned" if get_method(method).prior_capability else "classical"]
    budget = fixed + declared * copies * (slab + 2 * halo)
    plan = plan_slabs(Request(input=ct, method=method, slices=selection, params=params), budget, halo)
    assert plan is not None and plan.slab == slab and plan.halo == halo, plan
    return budget


def run(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--views", type=int, default=30)
    parser.add_argument("--slices", default="16:48", help="the selection reconstructed (a:b)")
    parser.add_argument("--slab", type=int, default=8, help="slices each slab keeps")
    parser.add_argument("--halos", type=int, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--methods", nargs="+", default=["tv", "pnp-admm", "dds"],
                        choices=["tv", "pnp-admm", "dds"])
    parser.add_argument("--pnp-iterations", type=int, default=10)
    parser.add_argument("--dds-nfe", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from recon.io.reconstruction import read_reconstruction

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        ct = Path(folder) / "ct.h5"
        run([RECON, "simulate", "ct-parallel", "--phantom", "shepp-logan-3d", "--size", str(args.size), "--views",
             str(args.views), "--noise-std", "0.01", "--out", str(ct)], env)
        for method in args.methods:
            params = method_settings(method, args)
            base = [RECON, "reconstruct", str(ct), "--method", method, "--slices", args.slices, "--overwrite",
                    *[option for key, value in params.items() for option in ("--set", f"{key}={value}")]]
            whole_out = Path(folder) / f"{method}.whole.h5"
            wall = run([*base, "--memory", "1T", "--out", str(whole_out)], env)
            whole, whole_attrs = read_reconstruction(whole_out)
            runs = [("whole", None, [], wall)]
            if method == "dds":  # a second sample: the difference that sampling alone makes
                runs.append(("whole, seed 1", None, ["--seed", "1", "--memory", "1T"], None))
            runs += [("streamed", halo, ["--memory", str(budget_for(ct, method, params, args.slices, args.slab, halo)),
                                         "--halo", str(halo)], None) for halo in args.halos]
            for label, halo, options, wall in runs:
                out = Path(folder) / "run.h5"
                if wall is None:
                    wall = run([*base, *options, "--out", str(out)], env)
                    image, attrs = read_reconstruction(out)
                else:
                    image, attrs = whole, whole_attrs
                difference = np.abs(image.astype(np.float64) - whole)
                rows.append({"method": method, "run": label, "halo": halo, "slab": args.slab if halo is not None
                             else None, "max_abs_diff": float(difference.max()),
                             "rms_diff": float(np.sqrt(np.mean(difference**2))), "psnr": attrs["psnr"],
                             "psnr_diff": attrs["psnr"] - whole_attrs["psnr"], "wall_s": wall})
                print(f"{method} {label} {halo}: {rows[-1]['max_abs_diff']:.2e}, {attrs['psnr']:.3f} dB, {wall:.1f} s",
                      file=sys.stderr)
    geometry = f"{args.size}^2, {args.views} views, slices {args.slices}, slabs of {args.slab}"
    print(f"| method ({geometry}) | run | halo | max abs diff | RMS diff | PSNR (dB) | PSNR diff (dB) | wall (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        halo = "-" if r["halo"] is None else r["halo"]
        print(f"| {r['method']} | {r['run']} | {halo} | {r['max_abs_diff']:.2e} | {r['rms_diff']:.2e} | "
              f"{r['psnr']:.2f} | {r['psnr_diff']:+.3f} | {r['wall_s']:.1f} |")
    out = ROOT / "bench_results" / "bench_halo.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
