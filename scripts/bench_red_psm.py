"""RED-PSM on dynamic CT: PSNR/SSIM, time and peak memory of every method at several numbers of frames P.

    .venv/bin/python scripts/bench_red_psm.py [--frames 32,64,128,256] [--size 128] [--seed 0]
        [--methods fbp,fbp-static,psm,red-psm] [--mri-frames 32] [--threads 1] [--device cpu]
        [--out bench_results/red_psm.json]

Case (the paper's): the walnut-like phantom of recon.dynamic_phantoms (seed 0; the defaults were tuned on seed 1),
``--size``^2 pixels, P frames with one parallel view each in bit-reversal order over [0, pi), Gaussian noise of
std 0.5 % of the maximum projection. Each file is made by ``recon simulate ct-dynamic`` and each method runs as
``recon reconstruct`` in its own process with its defaults (the same for every P): ``fbp`` is frame-wise FBP,
``fbp-static`` is ``fbp --set static=true`` (all views pooled into one image). PSNR and SSIM come from the
output file (over the whole (t, y, x) volume; SSIM averaged over frames), time is the method's ``elapsed_s`` and
memory the process's peak resident set (ru_maxrss of the child, Python and torch included). Prints a table
and writes ``--out``.

MRI case: the cardiac phantom, ``--mri-frames`` frames of 64^2, 8 coils, 8x with a new mask per frame around a
shared calibration region, 1 % noise (``recon simulate mri-dynamic``); adjoint, cgls, psm and red-psm.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py

METHODS = {"fbp": ["--method", "fbp"], "fbp-static": ["--method", "fbp", "--set", "static=true"],
           "adjoint": ["--method", "adjoint"], "cgls": ["--method", "cgls"], "psm": ["--method", "psm"],
           "red-psm": ["--method", "red-psm"]}
CT_METHODS = ("fbp", "fbp-static", "psm", "red-psm")
MRI_METHODS = ["adjoint", "cgls", "psm", "red-psm"]
MRI_CASE = ["mri-dynamic", "--phantom", "cardiac", "--size", "64", "--coils", "8", "--acceleration", "8",
            "--noise-std", "0.01"]
RECON = [sys.executable, "-m", "recon.cli"]


def peak_rss_mib(command: list[str], threads: int) -> float:
    """Run ``command`` to completion in a fresh process; its peak resident memory in MiB (Linux: ru_maxrss KiB)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed: {log.read()[-2000:]}")
    return usage.ru_maxrss / 1024


def run_case(case: str, frames: int, simulate: list[str], methods: list[str], folder: Path,
             args: argparse.Namespace) -> list[dict]:
    """Simulate one file with ``recon simulate SIMULATE...``, then run every method on it; one row per method."""
    measurement = folder / f"{case}_{frames}.h5"
    subprocess.run([*RECON, "simulate", *simulate, "--frames", str(frames), "--seed", str(args.seed),
                    "--out", str(measurement)], check=True, stdout=subprocess.DEVNULL)
    rows = []
    for name in methods:
        output = folder / f"{case}_{name}_{frames}.h5"
        peak = peak_rss_mib([*RECON, "reconstruct", str(measurement), *METHODS[name], "--device", args.device,
                             "--out", str(output)], args.threads)
        with h5py.File(output, "r") as file:
            attrs = file.attrs
            row = {"case": case, "frames": frames, "method": name, "psnr": float(attrs["psnr"]),
                   "ssim": float(attrs["ssim"]), "seconds": float(attrs["elapsed_s"]), "peak_MiB": peak,
                   "rounds": len(file["history/data"]) if "history/data" in file else None}
        rows.append(row)
        print(f"  {case} P={frames} {name}: {row['psnr']:.2f} dB, SSIM {row['ssim']:.3f}, {row['seconds']:.1f} s, "
              f"{peak:.0f} MiB", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", default="32,64,128,256", help="CT frame counts; empty: no CT rows")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(CT_METHODS))
    parser.add_argument("--mri-frames", type=int, default=32, help="frames of the MRI case; 0: no MRI rows")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="bench_results/red_psm.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for frames in (int(p) for p in args.frames.split(",") if p):
            rows += run_case("ct", frames, ["ct-dynamic", "--phantom", "walnut", "--size", str(args.size),
                                            "--views-per-frame", "1", "--order", "bit-reversal", "--noise-std",
                                            "0.005"], args.methods.split(","), folder, args)
        if args.mri_frames:
            rows += run_case("mri", args.mri_frames, MRI_CASE, MRI_METHODS, folder, args)
    print(f"| case | P | method | PSNR (dB) | SSIM | time (s) | peak memory (MiB) |  [{args.threads} thread(s), "
          f"{args.device}]")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['frames']} | {row['method']} | {row['psnr']:.2f} | {row['ssim']:.3f} | "
              f"{row['seconds']:.1f} | {row['peak_MiB']:.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
