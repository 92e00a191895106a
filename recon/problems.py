"""Building a :class:`~recon.problem.Problem` from a measurement file: the spec's builder (its
:class:`~recon.specs.SpecKind`) and the checks builders share.

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
import weakref
from collections.abc import Callable

import numpy as np
import torch

from recon.errors import UserError
from recon.io.measurement import MeasurementReader
from recon.noise import NoiseEstimate, problem_noise
from recon.problem import Problem
from recon.specs import get_kind

MAGNITUDE_RANGE = (1e-12, 1e10)
"""Range of the largest magnitude of a measured array (unless it is all zero). recon computes in float32: sums of
squares over large problems overflow above it and lose precision below it. Scaling the data by a constant scales
the reconstruction (for methods whose weights are relative), so data outside is refused with that fix."""


def build_problem(measurement: MeasurementReader, slices: slice | None, device: torch.device,
                  dtype: torch.dtype = torch.float32) -> Problem:
    """The problem for the slices ``slices`` (None: all) of an open, validated measurement file; UserError for
    slices of a file without a slice axis."""
    if slices is not None:
        measurement.check_sliceable()
    problem = get_kind(measurement.spec.id).builder()(measurement, slices, device, dtype)
    problem.noise = _noise_once(weakref.ref(problem), dict(measurement.attrs))
    return problem


def _noise_once(problem: weakref.ref, attrs: dict) -> Callable[[], NoiseEstimate]:
    """``problem_noise`` of the problem, computed on the first call. The problem is held weakly: a strong reference
    from its own attribute made a cycle that kept every streamed slab's measurements alive until the garbage
    collector ran: a streamed fbp over 128 slices of 512^2 with 720 views in 5 slabs kept 99 MB more after each
    slab (RSS after heap trimming 1089, 1188, 1286, 1385 MB; with the weak reference 991 MB after every slab)."""
    return functools.cache(lambda: problem_noise(problem(), attrs))


def no_information(measurement: MeasurementReader, key: str, what: str, fix: str) -> UserError:
    """The UserError of measurements that say nothing about the image (``what`` is wrong with ``key``)."""
    return UserError(f"{what}: the measurements carry no information about the image", path=measurement.path,
                     key=key, fix=fix)


def check_scale(measurement: MeasurementReader, key: str, values: np.ndarray,
                bounds: tuple[float, float] = MAGNITUDE_RANGE) -> None:
    """UserError when the largest magnitude of ``values`` (unless all zero) is outside ``bounds``."""
    peak = float(np.abs(values).max())
    low, high = bounds
    if peak and not low <= peak <= high:
        fix = ("rescale the data by a constant (the reconstruction scales with it)" if bounds == MAGNITUDE_RANGE
               else "check the unit (metres, Hz)")
        raise UserError(f"values reach {peak:.3g} in magnitude, outside {low:g} to {high:g} where recon's float32 "
                        "arithmetic is safe", path=measurement.path, key=key, fix=fix)


def check_detector(measurement: MeasurementReader, sinogram: np.ndarray, image_shape: tuple[int, int]) -> None:
    """UserError when the detector (n_det bins, det_spacing image pixels apart) cannot resolve the image:
    one bin, bins spanning less than a pixel, or fewer than two bins on the image's diagonal."""
    n_det, spacing = sinogram.shape[-1], measurement.attrs["det_spacing"]
    offsets = np.abs(np.arange(n_det) - (n_det - 1) / 2 - measurement.attrs.get("det_offset", 0.0)) * spacing
    on_image = int((offsets <= math.hypot(*image_shape) / 2).sum())
    fix = "check det_spacing (image pixels per detector bin) and the sinogram's last axis (detector bins)"
    if n_det < 2:
        raise no_information(measurement, "sinogram", "one detector bin per view", fix)
    if (n_det - 1) * spacing < 1:
        raise no_information(measurement, "det_spacing", f"the {n_det} detector bins span "
                             f"{(n_det - 1) * spacing:.3g} image pixels (det_spacing {spacing:g})", fix)
    if on_image < 2:
        raise no_information(measurement, "det_spacing", f"{on_image} of {n_det} detector bins fall on the "
                             f"image (det_spacing {spacing:g})", fix)


def first_empty(arrays: np.ndarray, offset: int) -> int | None:
    """Index (plus ``offset``) of the first of ``arrays`` (along axis 0) that is all zero, or None."""
    empty = ~arrays.reshape(len(arrays), -1).any(axis=1)
    return offset + int(np.argmax(empty)) if empty.any() else None


def read_ground_truth(measurement: MeasurementReader, slices: slice | None) -> np.ndarray | None:
    return measurement.read("ground_truth", slices) if measurement.has("ground_truth") else None
