"""Real scale through the CLI: a head volume of SLICES x SIZE^2 with VIEWS views, simulated by `recon simulate` and
reconstructed by `recon reconstruct` within a memory budget, per method: wall time, peak RSS of the process, PSNR.

    .venv/bin/python scripts/bench_scale.py [--size 512] [--slices 512] [--views 720] [--memory 4G]
        [--methods fbp cgls tv pnp-admm] [--first N] [--sweep 16 32 64 128 256 512] [--sweep-method fbp]
        [--threads 2]
        [--folder DIR] [--out bench_results/bench_scale.json]

The volume is the Colin27 head template (mricron-data, apt; an MRI, used as an attenuation map: the offline
stand-in for a head CT volume) resampled to SLICES x SIZE^2, scaled to 0.02 per pixel at its maximum, and
measured with 1 % Gaussian noise. `--sweep` reruns `--sweep-method` on the first N slices for each N (the peak
RSS against the slice count, which streaming should keep flat beyond one slab) and writes a plot next to the JSON
when matplotlib is installed. Each command runs in a fresh process; its peak RSS is getrusage's of that child.
Rows are written to the JSON as they finish, so a stopped run keeps them. `--folder` keeps the volume and the
measurement file between runs (they take minutes to make at 512^3).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_streaming import RECON, peak_rss  # noqa: E402

COLIN27 = Path("/usr/share/mricron/templates/ch2.nii.gz")
METHOD_SETTINGS = {"tv": ["--set", "dims=3"]}
"""What the rows run beyond the defaults (tv's default is already 3D on volumes; said here so the row cannot
silently change model)."""


def head_volume(slices: int, size: int) -> np.ndarray:
    """(slices, size, size) float32: Colin27's axial slices through the head, resampled, 0.02 at the maximum."""
    import nibabel
    from scipy.ndimage import zoom

    template = np.asarray(nibabel.load(COLIN27).dataobj, dtype=np.float32)  # (x, y, z), 1 mm
    axial = np.flip(template.transpose(2, 1, 0), axis=(1,))[20:170]  # (z, y, x), the skull's extent, y up
    volume = zoom(axial, (slices / axial.shape[0], size / axial.shape[1], size / axial.shape[2]), order=1)
    return (np.clip(volume, 0, None) / volume.max() * 0.02).astype(np.float32)


def measurement(folder: Path, args: argparse.Namespace, env: dict[str, str]) -> tuple[Path, dict]:
    """The measurement file of this volume, made (and timed) unless ``folder`` already has it."""
    path = folder / f"head-{args.slices}x{args.size}-{args.views}.h5"
    if path.exists():
        return path, {"method": "recon simulate", "reused": True}
    volume = folder / f"head-{args.slices}x{args.size}.npy"
    if not volume.exists():
        np.save(volume, head_volume(args.slices, args.size))
    command = [RECON, "simulate", "ct-parallel", "--volume", str(volume), "--views", str(args.views),
               "--noise-std", "0.01", "--out", str(path)]
    rss, wall = peak_rss(command, env)
    return path, {"method": "recon simulate", "slices": args.slices, "peak_rss_mb": rss, "wall_s": wall}


def reconstruct(path: Path, method: str, slices: int | None, args: argparse.Namespace, env: dict[str, str]) -> dict:
    from recon.io.reconstruction import read_reconstruction

    out = path.with_name(f"out-{method}.h5")
    command = [RECON, "reconstruct", str(path), "--method", method, *METHOD_SETTINGS.get(method, []),
               "--memory", args.memory, "--out", str(out), "--overwrite"]
    if slices is not None:
        command += ["--slices", f"0:{slices}"]
    rss, wall = peak_rss(command, env)
    metrics = read_reconstruction(out)[1]
    out.unlink()
    return {"method": method, "slices": slices or args.slices, "peak_rss_mb": rss, "wall_s": wall,
            "psnr": metrics.get("psnr")}


def plot(rows: list[dict], args: argparse.Namespace, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, axis = plt.subplots(figsize=(5, 3.2))
    axis.plot([r["slices"] for r in rows], [r["peak_rss_mb"] / 1024 for r in rows], "o-")
    axis.set(xscale="log", xlabel="slices", ylabel="peak RSS (GB)", ylim=(0, None),
             title=f"{args.sweep_method}, {args.size}$^2$, {args.views} views, --memory {args.memory}")
    axis.set_xticks([r["slices"] for r in rows], [str(r["slices"]) for r in rows])
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=512)
    parser.add_argument("--views", type=int, default=720)
    parser.add_argument("--memory", default="4G", help="recon reconstruct --memory for every row")
    parser.add_argument("--methods", nargs="*", default=["fbp", "cgls", "tv", "pnp-admm"])
    parser.add_argument("--first", type=int, help="the method rows reconstruct only the first N slices")
    parser.add_argument("--sweep", type=int, nargs="*", default=[], help="slice counts for the RSS sweep")
    parser.add_argument("--sweep-method", default="fbp")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--folder", type=Path, help="keep the volume and measurement here (default: temporary)")
    parser.add_argument("--out", type=Path, default=Path("bench_results/bench_scale.json"))
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an install runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def record(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                       indent=1) + "\n")

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path, simulated = measurement(folder, args, env)
        record(simulated)
        for method in args.methods:
            record(reconstruct(path, method, args.first, args, env))
        for count in (n for n in args.sweep if n <= args.slices):
            record({**reconstruct(path, args.sweep_method, count, args, env), "sweep": True})
    sweep = [r for r in rows if r.get("sweep")]
    print(f"| command | slices ({args.size}^2, {args.views} views) | peak RSS (GB) | wall (s) | PSNR (dB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        if "peak_rss_mb" in r:
            psnr = f"{r['psnr']:.2f}" if r.get("psnr") is not None else "-"
            print(f"| {r['method']} | {r.get('slices', '-')} | {r['peak_rss_mb'] / 1024:.2f} | {r['wall_s']:.0f} | "
                  f"{psnr} |")
    if sweep:
        plot(sweep, args, args.out.with_suffix(".png"))
    print(f"threads {args.threads}, --memory {args.memory}; wrote {args.out}")


if __name__ == "__main__":
    main()
