"""Building a :class:`~recon.problem.Problem` from a measurement file, one builder per spec.

Only the requested slice range is read from disk. Memory: the measurements and the image of the
selected slices, in the working dtype, on the chosen device.

Measurements that carry no information about the image are input errors (UserError), not a zero image
with exit 0: a k-space mask that samples nothing (any slice of mri-cartesian; every frame of mri-dynamic, whose
methods share information across frames), coil maps that are zero for a slice, a CT detector of one bin, a
sparse-linear matrix of zeros, detector bins that span less than a pixel or miss the image. Measurements that
are all zero are allowed: a zero image is their correct reconstruction. Measured values of extreme magnitude
(outside MAGNITUDE_RANGE) are refused before float32 arithmetic overflows on them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from recon.errors import UserError, warn
from recon.io.measurement import MeasurementReader
from recon.noise import problem_noise
from recon.physics.masks import centre_slice
from recon.problem import Problem

MAGNITUDE_RANGE = (1e-12, 1e10)
"""Range of the largest magnitude of a measured array (unless it is all zero). recon computes in float32: sums of
squares over large problems overflow above it and lose precision below it. Scaling the data by a constant scales
the reconstruction (for methods whose weights are relative), so data outside is refused with that fix."""
RADAR_MAX_METRES = 1e6
RADAR_MAX_FREQUENCY = 1e15
"""Radar geometry beyond these (positions and grid in metres, frequencies in Hz: 1e15 Hz is ultraviolet light) is
refused: float32 phases k R and spreading 1/R^2 overflow, and no near-field radar works there."""
Builder = Callable[[MeasurementReader, slice | None, torch.device, torch.dtype], Problem]
_BUILDERS: dict[str, Builder] = {}


def builder(spec: str) -> Callable[[Builder], Builder]:
    def decorate(function: Builder) -> Builder:
        _BUILDERS[spec] = function
        return function

    return decorate


def build_problem(measurement: MeasurementReader, slices: slice | None, device: torch.device,
                  dtype: torch.dtype = torch.float32) -> Problem:
    """The problem for the slices ``slices`` (None: all) of an open, validated measurement file; UserError for
    slices of a file without a slice axis."""
    if slices is not None:
        measurement.check_sliceable()
    problem = _BUILDERS[measurement.spec.id](measurement, slices, device, dtype)
    problem.noise = functools.cache(functools.partial(problem_noise, problem, dict(measurement.attrs)))
    return problem


def _no_information(measurement: MeasurementReader, key: str, what: str, fix: str) -> UserError:
    return UserError(f"{what}: the measurements carry no information about the image", path=measurement.path,
                     key=key, fix=fix)


def _check_scale(measurement: MeasurementReader, key: str, values: np.ndarray,
                 bounds: tuple[float, float] = MAGNITUDE_RANGE) -> None:
    """UserError when the largest magnitude of ``values`` (unless all zero) is outside ``bounds``."""
    peak = float(np.abs(values).max())
    low, high = bounds
    if peak and not low <= peak <= high:
        fix = ("rescale the data by a constant (the reconstruction scales with it)" if bounds == MAGNITUDE_RANGE
               else "check the unit (metres, Hz)")
        raise UserError(f"values reach {peak:.3g} in magnitude, outside {low:g} to {high:g} where recon's float32 "
                        "arithmetic is safe", path=measurement.path, key=key, fix=fix)


def _check_detector(measurement: MeasurementReader, sinogram: np.ndarray, image_shape: tuple[int, int]) -> None:
    """UserError when the detector (n_det bins, det_spacing image pixels apart) cannot resolve the image:
    one bin, bins spanning less than a pixel, or fewer than two bins on the image's diagonal."""
    n_det, spacing = sinogram.shape[-1], measurement.attrs["det_spacing"]
    offsets = np.abs(np.arange(n_det) - (n_det - 1) / 2 - measurement.attrs.get("det_offset", 0.0)) * spacing
    on_image = int((offsets <= math.hypot(*image_shape) / 2).sum())
    fix = "check det_spacing (image pixels per detector bin) and the sinogram's last axis (detector bins)"
    if n_det < 2:
        raise _no_information(measurement, "sinogram", "one detector bin per view", fix)
    if (n_det - 1) * spacing < 1:
        raise _no_information(measurement, "det_spacing", f"the {n_det} detector bins span "
                              f"{(n_det - 1) * spacing:.3g} image pixels (det_spacing {spacing:g})", fix)
    if on_image < 2:
        raise _no_information(measurement, "det_spacing", f"{on_image} of {n_det} detector bins fall on the "
                              f"image (det_spacing {spacing:g})", fix)


def _first_empty(arrays: np.ndarray, offset: int) -> int | None:
    """Index (plus ``offset``) of the first of ``arrays`` (along axis 0) that is all zero, or None."""
    empty = ~arrays.reshape(len(arrays), -1).any(axis=1)
    return offset + int(np.argmax(empty)) if empty.any() else None


def _ground_truth(measurement: MeasurementReader, slices: slice | None) -> np.ndarray | None:
    return measurement.read("ground_truth", slices) if measurement.has("ground_truth") else None


@builder("ct-parallel/1")
def _ct_parallel(measurement: MeasurementReader, slices: slice | None, device: torch.device,
                 dtype: torch.dtype) -> Problem:
    """Sinograms in recon's units (:func:`~recon.io.ct_geometry.line_integral_scale`), the detector offset in the
    projector, the voxel size from the file; refuses what would give a wrong image silently (angles in degrees,
    units without a pixel size) and warns about what may (see :func:`_warn_about_geometry`)."""
    from recon.io.ct_geometry import ct_problems, line_integral_scale, voxel_size
    from recon.physics.ct import ParallelBeamCT

    attrs = measurement.attrs
    angles = measurement.read("angles")
    for problem in ct_problems(attrs, angles)[:1]:
        raise UserError(problem.what, path=measurement.path, key=problem.key, fix=problem.fix)
    sinogram = measurement.read("sinogram", slices)
    scale = line_integral_scale(attrs)
    if scale != 1:
        sinogram = sinogram / np.float32(scale)
    ny, nx = attrs["image_shape"][-2:]  # ints, and det_spacing a float: the spec types them
    _check_scale(measurement, "sinogram", sinogram)
    _check_detector(measurement, sinogram, (ny, nx))
    physics = ParallelBeamCT((ny, nx), angles, n_det=sinogram.shape[-1], det_spacing=attrs["det_spacing"],
                             det_offset=attrs["det_offset"], device=device, dtype=dtype)
    y = torch.as_tensor(sinogram.reshape(-1, 1, *sinogram.shape[-2:]), device=device, dtype=dtype)
    n_slices = y.shape[0]
    output_shape = (n_slices, ny, nx) if sinogram.ndim == 3 else (ny, nx)
    truth = _ground_truth(measurement, slices)
    _warn_about_geometry(measurement, physics, y[0, 0], None if truth is None else truth.reshape(-1, ny, nx)[0])
    voxel, unit = voxel_size(attrs, len(output_shape))
    return Problem(
        spec=measurement.spec.id, physics=physics, y=y, x_shape=(n_slices, 1, ny, nx), output_shape=output_shape,
        initial=lambda: physics.fbp(y), norm_shape=(1, 1, ny, nx), ground_truth=truth, voxel_size=voxel, unit=unit)


def _warn_about_geometry(measurement: MeasurementReader, physics, sinogram: torch.Tensor,
                         truth: np.ndarray | None) -> None:
    """Warn (one line each) when the first slice's sinogram (n_views, n_det) reaches beyond the image, or
    disagrees in scale or shape with the projections of its ground truth (n_views, n_det)."""
    from recon.io.ct_geometry import reach_warning, scale_warning

    values = sinogram.cpu().numpy()
    reach = reach_warning(values, physics.image_shape, physics.det_spacing, physics.det_offset)
    if reach:
        warn(reach, path=measurement.path, key="sinogram", fix="set image_shape, det_spacing and det_offset as "
             "docs/guides/ct-data.md describes")
    if truth is not None:
        projected = physics.A(torch.as_tensor(truth, device=sinogram.device, dtype=sinogram.dtype)[None, None])
        mismatch = scale_warning(values, projected[0, 0].cpu().numpy())
        if mismatch:
            warn(mismatch, path=measurement.path, key="sinogram",
                 fix="declare the units (pixel_size, unit, path_length_unit) and geometry as data_specs/"
                     "ct-parallel.yaml says, or read the original file (recon reads LoDoPaB, DXchange, NXtomo)")


@builder("ct-dynamic/1")
def _ct_dynamic(measurement: MeasurementReader, slices: slice | None, device: torch.device,
                dtype: torch.dtype) -> Problem:
    from recon.physics.dynamic import DynamicParallelCT

    sinogram = measurement.read("sinogram")
    ny, nx = measurement.attrs["image_shape"]
    _check_scale(measurement, "sinogram", sinogram)
    _check_detector(measurement, sinogram, (ny, nx))
    physics = DynamicParallelCT((ny, nx), measurement.read("angles"), n_det=sinogram.shape[-1],
                                det_spacing=measurement.attrs["det_spacing"], device=device, dtype=dtype)
    y = torch.as_tensor(sinogram[:, None], device=device, dtype=dtype)  # (P, 1, V, n_det)
    n_frames = y.shape[0]
    return Problem(
        spec=measurement.spec.id, physics=physics, y=y, x_shape=(n_frames, 1, ny, nx), output_shape=(n_frames, ny, nx),
        initial=lambda: physics.fbp(y), ground_truth=_ground_truth(measurement, None))


@builder("mri-cartesian/1")
@builder("mri-dynamic/1")
def _mri(measurement: MeasurementReader, slices: slice | None, device: torch.device,
         dtype: torch.dtype) -> Problem:
    """Slices (mri-cartesian) or frames (mri-dynamic) on the batch axis; maps from the file or estimated
    (:func:`~recon.physics.coil_maps.calibrate`; a foreign layout's ``--read coil_maps`` chooses the estimator), for
    a dynamic file once from the k-space of all frames (:func:`_time_averaged_coil_maps`); how is recorded in
    ``coil_maps``. The output is cut to the file's ``crop``, and so is a whole-grid ground truth."""
    from recon.physics.coil_maps import calibrate
    from recon.physics.mri import CartesianMRI, kspace_to_tensor

    dynamic = measurement.spec.id == "mri-dynamic/1"
    kspace = measurement.read("kspace", slices)
    _check_scale(measurement, "kspace", kspace)
    mask = measurement.read("mask", slices)
    offset = slices.start if slices is not None else 0
    empty = _first_empty(mask if mask.ndim == 3 else mask[None], offset)
    if empty is not None and not (dynamic and mask.any()):  # dynamic methods fill an empty frame from the others
        where = "every frame" if dynamic else f"slice {empty}" if mask.ndim == 3 else "all slices"
        raise _no_information(measurement, "mask", f"the sampling mask of {where} is all zero",
                              "store 1 where k-space was measured")
    y = kspace_to_tensor(kspace).to(device=device, dtype=dtype)
    estimator = getattr(measurement, "coil_map_estimator", "auto")
    if measurement.has("coil_maps"):
        stored = measurement.read("coil_maps", slices)  # (S, C, ny, nx), or (C, ny, nx) shared by the frames
        empty = _first_empty(stored if stored.ndim == 4 else stored[None], offset)
        if empty is not None:
            where = ("frame" if dynamic else "slice") + f" {empty}" if stored.ndim == 4 else "all frames"
            raise _no_information(measurement, "coil_maps", f"the coil maps of {where} are all zero",
                                  "store the coil sensitivities, or leave out coil_maps to have them estimated")
        _check_scale(measurement, "coil_maps", stored)
        maps, record = torch.as_tensor(stored, device=device), {"estimator": "file"}
    elif dynamic:
        maps, record = _time_averaged_coil_maps(y, torch.as_tensor(mask, device=device), estimator)
    else:
        maps, record = calibrate(y, torch.as_tensor(mask, device=device), estimator)
    physics = CartesianMRI(mask, coil_maps=maps, device=device, dtype=dtype)
    n_slices, _, _, ny, nx = y.shape
    crop = _mri_crop(measurement, (ny, nx))
    truth = _ground_truth(measurement, slices)
    if truth is not None and crop is not None and truth.shape[-2:] == (ny, nx):
        truth = truth[..., centre_slice(ny, crop[0]), centre_slice(nx, crop[1])]
    elif truth is not None and truth.shape[-2:] != (crop or (ny, nx)):
        raise UserError(f"ground_truth {truth.shape[-2:]} is neither the k-space grid {(ny, nx)} nor the crop",
                        path=measurement.path, key="ground_truth",
                        fix=f"add the root attribute crop = {list(truth.shape[-2:])}, or store the whole grid")
    return Problem(
        spec=measurement.spec.id, physics=physics, y=y, x_shape=(n_slices, 2, ny, nx), output_shape=(n_slices, ny, nx),
        initial=lambda: physics.A_adjoint(y), complex_image=True, ground_truth=truth, crop=crop,
        coil_maps=record)


def _mri_crop(measurement: MeasurementReader, grid: tuple[int, int]) -> tuple[int, int] | None:
    """The file's ``crop`` (rows, columns), checked against the grid; None when absent or the whole grid."""
    crop = measurement.attrs.get("crop")
    if crop is None or tuple(crop) == grid:
        return None
    if crop[0] > grid[0] or crop[1] > grid[1]:
        raise UserError(f"crop {list(crop)} is larger than the {grid[0]} x {grid[1]} k-space grid",
                        path=measurement.path, key="crop", fix=f"give a crop within {list(grid)}")
    return int(crop[0]), int(crop[1])


@builder("sparse-linear/1")
def _sparse_linear(measurement: MeasurementReader, slices: slice | None, device: torch.device,
                   dtype: torch.dtype) -> Problem:
    from recon.physics.sparse import MatrixOperator

    matrix = measurement.read("A")
    if not matrix.any():
        raise _no_information(measurement, "A", "the forward operator A is all zero", "store the operator's matrix")
    _check_scale(measurement, "A", matrix)
    signals = measurement.read("y", slices)
    _check_scale(measurement, "y", signals)
    physics = MatrixOperator(matrix, device=device, dtype=dtype)
    y = torch.as_tensor(signals, device=device, dtype=dtype)[:, None, :]
    n_samples, n = y.shape[0], matrix.shape[1]
    return Problem(
        spec=measurement.spec.id, physics=physics, y=y, x_shape=(n_samples, 1, n), output_shape=(n_samples, n),
        initial=lambda: torch.zeros((n_samples, 1, n), device=device, dtype=dtype), norm_shape=(1, 1, n),
        ground_truth=_ground_truth(measurement, slices))


@builder("mimo-nearfield/1")
def _mimo_nearfield(measurement: MeasurementReader, slices: slice | None, device: torch.device,
                    dtype: torch.dtype) -> Problem:
    from recon.physics.mimo import NearFieldMIMO, RadarGeometry

    attrs = measurement.attrs
    frequencies, tx, rx = (measurement.read(key) for key in ("frequencies", "tx_positions", "rx_positions"))
    geometry_values = {"frequencies": frequencies, "tx_positions": tx, "rx_positions": rx,
                       "grid_min": np.asarray(attrs["grid_min"]), "grid_max": np.asarray(attrs["grid_max"])}
    for key, values in geometry_values.items():
        _check_scale(measurement, key, values, (0.0, RADAR_MAX_FREQUENCY if key == "frequencies" else RADAR_MAX_METRES))
    geometry = RadarGeometry(frequencies, tx, rx, tuple(attrs["grid_min"]), tuple(attrs["grid_max"]),
                             tuple(attrs["grid_shape"]))
    physics = NearFieldMIMO(geometry, device=device, dtype=dtype)
    measured = measurement.read("measurements")
    _check_scale(measurement, "measurements", measured)
    y = torch.view_as_real(torch.as_tensor(measured)).movedim(-1, 0)[None]
    y = y.to(device=device, dtype=dtype).contiguous()
    shape = geometry.grid_shape
    truth = _ground_truth(measurement, None)
    return Problem(
        spec=measurement.spec.id, physics=physics, y=y, x_shape=(1, 2, *shape), output_shape=tuple(shape),
        initial=lambda: physics.A_adjoint(y), complex_image=True, ground_truth=truth,
        voxel_size=geometry.voxel_size(), unit="m", noise_std=attrs.get("noise_std"))


def _time_averaged_coil_maps(y: torch.Tensor, mask: torch.Tensor, estimator: str) -> tuple[torch.Tensor, dict]:
    """Coil maps (1, C, ny, nx) of a dynamic acquisition, shared by its frames, from k-space ``y`` (P, 2, C, ny,
    nx) averaged over the frames that sampled each location (``mask`` (P, ny, nx)).

    Coils do not move, so one set of maps serves every frame. Averaging first lowers the noise of the
    calibration data about sqrt(P)-fold and, where the frames sample different lines, makes the fully sampled
    centre of the average (all that :func:`~recon.physics.coil_maps.estimate_coil_maps` uses) wider than any
    one frame's ACS, so the maps are sharper; estimates from single frames are noisier and differ from frame
    to frame. Measured with cgls (10 iterations) on the cardiac phantom, 16 frames, 8 coils: +1.0 dB PSNR over
    per-frame maps at 64^2, R = 4 (uniform1d, 2 % noise) and +1.2 dB with gaussian1d at 5 % noise; +0.3 dB at
    128^2, R = 6. ``auto`` keeps the low-resolution ratio here (those figures; ESPIRiT is not measured on dynamic
    data yet).
    """
    from recon.physics.coil_maps import calibrate

    counts = mask.to(y.dtype).sum(dim=0)  # (ny, nx)
    average = y.sum(dim=0, keepdim=True) / counts.clamp_min(1)
    maps, record = calibrate(average, counts > 0, "ratio" if estimator == "auto" else estimator)
    return maps, {**record, "from": "time-averaged k-space"}
