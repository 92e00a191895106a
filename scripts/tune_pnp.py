"""Pick the defaults of pnp-admm, red, pnp-pgd and lpn on training images, never on benchmark or test images.

    .venv/bin/python scripts/training_data.py     # once
    .venv/bin/python scripts/tune_pnp.py [--spec ct-parallel/1 mri-cartesian/1] [--methods lpn] [--device cuda]

Images: three 256^2 slices the shipped priors were trained on (MNI152 template slices 70 and 110 and
CT_small, from scripts/training_data.py), never the benchmark's 693_UNCR CT slice or Colin27 MRI nor the
tests' Shepp-Logan phantom. CT: 30 and 60 views, 1% noise; MRI: 4 coils, 4x uniform 1D mask with ACS, 1%
noise. Prints the mean PSNR per setting and case and, per method and spec, the setting with the best mean
over the cases; writes bench_results/tune_pnp.json (rewritten after every run, so a cut run keeps its rows).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.transform import resize

from recon.io.measurement import MeasurementFile, write_measurement
from recon.methods import RunContext, get_method
from recon.metrics import quality
from recon.problems import build_problem
from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from training_data import DEFAULT_OUT  # noqa: E402

GRID = {
    "pnp-admm": {"sigma": (0.03, 0.05, 0.1, 0.15), "rho": (1e-3, 3e-3, 0.01, 0.03, 0.1)},
    "red": {"sigma": (0.03, 0.05, 0.1), "lam": (3e-3, 0.01, 0.03, 0.1)},
    "pnp-pgd": {"sigma": (0.02, 0.05, 0.1)},
    "lpn": {"rho": (0.3, 1.05, 2.0), "tau": (0.05, 0.2, 0.5, 1.0), "iterations": (100,)},
}


def training_images(data: Path) -> np.ndarray:
    """(3, 256, 256) float32: MNI152 slices 70 and 110 and CT_small, each scaled to its 0.99 quantile."""
    mni = np.load(data / "mni152.npy")
    images = [mni[70], mni[110], np.load(data / "ct-small.npy")[0]]
    out = np.stack([resize(image.astype(np.float32), (256, 256), anti_aliasing=True) for image in images])
    return (out / np.quantile(out, 0.99, axis=(1, 2), keepdims=True)).astype(np.float32)


def problems(spec: str, folder: Path, images: np.ndarray, device: torch.device):
    rng = np.random.default_rng(123)
    if spec == "ct-parallel/1":
        cases = {f"{views} views": simulate_ct_parallel(images, views, noise_std=0.01, rng=rng) for views in (30, 60)}
    else:
        cases = {"4x": simulate_mri_cartesian(images, 4, 4.0, "uniform1d", noise_std=0.01, with_coil_maps=True,
                                              rng=rng)}
    for name, (datasets, attrs) in cases.items():
        yield name, measured_problem(folder / f"{spec.split('/')[0]}-{name.replace(' ', '')}.h5", spec, datasets,
                                     attrs, device)


def measured_problem(path: Path, spec: str, datasets: dict, attrs: dict, device: torch.device):
    """The problem of a simulated measurement written to ``path`` (replaced) and read back, as the CLI reads it."""
    write_measurement(path, spec, datasets, attrs, overwrite=True)
    with MeasurementFile(path) as measurement:
        return build_problem(measurement, None, device)


def score(problem, name: str, raw: dict, device: torch.device) -> tuple[float, float]:
    """(PSNR in dB, seconds) of method ``name`` with ``raw`` parameters, torch seeded with 0 (for samplers)."""
    method = get_method(name)
    torch.manual_seed(0)
    began = time.perf_counter()
    x = method.solve(problem, method.parse_params(raw), RunContext(device=device)).x
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - began
    return quality(problem.to_output(x)["reconstruction"], problem.ground_truth)["psnr"], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", nargs="*", default=["ct-parallel/1", "mri-cartesian/1"])
    parser.add_argument("--methods", nargs="*", default=sorted(GRID), choices=sorted(GRID))
    parser.add_argument("--weights", action="append", default=[], metavar="METHOD=W.safetensors",
                        help="weights for a method instead of the shipped ones (repeatable)")
    parser.add_argument("--grid", action="append", default=[], metavar="METHOD=JSON",
                        help='another grid for a method, e.g. lpn=\'{"rho": [1.05], "tau": [0.01, 0.05]}\'')
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", type=Path, default=DEFAULT_OUT, help="folder of scripts/training_data.py")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_results" / "tune_pnp.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    weights = dict(item.split("=", 1) for item in args.weights)
    GRID.update({name: json.loads(grid) for name, grid in (item.split("=", 1) for item in args.grid)})
    images = training_images(args.data)
    folder = args.out.parent / "tune_pnp"
    folder.mkdir(parents=True, exist_ok=True)
    table = []
    for spec in args.spec:
        for case, problem in problems(spec, folder, images, device):
            tv = score(problem, "tv", {"dims": 2}, device)[0]
            print(f"{spec} {case}: tv {tv:.2f} dB", flush=True)
            for name in args.methods:
                keys = list(GRID[name])
                for values in itertools.product(*(GRID[name][k] for k in keys)):
                    raw = dict(zip(keys, values, strict=True)) | ({"weights": weights[name]} if name in weights else {})
                    psnr, elapsed = score(problem, name, raw, device)
                    table.append({"spec": spec, "case": case, "method": name, **raw, "psnr": psnr, "tv": tv,
                                  "seconds": elapsed})
                    print(f"  {name} {raw}: {psnr:.2f} dB ({elapsed:.1f} s)", flush=True)
                    args.out.write_text(json.dumps(table, indent=1) + "\n")
    print("best mean PSNR per method and spec (gain over tv):")
    for (spec, name), rows in itertools.groupby(sorted(table, key=lambda r: (r["spec"], r["method"])),
                                                key=lambda r: (r["spec"], r["method"])):
        settings: dict[str, list[dict]] = {}
        for row in rows:
            settings.setdefault(json.dumps({k: row[k] for k in GRID[name]}), []).append(row)
        best = max(settings, key=lambda s: np.mean([r["psnr"] for r in settings[s]]))
        gain = np.mean([r["psnr"] - r["tv"] for r in settings[best]])
        print(f"  {spec} {name} {best}: {np.mean([r['psnr'] for r in settings[best]]):.2f} dB ({gain:+.2f})")


if __name__ == "__main__":
    main()
