"""Coil-map estimators on fastMRI-layout files with realistic maps and on real raw k-space: ratio vs ESPIRiT.

Each case is a fastMRI multi-coil training file (h5py, fastMRI's layout: 2x readout oversampling, zero-padded
columns, ISMRMRD header, reconstruction_rss) of a brain slice (MNI152: the images the default is chosen on;
Colin27: a held-out benchmark image) through sigpy's birdcage maps (C coils, with a smooth object phase and
complex noise), retrospectively undersampled through recon's reader (``--read acceleration=R``, fastMRI's random
mask, center_fraction 0.32 / R), plus the real 2-coil phantom of tests/data (twixtools' gre.dat). Every case is
reconstructed with each estimator by ``adjoint``, ``cgls`` and ``tv`` at their defaults (``--pnp`` adds
``pnp-admm``), and the PSNR against reconstruction_rss is printed as a markdown table and written to
bench_results/coil_maps.json.

    python scripts/bench_coil_maps.py            # about 15 minutes on one core
    python scripts/bench_coil_maps.py --quick    # one small case, to check that it runs

Needs sigpy (birdcage maps, a dev dependency) and nilearn (MNI152) besides recon.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from skimage.transform import resize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "io" / "layouts"))
from mri_layout_files import fft2c, ifft2c, ismrmrd_header  # noqa: E402

from recon.pipeline import Request, compute  # noqa: E402

REAL = ROOT / "tests" / "data" / "twix_gre_2coil.h5"
ROWS, COLUMNS = 160, 184
def brain_slice(name: str) -> np.ndarray:
    """An axial slice in [0, 1], ROWS x ROWS: MNI152 (z = 90) or Colin27 (ch2, z = 90)."""
    import nibabel

    if name == "mni152":
        from nilearn.datasets import load_mni152_template

        volume = np.asanyarray(load_mni152_template(resolution=1).dataobj, dtype=np.float32)
    else:
        volume = nibabel.load("/usr/share/mricron/templates/ch2.nii.gz").get_fdata().astype(np.float32)
    image = np.rot90(volume[:, :, 90])
    image = resize(image / image.max(), (ROWS, ROWS), anti_aliasing=True)
    return np.clip(image, 0, None)


def write_case(path: Path, image: np.ndarray, coils: int, noise: float, seed: int) -> None:
    """A fastMRI multi-coil training file of ``image`` seen through ``coils`` birdcage maps."""
    from sigpy.mri import birdcage_maps

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:ROWS, :COLUMNS] / ROWS
    obj = np.zeros((2 * ROWS, COLUMNS), complex)
    pad = (COLUMNS - ROWS) // 2
    obj[ROWS // 2:ROWS // 2 + ROWS, pad:pad + ROWS] = image
    obj[ROWS // 2:ROWS // 2 + ROWS] *= np.exp(1j * np.pi * (0.4 * xx - 0.3 * yy))
    maps = birdcage_maps((coils, 2 * ROWS, COLUMNS), r=1.3)
    maps = maps * np.exp(1j * rng.uniform(-np.pi, np.pi, (coils, 1, 1)))
    kspace = fft2c(maps * obj)[None]
    level = noise * np.sqrt(np.mean(np.abs(kspace) ** 2))
    kspace += level / np.sqrt(2) * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    rss = np.sqrt((np.abs(ifft2c(kspace)) ** 2).sum(1))[:, ROWS // 2:ROWS // 2 + ROWS, pad:pad + ROWS]
    with h5py.File(path, "w") as file:
        file["kspace"] = kspace.astype(np.complex64)
        file["reconstruction_rss"] = rss.astype(np.float32)
        file["ismrmrd_header"] = ismrmrd_header(coils, encoded=(2 * ROWS, COLUMNS), recon=(ROWS, ROWS),
                                                acquired=COLUMNS, center=COLUMNS // 2, slices=1,
                                                pixel_mm=220 / ROWS, thickness_mm=5.0)  # a 220 mm field of view


def psnr(path: Path, method: str, read: dict) -> tuple[float, float]:
    start = time.perf_counter()
    outcome = compute(Request(input=path, method=method, read=read))
    return outcome.summary.metrics["psnr"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small case")
    parser.add_argument("--pnp", action="store_true", help="add pnp-admm (slow on a CPU)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_results" / "coil_maps.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods = ["adjoint", "cgls", "tv"] + (["pnp-admm"] if args.pnp else [])
    estimators = ["ratio", "espirit"]
    cases = [("real gre 2-coil", None, 2, 4, 0.0)]
    if not args.quick:
        cases += [(f"{name} {coils} coils {accel}x", name, coils, accel, 0.02)
                  for name in ("mni152", "colin27") for coils in (4, 12) for accel in (4, 8)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for title, image, coils, accel, noise in cases:
            path = REAL
            if image is not None:
                path = Path(folder) / f"{image}_{coils}.h5"
                if not path.exists():
                    write_case(path, brain_slice(image), coils, noise, seed=coils)
            read = {"acceleration": accel, "center_fraction": 0.1 if image is None else 0.32 / accel}
            for estimator in estimators:
                row = {"case": title, "estimator": estimator}
                for method in methods:
                    row[method], row[f"{method}_s"] = psnr(path, method, {**read, "coil_maps": estimator})
                rows.append(row)
                print(" | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    print("\n| case | estimator | " + " | ".join(methods) + " |\n|---|---|" + "---|" * len(methods))
    for row in rows:
        print(f"| {row['case']} | {row['estimator']} | " + " | ".join(f"{row[m]:.2f}" for m in methods) + " |")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "methods": methods}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
