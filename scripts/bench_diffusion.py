"""Benchmark the diffusion methods (dds, diffusion-mbir) against fbp/adjoint, tv and deepinv's DPS and DiffPIR.

    .venv/bin/python scripts/bench_diffusion.py [--cases ct8 ct16 mri4x] [--methods dds tv ...]
        [--set dds.nfe=50 --set diffusion-mbir.nfe=2000 ...] [--slices 32] [--device cpu|cuda] [--threads 2]

Cases (images never seen in training: the shipped diffusion priors were trained on MNI152, CT_small and
phantoms, scripts/train_diffusion_weights.py):

- ct8 / ct16: ``--slices`` (32) axial slices of the Colin27 head MRI (mricron-data, apt) as an attenuation map,
  128^2, every 3rd slice of the 0.5 mm template (1.5 mm apart), 8 / 16 parallel views over 180 degrees, 1 %
  Gaussian noise (scripts/bench_priors.py's ct-volume with fewer views);
- mri4x: 8 axial Colin27 slices (128^2, 10 slices = 5 mm apart), 8 coils, 4x uniform 1D mask with ACS, 1 % noise.

Methods: fbp (CT) / adjoint (MRI) and tv (3D TV for CT volumes, 2D for the MRI slices) with their defaults;
pnp-admm with its shipped DRUNet (GPU-trained, not a diffusion model: a reference for what a strong learned
denoiser gains on these cases; its network evaluations per slice are iterations x planes); dds and
diffusion-mbir with theirs (or ``--set``); deepinv's ``DiffPIR`` and ``DPS`` given the same trained network
as a deepinv ``Denoiser`` (:class:`recon.models.diffusion.DiffusionDenoiser`), slice by slice in batches,
on the problem normalised as dds sees it (A / ||A||, y / (scale ||A||), the scale from the same quick TV
estimate; the first version used FBP's, 1.58x too high at 8 views). DiffPIR runs ``dds.nfe`` steps by default;
DPS (a gradient through the network per step, about 3x the cost of a step) runs a third of them, so that both
take about dds's time; ``--set dps.nfe=...`` changes that. Scores: PSNR and SSIM of the volume, and PSNR on the
middle coronal and sagittal planes (z-coherence), network evaluations per slice and wall time. Prints a table,
writes bench_results/bench_diffusion.json; measurement files stay in bench_results/bench_diffusion/.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from recon.io.measurement import MeasurementFile, write_measurement
from recon.methods import RunContext, get_method
from recon.metrics import quality
from recon.problems import build_problem
from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_priors import colin27  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASES = ("ct8", "ct16", "mri4x")
METHODS = {"ct-parallel/1": ("fbp", "tv", "pnp-admm", "dds", "diffusion-mbir", "diffpir", "dps"),
           "mri-cartesian/1": ("adjoint", "tv", "pnp-admm", "dds", "diffusion-mbir", "diffpir", "dps")}
DEEPINV = ("diffpir", "dps")


def simulate(case: str, slices: int):
    """(spec, datasets, attrs) of a case."""
    rng = np.random.default_rng(7)
    if case.startswith("ct"):
        volume = colin27(110 + 3 * np.arange(slices), 128)
        return "ct-parallel/1", *simulate_ct_parallel(volume, int(case[2:]), noise_std=0.01, rng=rng)
    return "mri-cartesian/1", *simulate_mri_cartesian(colin27(130 + 10 * np.arange(8), 128), 8, 4.0, "uniform1d",
                                                      noise_std=0.01, rng=rng)


def planes(image: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """PSNR (peak: the truth's maximum) of the middle coronal (z, x) and sagittal (z, y) planes of a volume."""
    peak = float(np.abs(truth).max())

    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return float(10 * np.log10(peak**2 / max(float(np.mean((np.abs(a) - np.abs(b)) ** 2)), 1e-30)))

    ny, nx = truth.shape[-2:]
    return {"psnr_coronal": psnr(image[:, ny // 2], truth[:, ny // 2]),
            "psnr_sagittal": psnr(image[:, :, nx // 2], truth[:, :, nx // 2])}


def deepinv_solve(problem, name: str, params: dict, noise_std: float, batch: int) -> torch.Tensor:
    """deepinv's DiffPIR or DPS with the shipped diffusion network, slice batches, normalised problem."""
    import deepinv

    from recon.models.diffusion import DiffusionDenoiser
    from recon.priors import get_prior
    from recon.solvers.diffusion import quick_tv
    from recon.solvers.linalg import operator_sqnorm
    from recon.solvers.normalised import robust_scale

    if problem.complex_image:
        raise SystemExit(f"{name}: deepinv's samplers take real images; the MRI prior models magnitudes")
    prior = get_prior("diffusion", "eps", **({"weights": params["weights"]} if params.get("weights") else {}))
    denoiser = DiffusionDenoiser(prior.load(False, 1, problem.device))
    initial = problem.initial()
    scale, root = robust_scale(quick_tv(problem)), math.sqrt(operator_sqnorm(problem))
    sigma = noise_std / (scale * root)
    outputs = []
    for start in range(0, initial.shape[0], batch):
        part = slice(start, start + batch)
        y = problem.y[part] / (scale * root)
        physics = deepinv.physics.LinearPhysics(A=lambda x: problem.physics.A(x) / root,
                                                A_adjoint=lambda r: problem.physics.A_adjoint(r) / root,
                                                noise_model=deepinv.physics.GaussianNoise(sigma))
        if name == "diffpir":
            model = deepinv.sampling.DiffPIR(denoiser, deepinv.optim.L2(), sigma=sigma, max_iter=params["nfe"],
                                             zeta=params.get("zeta", 0.1), lambda_=params.get("lambda", 7.0),
                                             device=problem.device)
            with torch.no_grad():
                x = model(y, physics, x_init=initial[part] / scale)
        else:
            model = deepinv.sampling.DPS(denoiser, num_steps=params["nfe"], weight=params.get("weight", 1.0),
                                         device=problem.device, dtype=torch.float32)
            with torch.enable_grad():
                x = model(y, physics, x_init=initial[part] / scale).detach()
        outputs.append(x * scale)
    return torch.cat(outputs)


def solve(problem, name: str, settings: dict, attrs: dict, device: torch.device) -> tuple[torch.Tensor, int]:
    """(estimate in the problem layout, network evaluations per slice: nfe x samples for the diffusion
    methods, one per iteration and plane for a method with a learned prior, none for the others)."""
    if name in DEEPINV:
        return deepinv_solve(problem, name, settings, attrs["noise_std"], 8), settings["nfe"]
    method = get_method(name)
    params = method.parse_params(settings)
    result = method.solve(problem, params, RunContext(device=device))
    if "nfe" in params:  # diffusion samplers
        return result.x, params["nfe"] * params["samples"]
    if method.prior_capability is None:
        return result.x, 0
    return result.x, params["iterations"] * result.extras["params"].get("planes", 1)  # a denoiser per iteration


def parse_settings(items: list[str]) -> dict[str, dict]:
    """``METHOD.PARAM=VALUE`` items as {method: {param: value}}, values read as JSON where they parse."""
    settings: dict[str, dict] = {}
    for item in items:
        key, _, value = item.partition("=")
        name, _, param = key.partition(".")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        settings.setdefault(name, {})[param] = parsed
    return settings


def measurement_file(case: str, slices: int, reuse: bool) -> Path:
    """bench_results/bench_diffusion/CASE-SLICES.h5, simulated unless ``reuse`` and it exists."""
    folder = ROOT / "bench_results" / "bench_diffusion"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{case}-{slices}.h5"
    if not (reuse and path.exists()):
        spec, datasets, attrs = simulate(case, slices)
        write_measurement(path, spec, datasets, attrs, overwrite=True)
    return path


def run_case(case: str, args, settings: dict[str, dict], device: torch.device) -> list[dict]:
    with MeasurementFile(measurement_file(case, args.slices, args.reuse)) as measurement:
        problem = build_problem(measurement, None, device)
        spec, attrs = measurement.spec.id, measurement.attrs
    rows = []
    dds_nfe = settings.get("dds", {}).get("nfe", 50)
    for name in METHODS[spec]:
        if args.methods and name not in args.methods:
            continue
        own = dict(settings.get(name, {}))
        if name in DEEPINV:  # DiffPIR: dds's steps; DPS (a gradient through the network per step): a third
            own.setdefault("nfe", dds_nfe // (3 if name == "dps" else 1))
        if name == "tv":
            own.setdefault("dims", 3 if spec == "ct-parallel/1" else 2)
        torch.manual_seed(0)
        began = time.perf_counter()
        x, nfe = solve(problem, name, own, attrs, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - began
        image = problem.to_output(x)["reconstruction"]
        scores = quality(image, problem.ground_truth)
        row = {"case": case, "method": name, "psnr": scores["psnr"], "ssim": scores.get("ssim"),
               **planes(image, problem.ground_truth), "nfe": nfe, "seconds": elapsed,
               "settings": own, "shape": list(problem.output_shape),
               "device": str(device)}
        rows.append(row)
        print(f"{case:6s} {name:15s} {row['psnr']:6.2f} dB  SSIM {row['ssim']:.3f}  coronal {row['psnr_coronal']:6.2f}"
              f"  sagittal {row['psnr_sagittal']:6.2f}  nfe {nfe:5d}  {elapsed:8.1f} s  {row['settings']}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--methods", nargs="*")
    parser.add_argument("--set", action="append", default=[], help="METHOD.PARAM=VALUE (repeatable)")
    parser.add_argument("--slices", type=int, default=32, help="slices of the CT volumes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="reuse the measurement files")
    parser.add_argument("--json", type=Path, default=ROOT / "bench_results" / "bench_diffusion.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = parse_settings(args.set)
    rows = [row for case in args.cases for row in run_case(case, args, settings, device)]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.json.read_text()) if args.json.exists() else []
    keep = [r for r in previous if (r["case"], r["method"], json.dumps(r["settings"], sort_keys=True)) not in
            {(r["case"], r["method"], json.dumps(r["settings"], sort_keys=True)) for r in rows}]
    args.json.write_text(json.dumps(keep + rows, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
