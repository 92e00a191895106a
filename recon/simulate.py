"""Simulated measurements with ground truth, for every measurement spec.

Each ``simulate_*`` function is pure: arrays in, ``(datasets, attrs)`` out, ready for
:func:`recon.io.measurement.write_measurement`. Noise levels are relative: ``noise_std`` is the standard
deviation of Gaussian noise as a fraction of the RMS of the noiseless measurements (complex noise splits
that variance evenly between the real and imaginary parts), except for ``ct-dynamic``, where it is a fraction
of the maximum of the noiseless sinogram (the RED-PSM paper's convention: "0.5 % noise" is 0.005 times the
largest projection value); ``snr_db`` is 10 log10(signal power / noise power). The absolute standard
deviation is stored as the ``noise_std`` attribute.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from recon.errors import UserError, warn
from recon.io.volumes import VoxelSize
from recon.phantoms import bernoulli_gaussian
from recon.physics.mimo import NearFieldMIMO, RadarGeometry, diagonal_array

Measurement = tuple[dict[str, np.ndarray], dict[str, object]]


NOISE_CHUNK = 1 << 22
"""Real noise is drawn and added this many elements at a time (32 MB of float64), so that a 1 GB sinogram needs no
float64 copy of itself; the values are those of one draw for the whole array."""


def _relative_noise(clean: np.ndarray, noise_std: float, rng: np.random.Generator,
                    relative_to: str = "rms") -> tuple[np.ndarray, float]:
    """clean + Gaussian noise of std noise_std * RMS(clean) (``relative_to="max"``: noise_std * max|clean|);
    returns the noisy array (clean's dtype) and the absolute std."""
    if noise_std < 0:
        raise UserError(f"noise level {noise_std} is negative", key="--noise-std", fix="use a value >= 0")
    if np.iscomplexobj(clean):
        level = np.sqrt(np.mean(np.abs(clean) ** 2)) if relative_to == "rms" else np.abs(clean).max()
        sigma = noise_std * float(level)
        noise = (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape)) * sigma / math.sqrt(2)
        return (clean + noise).astype(clean.dtype), sigma
    level = np.sqrt(np.mean(np.square(clean))) if relative_to == "rms" else np.abs(clean).max()
    sigma = noise_std * float(level)
    noisy = np.empty_like(clean)
    source, target = clean.reshape(-1), noisy.reshape(-1)
    for start in range(0, source.size, NOISE_CHUNK):
        stop = min(start + NOISE_CHUNK, source.size)
        target[start:stop] = source[start:stop] + rng.standard_normal(stop - start) * sigma
    return noisy, sigma


SIMULATE_SLAB = 32
"""Slices projected per call when simulating CT: the projector's buffers stay those of 32 slices."""


def simulate_ct_parallel(volume: np.ndarray, views: int, angle_range: float = math.pi, noise_std: float = 0.0,
                         n_det: int | None = None, rng: np.random.Generator | None = None,
                         photons: float | None = None, voxel_size: VoxelSize | None = None) -> Measurement:
    """Parallel-beam sinograms of ``volume`` (ny, nx) or (nz, ny, nx) at ``views`` angles over [0, angle_range).

    ``photons`` = I0 (low-dose CT): counts ~ Poisson(I0 exp(-p)) for the noiseless line integrals p, which must
    then be dimensionless (``volume`` in attenuation per pixel), and the post-log sinogram log(I0 / max(counts, 1))
    is written with attributes ``noise_model`` "poisson" and ``photons`` instead of ``noise_std``.
    The sinogram is in pixel units; ``voxel_size`` (that of ``volume``'s axes, e.g. from DICOM or NIfTI) is
    stored as ``pixel_size`` (the column spacing; recon's pixels are square), ``slice_spacing`` and ``unit``.
    """
    from recon.physics.ct import ParallelBeamCT

    rng = rng or np.random.default_rng(0)
    if views < 1:
        raise UserError(f"{views} views asked for", key="--views", fix="use at least 1 view")
    angles = np.linspace(0.0, angle_range, views, endpoint=False)
    physics = ParallelBeamCT(volume.shape[-2:], angles, n_det=n_det)
    stack = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32)).reshape(-1, *volume.shape[-2:])
    clean = np.empty((stack.shape[0], views, physics.n_det), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, stack.shape[0], SIMULATE_SLAB):
            clean[start:start + SIMULATE_SLAB] = physics.A(stack[start:start + SIMULATE_SLAB]).numpy()
    if photons is not None:
        sinogram, noise_attrs = _poisson_post_log(clean, photons, rng), {"noise_model": "poisson", "photons": photons}
    else:
        sinogram, sigma = _relative_noise(clean, noise_std, rng)
        noise_attrs = {"noise_std": sigma}
    sinogram = sinogram.reshape(*volume.shape[:-2], *sinogram.shape[-2:])
    datasets = {"sinogram": sinogram.astype(np.float32, copy=False), "angles": angles,
                "ground_truth": volume.astype(np.float32, copy=False)}
    attrs = {"image_shape": list(volume.shape), "det_spacing": 1.0, **noise_attrs}
    if voxel_size is not None:
        *dz, dy, dx = voxel_size.sizes
        if abs(dy - dx) > 0.01 * dx:
            warn(f"the pixels are {dy:g} x {dx:g} {voxel_size.unit}, not square: the measurement uses square pixels "
                 f"of {dx:g}", key="--volume", fix="resample the volume to square pixels first if that matters")
        attrs.update(pixel_size=dx, unit=voxel_size.unit, slice_spacing=dz[0] if dz else None)
    return datasets, attrs


STARVED_SHARE = 0.01
"""Most readings a low-dose simulation may leave under one expected photon."""


def _poisson_post_log(line_integrals: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    """log(I0 / max(counts, 1)), counts ~ Poisson(I0 exp(-p)); UserError when more than STARVED_SHARE of the
    readings expect under one photon (line integrals not in attenuation per pixel, or too few photons)."""
    if not photons > 0:
        raise UserError(f"{photons} photons asked for", key="--photons", fix="use a positive count, e.g. 1e4")
    expected = photons * np.exp(-np.asarray(line_integrals, dtype=np.float64))
    starved = float(np.mean(expected < 1))
    if starved > STARVED_SHARE:
        raise UserError(f"{100 * starved:.1f} % of the readings expect under one photon (line integrals up to "
                        f"{float(np.max(line_integrals)):.3g})", key="--photons",
                        fix="give the volume in attenuation per pixel (water: 0.019 per mm times the pixel size "
                            "in mm) or raise --photons")
    counts = rng.poisson(expected)
    return np.log(photons / np.maximum(counts, 1)).astype(np.float32)


def simulate_mri_cartesian(volume: np.ndarray, coils: int, acceleration: float, mask_kind: str = "uniform1d",
                           acs: int | None = None, noise_std: float = 0.0, with_coil_maps: bool = False,
                           rng: np.random.Generator | None = None) -> Measurement:
    """Undersampled multi-coil k-space of ``volume`` (ny, nx) or (nz, ny, nx) with synthetic smooth coil maps.

    One mask serves all slices; the stored ``ground_truth`` is the image magnitude (nz, ny, nx).
    """
    from recon.physics.masks import make_mask

    rng = rng or np.random.default_rng(0)
    stack = volume.reshape(-1, *volume.shape[-2:]).astype(np.float32)
    mask = make_mask(mask_kind, stack.shape[-2:], acceleration, acs=acs, rng=rng)
    datasets, attrs, maps = _multicoil_kspace(stack, mask, coils, noise_std, rng)
    if with_coil_maps:
        datasets["coil_maps"] = np.broadcast_to(maps, (stack.shape[0], *maps.shape)).astype(np.complex64)
    return datasets, attrs


def simulate_mri_dynamic(frames: np.ndarray, coils: int, acceleration: float, mask_kind: str = "uniform1d",
                         acs: int | None = None, noise_std: float = 0.0, with_coil_maps: bool = False,
                         rng: np.random.Generator | None = None) -> Measurement:
    """Dynamic multi-coil k-space (``mri-dynamic/1``) of ``frames`` (P, ny, nx) with synthetic coil maps.

    Each frame gets its own mask of kind ``mask_kind`` (drawn one after the other from ``rng``: another
    random offset for ``uniform1d``, other random lines or points for the others), all with the same central
    ACS region, so that the frames together sample more of k-space than any one of them. The coil maps are
    the same for all frames (stored as (n_coils, ny, nx) with ``with_coil_maps``); ``ground_truth`` is the
    magnitude (P, ny, nx).
    """
    from recon.physics.masks import make_mask

    rng = rng or np.random.default_rng(0)
    frames = _frames(frames)
    masks = np.stack([make_mask(mask_kind, frames.shape[-2:], acceleration, acs=acs, rng=rng) for _ in frames])
    datasets, attrs, maps = _multicoil_kspace(frames, masks, coils, noise_std, rng)
    if with_coil_maps:
        datasets["coil_maps"] = maps
    return datasets, attrs


def _multicoil_kspace(stack: np.ndarray, mask: np.ndarray, coils: int, noise_std: float,
                      rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict[str, object], np.ndarray]:
    """K-space of images ``stack`` (S, ny, nx) through ``coils`` synthetic maps and ``mask`` (ny, nx) or
    (S, ny, nx), noise on the sampled values only: (datasets kspace, mask, ground_truth; attrs; maps)."""
    from recon.physics.coil_maps import synthetic_coil_maps
    from recon.physics.mri import CartesianMRI, image_to_tensor, tensor_to_kspace

    if coils < 1:
        raise UserError(f"{coils} coils asked for", key="--coils", fix="use at least 1 coil")
    shape = stack.shape[-2:]
    maps = synthetic_coil_maps(coils, shape, rng=rng) if coils > 1 else np.ones((1, *shape), np.complex64)
    physics = CartesianMRI(mask, coil_maps=torch.from_numpy(maps))
    with torch.no_grad():
        clean = tensor_to_kspace(physics.A(image_to_tensor(stack)))
    sampled = np.broadcast_to(mask.astype(bool)[..., None, :, :], clean.shape)
    noisy_values, sigma = _relative_noise(clean[sampled], noise_std, rng)
    kspace = np.zeros_like(clean)
    kspace[sampled] = noisy_values
    datasets = {"kspace": kspace.astype(np.complex64), "mask": mask.astype(np.float32),
                "ground_truth": np.abs(stack).astype(np.float32)}
    return datasets, {"fft_norm": "ortho", "fft_centered": True, "noise_std": sigma}, maps


def _frames(frames: np.ndarray) -> np.ndarray:
    """A (t, y, x) sequence as float32, or a UserError for other shapes."""
    if frames.ndim != 3 or min(frames.shape) < 1:
        raise UserError(f"a dynamic sequence is (t, y, x), got shape {frames.shape}", key="--volume",
                        fix="give a 3D array whose first axis is time")
    return np.ascontiguousarray(frames, dtype=np.float32)


def simulate_ct_dynamic(frames: np.ndarray, views_per_frame: int = 1, order: str = "bit-reversal",
                        noise_std: float = 0.0, angle_range: float = math.pi, pi_symmetry: bool = False,
                        n_det: int | None = None, rng: np.random.Generator | None = None) -> Measurement:
    """Time-sequential parallel-beam sinograms (``ct-dynamic/1``) of ``frames`` (P, ny, nx).

    Frame t is projected at its own ``views_per_frame`` angles, the views taken in ``order`` over
    [0, ``angle_range``) (see :func:`recon.physics.dynamic.view_angles`). ``noise_std`` is relative to the
    MAXIMUM of the noiseless sinogram (0.005 = the paper's 0.5 % noise), not to its RMS as elsewhere.
    """
    from recon.physics.dynamic import DynamicParallelCT, view_angles

    rng = rng or np.random.default_rng(0)
    frames = _frames(frames)
    angles = view_angles(frames.shape[0], views_per_frame, order, angle_range, pi_symmetry)
    physics = DynamicParallelCT(frames.shape[-2:], angles, n_det=n_det)
    with torch.no_grad():
        clean = physics.A(torch.from_numpy(frames)[:, None])[:, 0].numpy()
    sinogram, sigma = _relative_noise(clean, noise_std, rng, relative_to="max")
    datasets = {"sinogram": sinogram.astype(np.float32), "angles": angles, "ground_truth": frames}
    attrs = {"image_shape": list(frames.shape[-2:]), "det_spacing": 1.0, "noise_std": sigma, "view_order": order}
    return datasets, attrs


def simulate_sparse_linear(m: int, n: int, k: int, snr_db: float, samples: int,
                           rng: np.random.Generator | None = None) -> Measurement:
    """y = A x + noise with A Gaussian (m, n), entries N(0, 1/m), and x with exactly k nonzeros N(0, 1)."""
    rng = rng or np.random.default_rng(0)
    if not 0 < k <= n or m < 1 or samples < 1:
        raise UserError(f"need 0 < k <= n, m >= 1 and samples >= 1 (got m={m}, n={n}, k={k}, samples={samples})",
                        key="--k", fix="choose k between 1 and n")
    matrix = (rng.standard_normal((m, n)) / math.sqrt(m)).astype(np.float32)
    signals = bernoulli_gaussian(samples, n, k, rng)
    clean = signals @ matrix.T
    sigma = float(np.sqrt(np.mean(clean**2) / 10 ** (snr_db / 10)))
    y = clean + rng.standard_normal(clean.shape).astype(np.float32) * sigma
    return {"A": matrix, "y": y.astype(np.float32), "ground_truth": signals}, {"noise_std": sigma}


RADAR_SCENE_MIN, RADAR_SCENE_MAX = (-0.15, -0.15, 0.35), (0.15, 0.15, 0.65)
"""The paper's scene box [x, y, z] in metres."""


def radar_geometry(array: str, array_file: Path | None, n_freq: int, fmin: float, fmax: float,
                   grid: str) -> RadarGeometry:
    """The geometry of ``recon simulate mimo-nearfield``: ``array`` "diagonal-TxR" (or the positions in
    ``array_file``, datasets tx_positions and rx_positions (n, 3) in metres), ``n_freq`` frequencies evenly
    from ``fmin`` to ``fmax`` (Hz), and ``grid`` "nx,ny,nz" points over the paper's scene box."""
    if array_file is not None:
        import h5py

        try:
            with h5py.File(array_file, "r") as file:
                tx, rx = file["tx_positions"][()], file["rx_positions"][()]
        except (OSError, KeyError) as error:
            raise UserError(f"cannot read tx_positions and rx_positions ({error})", path=array_file,
                            key="--array-file", fix="store both as float (n, 3) arrays in metres") from None
        if tx.ndim != 2 or rx.ndim != 2 or tx.shape[1] != 3 or rx.shape[1] != 3:
            raise UserError(f"positions have shapes {tx.shape} and {rx.shape}, expected (n, 3)", path=array_file,
                            key="--array-file", fix="store x, y, z in metres, one antenna per row")
    else:
        kind, _, counts = array.partition("-")
        n_tx, _, n_rx = counts.partition("x")
        if kind != "diagonal" or not (n_tx.isdigit() and n_rx.isdigit()) or min(int(n_tx), int(n_rx)) < 1:
            raise UserError(f"unknown array {array!r}", key="--array", fix="write diagonal-TxR, e.g. diagonal-12x13")
        tx, rx = diagonal_array(int(n_tx), int(n_rx))
    sizes = grid.split(",")
    if len(sizes) != 3 or not all(n.strip().isdigit() and int(n) >= 1 for n in sizes):
        raise UserError(f"grid {grid!r} is not three positive integers", key="--grid", fix="write e.g. 25,25,49")
    nx, ny, nz = (int(n) for n in sizes)
    if n_freq < 1 or not 0 < fmin <= fmax:
        raise UserError(f"need >= 1 frequencies and 0 < fmin <= fmax (got {n_freq}, {fmin}, {fmax})",
                        key="--frequencies", fix="e.g. --frequencies 20 --fmin 4e9 --fmax 16e9")
    return RadarGeometry(np.linspace(fmin, fmax, n_freq), tx, rx, RADAR_SCENE_MIN, RADAR_SCENE_MAX, (nz, ny, nx))


def simulate_mimo_nearfield(scene: np.ndarray, geometry: RadarGeometry, snr_db: float,
                            rng: np.random.Generator | None = None) -> Measurement:
    """Radar responses of the complex ``scene`` (nz, ny, nx) seen by ``geometry``, plus complex white noise
    at ``snr_db``."""

    rng = rng or np.random.default_rng(0)
    physics = NearFieldMIMO(geometry, dtype=torch.float64)
    x = torch.view_as_real(torch.as_tensor(scene, dtype=torch.complex128)).movedim(-1, 0)[None]
    clean = torch.view_as_complex(physics.A(x)[0].movedim(0, -1).contiguous()).numpy()
    sigma = float(np.sqrt(np.mean(np.abs(clean) ** 2) / 10 ** (snr_db / 10)))
    noise = (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape)) * sigma / math.sqrt(2)
    datasets = {"measurements": (clean + noise).astype(np.complex64), "frequencies": np.asarray(geometry.frequencies,
                np.float64), "tx_positions": np.asarray(geometry.tx_positions, np.float64),
                "rx_positions": np.asarray(geometry.rx_positions, np.float64), "ground_truth": scene}
    attrs = {"grid_min": list(geometry.grid_min), "grid_max": list(geometry.grid_max),
             "grid_shape": list(geometry.grid_shape), "noise_std": sigma}
    return datasets, attrs
