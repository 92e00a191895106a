"""Pick the defaults of pnp-admm, red and pnp-pgd on training-like images, never on benchmark or test images.

    .venv/bin/python scripts/tune_pnp.py [--spec ct-parallel/1 mri-cartesian/1]

Images: 2 random-ellipse and 2 foam phantoms of 128^2 (the kinds the denoisers were trained on; not the
Shepp-Logan phantom of the tests nor the benchmark's CT slice / MRI volume). CT: 30 and 60 views, 1% noise;
MRI: 4 coils, 4x uniform 1D mask with ACS, 1% noise. Prints mean PSNR per setting; writes
bench_results/tune_pnp.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from recon.io.measurement import MeasurementFile, write_measurement
from recon.methods import RunContext, get_method
from recon.metrics import quality
from recon.phantoms import foam, random_ellipses
from recon.problems import build_problem
from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian

ROOT = Path(__file__).resolve().parent.parent
GRID = {"pnp-admm": {"sigma": (0.05, 0.1), "rho": (3e-3, 0.01, 0.05)},
        "red": {"sigma": (0.05, 0.1), "lam": (3e-3, 0.01, 0.05)},
        "pnp-pgd": {"sigma": (0.02, 0.05)}}


def problems(spec: str, folder: Path):
    rng = np.random.default_rng(123)
    volume = np.stack([random_ellipses((128, 128), rng), random_ellipses((128, 128), rng),
                       foam((128, 128), rng), foam((128, 128), rng)])
    cases = {}
    if spec == "ct-parallel/1":
        for views in (30, 60):
            cases[f"{views} views"] = simulate_ct_parallel(volume, views, noise_std=0.01, rng=rng)
    else:
        cases["4x"] = simulate_mri_cartesian(volume, 4, 4.0, "uniform1d", noise_std=0.01, with_coil_maps=True,
                                             rng=rng)
    for name, (datasets, attrs) in cases.items():
        path = folder / f"{spec.split('/')[0]}-{name.replace(' ', '')}.h5"
        write_measurement(path, spec, datasets, attrs, overwrite=True)
        with MeasurementFile(path) as measurement:
            yield name, build_problem(measurement, None, torch.device("cpu"))


def score(problem, name: str, raw: dict) -> float:
    method = get_method(name)
    x = method.solve(problem, method.parse_params(raw), RunContext()).x
    return quality(problem.to_output(x)["reconstruction"], problem.ground_truth)["psnr"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", nargs="*", default=["ct-parallel/1", "mri-cartesian/1"])
    parser.add_argument("--methods", nargs="*", default=sorted(GRID))
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = ROOT / "bench_results" / "tune_pnp"
    folder.mkdir(parents=True, exist_ok=True)
    table = []
    for spec in args.spec:
        for case, problem in problems(spec, folder):
            baseline = {"tv": score(problem, "tv", {"dims": 2})}
            print(f"{spec} {case}: tv {baseline['tv']:.2f} dB", flush=True)
            for name in args.methods:
                keys = list(GRID[name])
                for values in itertools.product(*(GRID[name][k] for k in keys)):
                    raw = dict(zip(keys, values, strict=True))
                    value = score(problem, name, raw)
                    table.append({"spec": spec, "case": case, "method": name, **raw, "psnr": value, **baseline})
                    print(f"  {name} {raw}: {value:.2f} dB", flush=True)
    (ROOT / "bench_results" / "tune_pnp.json").write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
