"""Small files in the CT layouts recon reads, written as the field writes them, for tests and benchmarks.

The data are exact line integrals of ellipse phantoms (the modified Shepp-Logan set) computed analytically in
each layout's own geometry, never with recon's projector, so that a reader that gets the geometry wrong
(angles, detector centre, units, image orientation) gets visibly worse images:

- :func:`write_lodopab_pair`: LoDoPaB-CT observation and ground-truth files (h5py, as the zenodo files: one
  dataset ``data``, no attributes), geometry as dival/odl define it, Poisson noise as the dataset's;
- :func:`write_dxchange`: raw uint16 projections, flats and darks with a chosen centre of rotation and
  flat-field structure (h5py following dxfile's layout, Blosc-compressed through hdf5plugin as beamlines do);
- :func:`write_nxtomo`: the same scan through the ``nxtomo`` package (image keys, rotation angles with units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

# (value, semi-axis a along x, semi-axis b along y, centre x0, y0, rotation in degrees), on the unit disc
MODIFIED_SHEPP_LOGAN = np.array([
    [1.0, .69, .92, 0, 0, 0], [-.8, .6624, .874, 0, -.0184, 0], [-.2, .11, .31, .22, 0, -18],
    [-.2, .16, .41, -.22, 0, 18], [.1, .21, .25, 0, .35, 0], [.1, .046, .046, 0, .1, 0],
    [.1, .046, .046, 0, -.1, 0], [.1, .046, .023, -.08, -.605, 0], [.1, .023, .023, 0, -.606, 0],
    [.1, .023, .046, .06, -.605, 0]])
LODOPAB_MU_MAX = 81.35858
"""LoDoPaB's normalisation: mu of 3071 HU in 1/m (dival's MU_MAX)."""
LODOPAB_PHOTONS = 4096


def scaled_ellipses(radius: float, value_scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The modified Shepp-Logan ellipses on a disc of ``radius`` (any length unit), values times ``value_scale``,
    moved by ``shift`` (x, y)."""
    e = MODIFIED_SHEPP_LOGAN.copy()
    e[:, 0] *= value_scale
    e[:, 1:5] *= radius
    e[:, 3] += shift[0]
    e[:, 4] += shift[1]
    return e


def ellipse_image(ellipses: np.ndarray, x: np.ndarray, y: np.ndarray, supersample: int = 4,
                  step: float | None = None) -> np.ndarray:
    """The phantom's mean over each pixel centred at (x[i, j], y[i, j]) of side ``step`` (default: none, point
    samples), by ``supersample``^2 sub-samples."""
    offsets = [0.0] if step is None else (np.arange(supersample) + 0.5) / supersample * step - step / 2
    image = np.zeros(np.broadcast(x, y).shape)
    for dx in offsets:
        for dy in offsets:
            for value, a, b, x0, y0, phi in ellipses:
                c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
                u, v = (x + dx - x0) * c + (y + dy - y0) * s, -(x + dx - x0) * s + (y + dy - y0) * c
                image += value * ((u / a) ** 2 + (v / b) ** 2 <= 1)
    return image / len(offsets) ** 2


def ellipse_projections(ellipses: np.ndarray, angles: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Exact line integrals (len(angles), len(s)) of the phantom along ``x cos(theta) + y sin(theta) = s``."""
    theta, s = angles[:, None], s[None, :]
    out = np.zeros((len(angles), s.shape[1]))
    for value, a, b, x0, y0, phi in ellipses:
        t = s - (x0 * np.cos(theta) + y0 * np.sin(theta))
        alpha = theta - math.radians(phi)
        a2 = (a * np.cos(alpha)) ** 2 + (b * np.sin(alpha)) ** 2
        out += np.where(t ** 2 < a2, 2 * value * a * b * np.sqrt(np.maximum(a2 - t ** 2, 0)) / a2, 0.0)
    return out


# ------------------------------------------------------------------------------------------------- LoDoPaB-CT


def lodopab_geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(angles (1000,), detector bin centres (513,) in m, pixel centres (362,) in m) as odl/dival define them."""
    angles = (np.arange(1000) + 0.5) * np.pi / 1000  # odl.uniform_partition(0, pi, 1000) midpoints
    rho = 0.13 * math.sqrt(2)
    bins = -rho + (np.arange(513) + 0.5) * 2 * rho / 513  # uniform_partition(-rho, rho, 513) midpoints
    pixels = -0.13 + (np.arange(362) + 0.5) * 0.26 / 362
    return angles, bins, pixels


def lodopab_sample(seed: int, noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(observation (1000, 513) in metres, ground truth (362, 362) in odl's [x, y] order) of a phantom varied by
    ``seed``: post-log data with LoDoPaB's Poisson model (4096 photons, counts floored at 0.1)."""
    rng = np.random.default_rng(seed)
    ellipses = scaled_ellipses(0.12 * (0.85 + 0.1 * rng.random()), 1.0, shift=tuple(rng.uniform(-0.005, 0.005, 2)))
    angles, bins, pixels = lodopab_geometry()
    x, y = np.meshgrid(pixels, pixels, indexing="ij")  # odl arrays: axis 0 is x
    truth = np.clip(ellipse_image(ellipses, x, y, step=0.26 / 362), 0, 1)
    line_integrals = ellipse_projections(ellipses, angles, bins)  # metres
    if not noise:
        return line_integrals.astype(np.float32), truth.astype(np.float32)
    counts = rng.poisson(LODOPAB_PHOTONS * np.exp(-LODOPAB_MU_MAX * line_integrals)).astype(np.float64)
    observation = -np.log(np.maximum(counts, 0.1) / LODOPAB_PHOTONS) / LODOPAB_MU_MAX
    return observation.astype(np.float32), truth.astype(np.float32)


def write_lodopab_pair(folder: Path, n: int = 2, part: str = "test", index: int = 0,
                       noise: bool = True) -> tuple[Path, Path]:
    """``observation_{part}_{index:03d}.hdf5`` and ``ground_truth_...`` with ``n`` samples, as on zenodo."""
    samples = [lodopab_sample(1000 * index + i, noise) for i in range(n)]
    paths = []
    for prefix, k in (("observation", 0), ("ground_truth", 1)):
        path = Path(folder) / f"{prefix}_{part}_{index:03d}.hdf5"
        with h5py.File(path, "w") as f:
            f.create_dataset("data", data=np.stack([s[k] for s in samples]), chunks=(1, *samples[0][k].shape))
        paths.append(path)
    return paths[0], paths[1]


# ---------------------------------------------------------------------------------------- raw projections


@dataclass(frozen=True)
class Scan:
    """A simulated parallel-beam scan: raw frames and the truth behind them."""

    projections: np.ndarray
    """(views, rows, cols) uint16 counts."""
    flats: np.ndarray
    darks: np.ndarray
    angles_deg: np.ndarray
    center: float
    """Column the rotation axis projects to."""
    truth: np.ndarray
    """(rows, cols, cols) attenuation per pixel on recon's grid (row = -y, column = x), centred on the axis."""


def simulate_scan(cols: int = 128, rows: int = 4, views: int = 180, center_offset: float = 0.0, seed: int = 0,
                  photons: float = 20000.0, mu: float = 0.02, zingers: int = 0, dead_flat_pixel: bool = False,
                  ring_column: int | None = None) -> Scan:
    """Raw counts ``I0 * flat(y, x) * exp(-p) + dark`` with Poisson noise, p the exact line integrals (in pixels)
    of a phantom per detector row (its size varies with the row), the rotation axis at column
    ``(cols - 1) / 2 + center_offset``; 10 flats and 5 darks; optional zingers (bright single pixels),
    a dead pixel in the flats and a detector column whose gain differs in the projections (a ring)."""
    rng = np.random.default_rng(seed)
    angles = np.arange(views) * 180.0 / views
    center = (cols - 1) / 2 + center_offset
    s = np.arange(cols) - center  # bin centres relative to the axis, in pixels
    coords = np.arange(cols) - (cols - 1) / 2
    x, y = np.meshgrid(coords, -coords)  # recon's grid: rows go down y
    radius = 0.36 * cols
    gain = (1 + 0.15 * np.linspace(-1, 1, cols)[None, :] + 0.05 * np.sin(np.arange(cols) / 3.0)[None, :]
            + 0.1 * np.linspace(-1, 1, rows)[:, None])  # smooth and striped flat-field structure (rows, cols)
    dark_level = 100.0
    projections, truth = np.empty((views, rows, cols)), np.empty((rows, cols, cols))
    for r in range(rows):
        ellipses = scaled_ellipses(radius * (1 - 0.05 * r / max(rows - 1, 1)), mu)
        truth[r] = ellipse_image(ellipses, x, y, step=1.0)
        line_integrals = ellipse_projections(ellipses, np.deg2rad(angles), s)
        projections[:, r, :] = photons * gain[r] * np.exp(-line_integrals)
    if ring_column is not None:
        projections[:, :, ring_column] *= 0.93  # the column's response changed after the flats were taken
    flats = photons * np.broadcast_to(gain, (10, rows, cols))
    if dead_flat_pixel:
        flats = flats.copy()
        flats[:, rows // 2, cols // 3] = 0.0
    projections = rng.poisson(projections) + rng.normal(dark_level, 3, projections.shape)
    flats = rng.poisson(flats) + rng.normal(dark_level, 3, flats.shape)
    darks = rng.normal(dark_level, 3, (5, rows, cols))
    for _ in range(zingers):
        v, r, c = rng.integers(views), rng.integers(rows), rng.integers(cols)
        projections[v, r, c] = 60000
    as_counts = [np.clip(np.round(a), 0, 65535).astype(np.uint16) for a in (projections, flats, darks)]
    return Scan(*as_counts, angles, center, truth.astype(np.float32))


def write_dxchange(path: Path, scan: Scan, theta_units: str | None = "deg", compress: bool = True,
                   pixel_size_m: float | None = 1.3e-6) -> Path:
    """``scan`` as DXchange: /exchange/data, data_white, data_dark (uint16, chunked per frame and Blosc-LZ4
    compressed through hdf5plugin when ``compress``), /exchange/theta with ``units`` (None: no attribute)."""
    import hdf5plugin

    options = dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)) if compress else {}
    with h5py.File(path, "w") as f:
        f.create_dataset("implements", data="exchange:measurement")
        group = f.create_group("exchange")
        for key, frames in (("data", scan.projections), ("data_white", scan.flats), ("data_dark", scan.darks)):
            ds = group.create_dataset(key, data=frames, chunks=(1, *frames.shape[1:]), **options)
            ds.attrs["units"] = "counts"
            ds.attrs["axes"] = "theta:y:x" if key == "data" else f"theta_{key[5:]}:y:x"
        theta = group.create_dataset("theta", data=scan.angles_deg)
        if theta_units is not None:
            theta.attrs["units"] = theta_units
        if pixel_size_m is not None:
            f.create_dataset("measurement/instrument/detector/actual_pixel_size_x", data=pixel_size_m)
    return Path(path)


def write_nxtomo(path: Path, scan: Scan, with_alignment: bool = True) -> Path:
    """``scan`` as NXtomo through the ``nxtomo`` package: darks, flats, projections, flats again and (with
    ``with_alignment``) two alignment projections at the end, rotation angles in degrees."""
    import pint
    from nxtomo import NXtomo

    ureg = pint.get_application_registry()
    half = len(scan.flats) // 2
    frames = [scan.darks, scan.flats[:half], scan.projections, scan.flats[half:]]
    keys = [np.full(len(scan.darks), 2), np.full(half, 1), np.zeros(len(scan.projections), int),
            np.full(len(scan.flats) - half, 1)]
    angles = [np.zeros(len(scan.darks)), np.zeros(half), scan.angles_deg, np.full(len(scan.flats) - half, 180.0)]
    if with_alignment:
        frames.append(scan.projections[[0, len(scan.projections) // 2]])
        keys.append(np.full(2, -1))
        angles.append(scan.angles_deg[[0, len(scan.projections) // 2]])
    nx = NXtomo()
    nx.instrument.detector.data = np.concatenate(frames)
    nx.instrument.detector.image_key_control = np.concatenate(keys)
    nx.sample.rotation_angle = np.concatenate(angles) * ureg.degree
    nx.instrument.detector.x_pixel_size = 1.3e-6 * ureg.meter
    nx.instrument.detector.y_pixel_size = 1.3e-6 * ureg.meter
    nx.save(str(path), "entry0000", overwrite=True)
    return Path(path)
