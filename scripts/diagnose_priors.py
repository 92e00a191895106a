"""Diagnose the shipped learned priors before tuning them: is the network the limit, or how the methods use it?

    .venv/bin/python scripts/diagnose_priors.py [--parts denoise unit lpn dds] [--threads 1]

Parts (each prints a markdown table and adds its rows to bench_results/diagnose_priors.json):

- ``denoise``: every shipped prior as a plain denoiser, PSNR against the noise level sigma (normalised unit: each
  image divided by its 0.99 quantile, the unit the priors were trained in), on slices the priors never saw —
  pydicom-data's 693_UNCR head CT (attenuation) at 128^2 and 256^2, a Colin27 MRI slice (mricron-data) at 128^2
  and 256^2, used as a real image (CT attenuation or MRI magnitude alike) and, for the complex priors, times a
  smooth random phase — beside two training images (CT_small and an MNI152 slice) for the in-domain reference.
  drunet-ct / drunet-mri: D(y, sigma); lpn-ct / lpn-mri: the LPN as the methods use it as a denoiser, the prox at
  weight min(1, (sigma / sigma_t)^2), sigma_t = 0.05 its training level; diffusion-ct / diffusion-mri: one Tweedie
  step, the network at the time step whose noise level is sigma (deepinv's DiffPIR/DPS denoiser).
- ``unit``: the image scale the methods divide by (pnp-admm and lpn: the 0.99 quantile of each slice's FBP or
  adjoint; dds: of a quick 2D TV) against the truth's, on the benchmark's cases (scripts/bench_learned_priors.py):
  in the normalised unit the truth's 0.99 quantile should be 1, as in training. Then each prior's denoising PSNR
  when the image comes at amplitude a instead of 1 (noise 0.05 a, output divided by a): DRUNet has no biases, so
  it must not change; the LPN and the diffusion model are not scale-equivariant.
- ``lpn``: the prox strength lpn uses against pnp-admm's. Scaled ADMM applies prox_{lam R / rho}; the LPN is the
  prox of about sigma_t^2 (-log p) and lpn relaxes it to weight tau, so its prior weight is lam = rho tau sigma_t^2,
  pnp-admm's D(., sigma) gives lam = rho sigma^2. Measured: PSNR along 300 iterations of lpn at its defaults and at
  tau 1 with smaller rho (with and without a [0, 2] box on the LPN's output), beside pnp-admm and tv, on 693_UNCR
  128^2 at 16 views and CT_small (training) at 16 views.
- ``dds``: dds from pure noise (start 1, the paper's) against dds started from an estimate noised to a moderate
  level (start 0.02 - 0.3; the estimate, dds's ``init``: its quick TV, or pnp-admm's reconstruction), with the CT
  and the MRI diffusion prior, on 693_UNCR 128^2 (held out) and CT_small (training) at 8 and 16 views.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_learned_priors import CASES, ct_small, emulated, measurement  # noqa: E402
from bench_priors import colin27, head_ct  # noqa: E402
from tune_pnp import measured_problem  # noqa: E402

OUT = ROOT / "bench_results" / "diagnose_priors.json"
FOLDER = ROOT / "bench_results" / "diagnose_priors"
SIGMAS = (0.01, 0.02, 0.05, 0.1, 0.2)
REAL_PRIORS = ("drunet-ct", "drunet-mri", "lpn-ct", "diffusion-ct", "diffusion-mri")
COMPLEX_PRIORS = ("drunet-mri", "lpn-mri")
AMPLITUDES = (0.5, 0.63, 1.0, 1.58, 2.0)
UNIT_CASES = ("colin-ct8", "colin-ct16", "colin-ct30", "uncr-ct8", "uncr-ct30", "abdomen-ct16", "colin-mri4x")
COLIN27_SLICE = 160
MNI152_SLICE = 90


def normalised(image: np.ndarray) -> torch.Tensor:
    """(1, 1, ny, nx) float32, divided by its 0.99 quantile of |value|."""
    image = np.asarray(image, dtype=np.float32).reshape(1, 1, *image.shape[-2:])
    return torch.from_numpy(image / np.quantile(np.abs(image), 0.99))


def images() -> dict[str, tuple[torch.Tensor, bool]]:
    """name -> (normalised real image, held out)."""
    from tune_diffusion import mni152

    out = {}
    for size in (128, 256):
        out[f"693_UNCR {size}"] = (normalised(head_ct("693_UNCR.dcm", size)), True)
        out[f"Colin27 {size}"] = (normalised(colin27(np.array([COLIN27_SLICE]), size)), True)
    out["CT_small 128 (training)"] = (normalised(ct_small()), False)
    out["MNI152 128 (training)"] = (normalised(mni152(np.array([MNI152_SLICE]), 128)), False)
    return out


def with_phase(image: torch.Tensor) -> torch.Tensor:
    """The real image (1, 1, ny, nx) times a smooth random phase (seeded), as (1, 2, ny, nx) (real, imaginary)."""
    from recon.training.data import smooth_phase

    phase = smooth_phase(tuple(image.shape[-2:]), torch.Generator().manual_seed(3))
    return torch.cat((image * torch.cos(phase), image * torch.sin(phase)), dim=1)


def psnr(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    """PSNR (dB) with peak max |truth| (channels summed per pixel as |.|^2)."""
    peak = float(torch.linalg.vector_norm(truth, dim=1).max())
    mse = float(((estimate - truth) ** 2).sum(dim=1).mean())
    return 10 * math.log10(peak**2 / max(mse, 1e-30))


def denoiser(name: str):
    """name -> f(y, sigma) in the normalised unit (see the module)."""
    from recon.priors import get_prior

    if name.startswith("diffusion"):
        from recon.models.diffusion import DiffusionDenoiser

        prior = get_prior(name, "eps")
        network = DiffusionDenoiser(prior.load(False, 1, torch.device("cpu")))
        return lambda y, sigma: network(y, sigma)
    prior = get_prior(name, "denoise")
    return prior.denoise


@torch.no_grad()
def part_denoise() -> list[dict]:
    rows = []
    for image_name, (image, held_out) in images().items():
        for complex_image in (False, True):
            truth = with_phase(image) if complex_image else image
            for prior in COMPLEX_PRIORS if complex_image else ("noisy", *REAL_PRIORS):
                apply = None if prior == "noisy" else denoiser(prior)
                for sigma in SIGMAS:
                    noise = torch.randn(truth.shape, generator=torch.Generator().manual_seed(int(sigma * 1000)))
                    noisy = truth + sigma * noise
                    estimate = noisy if apply is None else apply(noisy, sigma)
                    rows.append({"part": "denoise", "image": image_name, "held_out": held_out,
                                 "complex": complex_image, "prior": prior, "sigma": sigma,
                                 "psnr": psnr(estimate, truth)})
            print(f"{image_name}{' (complex)' if complex_image else ''}: done", flush=True)
    return rows


def denoise_table(rows: list[dict]) -> str:
    """One line per image and prior, PSNR per sigma."""
    lines = ["| image | prior | " + " | ".join(f"sigma {s:g}" for s in SIGMAS) + " |",
             "|---|---|" + "---|" * len(SIGMAS)]
    keys = dict.fromkeys((r["image"], r["complex"], r["prior"]) for r in rows if r["part"] == "denoise")
    for image, complex_image, prior in keys:
        values = {r["sigma"]: r["psnr"] for r in rows if r["part"] == "denoise" and r["image"] == image
                  and r["complex"] == complex_image and r["prior"] == prior}
        label = f"{image}{' x phase' if complex_image else ''}"
        lines.append(f"| {label} | {prior} | " + " | ".join(f"{values[s]:.2f}" for s in SIGMAS) + " |")
    return "\n".join(lines)


@torch.no_grad()
def part_unit() -> list[dict]:
    from recon.io.measurement import MeasurementFile
    from recon.problems import build_problem
    from recon.solvers.diffusion import quick_tv
    from recon.solvers.linalg import robust_scale, slice_scale

    rows = []
    for name in UNIT_CASES:
        with MeasurementFile(measurement(CASES[name], reuse=True)) as file:
            problem = build_problem(file, None, torch.device("cpu"))
        truth = torch.from_numpy(np.abs(problem.ground_truth)).reshape(problem.x_shape[0], -1)
        truth_scale = torch.quantile(truth, 0.99, dim=1)
        pnp_scale = slice_scale(problem.initial())
        dds_scale = robust_scale(quick_tv(problem))
        volume_q99 = float(torch.quantile(truth.flatten()[:: max(1, truth.numel() // 1_000_000)], 0.99))
        ratio = pnp_scale / truth_scale
        rows.append({"part": "unit", "case": name, "pnp_ratio": float(ratio.median()),
                     "pnp_ratio_range": [float(ratio.min()), float(ratio.max())],
                     "dds_ratio": dds_scale / volume_q99, "truth_max": float(truth.max()) / volume_q99})
        print(f"{name}: pnp/lpn scale {rows[-1]['pnp_ratio']:.2f} x truth, dds {rows[-1]['dds_ratio']:.2f} x truth",
              flush=True)
    image = normalised(head_ct("693_UNCR.dcm", 128))
    for prior in REAL_PRIORS:
        apply = denoiser(prior)
        for amplitude in AMPLITUDES:
            noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(5))
            estimate = apply(amplitude * (image + 0.05 * noise), 0.05 * amplitude) / amplitude
            rows.append({"part": "amplitude", "image": "693_UNCR 128", "prior": prior, "amplitude": amplitude,
                         "sigma": 0.05, "psnr": psnr(estimate, image)})
    return rows


def unit_tables(rows: list[dict]) -> str:
    lines = ["| case | pnp-admm / lpn scale / truth's (median over slices, range) | dds scale / truth's | "
             "truth max in the normalised unit |", "|---|---|---|---|"]
    for r in (r for r in rows if r["part"] == "unit"):
        low, high = r["pnp_ratio_range"]
        lines.append(f"| {r['case']} | {r['pnp_ratio']:.2f} ({low:.2f} - {high:.2f}) | {r['dds_ratio']:.2f} | "
                     f"{r['truth_max'] / r['dds_ratio']:.2f} |")
    lines += ["", "| prior (693_UNCR 128, noise 0.05 a) | " + " | ".join(f"a = {a:g}" for a in AMPLITUDES) + " |",
              "|---|" + "---|" * len(AMPLITUDES)]
    for prior in dict.fromkeys(r["prior"] for r in rows if r["part"] == "amplitude"):
        values = {r["amplitude"]: r["psnr"] for r in rows if r["part"] == "amplitude" and r["prior"] == prior}
        lines.append(f"| {prior} | " + " | ".join(f"{values[a]:.2f}" for a in AMPLITUDES) + " |")
    return "\n".join(lines)


def slice_problem(name: str, image: np.ndarray, views: int):
    """A one-slice CT problem of ``image`` (1, ny, nx) at ``views`` views, 1 % noise, read back from its file."""
    from recon.simulate import simulate_ct_parallel

    FOLDER.mkdir(parents=True, exist_ok=True)
    datasets, attrs = simulate_ct_parallel(image, views, noise_std=0.01, rng=np.random.default_rng(7))
    return measured_problem(FOLDER / f"{name}-ct{views}.h5", "ct-parallel/1", datasets, attrs, torch.device("cpu"))


def run(problem, name: str, params: dict, emulate: dict | None = None, trace: bool = False,
        prior: str | None = None) -> dict:
    """PSNR and time of one method on ``problem`` (``emulate``: see scripts/bench_learned_priors.py); ``trace``: also
    the PSNR of every lpn iterate (one slice: the iterate times the slice's scale)."""
    from recon.methods import RunContext, get_method
    from recon.metrics import quality
    from recon.priors.lpn import LPNPrior

    method = get_method(name)
    iterates: list[torch.Tensor] = []
    prox = LPNPrior.prox
    record = mock.patch.object(LPNPrior, "prox", lambda self, x, tau=1.0: iterates.append(prox(self, x, tau))
                               or iterates[-1]) if trace else contextlib.nullcontext()
    torch.manual_seed(0)
    began = time.perf_counter()
    with record, emulated(name, emulate or {}), torch.no_grad():  # the box (emulated) wraps the recorded prox
        result = method.solve(problem, method.parse_params(params, prior=prior), RunContext(device=problem.device))
    elapsed = time.perf_counter() - began
    row = {"psnr": quality(problem.to_output(result.x)["reconstruction"], problem.ground_truth)["psnr"],
           "seconds": elapsed}
    if trace and iterates:
        box = (lambda z: z.clamp(0.0, float(emulate["box"]))) if emulate else (lambda z: z)
        scale = float(torch.linalg.vector_norm(result.x) / torch.linalg.vector_norm(box(iterates[-1])))
        row["trace"] = [quality(problem.to_output(box(z) * scale)["reconstruction"], problem.ground_truth)["psnr"]
                        for z in iterates]
        row["residual"] = [float(v) for v in result.history["residual"]]
    return row


LPN_SETTINGS = (
    ("defaults (rho 1.05, tau 0.05)", {}, None),
    ("tau 1, rho 0.05", {"tau": 1.0, "rho": 0.05}, None),
    ("tau 1, rho 0.02", {"tau": 1.0, "rho": 0.02}, None),
    ("tau 1, rho 0.05, box [0, 2]", {"tau": 1.0, "rho": 0.05}, {"box": 2.0}),
    ("tau 1, rho 0.02, box [0, 2]", {"tau": 1.0, "rho": 0.02}, {"box": 2.0}),
)
TRACE_AT = (10, 30, 100, 200, 300)


def part_lpn() -> list[dict]:
    rows = []
    for image_name, image, held_out in (("693_UNCR 128", head_ct("693_UNCR.dcm", 128), True),
                                        ("CT_small 128 (training)", ct_small(), False)):
        problem = slice_problem(image_name.split()[0], image, 16)
        for label in ("tv", "pnp-admm"):
            rows.append({"part": "lpn", "image": image_name, "held_out": held_out, "setting": label,
                         **run(problem, label, {})})
        for label, params, box in LPN_SETTINGS:
            row = run(problem, "lpn", {**params, "iterations": max(TRACE_AT)}, {"box": box["box"]} if box else None,
                      trace=True)
            rows.append({"part": "lpn", "image": image_name, "held_out": held_out, "setting": label, **row})
            print(f"{image_name} lpn {label}: " + ", ".join(f"{k} it {row['trace'][k - 1]:.2f}" for k in TRACE_AT),
                  flush=True)
    return rows


def lpn_table(rows: list[dict]) -> str:
    lines = ["| image (16 views) | setting | prior weight rho tau sigma_t^2 | " + " | ".join(
        f"{k} it" for k in TRACE_AT) + " | residual rises | time (s) |", "|---|---|---|" + "---|" * (len(TRACE_AT) + 2)]
    for r in (r for r in rows if r["part"] == "lpn"):
        if "trace" not in r:
            lines.append(f"| {r['image']} | {r['setting']} (defaults) | | {r['psnr']:.2f} (final) |"
                         + " |" * (len(TRACE_AT) - 1) + f" | {r['seconds']:.1f} |")
            continue
        setting = dict(LPN_SETTINGS_BY_LABEL[r["setting"]])
        weight = setting.get("rho", 1.05) * setting.get("tau", 0.05) * 0.05**2
        rises = int(np.sum(np.diff(r["residual"]) > 0))
        lines.append(f"| {r['image']} | lpn {r['setting']} | {weight:.1e} | " + " | ".join(
            f"{r['trace'][k - 1]:.2f}" for k in TRACE_AT) + f" | {rises} | {r['seconds']:.1f} |")
    return "\n".join(lines)


LPN_SETTINGS_BY_LABEL = {label: params for label, params, _ in LPN_SETTINGS}

DDS_SETTINGS = (
    ("start 1 (pure noise; the paper's)", "diffusion-ct", {"start": 1.0, "init": "tv"}),
    ("start 1, diffusion-mri prior", "diffusion-mri", {"start": 1.0, "init": "tv"}),
    ("start 0.3 from quick TV", "diffusion-ct", {"start": 0.3, "init": "tv"}),
    ("start 0.1 from quick TV", "diffusion-ct", {"start": 0.1, "init": "tv"}),
    ("start 0.3 from pnp-admm", "diffusion-ct", {"start": 0.3, "init": "pnp-admm"}),
    ("start 0.1 from pnp-admm", "diffusion-ct", {"start": 0.1, "init": "pnp-admm"}),
    ("start 0.05 from pnp-admm", "diffusion-ct", {"start": 0.05, "init": "pnp-admm"}),
    ("start 0.02 from pnp-admm (the CT default)", "diffusion-ct", {"start": 0.02, "init": "pnp-admm"}),
    ("start 0.05 from pnp-admm, diffusion-mri prior", "diffusion-mri", {"start": 0.05, "init": "pnp-admm"}),
)


def start_noise(start: float) -> float:
    """The noise std (recon's normalised unit) of dds's first x_t at ``start``: sqrt((1 - abar) / abar) / 2 at
    t = start (T - 1) (the model unit is 2 x - 1)."""
    from recon.models.diffusion import DiffusionConfig, alphas_cumprod

    abar = alphas_cumprod(DiffusionConfig())
    value = float(abar[round(start * (len(abar) - 1))])
    return 0.5 * math.sqrt((1 - value) / value)


def part_dds() -> list[dict]:
    rows = []
    for image_name, image, held_out in (("693_UNCR 128", head_ct("693_UNCR.dcm", 128), True),
                                        ("CT_small 128 (training)", ct_small(), False)):
        for views in (8, 16):
            problem = slice_problem(image_name.split()[0], image, views)
            for label in ("tv", "pnp-admm"):
                rows.append({"part": "dds", "image": image_name, "views": views, "setting": label,
                             **run(problem, label, {})})
            for label, prior, params in DDS_SETTINGS:
                row = run(problem, "dds", params, prior=prior)
                rows.append({"part": "dds", "image": image_name, "held_out": held_out, "views": views,
                             "setting": label, **row})
                print(f"{image_name} {views} views dds {label}: {row['psnr']:.2f} dB", flush=True)
    return rows


def dds_table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys((r["image"], r["views"]) for r in rows if r["part"] == "dds"))
    starts = {label: params["start"] for label, _, params in DDS_SETTINGS}
    lines = ["| setting | noise of the first x_t | " + " | ".join(f"{image}, {views} views" for image, views in keys)
             + " |", "|---|---|" + "---|" * len(keys)]
    for setting in dict.fromkeys(r["setting"] for r in rows if r["part"] == "dds"):
        values = {(r["image"], r["views"]): r["psnr"] for r in rows if r["part"] == "dds" and r["setting"] == setting}
        noise = f"{start_noise(starts[setting]):.3g}" if setting in starts else "-"
        lines.append(f"| {setting} | {noise} | " + " | ".join(f"{values[k]:.2f}" if k in values else "-" for k in keys)
                     + " |")
    return "\n".join(lines)


PARTS = {"denoise": (part_denoise, denoise_table), "unit": (part_unit, unit_tables), "lpn": (part_lpn, lpn_table),
         "dds": (part_dds, dds_table)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="*", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    stored = json.loads(args.out.read_text()) if args.out.exists() else []
    for part in args.parts:
        make, table = PARTS[part]
        rows = make()
        stored = [r for r in stored if r["part"] not in {r["part"] for r in rows}] + rows
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"\n{table(rows)}\n", flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
