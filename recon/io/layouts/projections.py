"""Raw projections of a parallel-beam scan (DXchange, NXtomo) read as ``ct-parallel/1`` sinograms, one per
detector row (the spec's slices), through the preprocessing stage :mod:`recon.preprocess.tomography`.

A layout module finds the frames in its file (:class:`RawScan`: projections, flats and darks as datasets and
frame indices, the angles in radians) and :func:`open_scan` does the rest: options, centre of rotation,
lazy sinograms by row range, attributes, mapping and provenance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon.errors import UserError
from recon.io.ct_geometry import LENGTH_UNITS
from recon.io.layouts.reader import LayoutReader, Source
from recon.preprocess.tomography import (
    CENTER_ROWS,
    OPTION_HELP,
    Counts,
    TomoOptions,
    estimate_center,
    frame_means,
    line_integrals,
)

ANGLE_UNITS = {"deg": "deg", "degree": "deg", "degrees": "deg", "rad": "rad", "radian": "rad", "radians": "rad"}
OPTIONS = {**OPTION_HELP, "image_size": "side of the square image in pixels [the detector width]",
           "angle_unit": "deg | rad: the unit of angles the file does not state"}
BLOCK_ELEMENTS = 1 << 26
"""Raw values per block of rows read at once (64 M: 128 MB of uint16 counts, 256 MB as float32)."""


def angles_in_radians(values: np.ndarray, unit: str | None, option: str | None, where: str,
                      path: str | Path) -> tuple[np.ndarray, str]:
    """Angles ``values`` in radians and the sentence saying how the unit was known. ``unit``: the file's units
    attribute (None when absent); ``option``: ``--read angle_unit``. A stated unit wins over the option; with
    neither, a span of more than 2 pi can only be degrees, and a span within 2 pi is ambiguous (radians, or a
    scan of a few degrees): UserError, never a guess."""
    span = float(np.ptp(values)) if values.size else 0.0
    if unit is not None:
        if unit.lower() not in ANGLE_UNITS:
            raise UserError(f"unknown angle unit {unit!r}", path=path, key=where, fix="store units 'deg' or 'rad'")
        known, how = ANGLE_UNITS[unit.lower()], f"units attribute {unit!r}"
    elif option is not None:
        if option not in ("deg", "rad"):
            raise UserError(f"angle_unit={option} is not deg or rad", path=path, key="--read angle_unit",
                            fix="give --read angle_unit=deg or rad")
        known, how = option, "--read angle_unit"
    elif span > 2 * math.pi * 1.001:
        known, how = "deg", f"no units attribute; a span of {span:g} can only be degrees"
    else:
        raise UserError(f"the angles have no units attribute and span {span:g}: degrees or radians?", path=path,
                        key=where, fix="give --read angle_unit=deg or --read angle_unit=rad")
    radians = np.deg2rad(values) if known == "deg" else np.asarray(values, np.float64)
    if np.ptp(radians) > 2 * math.pi * 1.001:
        raise UserError(f"the angles span {np.degrees(np.ptp(radians)):.1f} degrees, more than a full turn",
                        path=path, key=where, fix="give a scan of at most one turn (or --read angle_unit if the unit "
                                                  "is wrong)")
    return radians.astype(np.float64), f"{known} ({how})"


def length_in(value: float, unit: str | None, default: str = "m") -> tuple[float, str]:
    """A length and its unit attribute -> (value, unit of LENGTH_UNITS), converting spellings like ``micron``."""
    spelled = {"meter": "m", "metre": "m", "meters": "m", "micron": "um", "microns": "um", "µm": "um",
               "millimeter": "mm", "nanometer": "nm"}
    unit = spelled.get((unit or default).lower(), (unit or default).lower())
    if unit not in LENGTH_UNITS:
        return value, ""
    metres = value * LENGTH_UNITS[unit]
    best = next(u for u in ("m", "mm", "um", "nm") if metres >= LENGTH_UNITS[u] or u == "nm")
    return metres / LENGTH_UNITS[best], best


@dataclass
class FrameSet:
    """Frames of one kind (projections, flats or darks): ``dataset[index]`` along axis 0."""

    dataset: h5py.Dataset | None
    index: np.ndarray = field(default_factory=lambda: np.empty(0, int))

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """These frames' detector rows ``start:stop`` (frames, rows, cols), as stored."""
        if self.dataset is None or not len(self.index):
            cols = self.dataset.shape[2] if self.dataset is not None else 0
            return np.zeros((0, stop - start, cols), np.uint16)
        first, last = int(self.index[0]), int(self.index[-1])
        if last - first + 1 == len(self.index):  # contiguous: one hyperslab
            return self.dataset[first:last + 1, start:stop, :]
        return self.dataset[self.index.tolist(), start:stop, :]


@dataclass
class RawScan:
    """Where a layout found a scan: frames, angles (radians, one per projection) and what else the file states."""

    projections: FrameSet
    flats: FrameSet
    darks: FrameSet
    angles: np.ndarray
    title: str
    mapping: list[str]
    pixel_size: tuple[float, str] | None = None
    stated_center: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


def open_scan(path: Path, layout: str, spec_id: str, scan: RawScan, options: dict[str, Any],
              files: list[h5py.File]) -> LayoutReader:
    """The reader of ``scan``: sinograms per detector row (slices = rows), lazily preprocessed (see the module
    docstrings); ``options`` are the ``--read`` ones (OPTIONS)."""
    tomo = TomoOptions.parse({k: str(v) for k, v in options.items() if k in OPTION_HELP}, path)
    n_views, n_rows, n_cols = len(scan.projections), *scan.projections.dataset.shape[1:]
    if len(scan.flats) == 0:
        raise UserError("holds no flat (white) frames, so its counts cannot be normalised", path=path,
                        fix="add the flat-field frames (or import already normalised sinograms with `recon import "
                            "sinogram`)")
    if len(scan.angles) != n_views:
        raise UserError(f"{len(scan.angles)} angles for {n_views} projections", path=path,
                        fix="store one rotation angle per projection")
    try:
        size = int(options.get("image_size", n_cols))
    except ValueError:
        size = 0
    if size < 1:
        raise UserError(f"image_size={options['image_size']} is not a positive integer", path=path,
                        key="--read image_size", fix="give the image side in pixels")

    def sinograms(start: int, stop: int, counts: Counts) -> np.ndarray:
        flat, dark = frame_means(scan.flats.rows(start, stop)), frame_means(scan.darks.rows(start, stop))
        if len(scan.darks) == 0:
            dark = np.zeros_like(flat)
        counts.rows.update(range(start, stop))
        return line_integrals(scan.projections.rows(start, stop), flat, dark, tomo, counts)

    steps = [*scan.steps, {"step": "flat/dark normalisation", "flats": len(scan.flats), "darks": len(scan.darks),
                           "formula": "(P - mean dark) / (mean flat - mean dark), per pixel"}]
    if tomo.zingers is not None:
        steps.append({"step": "zinger removal", "method": "algotom.prep.removal.remove_zinger", "threshold":
                      tomo.zingers})
    steps.append({"step": "invalid values", "replacement": "median of valid 3x3 neighbours",
                  "min_transmission": tomo.min_transmission})
    steps.append({"step": "-log"})
    if tomo.rings == "sorting":
        steps.append({"step": "ring removal", "method": "algotom.prep.removal.remove_stripe_based_sorting",
                      "size": tomo.ring_size})
    if tomo.center is None:
        row = n_rows // 2 if tomo.center_row is None else tomo.center_row
        if row >= n_rows:
            raise UserError(f"center_row={row} is outside the detector's {n_rows} rows", path=path,
                            key="--read center_row", fix=f"give a row below {n_rows}")
        first = max(0, min(row - CENTER_ROWS // 2, n_rows - CENTER_ROWS))
        band = (first, min(n_rows, first + CENTER_ROWS))
        center, how = estimate_center(sinograms(*band, Counts()), scan.angles, path)
        steps.append({"step": "centre of rotation", **how, "rows": f"{band[0]}:{band[1]}", "center": round(center, 3)}
                     | ({"center_stated_in_file": scan.stated_center} if scan.stated_center is not None else {}))
    else:
        center = tomo.center
        steps.append({"step": "centre of rotation", "method": "given (--read center)", "center": center})
    det_offset = center - (n_cols - 1) / 2
    steps[-1]["det_offset"] = round(det_offset, 3)
    counts = Counts()
    per_block = max(1, BLOCK_ELEMENTS // max(1, n_views * n_cols))
    sources = {"sinogram": Source((n_rows, n_views, n_cols), lambda a, b: sinograms(a, b, counts), per_block),
               "angles": Source((n_views,), lambda a, b: scan.angles[a:b])}
    attrs = {"image_shape": [n_rows, size, size], "det_spacing": 1.0, "det_offset": det_offset}
    if scan.pixel_size is not None and scan.pixel_size[1]:
        attrs.update(pixel_size=scan.pixel_size[0], slice_spacing=scan.pixel_size[0], unit=scan.pixel_size[1])
    mapping = [f"sinogram <- {n_views} projections x {n_rows} rows x {n_cols} columns: one sinogram per detector "
               f"row (slices = rows), preprocessed when read", *scan.mapping,
               f"centre of rotation: column {center:.2f} (det_offset {det_offset:+.2f} bins)",
               f"image: {size} x {size} pixels of one detector pixel"
               + (f" ({scan.pixel_size[0]:g} {scan.pixel_size[1]})" if "pixel_size" in attrs else "")]
    return LayoutReader(path, layout, spec_id, sources, attrs, title=scan.title, mapping=mapping, steps=steps,
                        source_files=[path], files=files, live=lambda: {"counts": counts.as_dict()})
