"""Benchmark dds and lpn against fbp/adjoint, tv and pnp-admm at their defaults, through `recon reconstruct`.

    .venv/bin/python scripts/bench_learned_priors.py [--cases colin-ct8 ...] [--methods tv dds ...]
        [--set dds.start=0.3 --set lpn.rho=0.05 ...] [--emulate lpn.box=2 ...] [--weights-dir build/gpu]
        [--tuning] [--label NAME] [--device cpu|cuda] [--threads 1] [--in-process] [--reuse]

Held-out cases (the default; never used to train or tune any shipped prior or default), 1 % Gaussian noise:

- colin-ct8 / colin-ct16 / colin-ct30: 16 axial slices of the Colin27 head MRI (mricron-data, apt; every 3rd slice of
  the 0.5 mm template from 110, 128^2) used as an attenuation volume, the offline stand-in for a head CT volume (as
  scripts/bench_diffusion.py's ct8), 8 / 16 / 30 parallel views over 180 degrees;
- uncr-ct8 ... / skull-ct8 ... / abdomen-ct8 ...: real CT slices of pydicom's test files, Hounsfield units mapped to
  attenuation and resized to 256^2: 693_UNCR.dcm (head, pydicom-data), J2K_pixelrep_mismatch.dcm (head, padded
  outside its field of view) and explicit_VR-UN.dcm (abdomen); one slice each;
- colin-mri4x: 8 axial Colin27 slices (128^2, 5 mm apart), 8 coils, 4x uniform 1D mask with ACS (bench_diffusion's
  mri4x).

Tuning cases (``--tuning``; training images of the shipped priors, where defaults may be chosen): mni-ct8/16/30 (8
MNI152 template slices 128^2, 2 mm apart from slice 60 as scripts/tune_diffusion.py's volume, as attenuation; 8: the
fewest for which pnp-admm's prox is tri-planar, as on the held-out volumes), ctsmall-ct8/16/30 (pydicom's
CT_small, 128^2) and mni-mri4x (8 MNI152 slices, 8 coils, 4x). Test case: shepp-ct16 (Shepp-Logan 64^2, 16 views;
the GPU recipe's tiny CPU run).

Each row runs ``recon reconstruct FILE --method M [--set k=v ...] --seed 0`` as a subprocess (``--in-process``: the
same request through :func:`recon.pipeline.reconstruct` in this process, which skips the ~5 s start of each
process; the GPU recipe uses it) and reads the output file back: PSNR, SSIM, the method's own time (``elapsed_s``,
without the process start) and, for lpn, whether its fixed-point residual falls monotonically and whether its
output stays in the ground truth's range (within 10 % of that range on either side). ``--set METHOD.PARAM=VALUE``
passes parameters (``--gamma-rule C`` sets dds's gamma from each case's noise level, see :func:`effective_noise`);
``--weights-dir D`` gives pnp-admm, dds and lpn the weights D/{drunet,diffusion,lpn}-{ct,mri}
.safetensors where they exist (the GPU recipe's check of new weights against the shipped ones).

``--emulate`` stands in for behaviour the solvers do not have yet, in this process only (such rows say so in their
``via``), so that proposed defaults can be measured before they are built:

- ``lpn.box=HI``: the LPN's output clamped to [0, HI] in the normalised unit (magnitude <= HI for complex images) at
  every ADMM iteration: the box constraint of the LPN paper as an indicator added to the prior;
- ``dds.box=HI``: every data-consistent estimate of dds clamped to [0, HI] (normalised unit; magnitude for complex).

Prints every row and a summary table per case (the issue's table), writes bench_results/bench_learned_priors.json
(rows of earlier runs with other settings are kept, so runs before and after new defaults sit side by side); the
measurement and output files stay in bench_results/bench_learned_priors/ (``--folder``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_diffusion import simulate as colin27_case  # noqa: E402
from bench_priors import head_ct  # noqa: E402

RESULTS = ROOT / "bench_results"
FOLDER = RESULTS / "bench_learned_priors"
METHODS = {"ct-parallel/1": ("fbp", "tv", "pnp-admm", "dds", "lpn"),
           "mri-cartesian/1": ("adjoint", "tv", "pnp-admm", "dds", "lpn")}
LEARNED = {"pnp-admm": "drunet", "dds": "diffusion", "lpn": "lpn"}
"""Methods with shipped weights, and the family name of their files (FAMILY-ct / FAMILY-mri)."""
VIEWS = (8, 16, 30)
DICOM_SLICES = {"uncr": "693_UNCR.dcm", "skull": "J2K_pixelrep_mismatch.dcm", "abdomen": "explicit_VR-UN.dcm"}
RANGE_TOLERANCE = 0.1
"""An output is in range when it stays within the ground truth's [min, max] widened by this fraction of the range."""


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    """"held-out" (the benchmark), "tuning" (training images) or "test" (the GPU recipe's tiny CPU run)."""
    simulate: Callable[[], tuple]
    """() -> (spec, datasets, attrs), seeded."""


def ct_case(volume: Callable[[], np.ndarray], views: int) -> Callable[[], tuple]:
    def simulate() -> tuple:
        from recon.simulate import simulate_ct_parallel

        return "ct-parallel/1", *simulate_ct_parallel(volume(), views, noise_std=0.01, rng=np.random.default_rng(7))

    return simulate


def mri_case(volume: Callable[[], np.ndarray]) -> Callable[[], tuple]:
    def simulate() -> tuple:
        from recon.simulate import simulate_mri_cartesian

        return "mri-cartesian/1", *simulate_mri_cartesian(volume(), 8, 4.0, "uniform1d", noise_std=0.01,
                                                          rng=np.random.default_rng(7))

    return simulate


def mni_volume(slices: np.ndarray) -> Callable[[], np.ndarray]:
    def volume() -> np.ndarray:
        from tune_diffusion import mni152

        return mni152(slices)

    return volume


def ct_small() -> np.ndarray:
    """pydicom's CT_small.dcm as attenuation, (1, 128, 128), scaled to its 0.99 quantile 1 (a training image)."""
    from training_data import ct_small as attenuation

    image = attenuation()
    return (image / np.quantile(image, 0.99)).astype(np.float32)


def shepp_logan() -> np.ndarray:
    """scikit-image's Shepp-Logan phantom at (1, 64, 64): the test case of the GPU recipe's tiny run."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    return resize(shepp_logan_phantom(), (64, 64), anti_aliasing=True).astype(np.float32)[None]


def cases() -> dict[str, Case]:
    table = {}
    for views in VIEWS:
        table[f"colin-ct{views}"] = Case(f"colin-ct{views}", "held-out", lambda v=views: colin27_case(f"ct{v}", 16))
        for short, file in DICOM_SLICES.items():
            table[f"{short}-ct{views}"] = Case(f"{short}-ct{views}", "held-out",
                                               ct_case(lambda f=file: head_ct(f, 256), views))
    table["colin-mri4x"] = Case("colin-mri4x", "held-out", lambda: colin27_case("mri4x", 8))
    for views in VIEWS:
        table[f"mni-ct{views}"] = Case(f"mni-ct{views}", "tuning", ct_case(mni_volume(60 + 2 * np.arange(8)), views))
        table[f"ctsmall-ct{views}"] = Case(f"ctsmall-ct{views}", "tuning", ct_case(ct_small, views))
    table["mni-mri4x"] = Case("mni-mri4x", "tuning", mri_case(mni_volume(55 + 10 * np.arange(8))))
    table["shepp-ct16"] = Case("shepp-ct16", "test", ct_case(shepp_logan, 16))
    return table


CASES = cases()


def measurement(case: Case, reuse: bool, folder: Path = FOLDER) -> Path:
    """The case's measurement file in ``folder`` (written unless ``reuse`` and it exists)."""
    from recon.io.measurement import write_measurement

    path = folder / f"{case.name}.h5"
    if not (reuse and path.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        write_measurement(path, *case.simulate(), overwrite=True)
    return path


def spec_of(path: Path) -> str:
    from recon.io.measurement import MeasurementFile

    with MeasurementFile(path) as file:
        return file.spec.id


def weights_for(method: str, spec: str, folder: Path | None) -> dict[str, str]:
    """{"weights": FILE} when ``folder`` holds weights for this method and spec, else {}."""
    if folder is None or method not in LEARNED:
        return {}
    path = folder / f"{LEARNED[method]}-{'mri' if spec.startswith('mri') else 'ct'}.safetensors"
    return {"weights": str(path)} if path.exists() else {}


@contextlib.contextmanager
def emulated(method: str, emulate: dict[str, object]) -> Iterator[None]:
    """The ``--emulate`` behaviours of ``method`` (see the module) patched into this process for the duration."""
    from unittest import mock

    import torch

    import recon.solvers.diffusion as diffusion
    from recon.priors.lpn import LPNPrior

    unknown = set(emulate) - {"lpn": {"box"}, "dds": {"box"}}.get(method, set())
    if unknown:
        raise SystemExit(f"--emulate: nothing to emulate for {method}.{', '.join(sorted(unknown))}")

    def clamp(x: torch.Tensor, high: float) -> torch.Tensor:
        if x.shape[1] == 1:
            return x.clamp(0.0, high)
        magnitude = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        return x * (magnitude.clamp(max=high) / magnitude.clamp_min(1e-30))

    patches = []
    if method == "lpn" and "box" in emulate:
        prox, high = LPNPrior.prox, float(emulate["box"])
        patches.append(mock.patch.object(LPNPrior, "prox", lambda self, x, tau=1.0: clamp(prox(self, x, tau), high)))
    if method == "dds" and "box" in emulate:
        step, high = diffusion.DataStep.__call__, float(emulate["box"])
        patches.append(mock.patch.object(diffusion.DataStep, "__call__", lambda self, x0: clamp(step(self, x0), high)))
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield


def reconstruct(path: Path, method: str, params: dict, out: Path, device: str, threads: int, in_process: bool,
                emulations: dict) -> float:
    """Run one reconstruction into ``out``; returns the wall time (s) including the process start."""
    began = time.perf_counter()
    if in_process or emulations:
        from recon.pipeline import Request
        from recon.pipeline import reconstruct as run

        with emulated(method, emulations):
            run(Request(input=path, method=method, output=out, params=params,
                        device=device, seed=0, overwrite=True))
    else:
        command = [str(Path(sys.executable).with_name("recon")), "reconstruct", str(path), "--method", method,
                   "--out", str(out), "--overwrite", "--seed", "0", "--device", device,
                   *(item for k, v in params.items() for item in ("--set", f"{k}={v}"))]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        result = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return time.perf_counter() - began


def scores(out: Path, method: str) -> dict:
    """PSNR, SSIM, the method's time, and the lpn checks (residual monotone, output in range), from the output."""
    with h5py.File(out, "r") as file:
        image, truth = np.abs(file["reconstruction"][...]), file["ground_truth"][...]
        attrs = dict(file.attrs)
        history = {k: file["history"][k][...] for k in file.get("history", {})}
    low, high = float(truth.min()), float(truth.max())
    margin = RANGE_TOLERANCE * (high - low)
    row = {"psnr": float(attrs["psnr"]), "ssim": float(attrs["ssim"]), "seconds": float(attrs["elapsed_s"]),
           "min": float(image.min()) / high, "max": float(image.max()) / high,
           "in_range": bool(image.min() >= low - margin and image.max() <= high + margin)}
    if "residual" in history:
        residual = history["residual"]
        rises = int(np.sum(np.diff(residual) > 0))
        row.update(residual_first=float(residual[0]), residual_last=float(residual[-1]), residual_rises=rises,
                   monotone=rises == 0)
    return row


def effective_noise(path: Path) -> float:
    """sigma_eff = sigma_y / (s ||A||): the noise std of one real component of the measurements (the file's
    ``noise_std``; where it is unknown, a noise-level estimator's) in dds's normalised unit (s: the 0.99 quantile of
    its quick TV), carried into the image domain by the normalised operator: the noise level its data step sees.
    The proximal data step (I + gamma N) x = x0 + gamma b weighs the data against x0 as a MAP estimate does when
    gamma = s0^2 / sigma_eff^2, s0 the error of x0: hence the rule gamma = C / sigma_eff^2 (``--gamma-rule C``)."""
    import torch

    from recon.io.measurement import MeasurementFile
    from recon.problems import build_problem
    from recon.solvers.diffusion import quick_tv
    from recon.solvers.linalg import operator_sqnorm, robust_scale

    with MeasurementFile(path) as file:
        problem = build_problem(file, None, torch.device("cpu"))
        sigma = float(file.attrs["noise_std"]) / (math.sqrt(2) if problem.complex_image else 1.0)
    with torch.no_grad():
        return sigma / (robust_scale(quick_tv(problem)) * math.sqrt(operator_sqnorm(problem)))


def run_case(case: Case, args, settings: dict[str, dict], emulations: dict[str, dict]) -> list[dict]:
    path = measurement(case, args.reuse, args.folder)
    spec = spec_of(path)
    rows = []
    for name in METHODS[spec]:
        if args.methods and name not in args.methods:
            continue
        params = {**settings.get(name, {}), **weights_for(name, spec, args.weights_dir)}
        if name == "dds" and args.gamma_rule is not None and "gamma" not in params:
            params["gamma"] = f"{args.gamma_rule / effective_noise(path) ** 2:.4g}"
        emulate = emulations.get(name, {})
        out = args.folder / f"{case.name}.{name}.h5"
        if args.device.startswith("cuda"):  # a first, untimed run loads the weights and warms up cuDNN
            reconstruct(path, name, params, out, args.device, args.threads, args.in_process, emulate)
        wall = reconstruct(path, name, params, out, args.device, args.threads, args.in_process, emulate)
        via = ("in-process" if args.in_process or emulate else "recon reconstruct") + (
            f", emulated {json.dumps(emulate)}" if emulate else "")
        row = {"case": case.name, "group": case.group, "method": name, "settings": params,
               "emulate": {f"{name}.{k}": v for k, v in emulate.items()}, "label": args.label, "via": via,
               **scores(out, name), "wall": wall, "device": args.device, "threads": args.threads}
        rows.append(row)
        checks = (f"  residual {'monotone' if row['monotone'] else str(row['residual_rises']) + ' rises'}"
                  if "monotone" in row else "")
        print(f"{case.name:14s} {name:9s} {row['psnr']:6.2f} dB  SSIM {row['ssim']:.3f}  {row['seconds']:7.1f} s"
              f"  range [{row['min']:.2f}, {row['max']:.2f}]{checks}  {params or ''} {row['emulate'] or ''}",
              flush=True)
    return rows


def summary(rows: list[dict]) -> str:
    """The issue's table: PSNR per case and method, dds and lpn against tv, lpn's checks, times."""
    lines = ["| case | fbp/adjoint | tv | pnp-admm | dds | lpn | dds - tv | lpn - tv | lpn residual monotone, "
             "in range | time (s) tv / pnp-admm / dds / lpn |", "|---|---|---|---|---|---|---|---|---|---|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        by = {("fbp" if r["method"] == "adjoint" else r["method"]): r for r in rows if r["case"] == case}
        psnr = {name: f"{by[name]['psnr']:.2f}" if name in by else "-" for name in ("fbp", *LEARNED, "tv")}
        delta = {name: f"{by[name]['psnr'] - by['tv']['psnr']:+.2f}" if name in by and "tv" in by else "-"
                 for name in ("dds", "lpn")}
        lpn = by.get("lpn", {})
        checks = f"{'yes' if lpn.get('monotone') else 'no'}, {'yes' if lpn.get('in_range') else 'no'}" if lpn else "-"
        times = " / ".join(f"{by[n]['seconds']:.1f}" if n in by else "-" for n in ("tv", "pnp-admm", "dds", "lpn"))
        lines.append(f"| {case} | {psnr['fbp']} | {psnr['tv']} | {psnr['pnp-admm']} | {psnr['dds']} | {psnr['lpn']} "
                     f"| {delta['dds']} | {delta['lpn']} | {checks} | {times} |")
    return "\n".join(lines)


def latest(rows: list[dict], case: str, method: str, labels: list[str]) -> dict | None:
    """The last row of ``case`` and ``method`` under the first of ``labels`` that has one."""
    for label in labels:
        found = [r for r in rows if r["case"] == case and r["method"] == method and r["label"] == label]
        if found:
            return found[-1]
    return None


def cell(row: dict | None, tv: dict | None) -> str:
    """PSNR (difference to tv), time."""
    if row is None:
        return "-"
    delta = f" ({row['psnr'] - tv['psnr']:+.2f})" if tv is not None and row is not tv else ""
    return f"{row['psnr']:.2f}{delta}, {row['seconds']:.0f} s"


def comparison(rows: list[dict], labels: list[str]) -> str:
    """Rows of several runs side by side: per case, tv and pnp-admm (from the first label that has them) and each
    label's dds and lpn, as PSNR (difference to tv) and time."""
    columns = [(label, method) for label in labels for method in ("dds", "lpn")
               if any(r["label"] == label and r["method"] == method for r in rows)]
    lines = ["| case | tv | pnp-admm | " + " | ".join(f"{m}: {label}" for label, m in columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for case in dict.fromkeys(r["case"] for r in rows if r["label"] in labels):
        tv = latest(rows, case, "tv", labels)
        cells = [cell(tv, tv), cell(latest(rows, case, "pnp-admm", labels), tv),
                 *(cell(latest(rows, case, m, [label]), tv) for label, m in columns)]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def row_key(row: dict) -> str:
    return json.dumps([row["case"], row["method"], row["settings"], row["emulate"], row.get("label")], sort_keys=True)


def save(rows: list[dict], path: Path) -> None:
    """Add ``rows`` to the JSON at ``path``, replacing earlier rows of the same case, method, settings and label."""
    previous = json.loads(path.read_text()) if path.exists() else []
    keys = {row_key(r) for r in rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps([r for r in previous if row_key(r) not in keys] + rows, indent=1) + "\n")
    temporary.replace(path)


def by_method(items: list[str]) -> dict[str, dict[str, str]]:
    """``METHOD.PARAM=VALUE`` items as {method: {param: value}} (values as written, as ``--set`` takes them)."""
    from recon.params import parse_assignments

    settings: dict[str, dict[str, str]] = {}
    for key, value in parse_assignments(items).items():
        name, _, param = key.partition(".")
        settings.setdefault(name, {})[param] = value
    return settings


def parser() -> argparse.ArgumentParser:
    held_out = [name for name, case in CASES.items() if case.group == "held-out"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", choices=sorted(CASES), help=f"default: {' '.join(held_out)}")
    parser.add_argument("--tuning", action="store_true", help="the tuning cases (training images) instead")
    parser.add_argument("--methods", nargs="*", help="only these (default: all five of the spec)")
    parser.add_argument("--set", action="append", default=[], help="METHOD.PARAM=VALUE (repeatable)")
    parser.add_argument("--emulate", action="append", default=[], help="lpn.box=HI, dds.box=HI")
    parser.add_argument("--weights-dir", type=Path, help="weights FAMILY-{ct,mri}.safetensors to use instead")
    parser.add_argument("--label", default="", help="a name for this run's rows in the JSON (e.g. before, after)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--in-process", action="store_true", help="no subprocess per row (see the module)")
    parser.add_argument("--reuse", action="store_true", help="reuse the measurement files (a machine without the "
                        "data packages)")
    parser.add_argument("--compare", nargs="+", metavar="LABEL", help="run nothing: print the JSON's rows of these "
                        "labels side by side (before/after tables)")
    parser.add_argument("--prepare", action="store_true", help="only write the cases' measurement files (to carry "
                        "to a machine without the data packages, then --reuse there)")
    parser.add_argument("--minutes", type=float, help="start no new case after this many minutes")
    parser.add_argument("--gamma-rule", type=float, metavar="C", help="dds.gamma = C / sigma_eff^2 per case (see "
                        "effective_noise)")
    parser.add_argument("--json", type=Path, default=RESULTS / "bench_learned_priors.json")
    parser.add_argument("--folder", type=Path, default=FOLDER, help="for the measurement and output files")
    return parser


def main(argv: list[str] | None = None) -> list[dict]:
    args = parser().parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    names = args.cases or [n for n, c in CASES.items() if c.group == ("tuning" if args.tuning else "held-out")]
    settings, emulations = by_method(args.set), by_method(args.emulate)
    if args.compare:
        print(comparison(json.loads(args.json.read_text()), args.compare))
        return []
    if args.prepare:
        for name in names:
            print(f"wrote {measurement(CASES[name], args.reuse, args.folder)}")
        return []
    began, rows = time.perf_counter(), []
    for index, name in enumerate(names):
        if args.minutes is not None and time.perf_counter() - began > 60 * args.minutes:
            print(f"--minutes {args.minutes}: not started: {' '.join(names[index:])}")
            break
        rows.extend(run_case(CASES[name], args, settings, emulations))
        save(rows, args.json)
    print("\n" + summary(rows))
    print(f"wrote {args.json}")
    return rows


if __name__ == "__main__":
    main()
