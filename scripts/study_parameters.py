"""Study: parameters chosen from the data (recon.parameter_choice) against today's fixed defaults and the oracle.

    .venv/bin/python scripts/study_parameters.py accuracy                  # noise estimators: known vs estimated
    .venv/bin/python scripts/study_parameters.py accuracy --reuse          # its table again, from the JSON
    .venv/bin/python scripts/study_parameters.py methods [--cases ...] [--methods ...] [--quick]
    .venv/bin/python scripts/study_parameters.py table                     # the markdown tables from the JSON

Images never used for training or tuning: pydicom-data's 693_UNCR head CT slice and axial slices of Colin27
(mricron-data's ch2.nii.gz; apt-get install mricron-data), resized to SIZE^2 (128; 64 with --quick). CT images are
attenuation per pixel: relative-to-water values (HU + 1000) / 1000 (Colin27: scaled to its 0.99 quantile 1) times
water's 0.0192 / mm and the 693_UNCR pixel at this size (1.91 mm at 128^2), so that low-dose Poisson counts are
physical. Cases (``--cases``, names as listed by ``--list``):

- CT (ct-parallel): 693_UNCR and Colin27 slice 80 at 30, 60, 120 views over 180 degrees, Gaussian noise of 0.3 %,
  1 %, 3 % (``recon simulate --noise-std``) or Poisson counts of I0 = POISSON_PHOTONS per bin (``--photons``);
  ``ct-uncr-100-lowdose``: the issue's low-dose case (100 views, I0 = LOWDOSE_PHOTONS; ``lowdose1000``: I0 1e3);
- MRI (mri-cartesian): Colin27 slice 100, 8 coils (true maps stored), 4x and 8x uniform 1D masks, 0.3 / 1 / 3 %;
- ten times the tuning noise (FAR_LEVELS): ``ct-uncr-30-g10`` and ``mri-colin-4x-g10``. ``--quick`` runs QUICK_CASES
  at 64^2 (the tuning level, 0.3 % and 10 %).

Files are written without ``noise_std`` (Poisson files keep ``photons``), so every rule runs on the estimated noise
level, as it would on a user's file. Per case and method, with every other parameter at its default:

- default: today's fixed value;
- auto: the rule (discrepancy search for tv's lam, pnp-admm's and pnp-pgd's sigma, red's lam, lpn's tau from the
  default with factor-4 bracketing and regula falsi to 5 %; the discrepancy stop for cgls' iterations; dds' gamma
  scaled from its default by the relative noise); every evaluation is a full solve from scratch; where the
  method's parameter takes ``auto`` (tv, cgls, pnp-admm, red) the method is also run with it ("in the method":
  warm-started, as a user runs it); ``--sure`` also runs MC-SURE (golden search, two solves per evaluation) for
  the denoiser methods;
- oracle: hill-climbing on PSNR against the ground truth from the best value evaluated so far, by factors 2 then
  sqrt(2) (cgls: on a geometric grid of iteration counts).

Writes bench_results/study_parameters.json (one row per case and method, rewritten after each) and prints the
tables. Timings are 1 torch thread (``--threads``), on whatever else the machine runs. ``--reuse`` keeps the
solves of an earlier run (a change of tau then costs only the solves at new values).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recon.errors import UserError
from recon.io.measurement import MeasurementFile, write_measurement
from recon.methods import RunContext, get_method
from recon.methods.classical import CGLS_ITERATIONS, TV_LAM
from recon.methods.plug_and_play import PNP_ADMM_SIGMA
from recon.metrics import quality
from recon.noise import estimate_noise, poisson_photons, relative_noise
from recon.parameter_choice import (
    SEARCH_START_EXPONENT,
    TAU,
    discrepancy_search,
    discrepancy_stop,
    golden_search,
    mc_sure,
    noise_scaled,
)
from recon.params import AUTO
from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian

ROOT = Path(__file__).resolve().parent.parent
COLIN27 = Path("/usr/share/mricron/templates/ch2.nii.gz")
WATER_PER_MM = 0.0192
UNCR_PIXEL_MM = 0.478516 * 512
"""693_UNCR's field of view in mm (512 pixels of 0.4785 mm): a pixel of an N^2 resize is this / N."""
CT_SMALL_MM = 0.661468 * 128
"""CT_small's field of view in mm."""
POISSON_PHOTONS = 2e4
LOWDOSE_PHOTONS = 5e3
CT_LEVELS = {"g0.3": 0.003, "g1": 0.01, "g3": 0.03, "poisson": None}
MRI_LEVELS = {"g0.3": 0.003, "g1": 0.01, "g3": 0.03}
FAR_LEVELS = {"g10": 0.1}
"""Noise ten times the 1 % every default was tuned at (cases at 30 views and 4x only)."""
QUICK_CASES = ["ct-uncr-30-g1", "mri-colin-4x-g1", "ct-uncr-30-g0.3", "mri-colin-4x-g0.3", "ct-uncr-30-g10",
               "mri-colin-4x-g10"]
"""``--quick``'s cases: the tuning level (where auto must not lose to the fixed default) and 3x and 10x off it."""
ACCURACY_LEVELS = (0.001, 0.003, 0.01, 0.03, 0.1)
ACCURACY_PHOTONS = (1e3, 1e4, 1e5)

PARAMETER = {"tv": "lam", "cgls": "iterations", "pnp-admm": "sigma", "pnp-pgd": "sigma", "red": "lam",
             "lpn": "tau", "dds": "gamma"}
"""The parameter each method's rule sets (the rest stay at their defaults)."""
BOUNDS = {"lam": (1e-7, 10.0), "sigma": (1e-3, 1.0), "tau": (1e-3, 1.0), "gamma": (0.1, 1e4)}
DENOISER_METHODS = ("pnp-admm", "pnp-pgd", "red", "lpn")
FIXED = {"tv": TV_LAM.get, "cgls": lambda spec: CGLS_ITERATIONS, "pnp-admm": PNP_ADMM_SIGMA.get}
"""The fixed defaults that ``auto`` replaced, per method (a function of the spec)."""
CGLS_MAX = 300
"""Iterations cgls' discrepancy stop may use."""


@dataclass(frozen=True)
class Case:
    name: str
    spec: str
    image: str
    views_or_acceleration: int
    level: str


def case_list() -> list[Case]:
    cases = [Case(f"ct-{image}-{views}-{level}", "ct-parallel/1", image, views, level)
             for image in ("uncr", "colin") for views in (30, 60, 120) for level in CT_LEVELS]
    cases += [Case(f"ct-uncr-30-{level}", "ct-parallel/1", "uncr", 30, level) for level in FAR_LEVELS]
    cases.append(Case("ct-uncr-100-lowdose", "ct-parallel/1", "uncr", 100, "lowdose"))
    cases.append(Case("ct-uncr-100-lowdose1000", "ct-parallel/1", "uncr", 100, "lowdose1000"))
    cases += [Case(f"mri-colin-{r}x-{level}", "mri-cartesian/1", "colin", r, level) for r in (4, 8) for level in
              MRI_LEVELS]
    cases += [Case(f"mri-colin-4x-{level}", "mri-cartesian/1", "colin", 4, level) for level in FAR_LEVELS]
    # calibration of the rules' constants on a training image (pydicom's CT_small), never the study's images
    cases += [Case(f"train-ct-small-{views}-{level}", "ct-parallel/1", "small", views, level)
              for views in (30, 60, 120) for level in CT_LEVELS]
    cases += [Case(f"train-mri-small-{r}x-{level}", "mri-cartesian/1", "small", r, level) for r in (4, 8)
              for level in MRI_LEVELS]
    return cases


def resized(image: np.ndarray, size: int) -> np.ndarray:
    from skimage.transform import resize

    return resize(image.astype(np.float32), (size, size), anti_aliasing=True).astype(np.float32)


def dicom_water(name: str, size: int) -> np.ndarray:
    """pydicom test file ``name`` relative to water, (HU + 1000) / 1000 clipped at 0, resized to (size, size)."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    dataset = dcmread(get_testdata_file(name))
    hu = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    return resized(np.maximum(hu + 1000.0, 0.0) / 1000.0, size)


def head_ct(size: int) -> np.ndarray:
    """693_UNCR as attenuation per pixel (see the module), (size, size)."""
    return dicom_water("693_UNCR.dcm", size) * WATER_PER_MM * UNCR_PIXEL_MM / size


def ct_small(size: int) -> np.ndarray:
    """pydicom's CT_small.dcm (a training image) relative to water, (size, size)."""
    return dicom_water("CT_small.dcm", size)


def colin27(index: int, size: int) -> np.ndarray:
    """Axial slice ``index`` of Colin27, resized, scaled to its 0.99 quantile 1."""
    import nibabel

    if not COLIN27.exists():
        raise SystemExit(f"{COLIN27} is missing: apt-get install mricron-data")
    image = resized(np.asanyarray(nibabel.load(COLIN27).dataobj)[:, :, index].T[::-1], size)
    return image / np.quantile(image, 0.99)


def simulate(case: Case, size: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(sum(map(ord, case.name)))
    if case.spec == "ct-parallel/1":
        image = {"uncr": head_ct, "colin": lambda n: colin27(80, n) * WATER_PER_MM * UNCR_PIXEL_MM / n,
                 "small": lambda n: ct_small(n) * WATER_PER_MM * CT_SMALL_MM / n}[case.image](size)
        if case.level.startswith(("poisson", "lowdose")):
            photons = {"poisson": POISSON_PHOTONS, "lowdose": LOWDOSE_PHOTONS, "lowdose1000": 1e3}[case.level]
            return simulate_ct_parallel(image, case.views_or_acceleration, photons=photons, rng=rng)
        return simulate_ct_parallel(image, case.views_or_acceleration, noise_std={**CT_LEVELS, **FAR_LEVELS}[
            case.level], rng=rng)
    image = colin27(100, size) if case.image == "colin" else ct_small(size) / np.quantile(ct_small(size), 0.99)
    return simulate_mri_cartesian(image[None], 8, float(case.views_or_acceleration), "uniform1d",
                                  noise_std={**MRI_LEVELS, **FAR_LEVELS}[case.level], with_coil_maps=True, rng=rng)


def load(case: Case, folder: Path, size: int):
    """(problem, noise estimate, true noise norm, relative noise) of a case's file, written without noise_std."""
    from recon.problems import build_problem

    datasets, attrs = simulate(case, size)
    clean, _ = (simulate_ct_parallel(datasets["ground_truth"], case.views_or_acceleration)
                if case.spec == "ct-parallel/1" else (None, None))
    path = folder / f"{case.name}.h5"
    true_std = attrs.pop("noise_std", None)
    write_measurement(path, case.spec, datasets, attrs, overwrite=True)
    with MeasurementFile(path) as measurement:
        problem = build_problem(measurement, None, torch.device("cpu"))
        noise = estimate_noise(measurement)
    if clean is not None:
        true_norm = float(np.linalg.norm(datasets["sinogram"].astype(np.float64) - clean["sinogram"]))
        relative = true_norm / math.sqrt(clean["sinogram"].size) / math.sqrt(np.mean(clean["sinogram"] ** 2))
    else:
        true_norm = true_std * math.sqrt(np.count_nonzero(datasets["kspace"]))
        relative = {**MRI_LEVELS, **FAR_LEVELS}[case.level]
    return problem, noise, true_norm, relative


class Evaluator:
    """Full solves of one method on one problem, cached by parameter value: PSNR, residual norm, seconds."""

    def __init__(self, problem, method: str):
        self.problem, self.method = problem, get_method(method)
        self.parameter = PARAMETER[method]
        self.results: dict[float, dict] = {}

    def params(self, value) -> dict:
        return self.method.parse_params({} if value is None else {self.parameter: value})

    def solve(self, value, problem=None) -> torch.Tensor:
        torch.manual_seed(0)
        return self.method.solve(problem or self.problem, self.params(value), RunContext()).x

    def __call__(self, value) -> dict:
        for known in self.results:
            if abs(math.log(known / value)) < 1e-9:
                return self.results[known]
        began = time.perf_counter()
        x = self.solve(value)
        seconds = time.perf_counter() - began
        problem = self.problem
        residual = float(torch.linalg.vector_norm(problem.physics.A(x) - problem.y))
        psnr = quality(problem.to_output(x)["reconstruction"], problem.ground_truth)["psnr"]
        self.results[value] = {"value": value, "psnr": psnr, "residual": residual, "seconds": seconds}
        return self.results[value]

    def default(self):
        """The fixed default of the parameter on this problem (per-spec and data-dependent defaults as the method
        resolves them; for an ``auto`` default, the fixed value it replaced: FIXED)."""
        value = self.method.resolve(self.params(None), self.problem)[self.parameter]
        return FIXED[self.method.name](self.problem.spec) if value == AUTO else value

    def declares_auto(self) -> bool:
        """Whether the method's parameter takes ``auto`` (the rule is wired into the method)."""
        return any(p.name == self.parameter and p.auto for p in self.method.params)

    def integrated(self) -> dict:
        """The method run with ``--set PARAMETER=auto`` (warm-started, as a user runs it): PSNR, seconds, and the
        value its rule chose."""
        torch.manual_seed(0)
        began = time.perf_counter()
        result = self.method.solve(self.problem, self.params(AUTO), RunContext())
        seconds = time.perf_counter() - began
        psnr = quality(self.problem.to_output(result.x)["reconstruction"], self.problem.ground_truth)["psnr"]
        chosen = result.extras["params"]
        return {"value": chosen[self.parameter], "psnr": psnr, "seconds": seconds,
                "rule": chosen.get(f"{self.parameter}_rule", "fixed")}


def with_measurements(problem, y: torch.Tensor):
    """The problem with measurements ``y`` (its first estimate recomputed from them): for MC-SURE's probe."""
    import dataclasses

    first = problem.physics.fbp if problem.spec == "ct-parallel/1" else problem.physics.A_adjoint
    return dataclasses.replace(problem, y=y, initial=lambda: first(y))


def oracle(evaluate: Evaluator, integer: bool = False) -> dict:
    """Hill-climb on PSNR from the best evaluated value by factors 2, then sqrt(2)."""
    low, high = BOUNDS.get(evaluate.parameter, (1, 10 * CGLS_MAX))
    best = max(evaluate.results.values(), key=lambda r: r["psnr"])["value"]
    for factor in (2.0, math.sqrt(2.0)):
        while True:
            for value in (best * factor, best / factor):
                value = round(value) if integer else value
                if low <= value <= high:
                    evaluate(value)
            new = max(evaluate.results.values(), key=lambda r: r["psnr"])["value"]
            if new == best:
                break
            best = new
    return evaluate.results[best]


def run_cgls(evaluate: Evaluator, noise, tau: float) -> dict:
    """cgls: the discrepancy stop on one run's residual history, then the oracle on a grid of iteration counts."""
    from recon.solvers.least_squares import cgls

    problem = evaluate.problem
    began = time.perf_counter()
    _, history = cgls(problem.physics, problem.y, problem.zeros(), CGLS_MAX)
    seconds = time.perf_counter() - began
    y_norm = float(torch.linalg.vector_norm(problem.y))
    stop = int(discrepancy_stop(np.asarray(history) * y_norm, tau * noise.norm))
    auto = evaluate(stop)
    for k in sorted({int(round(1.5**j)) for j in range(16)} | {20}):
        evaluate(k)
    best = oracle(evaluate, integer=True)
    # integrated: the run stops at the chosen iteration, so it costs one solve at the chosen value
    return {"auto": {**auto, "rule": f"discrepancy stop, tau {tau}", "evaluations": 1,
                     "prototype_seconds": seconds + auto["seconds"], "integrated_solves": 1.0},
            "oracle": best}


def run_search(evaluate: Evaluator, noise, relative: float, tau: float) -> dict:
    """A discrepancy search from the noise-scaled default (full solves), then the oracle; ``relative``: the
    relative noise level of the estimate."""
    low, high = BOUNDS[evaluate.parameter]
    start = noise_scaled(evaluate.default(), relative, SEARCH_START_EXPONENT)
    choice = discrepancy_search(lambda v, warm: (None, evaluate(v)["residual"], None), tau * noise.norm,
                                start, low=low, high=high, max_evaluations=8)
    spent = sum(evaluate(value)["seconds"] for value, _ in choice.evaluations)  # each a full solve
    auto = {**evaluate(choice.value), "rule": f"discrepancy search, tau {tau}", "reached": choice.reached,
            "evaluations": len(choice.evaluations), "prototype_seconds": spent}
    return {"auto": auto, "oracle": oracle(evaluate)}


def run_sure(evaluate: Evaluator, noise) -> dict:
    """MC-SURE of the predicted risk minimised by golden search over [default / 8, default * 8] (log)."""
    problem = evaluate.problem
    variance = noise.std**2 / (2 if problem.complex_image else 1)
    generator = torch.Generator().manual_seed(0)
    began = time.perf_counter()

    def score(value: float) -> float:
        def forward(y):
            return problem.physics.A(evaluate.solve(value, with_measurements(problem, y)))

        generator.manual_seed(0)  # the same probe for every value: a smooth score
        return -mc_sure(forward, problem.y, variance, generator=generator)

    default = evaluate.default()
    best, scores = golden_search(score, default / 8, default * 8, ratio=1.3, max_evaluations=8)
    return {**evaluate(best), "rule": "MC-SURE (one probe), golden search", "evaluations": 2 * len(scores),
            "prototype_seconds": time.perf_counter() - began}


def run_method(case: Case, name: str, problem, noise, true_norm: float, relative: float, sure: bool,
               known: list[dict] = ()) -> dict:
    """One row of the study; ``known``: solves of an earlier run (value, psnr, residual, seconds) to reuse."""
    evaluate = Evaluator(problem, name)
    evaluate.results.update({r["value"]: r for r in known})
    default = evaluate(evaluate.default())
    if name == "cgls":
        found = run_cgls(evaluate, noise, TAU[("cgls", problem.spec)])
    elif name == "dds":
        from recon.parameter_choice import NOISE_EXPONENT

        level = relative_noise(float(torch.linalg.vector_norm(problem.y)), noise.norm)
        value = noise_scaled(evaluate.default(), level, NOISE_EXPONENT["dds"])  # from the estimate, as a user's
        auto = evaluate(value)
        found = {"auto": {**auto, "rule": f"noise-scaled default, exponent {NOISE_EXPONENT['dds']}",
                          "evaluations": 1, "prototype_seconds": auto["seconds"], "integrated_solves": 1.0},
                 "oracle": oracle(evaluate)}
    else:
        found = run_search(evaluate, noise, relative_noise(float(torch.linalg.vector_norm(problem.y)), noise.norm),
                           TAU[(name, problem.spec)])
    row = {"case": case.name, "spec": case.spec, "method": name, "parameter": evaluate.parameter,
           "default": default, **found, "noise_std_estimated": noise.std, "noise_source": noise.source,
           "noise_norm_estimated": noise.norm, "relative_noise": relative,
           "oracle_discrepancy_ratio": found["oracle"]["residual"] / noise.norm,
           "oracle_ratio_true": found["oracle"]["residual"] / true_norm,
           "evaluated": sorted(evaluate.results.values(), key=lambda r: r["value"])}
    if sure and name in DENOISER_METHODS:
        row["sure"] = run_sure(evaluate, noise)
    if evaluate.declares_auto():  # the rule as the method runs it (warm-started)
        row["integrated"] = evaluate.integrated()
        row["integrated"]["time_ratio"] = row["integrated"]["seconds"] / max(
            evaluate(row["integrated"]["value"])["seconds"], 1e-9)
        print(f"{case.name:24s} {name:9s} integrated {row['integrated']['value']:.3g} "
              f"{row['integrated']['psnr']:.2f} (x{row['integrated']['time_ratio']:.1f} one solve at that value)")
    auto, best = row["auto"], row["oracle"]
    auto["time_ratio"] = auto["prototype_seconds"] / max(auto["seconds"], 1e-9)
    print(f"{case.name:24s} {name:9s} {evaluate.parameter} default {default['value']:.3g} {default['psnr']:.2f} | "
          f"auto {auto['value']:.3g} {auto['psnr']:.2f} ({auto['evaluations']} evals, x{auto['time_ratio']:.1f}) | "
          f"oracle {best['value']:.3g} {best['psnr']:.2f} | oracle residual / noise "
          f"{row['oracle_discrepancy_ratio']:.3f}", flush=True)
    return row


def accuracy(size: int, folder: Path) -> list[dict]:
    """Known vs estimated noise per spec and level (no reconstructions)."""
    rows = []

    def add(spec, image, setting, level, known, found):
        """One cell; ``found`` None where the estimator refuses the data (no calibration block, no corners)."""
        if found is None:
            print(f"{spec:16s} {image:6s} {setting:10s} {level:>8} known {known:.4g}: no estimate", flush=True)
            return
        rows.append({"spec": spec, "image": image, "setting": setting, "level": level, "known": known,
                     "estimated": found, "ratio": found / known})
        print(f"{spec:16s} {image:6s} {setting:10s} {level:>8} known {known:.4g} estimated {found:.4g} "
              f"ratio {found / known:.3f}", flush=True)

    images = {"uncr": head_ct(size), "colin": colin27(80, size) * WATER_PER_MM * UNCR_PIXEL_MM / size}
    for image_name, image in images.items():
        for views in (30, 60, 120):
            for level in ACCURACY_LEVELS:
                datasets, attrs = simulate_ct_parallel(image, views, noise_std=level, rng=np.random.default_rng(5))
                add("ct-parallel", image_name, f"{views} views", f"{100 * level:g} %", attrs["noise_std"],
                    estimated_std(folder, "ct-parallel/1", datasets, attrs))
            for photons in ACCURACY_PHOTONS:
                datasets, attrs = simulate_ct_parallel(image, views, photons=photons, rng=np.random.default_rng(5))
                add("ct-parallel", image_name, f"{views} views", f"I0 {photons:g}", photons,
                    poisson_photons(datasets["sinogram"]))
    for acceleration in (4, 8):
        for level in ACCURACY_LEVELS:
            datasets, attrs = simulate_mri_cartesian(colin27(100, size)[None], 8, float(acceleration), "uniform1d",
                                                     noise_std=level, rng=np.random.default_rng(5))
            add("mri-cartesian", "colin", f"{acceleration}x 8 coils", f"{100 * level:g} %", attrs["noise_std"],
                estimated_std(folder, "mri-cartesian/1", datasets, attrs))
    return rows


def warm_start(case: Case, size: int, folder: Path) -> list[dict]:
    """How many PDHG iterations a tv solve warm-started from the solution at another lam needs to match a cold
    300-iteration solve: the cost of each step of a warm-started discrepancy search. The warm problem's first
    estimate is the previous solution; tv's scale c then changes, so its lam is rescaled by c_cold / c_warm, which
    keeps the problem in x the same (the weight of TV in x units is lam * c)."""
    import dataclasses

    from recon.solvers.normalised import robust_scale

    problem, _, _, _ = load(case, folder, size)
    method = get_method("tv")
    c_cold = robust_scale(problem.initial())
    rows = []

    def score(x):
        return quality(problem.to_output(x)["reconstruction"], problem.ground_truth)["psnr"]

    for lam_from, lam_to in ((5e-5, 2e-4), (8e-4, 2e-4), (2e-4, 5e-4)):
        start = method.solve(problem, method.parse_params({"lam": lam_from}), RunContext()).x
        cold = score(method.solve(problem, method.parse_params({"lam": lam_to}), RunContext()).x)
        warm_problem = dataclasses.replace(problem, initial=lambda start=start: start)
        lam = lam_to * c_cold / robust_scale(start)
        for iterations in (25, 50, 100, 150):
            x = method.solve(warm_problem, method.parse_params({"lam": lam, "iterations": iterations}), RunContext()).x
            rows.append({"case": case.name, "lam_from": lam_from, "lam_to": lam_to, "iterations": iterations,
                         "psnr_warm": score(x), "psnr_cold_300": cold})
            print(rows[-1], flush=True)
    return rows


def estimated(folder: Path, spec: str, datasets: dict, attrs: dict):
    """The estimate from a file written without noise_std."""
    path = folder / "accuracy.h5"
    write_measurement(path, spec, datasets, {k: v for k, v in attrs.items() if k != "noise_std"}, overwrite=True)
    with MeasurementFile(path) as measurement:
        return estimate_noise(measurement)


def estimated_std(folder: Path, spec: str, datasets: dict, attrs: dict) -> float | None:
    """The estimated std, or None where the estimator refuses the data."""
    try:
        return estimated(folder, spec, datasets, attrs).std
    except UserError:
        return None


def tables(rows: list[dict]) -> str:
    """The study's rows (auto, default, oracle), their summary per method, and the calibration rows (train-*: the
    oracle's residual / noise, from which tau was taken)."""
    study = [r for r in rows if not r["case"].startswith("train-")]
    lines = ["| case | method | param | default | auto | oracle | auto - oracle | auto - default | evaluations | "
             "time / one solve | oracle resid / noise |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in study:
        auto, default, best = r["auto"], r["default"], r["oracle"]
        sure = f"; SURE {r['sure']['value']:.3g}: {r['sure']['psnr']:.2f}" if "sure" in r else ""
        if "integrated" in r:
            sure += f"; in the method {r['integrated']['value']:.3g}: {r['integrated']['psnr']:.2f}"
        lines.append(f"| {r['case']} | {r['method']} | {r['parameter']} | "
                     f"{default['value']:.3g}: {default['psnr']:.2f} | {auto['value']:.3g}: {auto['psnr']:.2f}{sure} | "
                     f"{best['value']:.3g}: {best['psnr']:.2f} | "
                     f"{auto['psnr'] - best['psnr']:+.2f} | {auto['psnr'] - default['psnr']:+.2f} | "
                     f"{auto['evaluations']} | {auto.get('integrated_solves', auto['time_ratio']):.1f} | "
                     f"{r['oracle_discrepancy_ratio']:.3f} |")
    lines += ["", "| method | cases | auto within 1 dB of oracle | auto >= default - 0.3 dB | mean auto - oracle | "
              "mean auto - default | evaluations (median, max) | time / one solve (max) |",
              "|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in study):
        mine = [r for r in study if r["method"] == method]
        gap = [r["auto"]["psnr"] - r["oracle"]["psnr"] for r in mine]
        gain = [r["auto"]["psnr"] - r["default"]["psnr"] for r in mine]
        evaluations = [r["auto"]["evaluations"] for r in mine]
        time_ratio = max(r["auto"].get("integrated_solves", r["auto"]["time_ratio"]) for r in mine)
        lines.append(f"| {method} | {len(mine)} | {sum(g >= -1 for g in gap)}/{len(mine)} | "
                     f"{sum(g >= -0.3 for g in gain)}/{len(mine)} | {np.mean(gap):+.2f} | {np.mean(gain):+.2f} | "
                     f"{np.median(evaluations):g}, {max(evaluations)} | {time_ratio:.1f} |")
    lines += ["", "| calibration case (CT_small) | method | oracle | oracle resid / noise |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['method']} | {r['oracle']['value']:.3g}: {r['oracle']['psnr']:.2f} | "
              f"{r['oracle_discrepancy_ratio']:.3f} |" for r in rows if r["case"].startswith("train-")]
    return "\n".join(lines)


def accuracy_table(rows: list[dict]) -> str:
    """Estimated / known, one row per spec, image and setting, one column per noise level (Gaussian: relative std;
    Poisson: the photon count I0 estimated from the data alone)."""
    levels = list(dict.fromkeys(r["level"] for r in rows))
    settings = list(dict.fromkeys((r["spec"], r["image"], r["setting"]) for r in rows))
    ratio = {(r["spec"], r["image"], r["setting"], r["level"]): r["ratio"] for r in rows}
    lines = ["| spec | image | setting | " + " | ".join(levels) + " |", "|---|---|---|" + "---|" * len(levels)]
    for key in settings:
        cells = [f"{ratio[(*key, level)]:.3f}" if (*key, level) in ratio else "" for level in levels]
        lines.append("| " + " | ".join(key) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("accuracy", "methods", "table", "warmstart"))
    parser.add_argument("--cases", nargs="*", help="case names or prefixes (default: all; see --list)")
    parser.add_argument("--methods", nargs="*", choices=list(PARAMETER), help="default: all (--quick: tv, cgls)")
    parser.add_argument("--sure", action="store_true", help="also MC-SURE for pnp-admm, pnp-pgd, red, lpn")
    parser.add_argument("--reuse", action="store_true", help="reuse the solves of earlier runs in --out (after a "
                        "change of the rules' constants only the new values are solved; times are the earlier ones)")
    parser.add_argument("--quick", action="store_true", help="small run: 64^2, QUICK_CASES (or --cases), tv and "
                        "cgls unless --methods")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="print the case names and stop")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_results" / "study_parameters.json")
    args = parser.parse_args()
    cases = case_list()
    if args.list:
        print("\n".join(c.name for c in cases))
        return
    torch.set_num_threads(args.threads)
    size = 64 if args.quick else args.size
    if args.quick:
        args.cases = args.cases or QUICK_CASES
        args.methods = args.methods or ["tv", "cgls"]
        args.out = args.out.with_name(args.out.stem + "_quick.json")
    args.methods = args.methods or list(PARAMETER)
    folder = ROOT / "bench_results" / "study_parameters"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"size": size, "threads": args.threads, "tau": {f"{m} {s}": t for (m, s), t in TAU.items()},
                "poisson_photons": POISSON_PHOTONS,
                "lowdose_photons": LOWDOSE_PHOTONS, "torch": torch.__version__}
    if args.part == "accuracy":
        if args.reuse:  # print the table of the last run
            print(accuracy_table(json.loads(args.out.with_name("noise_accuracy.json").read_text())["rows"]))
            return
        rows = accuracy(size, folder)
        out = args.out.with_name("noise_accuracy.json")
        out.write_text(json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n")
        print(accuracy_table(rows))
        return
    if args.part == "warmstart":
        rows = [row for name in (args.cases or ["ct-uncr-60-g1"]) for case in cases if case.name == name
                for row in warm_start(case, size, folder)]
        args.out.with_name("tv_warm_start.json").write_text(json.dumps({"settings": settings, "rows": rows}) + "\n")
        return
    previous = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    if args.part == "table":  # every methods run's JSON beside --out (runs in parallel write their own --out)
        rows = {(r["case"], r["method"]): r for path in sorted(args.out.parent.glob(args.out.stem + "*.json"))
                if not path.stem.endswith("_quick") for r in json.loads(path.read_text())["rows"]}
        print(tables(sorted(rows.values(), key=lambda r: (r["case"].startswith("train-"), r["case"]))))
        return
    chosen = [c for c in cases if not c.name.startswith("train-")]
    if args.cases:  # in the order given
        chosen = list({c.name: c for p in args.cases
                       for c in ([c for c in cases if c.name == p] or [c for c in cases if c.name.startswith(p)])
                       }.values())
    for case in chosen:
        problem, noise, true_norm, relative = load(case, folder, size)
        print(f"{case.name}: noise norm estimated {noise.norm:.4g} ({noise.source}), true {true_norm:.4g}, "
              f"relative noise {100 * relative:.2f} %", flush=True)
        for name in args.methods:
            if name in ("cgls",) or case.spec in get_method(name).specs:
                known = [e for r in previous if (r["case"], r["method"]) == (case.name, name) and args.reuse
                         for e in r["evaluated"]]
                row = run_method(case, name, problem, noise, true_norm, relative, args.sure, known)
                row["noise_norm_true"] = true_norm
                previous = [r for r in previous if (r["case"], r["method"]) != (case.name, name)] + [row]
                args.out.write_text(json.dumps({"settings": settings, "rows": previous}, indent=1) + "\n")
    print(tables([r for r in previous if any(r["case"] == c.name for c in chosen)]))


if __name__ == "__main__":
    main()
