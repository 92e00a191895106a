"""The parallel-beam CT projector side by side: recon's stored matrix, recon's matrix-free projector, ASTRA's CPU
``linear`` projector (the same Joseph operator) and, for FBP, skimage's ``iradon`` and ASTRA's CPU ``FBP``.

Every variant runs in its own subprocess (so that its peak RSS, ``VmHWM``, is its own) on the same phantom and
sinogram: build time, forward and adjoint time per slice for 1 slice and for 8 slices per call, FBP time per
slice and its PSNR against the phantom. Times are medians of ``--repeats`` calls after one warm-up. Prints a
markdown table and writes JSON.

    .venv/bin/python scripts/bench_ct_projector.py [--cases 256x60,512x720,1024x1200] [--threads 2]
        [--repeats 3] [--stored-max-gb 8] [--out bench_results/ct_projector.json]

ASTRA comes from ``pip install astra-toolbox`` (its CPU projectors are 2D: one slice per call); a variant whose
package is missing is reported as skipped. The stored matrix is skipped above ``--stored-max-gb`` (1024^2 with
1200 views would need about 36 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = ("stored", "matrix-free", "astra", "skimage")
BATCH = 8


def peak_rss_bytes() -> int:
    """This process's peak resident set (``VmHWM``), bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def phantom_stack(n: int, slices: int) -> np.ndarray:
    """(slices, n, n) float32: the Shepp-Logan phantom resized to n, each slice scaled a little differently."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    image = resize(shepp_logan_phantom(), (n, n), anti_aliasing=True).astype(np.float32)
    return np.stack([image * (1 + 0.05 * s) for s in range(slices)])


def psnr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """recon's PSNR (dB; peak: the reference's range), as ``recon reconstruct`` reports it. Every worker has
    imported torch and deepinv (through the projector) before its baseline RSS, so this adds nothing to the peak."""
    from recon.metrics import quality

    return quality(estimate, reference, images=False)["psnr"]


def sinograms(images: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(slices, n_views, n_det) float32 from recon's matrix-free projector (the same values as the stored one)."""
    import torch

    from recon.physics.ct import ParallelBeamCT

    physics = ParallelBeamCT(images.shape[-2:], angles, projector="matrix-free")
    with torch.no_grad():
        return physics.A(torch.from_numpy(images)[:, None])[:, 0].numpy()


def run_recon(variant: str, images: np.ndarray, sino: np.ndarray, angles: np.ndarray, repeats: int,
              batched: bool) -> dict:
    import torch

    from recon.physics.ct import ParallelBeamCT, system_matrices

    n = images.shape[-1]
    system_matrices.cache_clear()
    start = time.perf_counter()
    physics = ParallelBeamCT((n, n), angles, projector=variant)
    result = {"build_s": time.perf_counter() - start}
    x1, y1 = torch.from_numpy(images[:1, None]), torch.from_numpy(sino[:1, None])
    xb, yb = torch.from_numpy(images[:, None]), torch.from_numpy(sino[:, None])
    with torch.no_grad():
        start = time.perf_counter()
        physics.A(x1)  # the first call after the build (the worker's sinograms already loaded the kernels)
        result["first_forward_s"] = time.perf_counter() - start
        result["forward_s"] = timed(lambda: physics.A(x1), repeats)
        result["adjoint_s"] = timed(lambda: physics.A_adjoint(y1), repeats)
        result["fbp_s"] = timed(lambda: physics.fbp(y1), repeats)
        if batched:
            result["forward_batched_s"] = timed(lambda: physics.A(xb), repeats) / len(images)
            result["adjoint_batched_s"] = timed(lambda: physics.A_adjoint(yb), repeats) / len(images)
            result["fbp_batched_s"] = timed(lambda: physics.fbp(yb), repeats) / len(images)
        result["fbp_psnr"] = psnr(images[0], physics.fbp(y1)[0, 0].numpy())
    return result


def run_astra(images: np.ndarray, sino: np.ndarray, angles: np.ndarray, repeats: int, batched: bool) -> dict:
    """ASTRA's CPU linear projector (Joseph) with recon's angles and detector: the same sinograms to ~1e-6."""
    import astra

    n, n_det = images.shape[-1], sino.shape[-1]
    start = time.perf_counter()
    vol_geom = astra.create_vol_geom(n, n)
    proj_geom = astra.create_proj_geom("parallel", 1.0, n_det, angles)
    projector = astra.create_projector("linear", proj_geom, vol_geom)
    result = {"build_s": time.perf_counter() - start}
    volume = astra.data2d.create("-vol", vol_geom, 0)
    sinogram = astra.data2d.create("-sino", proj_geom, 0)

    def algorithm(kind: str, **extra):
        cfg = astra.astra_dict(kind)
        cfg.update(ProjectorId=projector, ProjectionDataId=sinogram, **extra)
        cfg["VolumeDataId" if kind == "FP" else "ReconstructionDataId"] = volume  # BP, FBP: reconstructions
        return astra.algorithm.create(cfg)

    def runner(alg, data, array, count: int):
        """Run ``alg`` on the first ``count`` slices of ``array``, one ASTRA call each (its CPU build is 2D)."""
        def run():
            for s in range(count):
                astra.data2d.store(data, array[s])
                astra.algorithm.run(alg)
        return run

    steps = {"forward": (algorithm("FP"), volume, images), "adjoint": (algorithm("BP"), sinogram, sino),
             "fbp": (algorithm("FBP", FilterType="ram-lak"), sinogram, sino)}
    for key, (alg, data, array) in steps.items():
        result[f"{key}_s"] = timed(runner(alg, data, array, 1), repeats)
        if batched:
            result[f"{key}_batched_s"] = timed(runner(alg, data, array, len(images)), repeats) / len(images)
    runner(*steps["fbp"], 1)()
    result["fbp_psnr"] = psnr(images[0], astra.data2d.get(volume))
    return result


def run_skimage(images: np.ndarray, sino: np.ndarray, angles: np.ndarray, repeats: int, batched: bool) -> dict:
    from skimage.transform import iradon

    n = images.shape[-1]

    def fbp(s: int) -> np.ndarray:  # n_det odd: skimage's centre bin n_det // 2 is recon's (n_det - 1) / 2
        return iradon(sino[s].T, theta=np.degrees(angles), output_size=n, filter_name="ramp", circle=False)

    result = {"fbp_s": timed(lambda: fbp(0), repeats)}
    if batched:
        result["fbp_batched_s"] = timed(lambda: [fbp(s) for s in range(len(images))], repeats) / len(images)
    result["fbp_psnr"] = psnr(images[0], fbp(0))
    return result


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    n, views = args.case
    angles = np.linspace(0, np.pi, views, endpoint=False)
    images = phantom_stack(n, BATCH if args.batched else 1)
    sino = sinograms(images, angles)
    baseline = peak_rss_bytes()
    if args.variant in ("stored", "matrix-free"):
        result = run_recon(args.variant, images, sino, angles, args.repeats, args.batched)
    elif args.variant == "astra":
        result = run_astra(images, sino, angles, args.repeats, args.batched)
    else:
        result = run_skimage(images, sino, angles, args.repeats, args.batched)
    result.update(peak_rss_bytes=peak_rss_bytes(), peak_rss_before_bytes=baseline)  # before: data, imports
    print(json.dumps(result))


def stored_bytes(n: int, views: int) -> float:
    """The stored pair's size, from the same estimate as ``projector="auto"``."""
    from recon.physics.ct import ParallelGeometry
    from recon.physics.joseph import JosephPlan, estimated_matrix_bytes

    geometry = ParallelGeometry.checked((n, n), np.linspace(0, np.pi, views, endpoint=False), None, 1.0)
    return estimated_matrix_bytes(JosephPlan(geometry))


def run_case(case: tuple[int, int], variant: str, args: argparse.Namespace) -> dict:
    n, views = case
    record = {"case": f"{n}^2, {views} views", "variant": variant}
    if variant == "stored" and stored_bytes(n, views) > args.stored_max_gb * 1e9:
        return {**record, "skipped": f"stored pair about {stored_bytes(n, views) / 1e9:.0f} GB"}
    if variant == "astra":
        try:
            import astra  # noqa: F401
        except ImportError:
            return {**record, "skipped": "astra-toolbox not installed"}
    batched = n * n * views <= args.batched_max_samples
    command = [sys.executable, __file__, "--worker", "--variant", variant, "--case", f"{n}x{views}",
               "--threads", str(args.threads), "--repeats", str(args.repeats)] + (["--batched"] if batched else [])
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return {**record, "skipped": f"failed: {last}"}
    record.update(json.loads(done.stdout.strip().splitlines()[-1]), wall_s=time.perf_counter() - start)
    return record


def cell(record: dict, key: str, scale: float = 1e3, digits: int = 0) -> str:
    value = record.get(key)
    return "-" if value is None else f"{value * scale:.{digits}f}"


def print_table(records: list[dict]) -> None:
    print(
        "| case | variant | build (s) | first fwd (s) | peak RSS (MB) | of which operator (MB) | fwd 1 slice (ms) "
        "| adj 1 slice (ms) | fwd per slice, 8 (ms) | adj per slice, 8 (ms) | fbp 1 slice (ms) "
        "| fbp per slice, 8 (ms) | fbp PSNR (dB) |"
    )
    print("|" + "---|" * 13)
    for r in records:
        if "skipped" in r:
            print(f"| {r['case']} | {r['variant']} | skipped: {r['skipped']} |" + " |" * 10)
            continue
        print(f"| {r['case']} | {r['variant']} | {cell(r, 'build_s', 1, 2)} | {cell(r, 'first_forward_s', 1, 2)} | "
              f"{cell(r, 'peak_rss_bytes', 1e-6)} | "
              f"{cell({'added': r['peak_rss_bytes'] - r['peak_rss_before_bytes']}, 'added', 1e-6)} | "
              f"{cell(r, 'forward_s')} | {cell(r, 'adjoint_s')} | {cell(r, 'forward_batched_s')} | "
              f"{cell(r, 'adjoint_batched_s')} | {cell(r, 'fbp_s')} | {cell(r, 'fbp_batched_s')} | "
              f"{cell(r, 'fbp_psnr', 1, 2)} |")


def parse_case(text: str) -> tuple[int, int]:
    n, views = text.lower().split("x")
    return int(n), int(views)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="256x60,512x720,1024x1200", help="comma-separated NxVIEWS")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stored-max-gb", type=float, default=8.0, help="skip stored pairs larger than this")
    parser.add_argument("--batched-max-samples", type=float, default=512 * 512 * 720,
                        help="time 8 slices per call only up to this many pixels x views")
    parser.add_argument("--out", type=Path, default=Path("bench_results/ct_projector.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--case", type=parse_case, help=argparse.SUPPRESS)
    parser.add_argument("--batched", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    load = Path("/proc/loadavg").read_text().split()[:3]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records = []
    for case in map(parse_case, args.cases.split(",")):
        for variant in args.variants.split(","):
            records.append(run_case(case, variant, args))
            print(f"done {records[-1]['case']} {variant}", file=sys.stderr)
            summary = {"threads": args.threads, "repeats": args.repeats, "cpu_count": os.cpu_count(),
                       "load_before": load, "load_now": Path("/proc/loadavg").read_text().split()[:3],
                       "results": records}
            args.out.write_text(json.dumps(summary, indent=2) + "\n")  # after every row: a stopped run keeps its rows
    print_table(records)
    print(f"\nthreads {args.threads}; load average before {' '.join(load)}, after {' '.join(summary['load_now'])}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
