"""Benchmark the learned priors against the classical methods and deepinv's own PnP and DPIR.

    .venv/bin/python scripts/bench_priors.py [--cases ct60 ct30 ct-volume mri4x] [--device cpu|cuda]
        [--threads 1] [--figure docs/images/bench_priors.png]

Cases (none of these images was seen in training or tuning; see scripts/training_data.py, tune_pnp.py):

- ct60 / ct30: pydicom-data's 693_UNCR.dcm head CT slice (HU -> attenuation, 256^2), 60 / 30 parallel views
  over 180 degrees, 1% Gaussian noise;
- ct-volume: 32 axial slices of the Colin27 head MRI (mricron-data, apt) used as an attenuation map,
  128^2, 60 views, 1% noise: a volume (pnp-admm's default prox is tri-planar there);
- mri4x: 4 axial Colin27 slices (256^2), 4 coils, 4x uniform 1D mask with ACS, 1% noise.

Methods: fbp (CT) / adjoint (MRI), cgls, tv, pnp-admm, red, lpn with their defaults, and deepinv's
``optim.ADMM`` with a ``PnP`` prior and ``optim.DPIR``, both given the same shipped denoiser, in the same
process, on the same normalised problem as pnp-admm (A / ||A||, y / s / ||A||, first estimate = FBP/adjoint)
and applied as pnp-admm applies it (tri-planar on the CT volume);
deepinv's ADMM gets pnp-admm's sigma, rho (stepsize 1/rho) and iteration count, and its own inner CG
(physics.prox_l2, deepinv's defaults). DPIR gets the noise level of the normalised data. Prints a table
(PSNR, SSIM, seconds; on CUDA after one untimed warm-up run), writes bench_results/bench_priors.json and a
figure of one ct30 slice across methods.
The measurement files stay in bench_results/bench_priors/; ``--reuse`` runs on them again (e.g. on a GPU
machine that lacks pydicom-data, nibabel or mricron-data).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from recon.io.measurement import MeasurementFile, write_measurement
from recon.methods import RunContext, get_method
from recon.metrics import quality
from recon.problems import build_problem
from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian

ROOT = Path(__file__).resolve().parent.parent
COLIN27 = Path("/usr/share/mricron/templates/ch2better.nii.gz")
CASES = ("ct60", "ct30", "ct-volume", "mri4x")
OURS = {"ct-parallel/1": ("fbp", "cgls", "tv", "pnp-admm", "red", "lpn"),
        "mri-cartesian/1": ("adjoint", "cgls", "tv", "pnp-admm", "red", "lpn")}
DEEPINV = ("deepinv-pnp-admm", "deepinv-dpir")


def head_ct(name: str = "693_UNCR.dcm", size: int = 256) -> np.ndarray:
    """A CT slice of pydicom's test files (default 693_UNCR.dcm, a head) as attenuation relative to water,
    max(HU + 1000, 0) / 1000, resized to (1, size, size) float32."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from skimage.transform import resize

    dataset = dcmread(get_testdata_file(name))
    hu = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    return resize(np.maximum(hu + 1000.0, 0.0) / 1000.0, (size, size), anti_aliasing=True).astype(np.float32)[None]


def colin27(slices: np.ndarray, size: int) -> np.ndarray:
    """Axial Colin27 slices (0.5 mm template; index along its z) resized to size^2, scaled to 0.99 quantile 1."""
    import nibabel

    if not COLIN27.exists():
        raise SystemExit(f"{COLIN27} is missing: apt-get install mricron-data")
    volume = np.asanyarray(nibabel.load(COLIN27).dataobj)
    return scaled_stack((volume[:, :, k].T[::-1] for k in slices), size)


def scaled_stack(images: Iterable[np.ndarray], size: int) -> np.ndarray:
    """(n, size, size) float32: 2D ``images`` resized (antialiased), the stack scaled to its 0.99 quantile 1."""
    from skimage.transform import resize

    stack = np.stack([resize(image.astype(np.float32), (size, size), anti_aliasing=True) for image in images])
    return (stack / np.quantile(stack, 0.99)).astype(np.float32)


def simulate(case: str):
    """(spec, datasets, attrs) of a case."""
    rng = np.random.default_rng(7)
    if case in ("ct60", "ct30"):
        return "ct-parallel/1", *simulate_ct_parallel(head_ct(), int(case[2:]), noise_std=0.01, rng=rng)
    if case == "ct-volume":
        return "ct-parallel/1", *simulate_ct_parallel(colin27(np.arange(110, 206, 3), 128), 60, noise_std=0.01,
                                                      rng=rng)
    return "mri-cartesian/1", *simulate_mri_cartesian(colin27(np.array([140, 160, 180, 200]), 256), 4, 4.0,
                                                      "uniform1d", noise_std=0.01, with_coil_maps=True, rng=rng)


def deepinv_solve(problem, name: str, noise_std: float):
    """deepinv's PnP-ADMM or DPIR with the shipped denoiser on the normalised problem (see the module)."""
    import deepinv

    from recon.priors import get_prior
    from recon.solvers.normalised import Normalised
    from recon.solvers.pnp import in_planes

    s = Normalised.per_slice(problem)
    root = math.sqrt(s.weight)
    physics = deepinv.physics.LinearPhysics(A=lambda x: root * problem.physics.A(x),
                                            A_adjoint=lambda y: root * problem.physics.A_adjoint(y))
    prior = get_prior("drunet", "denoise")
    method = get_method("pnp-admm")
    params = method.resolve(method.parse_params({}), problem)

    class Shipped(deepinv.models.Denoiser):
        """The shipped denoiser as pnp-admm applies it (tri-planar on CT volumes)."""

        def forward(self, x, sigma, **kwargs):
            level = float(torch.as_tensor(sigma).flatten()[0])
            return in_planes(lambda u: prior.denoise(u, level), x, params["planes"])

    y = root * s.y
    with torch.no_grad():
        if name == "deepinv-dpir":
            sigma = noise_std * root / float(s.scale.mean())
            model = deepinv.optim.DPIR(sigma=sigma, denoiser=Shipped(), device=y.device)
            x = model(y, physics, init=s.x0)
        else:
            model = deepinv.optim.ADMM(data_fidelity=deepinv.optim.L2(), prior=deepinv.optim.PnP(Shipped()),
                                       stepsize=1.0 / params["rho"], g_param=params["sigma"],
                                       max_iter=params["iterations"], early_stop=False)
            x = model(y, physics, init=(s.x0, torch.zeros_like(s.x0)))  # (x, scaled dual u)
    return s.units(x)


def solve(problem, name: str, attrs: dict, device: torch.device) -> torch.Tensor:
    """One method's estimate (solver units) with its defaults."""
    if name in DEEPINV:
        return deepinv_solve(problem, name, attrs["noise_std"])
    method = get_method(name)
    return method.solve(problem, method.parse_params({}), RunContext(device=device)).x


def run_case(case: str, folder: Path, device: torch.device, methods: set[str] | None, reuse: bool) -> list[dict]:
    path = folder / f"{case}.h5"
    if not (reuse and path.exists()):
        spec, datasets, attrs = simulate(case)
        write_measurement(path, spec, datasets, attrs, overwrite=True)
    rows, images = [], {}
    with MeasurementFile(path) as measurement:
        problem = build_problem(measurement, None, device)
        spec, attrs = measurement.spec.id, measurement.attrs
    for name in (*OURS[spec], *DEEPINV):
        if methods and name not in methods:
            continue
        if device.type == "cuda":  # a first, untimed run loads the weights and warms up cuDNN
            solve(problem, name, attrs, device)
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        x = solve(problem, name, attrs, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - began
        image = problem.to_output(x)["reconstruction"]
        scores = quality(image, problem.ground_truth)
        rows.append({"case": case, "method": name, "psnr": scores["psnr"], "ssim": scores.get("ssim"),
                     "seconds": elapsed, "shape": list(problem.output_shape), "device": str(device)})
        images[name] = np.abs(image)[0]
        print(f"{case:10s} {name:18s} {scores['psnr']:6.2f} dB  SSIM {scores.get('ssim', float('nan')):.3f}  "
              f"{elapsed:7.2f} s", flush=True)
    images["ground truth"] = problem.ground_truth[0]
    return rows, images


def figure(images: dict[str, np.ndarray], rows: list[dict], path: Path, case: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    psnr = {r["method"]: r["psnr"] for r in rows if r["case"] == case}
    names = ["ground truth", *[n for n in images if n != "ground truth"]]
    columns = 4
    fig, axes = plt.subplots(math.ceil(len(names) / columns), columns, figsize=(3 * columns, 3.2 * math.ceil(
        len(names) / columns)))
    high = float(np.quantile(images["ground truth"], 0.995))
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        ax.imshow(images[name], cmap="gray", vmin=0, vmax=high)
        ax.set_title(name if name == "ground truth" else f"{name}: {psnr[name]:.2f} dB", fontsize=10)
    fig.suptitle(f"{case}: 693_UNCR head CT, 256^2 (scripts/bench_priors.py)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--methods", nargs="*", help="only these (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="reuse the measurement files of an earlier run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_results" / "bench_priors.json")
    parser.add_argument("--figure", default=str(ROOT / "docs" / "images" / "bench_priors.png"),
                        help="PNG of one ct30 slice across methods ('' for none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    folder = args.out.parent / "bench_priors"
    folder.mkdir(parents=True, exist_ok=True)
    table = []
    for case in args.cases:
        rows, images = run_case(case, folder, device, set(args.methods or ()), args.reuse)
        table.extend(rows)
        args.out.write_text(json.dumps(table, indent=1) + "\n")
        if case == "ct30" and args.figure:
            figure(images, rows, Path(args.figure), case)
    print(f"\n| case | method | PSNR (dB) | SSIM | time (s, {device.type}, {args.threads} thread(s)) |")
    print("|---|---|---|---|---|")
    for row in table:
        print(f"| {row['case']} | {row['method']} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['seconds']:.2f} |")


if __name__ == "__main__":
    main()
