"""Users' CT data read as they are: PSNR of each layout against the same data written natively, the cost of the
naive conversions issue 24 found, and the centre-of-rotation estimate against known offsets.

    .venv/bin/python scripts/bench_ct_layouts.py [--angle-step 10] [--tv-iterations 100] [--offsets ...]

1. **Equivalence**: a LoDoPaB-CT pair (h5py, the zenodo layout; exact line integrals of an ellipse phantom in
   dival's odl geometry, the dataset's Poisson noise), a DXchange scan and the same scan as NXtomo (raw uint16
   counts, flat-field structure, the rotation axis 6.3 pixels off the middle) are reconstructed straight from
   the file and from their native recon-spec equivalents (LoDoPaB: the line integrals divided by the pixel
   size, angles and detector written out; DXchange/NXtomo: what ``recon import`` writes) with fbp and tv.
2. **Naive conversions** of the LoDoPaB file (what a hand-written converter gets wrong): metres read as pixels,
   the detector centre half a bin off, angles at ``k pi / 1000`` instead of the midpoints, a detector spacing
   of 1 pixel, the ground truth in odl's axis order.
3. **Centre of rotation**: scans with known offsets (and two noise levels) -> algotom's ``find_center_vo``
   alone, recon's estimate (refined by the centroid fit), and fbp PSNR at recon's estimate against the exact
   centre.

``--angle-step 10`` keeps 100 of LoDoPaB's 1000 views (the stored-matrix projector needs about 0.4 GB for them;
``--angle-step 1`` needs about 4 GB and minutes to build). Prints markdown tables and writes
bench_results/ct_layouts.json. Timings are not the point; PSNR does not depend on machine load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))
from layout_files import simulate_scan, write_dxchange, write_lodopab_pair, write_nxtomo  # noqa: E402

from recon.importing import import_layout  # noqa: E402
from recon.io.layouts import lodopab  # noqa: E402
from recon.io.measurement import write_measurement  # noqa: E402
from recon.metrics import quality  # noqa: E402
from recon.physics.ct import ParallelBeamCT  # noqa: E402
from recon.pipeline import Request, compute  # noqa: E402
from recon.preprocess.tomography import Counts, TomoOptions, estimate_center, frame_means, line_integrals  # noqa: E402


def run(path: Path, method: str, params: dict, read: dict | None = None, truth: np.ndarray | None = None) -> dict:
    """PSNR (against the file's ground truth, or ``truth``), the warnings and the time of one reconstruction."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = compute(Request(path, method, read=read or {}, params=params))
    psnr = quality(outcome.image, truth)["psnr"] if truth is not None else outcome.summary.metrics["psnr"]
    return {"psnr": round(float(psnr), 2), "warnings": outcome.attrs["provenance"].get("warnings", []),
            "time_s": round(time.perf_counter() - start, 1)}


def lodopab_files(folder: Path, step: int) -> dict[str, tuple[Path, dict]]:
    """The LoDoPaB pair, its native equivalent and the naive conversions: name -> (path, reader options)."""
    observation, truth_file = write_lodopab_pair(folder, n=1)
    with h5py.File(observation) as f, h5py.File(truth_file) as g:
        sinogram, truth = f["data"][:, ::step], np.rot90(g["data"][()], axes=(1, 2)).copy()
    angles = lodopab.ANGLES[::step]

    def native(name: str, values: np.ndarray, angles: np.ndarray, image: np.ndarray = truth, **attrs) -> Path:
        path = folder / f"{name}.h5"
        attrs = {"image_shape": [1, 362, 362], "det_spacing": lodopab.DET_SPACING_PIXELS, **attrs}
        write_measurement(path, "ct-parallel/1", {"sinogram": values, "angles": angles, "ground_truth": image},
                          attrs, overwrite=True)
        return path

    in_pixels = sinogram / lodopab.PIXEL_M
    return {
        "lodopab file": (observation, {"angle_step": str(step)}),
        "native": (native("native", in_pixels, angles), {}),
        "metres read as pixels": (native("metres", sinogram, angles), {}),
        "centre half a bin off": (native("half", in_pixels, angles, det_offset=0.5), {}),
        "angles k pi/1000": (native("ends", in_pixels, np.arange(0, 1000, step) * np.pi / 1000), {}),
        "detector spacing 1 pixel": (native("spacing", in_pixels, angles, det_spacing=1.0), {}),
        "ground truth in odl's axes": (native("unrotated", in_pixels, angles,
                                              np.rot90(truth, -1, axes=(1, 2)).copy()), {}),
    }


def equivalence(folder: Path, args) -> list[dict]:
    rows = []
    files = lodopab_files(folder, args.angle_step)
    methods = {"fbp": {"filter": "hann"}, "tv": {"iterations": args.tv_iterations}}
    for method, params in methods.items():
        layout, native = (run(files[k][0], method, params, files[k][1]) for k in ("lodopab file", "native"))
        rows.append({"layout": "lodopab", "method": method, "file": layout["psnr"], "native": native["psnr"],
                     "difference": round(layout["psnr"] - native["psnr"], 2)})
    scan = simulate_scan(cols=128, rows=4, views=180, center_offset=6.3, seed=1)
    for name, path in (("dxchange", write_dxchange(folder / "scan.h5", scan)),
                       ("nxtomo", write_nxtomo(folder / "scan.nx", scan))):
        out = folder / f"{name}_native.h5"
        import_layout(name, [path], out, {}, overwrite=True)
        for method, params in methods.items():
            layout = run(path, method, params if method == "tv" else {}, truth=scan.truth)
            native = run(out, method, params if method == "tv" else {}, truth=scan.truth)
            rows.append({"layout": name, "method": method, "file": layout["psnr"], "native": native["psnr"],
                         "difference": round(layout["psnr"] - native["psnr"], 2)})
    return rows


def naive(folder: Path, args) -> list[dict]:
    files = lodopab_files(folder, args.angle_step)
    rows = []
    for name, (path, read) in files.items():
        row = {"case": name}
        for method, params in {"fbp": {"filter": "hann"}, "tv": {"iterations": args.tv_iterations}}.items():
            result = run(path, method, params, read)
            row[method] = result["psnr"]
            row["warned"] = bool(result["warnings"]) or row.get("warned", False)
        rows.append(row)
    return rows


def centres(args) -> list[dict]:
    from algotom.prep.calculation import find_center_vo

    rows = []
    for photons in (20000.0, 2000.0):
        for offset in args.offsets:
            scan = simulate_scan(cols=128, rows=8, views=180, center_offset=offset, seed=2, photons=photons)
            sinograms = line_integrals(scan.projections, frame_means(scan.flats), frame_means(scan.darks),
                                       TomoOptions(), Counts())
            angles = np.deg2rad(scan.angles_deg)
            alone = float(find_center_vo(sinograms[4], ncore=1))
            start = time.perf_counter()
            centre, _ = estimate_center(sinograms, angles, "scan")
            elapsed = time.perf_counter() - start
            psnr = {}
            for label, column in (("estimate", centre), ("exact", scan.center)):
                physics = ParallelBeamCT((128, 128), angles, n_det=128, det_offset=column - 63.5)
                image = physics.fbp(torch.from_numpy(sinograms)[:, None])[:, 0].numpy()
                psnr[label] = quality(image, scan.truth)["psnr"]
            rows.append({"photons": int(photons), "offset": offset, "true": scan.center,
                         "vo_one_row_error": round(alone - scan.center, 3),
                         "recon_error": round(centre - scan.center, 3),
                         "psnr_estimate": round(psnr["estimate"], 2), "psnr_exact": round(psnr["exact"], 2),
                         "time_s": round(elapsed, 2)})
    return rows


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return "\n".join(lines + ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--angle-step", type=int, default=10, help="keep every Nth LoDoPaB view [10]")
    parser.add_argument("--tv-iterations", type=int, default=100)
    parser.add_argument("--offsets", type=float, nargs="+", default=[-6.8, -4.7, -2.2, 0.0, 1.3, 3.5, 6.3, 7.9])
    parser.add_argument("--parts", default="equivalence,naive,centres")
    args = parser.parse_args()
    results = {"args": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts.split(","):
            folder = Path(tmp) / part
            folder.mkdir()
            rows = {"equivalence": equivalence, "naive": naive, "centres": lambda f, a: centres(a)}[part](folder, args)
            results[part] = rows
            print(f"\n### {part}\n\n{table(rows)}", flush=True)
    out = Path("bench_results") / "ct_layouts.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
