"""Tomography preprocessing: raw detector frames (counts) -> post-log sinograms, one per detector row.

The CT readers of raw projections (``recon.io.layouts``: DXchange, NXtomo) run this stage on the detector rows
a run reads, block by block, so that ``--slices 100:120`` of a 2048-row scan reads and corrects 20 rows only.
Per block of rows, in this order:

1. **flat/dark normalisation**: ``T = (P - D) / (F - D)`` with ``D`` and ``F`` the per-pixel means of the dark
   and flat (white) frames, computed once per block from all dark and flat frames the file holds.
2. **zingers** (``zingers=THRESHOLD``, off by default): algotom's ``remove_zinger`` on each row's transmission
   sinogram (views x columns): pixels brighter than the mean of their neighbours by more than ``THRESHOLD``
   (relative, algotom recommends 0.05-0.1) take that mean. Counted.
3. **invalid values**: where ``F - D <= 0`` (a dead pixel in the flats) or ``T`` is not finite, the pixel takes
   the median of its valid 3x3 neighbours in the sinogram; ``T`` below ``min_transmission`` (no photon got
   through) is clipped to it. Both counted.
4. **-log**: line integrals ``-log T`` (path lengths in pixels; the image is attenuation per pixel).
5. **rings** (``rings=sorting``, off by default): algotom's ``remove_stripe_based_sorting`` (Vo et al. 2018)
   on each row's sinogram, window ``ring_size``.

The **centre of rotation** is found once per file (:func:`estimate_center`: algotom's ``find_center_vo``, Vo et
al. 2014, refined by a fit of the projections' centroids, on the sinograms of CENTER_ROWS rows around
``center_row``, default the middle row) unless the user gives it, and is applied in the projector as
``det_offset = centre - (n_cols - 1) / 2`` (no resampling of the data). Every step and its parameters go into
the reader's provenance, the counts as they accumulate.
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from recon.errors import UserError

OPTION_HELP = {
    "center": "auto (estimate, default) | a column c: the rotation axis projects to column c (0 = first column's "
              "centre)",
    "center_row": "detector row around which the centre is estimated [middle row]",
    "rings": "none (default) | sorting: algotom's stripe removal by sorting",
    "ring_size": "median window of the ring removal in columns [21]",
    "zingers": "off (default) | a relative threshold such as 0.1: algotom's zinger removal",
    "min_transmission": "transmission floor before -log [1e-6]",
}


@dataclass(frozen=True)
class TomoOptions:
    """The preprocessing choices (reader options ``--read key=value``, see OPTION_HELP)."""

    center: float | None = None
    """Column of the rotation axis; None estimates it."""
    center_row: int | None = None
    rings: str = "none"
    ring_size: int = 21
    zingers: float | None = None
    min_transmission: float = 1e-6

    @classmethod
    def parse(cls, options: dict[str, str], path: str | Path) -> TomoOptions:
        """Options from their text values (``center=auto``, ``rings=sorting``...); UserError naming the bad one."""

        def number(key: str, kind=float, minimum: float | None = None):
            try:
                value = kind(options[key])
            except ValueError:
                raise UserError(f"{options[key]!r} is not a number", path=path, key=f"--read {key}",
                                fix=f"{key}: {OPTION_HELP[key]}") from None
            if not math.isfinite(value) or (minimum is not None and value < minimum):
                raise UserError(f"{key}={options[key]} is out of range", path=path, key=f"--read {key}",
                                fix=f"{key}: {OPTION_HELP[key]}")
            return value

        values = {}
        if options.get("center", "auto") != "auto":
            values["center"] = number("center")
        if "center_row" in options:
            values["center_row"] = number("center_row", int, 0)
        if "rings" in options:
            if options["rings"] not in ("none", "sorting"):
                raise UserError(f"rings={options['rings']} is not a ring removal", path=path, key="--read rings",
                                fix=f"rings: {OPTION_HELP['rings']}")
            values["rings"] = options["rings"]
        if "ring_size" in options:
            values["ring_size"] = number("ring_size", int, 3)
        if options.get("zingers", "off") != "off":
            values["zingers"] = number("zingers", float, 1e-6)
        if "min_transmission" in options:
            values["min_transmission"] = number("min_transmission", float, 1e-30)
        return cls(**values)


@dataclass
class Counts:
    """Pixels each correction changed, over all rows read so far."""

    clipped: int = 0
    invalid: int = 0
    zingers: int = 0
    rows: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, int]:
        return {"rows_read": len(self.rows), "transmission_clipped": self.clipped, "invalid_replaced": self.invalid,
                "zingers_replaced": self.zingers}


def _algotom(module: str) -> ModuleType:
    """``algotom.prep.MODULE`` (in the ``tomo`` extra), or a UserError saying how to install it."""
    try:
        return importlib.import_module(f"algotom.prep.{module}")
    except ImportError as error:
        raise UserError(f"tomography preprocessing needs algotom ({error})", key="algotom",
                        fix="pip install 'recon[tomo]'") from None


def frame_means(frames: np.ndarray) -> np.ndarray:
    """Per-pixel mean (rows, cols) of flat or dark frames (n, rows, cols), float32; zeros when there are none."""
    return frames.astype(np.float32).mean(axis=0) if len(frames) else np.zeros(frames.shape[1:], np.float32)


def _median_of_valid(sinogram: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """``sinogram`` with its ``bad`` pixels replaced by the median of their valid 3x3 neighbours (1 where none)."""
    padded = np.pad(np.where(bad, np.nan, sinogram), 1, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))[bad].reshape(-1, 9)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice encountered")
        values = np.nanmedian(windows, axis=1)
    fixed = sinogram.copy()
    fixed[bad] = np.where(np.isfinite(values), values, 1.0)
    return fixed


def line_integrals(raw: np.ndarray, flat: np.ndarray, dark: np.ndarray, options: TomoOptions,
                   counts: Counts) -> np.ndarray:
    """Sinograms (rows, views, cols) float32 of raw projections ``raw`` (views, rows, cols) in counts, given the
    mean ``flat`` and ``dark`` (rows, cols) of the same rows: steps 1-5 of the module docstring, counted in
    ``counts``."""
    signal = (flat - dark)[:, None, :]  # (rows, 1, cols): rows first, as the sinograms
    transmission = (raw.astype(np.float32).transpose(1, 0, 2) - dark[:, None, :]) / np.where(signal > 0, signal, 1)
    dead = np.broadcast_to(signal <= 0, transmission.shape)
    out = np.empty(transmission.shape, np.float32)
    for r, sinogram in enumerate(transmission):
        if options.zingers is not None:
            cleaned = _algotom("removal").remove_zinger(sinogram, options.zingers, size=2)
            counts.zingers += int(np.count_nonzero(cleaned != sinogram))
            sinogram = cleaned
        bad = dead[r] | ~np.isfinite(sinogram)
        if bad.any():
            counts.invalid += int(bad.sum())
            sinogram = _median_of_valid(sinogram, bad)
        low = sinogram < options.min_transmission
        counts.clipped += int(low.sum())
        sinogram = -np.log(np.maximum(sinogram, options.min_transmission))
        if options.rings == "sorting":
            sinogram = _algotom("removal").remove_stripe_based_sorting(sinogram, size=options.ring_size)
        out[r] = sinogram
    return out


def half_turn(angles: np.ndarray) -> np.ndarray:
    """Indices of the views within ``[a, a + pi)`` from the first angle ``a`` of the sorted angles, in angle order:
    the 180-degree sinogram the centre estimate needs. Empty when the views cover less than about pi."""
    order = np.argsort(angles, kind="stable")
    start = angles[order[0]]
    inside = order[angles[order] < start + math.pi - 1e-9]
    spacing = np.median(np.diff(np.sort(angles))) if len(angles) > 1 else math.pi
    covered = angles[inside[-1]] - start + spacing
    return inside if covered >= math.pi * 0.98 else np.empty(0, int)


CENTER_ROWS = 16
"""Detector rows (around ``center_row``) whose sinograms the centre estimate sums."""


def centroid_center(sinogram: np.ndarray, angles: np.ndarray) -> float:
    """Column of the rotation axis from the sinusoid the projections' centres of mass follow: each view's
    centroid is ``c + a cos(theta) + b sin(theta)`` for an object inside the field of view (mass is conserved,
    the centroid moves linearly), so a least-squares fit over all views gives ``c`` with sub-pixel accuracy.
    ``sinogram`` (views, cols)."""
    columns = np.arange(sinogram.shape[1])
    mass = sinogram.sum(axis=1)
    keep = mass > 1e-3 * np.abs(mass).max()
    centroids = (sinogram[keep] * columns).sum(axis=1) / mass[keep]
    basis = np.stack([np.ones(keep.sum()), np.cos(angles[keep]), np.sin(angles[keep])], axis=1)
    return float(np.linalg.lstsq(basis, centroids, rcond=None)[0][0])


def estimate_center(sinograms: np.ndarray, angles: np.ndarray, path: str | Path) -> tuple[float, dict]:
    """Column of the rotation axis (0 = the first column's centre) from a few rows' sinograms (rows, views,
    cols), and how it was found.

    Two steps: algotom's ``find_center_vo`` (Vo et al. 2014: a Fourier-domain metric on a half turn of views,
    searched within cols / 16 of the middle in 0.25-pixel steps) on the rows' mean, robust but measured up to
    0.2 pixel off on single rows of 128-column scans (even in 0.05-pixel steps), which costs 2 dB of fbp PSNR
    there (0.1 pixel costs 0.6 dB); then :func:`centroid_center` on the rows' sum, measured within 0.03 pixel on 8
    rows of the same scans, kept when it lies within a pixel of the first (an object wider than the field of
    view breaks its assumption, not the first's). UserError for scans shorter than a half turn.
    """
    views = half_turn(angles)
    if len(views) < 8:
        raise UserError(f"the views cover {np.degrees(np.ptp(angles)):.0f} degrees, too few to estimate the centre "
                        "of rotation (it needs 180)", path=path, key="--read center",
                        fix="give the rotation axis' column with --read center=COLUMN")
    coarse = float(_algotom("calculation").find_center_vo(sinograms.mean(axis=0)[views], ncore=1))
    refined = centroid_center(sinograms.sum(axis=0), angles)
    details = {"method": "algotom.prep.calculation.find_center_vo, refined by the centroid sinusoid fit",
               "find_center_vo": round(coarse, 3), "centroid_fit": round(refined, 3)}
    if abs(refined - coarse) <= 1:
        return refined, details
    return coarse, {**details, "method": "algotom.prep.calculation.find_center_vo (the centroid fit disagreed by "
                                          "more than a pixel: an object wider than the field of view?)"}
