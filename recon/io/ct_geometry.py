"""Units and geometry of ``ct-parallel`` measurements, and the checks that catch silently wrong CT images.

The conventions are written in ``data_specs/ct-parallel.yaml`` and drawn in ``docs/guides/ct-data.md``. Here:

- :func:`line_integral_scale`: what recon divides a file's sinogram by to get line integrals with path lengths in
  pixels (1 unless ``path_length_unit`` is a length unit: then ``pixel_size`` in that unit);
- :func:`voxel_size`: the output's voxel size and unit from ``pixel_size``, ``slice_spacing`` and ``unit``;
- :func:`ct_problems`: what makes a file unusable (angles in degrees, units without a pixel size), as errors;
- :func:`scale_warning`, :func:`reach_warning`: what a sinogram says about its own geometry, as warnings;
- :func:`sinogram_like`: whether an array given as an image is a sinogram (``recon simulate --volume``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from recon.errors import UserError

LENGTH_UNITS = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "nm": 1e-9}
"""Length units of the specs, in metres."""
FULL_TURN_TOLERANCE = 1e-6
"""Angles may span up to 2 pi (1 + this), so that a 360-degree scan with both end points passes."""


def line_integral_scale(attrs: dict[str, Any]) -> float:
    """The divisor that turns the stored sinogram into recon's line integrals (path lengths in pixels): 1 for
    ``path_length_unit: pixel``, else ``pixel_size`` expressed in ``path_length_unit`` (LoDoPaB-CT: 0.26 / 362,
    metres). Call after :func:`ct_problems` found nothing."""
    path_unit = attrs.get("path_length_unit", "pixel")
    if path_unit == "pixel":
        return 1.0
    return attrs["pixel_size"] * LENGTH_UNITS[attrs["unit"]] / LENGTH_UNITS[path_unit]


def voxel_size(attrs: dict[str, Any], ndim: int) -> tuple[tuple[float, ...] | None, str | None]:
    """``(voxel size per output axis, unit)`` of a 2D (``ndim`` 2) or 3D output, or ``(None, None)`` without a
    ``pixel_size``. Without ``slice_spacing`` a stack's z size is the pixel size (shown isotropic)."""
    pixel = attrs.get("pixel_size")
    if pixel is None:
        return None, None
    sizes = (pixel, pixel) if ndim == 2 else (attrs.get("slice_spacing", pixel), pixel, pixel)
    return tuple(float(s) for s in sizes), attrs["unit"]


def ct_problems(attrs: dict[str, Any], angles: np.ndarray) -> list[UserError]:
    """Everything in a ct-parallel measurement's attributes and angles that would give a wrong image without
    any error (the spec's structural checks have passed). Each problem is a UserError naming the fix."""
    problems = []
    span = float(np.ptp(angles)) if angles.size else 0.0
    if span > 2 * math.pi * (1 + FULL_TURN_TOLERANCE):
        degrees = span <= 360 * (1 + FULL_TURN_TOLERANCE) and span > 2 * math.pi * 1.5
        what = f"angles span {span:.4g} radians, more than a full turn (2 pi)" + (
            ": they look like degrees" if degrees else "")
        fix = ("store the angles in radians (numpy.deg2rad), or `recon import sinogram ... --angle-unit deg`"
               if degrees else "keep one turn of views (at most 2 pi), in radians")
        problems.append(UserError(what, key="angles", fix=fix))
    sizes = [key for key in ("pixel_size", "slice_spacing") if key in attrs]
    if sizes and "unit" not in attrs:
        problems.append(UserError(f"{' and '.join(sizes)} given without a unit", key="unit",
                                  fix="set the attribute unit to m, cm, mm, um or nm"))
    path_unit = attrs.get("path_length_unit", "pixel")
    if path_unit != "pixel" and ("pixel_size" not in attrs or "unit" not in attrs):
        problems.append(UserError(f"line integrals in {path_unit} need the pixel size to become pixel units",
                                  key="path_length_unit", fix=f"set pixel_size and unit (e.g. unit={path_unit}), or "
                                                              "path_length_unit=pixel if the sinogram is in pixels"))
    return problems


CORRELATION_FLOOR = 0.98


def scale_warning(sinogram: np.ndarray, projected_truth: np.ndarray) -> str | None:
    """Compare one slice's sinogram (line integrals in pixels, after :func:`line_integral_scale`) with the
    projections of its ground truth: a scale far from 1 means the units are wrong (metres read as pixels makes
    it about 1 / (pixel size in m) times too small), a poor correlation means the geometry is (angles, centre,
    orientation). None when they agree or the ground truth is empty.

    Correlation below CORRELATION_FLOOR warns: measured on a LoDoPaB-like slice (50 views, the dataset's noise)
    0.9993 for the right geometry, 0.90 for a mirrored image and 0.78 for one in odl's axis order."""
    y, p = sinogram.astype(np.float64).ravel(), projected_truth.astype(np.float64).ravel()
    power = float(p @ p)
    if power == 0 or not np.any(y):
        return None
    scale = float(y @ p) / power
    correlation = float(np.corrcoef(y, p)[0, 1])
    if correlation < CORRELATION_FLOOR:
        return (f"the sinogram does not match the projections of ground_truth (correlation {correlation:.2f}): "
                "the angles, det_offset, det_spacing or the image orientation are wrong, or ground_truth belongs to "
                "other data")
    if not 0.5 <= scale <= 2:
        factor = f"{1 / scale:.4g} times smaller" if scale < 1 else f"{scale:.4g} times larger"
        return (f"the sinogram is {factor} than the projections of ground_truth: are its line integrals in other "
                "units (e.g. metres instead of pixels)?")
    return None


def reach_warning(sinogram: np.ndarray, image_shape: tuple[int, int], det_spacing: float,
                  det_offset: float) -> str | None:
    """Warn when more than 2 % of a sinogram's magnitude lies in bins no ray through the image reaches (``|s|``
    beyond the image's half diagonal plus one bin): the image is too small for the data, or the detector
    geometry (det_spacing, det_offset) is wrong. ``sinogram`` (..., n_views, n_det)."""
    n_det = sinogram.shape[-1]
    s = (np.arange(n_det) - (n_det - 1) / 2 - det_offset) * det_spacing
    reach = math.hypot(*image_shape) / 2 + det_spacing
    mass = np.abs(sinogram).reshape(-1, n_det).sum(axis=0)
    total = float(mass.sum())
    outside = float(mass[np.abs(s) > reach].sum()) / total if total > 0 else 0.0
    if outside <= 0.02:
        return None
    return (f"{100 * outside:.0f} % of the sinogram lies in detector bins that no ray through the "
            f"{image_shape[0]}x{image_shape[1]} image reaches: the image is too small, or det_spacing "
            f"({det_spacing:g} pixels) or det_offset ({det_offset:g} bins) is wrong")


ROW_SUM_SPREAD = 0.01
"""A sinogram's rows (views) all sum to the object's total mass: their spread (std / mean) is at most about the
noise over sqrt(n_det) (measured: <= 0.0035 with 1 % noise on 20-180 views of Shepp-Logan, 693_UNCR, camera,
Colin27), while images spread by 0.04 (skimage's moon, a texture filling every row) to 0.7 (Shepp-Logan)."""


def _row_sum_spread(sums: np.ndarray) -> float:
    """Median over the leading axes of std / |mean| along the last axis of ``sums``, leaving out empty lines
    (all-zero slices of a volume); infinite when all are empty."""
    sums = sums.reshape(-1, sums.shape[-1])
    mean = np.abs(sums.mean(axis=-1))
    full = mean > 1e-6 * mean.max() if mean.size and mean.max() > 0 else np.zeros(len(mean), bool)
    return float(np.median(sums[full].std(axis=-1) / mean[full])) if full.any() else math.inf


def sinogram_like(array: np.ndarray) -> str | None:
    """Describe why ``array`` (y, x) or (z, y, x), given as an image or volume, is a sinogram or a stack of them
    (or of projections), or None: its rows sum to the same total (mass conservation across views) while its
    columns do not (a constant image is no sinogram)."""
    data = np.asarray(array, dtype=np.float64)
    if data.ndim not in (2, 3) or data.shape[-2] < 8 or data.shape[-1] < 8 or data.min() < -1e-3 * np.abs(data).max():
        return None  # line integrals of an attenuation are >= 0
    if data.ndim == 2:  # (views, detector): one total per view, and the detector profile summed over views
        candidates = [("its rows", data.sum(axis=-1), data.sum(axis=0))]
    else:
        candidates = [("axis 1 (a stack of sinograms: z, views, detector)", data.sum(axis=-1), data.sum(axis=1)),
                      ("axis 0 (a stack of projections: views, rows, detector)", data.sum(axis=-1).T, data.sum(axis=0))]
    for where, per_view, per_bin in candidates:
        spread = _row_sum_spread(per_view)
        if per_view.shape[-1] >= 8 and spread <= ROW_SUM_SPREAD and _row_sum_spread(per_bin) > 0.05:
            return (f"the lines along {where} all sum to the same total (spread {100 * spread:.2g} %), as the views "
                    "of a sinogram do")
    return None
