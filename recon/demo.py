"""``recon demo``: what recon is for, in about two minutes on two CPU cores.

Four cases, each simulated from real data or a realistic phantom, written as a measurement file and
reconstructed through :func:`recon.pipeline.reconstruct` (the code ``recon reconstruct`` runs) by a classical
baseline and a learned or model-based method:

- ``ct``: sparse-view CT of a real head CT slice (pydicom-data's 693_UNCR.dcm, never used to train or tune
  recon's priors), 256^2, 30 views over 180 degrees, 1% noise: fbp, tv, pnp-admm with the shipped DRUNet;
- ``mri``: 4x multi-coil MRI of a real shoulder MRI slice (pydicom-data's MR2_UNCR.dcm, never used in
  training either), 192^2, 4 coils, 1% noise: the zero-filled adjoint, tv, pnp-admm;
- ``radar``: near-field MIMO radar of a letter scene (12 x 13 antennas, 20 frequencies over 4-16 GHz, 30 dB):
  Kirchhoff migration and mimo-pnp (20 iterations) with the shipped 3D magnitude denoiser;
- ``dynamic``: a beating cardiac slice, 16 frames of 64^2, 8x 8-coil MRI with a new mask per frame: cgls and
  red-psm (20 rounds) with the shipped denoiser.

It prints one table (PSNR/SSIM against the ground truth, solve time), writes ``demo.png`` (a montage:
each case's ground truth and reconstructions) and ends with the ``recon view`` commands that open the files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from recon.errors import UserError
from recon.specs import get_kind

Measurement = tuple[dict[str, np.ndarray], dict[str, object]]


@dataclass(frozen=True)
class Case:
    """One demo case: a measurement to simulate (``make(rng)``) and the methods (name, --set values) to run."""

    key: str
    stem: str
    title: str
    spec: str
    methods: tuple[tuple[str, dict[str, str]], ...]
    make: Callable[[np.random.Generator], Measurement]


def _dicom_slice(name: str, size: int) -> np.ndarray:
    """pydicom-data's ``name`` as a (size, size) float32 image in its rescaled units (HU for CT)."""
    try:
        from pydicom import dcmread
        from pydicom.data import get_testdata_file

        path = get_testdata_file(name)
    except ImportError:
        path = None
    if path is None:
        raise UserError(f"the demo's images come from pydicom-data, which is not installed ({name} not found)",
                        key="recon demo", fix="pip install -e '.[data]' (make demo installs it)")
    from skimage.transform import resize

    dataset = dcmread(path)
    image = dataset.pixel_array * float(getattr(dataset, "RescaleSlope", 1)) + float(
        getattr(dataset, "RescaleIntercept", 0))
    return resize(image.astype(np.float32), (size, size), anti_aliasing=True).astype(np.float32)


def head_ct(size: int = 256) -> np.ndarray:
    """693_UNCR.dcm (a head CT slice) as attenuation relative to water (HU / 1000 + 1, air 0), (1, size, size)."""
    return np.maximum(_dicom_slice("693_UNCR.dcm", size) + 1000.0, 0.0)[None] / 1000.0


def shoulder_mri(size: int = 192) -> np.ndarray:
    """MR2_UNCR.dcm (a shoulder MRI slice) scaled to its 0.99 quantile 1, (1, size, size)."""
    image = np.maximum(_dicom_slice("MR2_UNCR.dcm", size), 0.0)
    return (image / np.quantile(image, 0.99))[None].astype(np.float32)


def _ct(rng: np.random.Generator) -> Measurement:
    from recon.simulate import simulate_ct_parallel

    return simulate_ct_parallel(head_ct(), views=30, noise_std=0.01, rng=rng)


def _mri(rng: np.random.Generator) -> Measurement:
    from recon.simulate import simulate_mri_cartesian

    return simulate_mri_cartesian(shoulder_mri(), coils=4, acceleration=4.0, noise_std=0.01, rng=rng)


def _radar(rng: np.random.Generator) -> Measurement:
    from recon.scenes import make_scene
    from recon.simulate import radar_geometry, simulate_mimo_nearfield

    geometry = radar_geometry("diagonal-12x13", None, 20, 4e9, 16e9, "25,25,49")
    return simulate_mimo_nearfield(make_scene("letters", geometry.grid_shape, rng), geometry, 30.0, rng=rng)


def _dynamic(rng: np.random.Generator) -> Measurement:
    from recon.dynamic_phantoms import make_dynamic_phantom
    from recon.simulate import simulate_mri_dynamic

    frames = make_dynamic_phantom("cardiac", 16, 64, seed=0)
    return simulate_mri_dynamic(frames, coils=8, acceleration=8.0, noise_std=0.01, rng=rng)


CASES = (
    Case("ct", "ct_head", "sparse-view CT: head CT slice 256^2, 30 views, 1% noise", "ct-parallel/1",
         (("fbp", {}), ("tv", {}), ("pnp-admm", {})), _ct),
    Case("mri", "mri_shoulder", "4x MRI: shoulder slice 192^2, 4 coils, 1% noise", "mri-cartesian/1",
         (("adjoint", {}), ("tv", {}), ("pnp-admm", {})), _mri),
    Case("radar", "radar_letters", "MIMO radar: letters, 12x13 antennas, 20 frequencies, 30 dB", "mimo-nearfield/1",
         (("kirchhoff", {}), ("mimo-pnp", {"iterations": "20"})), _radar),
    Case("dynamic", "dynamic_cardiac", "dynamic MRI: cardiac, 16 frames 64^2, 8x, 8 coils", "mri-dynamic/1",
         (("cgls", {}), ("red-psm", {"rounds": "20"})), _dynamic),
)


@dataclass
class Row:
    """One line of the demo's table."""

    case: Case
    method: str
    psnr: float
    ssim: float
    seconds: float
    output: Path


def choose_cases(keys: list[str] | None, catalogue: tuple[Case, ...] = CASES) -> list[Case]:
    """The cases named in ``keys`` (all when None), in the catalogue's order; UserError for an unknown one."""
    known = [case.key for case in catalogue]
    unknown = sorted(set(keys or ()) - set(known))
    if unknown:
        raise UserError(f"unknown demo case {unknown[0]!r}", key="--cases", fix=f"choose among {', '.join(known)}")
    return [case for case in catalogue if keys is None or case.key in keys]


def _outputs(out: Path, case: Case) -> list[Path]:
    from recon.pipeline import default_output

    measurement = out / f"{case.stem}.h5"
    return [measurement] + [default_output(measurement, name) for name, _ in case.methods]


def run_demo(out: Path, cases: list[str] | None = None, overwrite: bool = False,
             catalogue: tuple[Case, ...] = CASES) -> list[Row]:
    """Simulate and reconstruct the chosen ``cases`` of ``catalogue`` (all when None) into ``out``; print the
    table, write ``out/demo.png`` and print the ``recon view`` commands."""
    from rich.console import Console
    from rich.table import Table

    from recon.io.measurement import write_measurement
    from recon.pipeline import Request, reconstruct

    chosen = choose_cases(cases, catalogue)
    existing = [str(path) for case in chosen for path in _outputs(out, case) if path.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} exists from an earlier demo", key="--out",
                        fix="pass --overwrite or choose another --out folder")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    for case in chosen:
        measurement = out / f"{case.stem}.h5"
        datasets, attrs = case.make(np.random.default_rng(0))
        write_measurement(measurement, case.spec, datasets, {**attrs, "command": "recon demo"}, overwrite=True)
        print(f"{case.title} -> {measurement}", flush=True)
        for name, params in case.methods:
            request = Request(input=measurement, method=name, params=params, overwrite=True, command="recon demo")
            summary = reconstruct(request)
            rows.append(Row(case, name, summary.metrics["psnr"], summary.metrics["ssim"], summary.elapsed_s,
                            summary.output))
            print(f"  {summary.line()}", flush=True)

    table = Table("case", "method", "PSNR (dB)", "SSIM", "time (s)", title="recon demo")
    for row in rows:
        table.add_row(row.case.key, row.method + _settings(row), f"{row.psnr:.2f}", f"{row.ssim:.3f}",
                      f"{row.seconds:.1f}")
    Console().print(table)
    montage = write_montage(out / "demo.png", rows)
    print(f"montage: {montage}\ndemo finished in {time.perf_counter() - start:.0f} s. Open a case in napari:")
    for case in chosen:
        print("  recon view " + " ".join(str(path) for path in _outputs(out, case)))
    return rows


def _settings(row: Row) -> str:
    params = dict(row.case.methods)[row.method]
    return "".join(f" {key}={value}" for key, value in params.items())


# ----------------------------------------------------------------------------------------------------- montage

TILE = 176
LABEL = 18


def shown_slice(truth: np.ndarray, spec: str) -> int:
    """The slice (or frame) of a case the montage shows: the middle one; radar: the depth where the scene's
    reflectivity is strongest (the letters sit at a few depths, and a projection would mix them)."""
    if get_kind(spec).reflectivity:
        return int((np.abs(truth) ** 2).sum(axis=(1, 2)).argmax())
    return truth.shape[0] // 2


def picture(array: np.ndarray, index: int) -> np.ndarray:
    """Slice ``index`` of a (z, y, x) or (t, y, x) image, as magnitudes."""
    return np.abs(array[index]) if array.ndim == 3 else np.abs(array)


def _tile(image: np.ndarray, limits: tuple[float, float], label: str):
    from PIL import Image, ImageDraw

    lo, hi = limits
    scaled = np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1)
    tile = Image.fromarray((scaled * 255).astype(np.uint8)).resize((TILE, TILE), Image.Resampling.BILINEAR)
    framed = Image.new("L", (TILE, TILE + LABEL), 0)
    framed.paste(tile, (0, LABEL))
    ImageDraw.Draw(framed).text((4, 3), label, fill=255)
    return framed


def write_montage(path: Path, rows: list[Row]) -> Path:
    """A PNG with one row per case: the ground truth, then each reconstruction with its PSNR, one slice each
    (see :func:`shown_slice`). Pictures of one case share the ground truth's display range (radar: each
    magnitude over its own maximum, as scored)."""
    from PIL import Image

    from recon.io.atomic import atomic_output

    cases = list(dict.fromkeys(row.case.key for row in rows))
    columns = 1 + max(sum(row.case.key == key for row in rows) for key in cases)
    sheet = Image.new("L", (columns * TILE, len(cases) * (TILE + LABEL)), 0)
    for r, key in enumerate(cases):
        mine = [row for row in rows if row.case.key == key]
        spec = mine[0].case.spec
        radar = get_kind(spec).reflectivity
        with h5py.File(mine[0].output, "r") as file:
            volume = file["ground_truth"][()]
        index = shown_slice(volume, spec)
        truth = picture(volume, index) / (np.abs(volume).max() if radar else 1.0)
        limits = (0.0, 1.0) if radar else (float(truth.min()), float(np.quantile(truth, 0.999)))
        tiles = [_tile(truth, limits, f"{key}: ground truth")]
        for row in mine:
            with h5py.File(row.output, "r") as file:
                volume = file["reconstruction"][()]
            image = picture(volume, index) / (max(np.abs(volume).max(), 1e-12) if radar else 1.0)
            tiles.append(_tile(image, limits, f"{row.method} {row.psnr:.1f} dB"))
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * TILE, r * (TILE + LABEL)))
    with atomic_output(path, overwrite=True) as partial:
        sheet.save(partial, format="PNG")
    return path

