"""What the MRI layouts share: a foreign Cartesian k-space file read lazily as ``mri-cartesian/1``.

A layout module (:mod:`~recon.io.layouts.fastmri`, :mod:`~recon.io.layouts.ismrmrd`) subclasses
:class:`CartesianKSpaceFile` and supplies the raw k-space of a range of slices on the encoded grid
(slices, coils, readout, phase) and where it was acquired; this class turns it into what recon reconstructs,
step by step, each recorded in ``provenance``:

1. **Readout oversampling removed**: when the header's reconSpace has fewer readout samples than encodedSpace
   (fastMRI: 640 -> 320), each acquired line is inverse-FFT'd along the readout, the centre kept and FFT'd back
   (exact: the readout is fully sampled; the noise stays white with the same standard deviation).
2. **Crop**: the reconstruction is cut to the reconSpace field of view (the ``crop`` attribute of
   ``mri-cartesian/1``; fastMRI: the 320 x 320 centre of a 320 x 368 grid), and so is a larger ground truth,
   so that both line up pixel for pixel.
3. **Retrospective undersampling** (``--read acceleration=R``, fully sampled files only): fastMRI's column masks,
   ``mask=random`` (each outer column kept with the probability that gives R on average) or ``mask=equispaced``
   (evenly spaced with a random offset, spacing adjusted for the centre), with ``center_fraction`` (default
   0.32 / R: fastMRI's 0.08 at 4x, 0.04 at 8x) fully sampled central columns, seeded by ``seed`` (default 0).
   Columns the scanner did not acquire (fastMRI's zero padding) are never marked as sampled.
4. **Coil compression** (``--read coils=N``, by default when there are more than 16 coils): SVD virtual coils,
   :mod:`recon.physics.coil_compression`.

Axes: fastMRI's and ISMRMRD's readout is recon's ``ny`` (rows) and their phase encoding (fastMRI's last axis,
ISMRMRD's kspace_encode_step_1) recon's ``nx`` (columns), so 1D masks sample columns in both. No transpose is made:
the images come out as fastMRI's ``reconstruction_rss`` shows them.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon.errors import UserError
from recon.io.measurement import MeasurementReader
from recon.io.specs import bind_shapes, load_spec
from recon.physics.coil_compression import auto_virtual_coils, compress_coils
from recon.physics.masks import centre_slice

SPEC = "mri-cartesian/1"
MASK_KINDS = ("random", "equispaced")
COIL_MAP_ESTIMATORS = ("auto", "espirit", "ratio")
OPTIONS = {
    "acceleration": "retrospective undersampling of a fully sampled file by this factor (> 1)",
    "mask": f"undersampling pattern, {' | '.join(MASK_KINDS)} [random]",
    "center_fraction": "fraction of fully sampled central columns [0.32 / acceleration]",
    "seed": "seed of the undersampling mask [0]",
    "coils": "compress to this many virtual coils [all; automatic above 16 coils]",
    "coil_maps": f"coil sensitivity estimator, {' | '.join(COIL_MAP_ESTIMATORS)} [auto]",
}
_NS = {"m": "http://www.ismrm.org/ISMRMRD"}


@dataclass(frozen=True)
class EncodingGeometry:
    """What the ISMRMRD XML header says about the grid: encodedSpace and reconSpace matrix sizes (x readout,
    y phase encoding, z) and fields of view (mm), and the kspace_encoding_step_1 centre (None when absent)."""

    encoded: tuple[int, int, int]
    recon: tuple[int, int, int]
    encoded_fov: tuple[float, float, float]
    recon_fov: tuple[float, float, float]
    trajectory: str
    step1_center: int | None
    step1_maximum: int | None

    @classmethod
    def from_xml(cls, text: str | bytes, path: str | Path) -> EncodingGeometry:
        """Parse the first ``encoding`` of an ISMRMRD header; UserError naming what is missing."""
        try:
            encoding = ElementTree.fromstring(text).find("m:encoding", _NS)
        except ElementTree.ParseError as error:
            raise UserError(f"the ISMRMRD header is not valid XML ({error})", path=path,
                            fix="check the file's header") from None
        if encoding is None:
            raise UserError("the ISMRMRD header has no <encoding>", path=path, fix="check the file's header")

        def numbers(where: str, kind: type) -> tuple:
            values = [encoding.findtext(f"{where}/m:{axis}", namespaces=_NS) for axis in "xyz"]
            if None in values:
                raise UserError(f"the ISMRMRD header has no {where.replace('m:', '')}", path=path,
                                fix="check the file's header")
            return tuple(kind(float(v)) for v in values)

        def limit(field: str) -> int | None:
            text = encoding.findtext(f"m:encodingLimits/m:kspace_encoding_step_1/m:{field}", namespaces=_NS)
            return None if text is None else int(text)

        return cls(numbers("m:encodedSpace/m:matrixSize", int), numbers("m:reconSpace/m:matrixSize", int),
                   numbers("m:encodedSpace/m:fieldOfView_mm", float), numbers("m:reconSpace/m:fieldOfView_mm", float),
                   encoding.findtext("m:trajectory", "", _NS), limit("center"), limit("maximum"))

    def first_column(self) -> int:
        """Grid column of kspace_encode_step_1 = 0: the centre line lands on the grid centre (fastMRI's
        padding_left)."""
        return 0 if self.step1_center is None else self.encoded[1] // 2 - self.step1_center


@dataclass(frozen=True)
class Undersampling:
    """Retrospective undersampling asked for with ``--read``."""

    kind: str
    acceleration: float
    center_fraction: float
    seed: int

    def columns(self, n_columns: int) -> np.ndarray:
        """Bool (n_columns,): fastMRI's RandomMaskFunc (``random``) or EquispacedMaskFractionFunc
        (``equispaced``) with numpy's legacy RandomState(seed); the centre block starts at (n - n_low + 1) // 2."""
        rng = np.random.RandomState(self.seed)
        n_low = round(n_columns * self.center_fraction)
        mask = np.zeros(n_columns, bool)
        start = (n_columns - n_low + 1) // 2
        mask[start:start + n_low] = True
        if self.kind == "random":
            probability = (n_columns / self.acceleration - n_low) / (n_columns - n_low)
            return mask | (rng.uniform(size=n_columns) < probability)
        spacing = self.acceleration * (n_low - n_columns) / (n_low * self.acceleration - n_columns)
        offset = rng.randint(0, round(spacing))
        mask[np.around(np.arange(offset, n_columns - 1, spacing)).astype(int)] = True
        return mask

    def record(self, sampled: int, total: int) -> dict[str, Any]:
        return {"step": "undersampling", "mask": self.kind, "acceleration": self.acceleration,
                "center_fraction": self.center_fraction, "seed": self.seed, "sampled_columns": sampled,
                "columns": total}


INT_OPTIONS = {"seed": 0, "coils": 1}
"""Integer options and their smallest value (layouts add their own)."""


def parse_options(options: dict[str, Any], allowed: dict[str, str], path: str | Path,
                  integers: dict[str, int] = INT_OPTIONS) -> dict[str, Any]:
    """``--read`` options (strings or values) checked and typed against ``allowed`` (name -> help; ``integers``:
    integer ones -> smallest value, other unknown ones stay strings); UserError for unknown names or bad values."""
    parsed: dict[str, Any] = {}
    for name, raw in options.items():
        if name not in allowed:
            listed = "; ".join(f"{key}: {text}" for key, text in allowed.items())
            raise UserError(f"--read {name} is not an option of this layout", path=path, key="--read",
                            fix=f"use {listed}")
        parsed[name] = _parse_option(name, raw, allowed[name], integers, path)
    undersampling = {"mask", "center_fraction", "seed"} & set(parsed)
    if undersampling and "acceleration" not in parsed:
        raise UserError(f"--read {sorted(undersampling)[0]} sets the undersampling, which needs an acceleration",
                        path=path, key="--read", fix="add --read acceleration=4 (for example)")
    return parsed


def _parse_option(name: str, raw: Any, about: str, integers: dict[str, int], path: str | Path) -> Any:
    text = str(raw).strip()
    choices = {"mask": MASK_KINDS, "coil_maps": COIL_MAP_ESTIMATORS}
    try:
        if name in ("acceleration", "center_fraction"):
            value = float(text)
            ok = math.isfinite(value) and (value > 1 if name == "acceleration" else 0 < value < 1)
        elif name in integers:
            value = int(text)
            ok = value >= integers[name]
        else:
            value = text
            ok = value in choices[name] if name in choices else bool(value)
    except ValueError:
        ok = False
    if not ok:
        raise UserError(f"--read {name}={text} is not allowed", path=path, key="--read",
                        fix=f"give --read {name}=VALUE, {name}: {about}")
    return value


def remove_readout_oversampling(kspace: np.ndarray, rows: int) -> np.ndarray:
    """K-space (..., R, P) whose readout (axis -2) is fully sampled -> (..., rows, P) of the centre ``rows``
    image rows, by a centred orthonormal inverse FFT along the readout, a crop and the FFT back."""
    image = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(kspace, axes=-2), axis=-2, norm="ortho"), axes=-2)
    image = image[..., centre_slice(kspace.shape[-2], rows), :]
    return np.fft.fftshift(np.fft.fft(np.fft.ifftshift(image, axes=-2), axis=-2, norm="ortho"), axes=-2)


class CartesianKSpaceFile(MeasurementReader):
    """A foreign Cartesian MRI file read as ``mri-cartesian/1`` (see :class:`MeasurementReader` for the API: slice
    ranges, value checks and the memory check are the shared ones).

    Subclasses set ``layout`` and ``title`` and implement :meth:`_raw_kspace`, :meth:`_acquired` and, when the
    file has a ground truth (``truth_key``, a dataset of the h5py ``file`` given to :meth:`_setup`),
    :meth:`_raw_truth`; their ``__init__`` opens the file and calls :meth:`_setup`.
    """

    title = ""
    truth_key: str | None = None
    memory_fix = "use a machine with more memory, or fewer coils with --read coils=N"

    def _setup(self, path: str | Path, file: h5py.File | None, geometry: EncodingGeometry | None, n_slices: int,
               n_coils: int, options: dict[str, Any], source: str) -> None:
        """Decide the conversion steps from the header, the acquired region and the options (reads one slice
        when the coils are compressed automatically, nothing else)."""
        self.path, self._file, self.geometry = Path(path), file, geometry
        self.spec = load_spec(SPEC)
        self.coil_map_estimator = options.get("coil_maps", "auto")
        self._source = source
        steps: list[dict[str, Any]] = []
        acquired = self._acquired(0, n_slices)  # (1 or S, R, P) bool, on the encoded grid
        rows, columns = acquired.shape[-2:]
        full_readout = bool((acquired == acquired.any(axis=-2, keepdims=True)).all())
        self._rows = rows
        if geometry is not None and geometry.recon[0] < rows and full_readout:
            self._rows = geometry.recon[0]
            steps.append({"step": "readout_oversampling_removed", "from": rows, "to": self._rows,
                          "how": "centred inverse FFT along the readout, centre kept, FFT back"})
        self._sampled = acquired[..., centre_slice(rows, self._rows), :]
        if "acceleration" in options:
            if self.undersampled():
                raise UserError("is undersampled already: --read acceleration applies to fully sampled files",
                                path=path, key="--read acceleration", fix="leave out the --read undersampling options")
            scheme = Undersampling(options.get("mask", "random"), options["acceleration"],
                                   options.get("center_fraction", min(0.32 / options["acceleration"], 0.5)),
                                   options.get("seed", 0))
            keep, acquired_columns = scheme.columns(columns), self._sampled[0].any(axis=0)
            self._sampled = self._sampled & keep
            steps.append(scheme.record(int((keep & acquired_columns).sum()), int(acquired_columns.sum())))
        self._crop = self._choose_crop(steps)
        self._coils = n_coils
        virtual = self._virtual_coils(options.get("coils"), n_slices, path)
        if virtual < n_coils:
            steps.append({"step": "coil_compression", "method": "svd", "coils": n_coils,
                          "virtual_coils": virtual, "automatic": "coils" not in options})
        self._steps = steps
        ny, nx = self._rows, columns
        self._shapes = {"kspace": (n_slices, virtual, ny, nx),
                        "mask": (ny, nx) if len(self._sampled) == 1 else (n_slices, ny, nx)}
        if self.truth_key is not None:
            self._shapes["ground_truth"] = (n_slices, *self._crop)
        self.attrs = {"fft_norm": "ortho", "fft_centered": True, "crop": list(self._crop)}
        self.dims, axes = bind_shapes(self.spec, self._shapes, self.attrs)
        self._sliced = frozenset(key for key, found in axes.items() if found[:1] == (self.spec.slice_dim,))

    def _virtual_coils(self, requested: int | None, n_slices: int, path: str | Path) -> int:
        """Coils to keep: ``--read coils`` or, above 16 coils, the automatic choice on the middle slice."""
        if requested is not None and requested > self._coils:
            raise UserError(f"--read coils={requested} asks for more coils than the file's {self._coils}",
                            path=path, key="--read coils", fix=f"give at most {self._coils}")
        if requested is not None:
            return requested
        middle = n_slices // 2
        sampled = self._sampled[min(middle, len(self._sampled) - 1)]
        return auto_virtual_coils(self._grid_kspace(middle, middle + 1)[0], sampled) if self._coils > 16 else \
            self._coils

    def _choose_crop(self, steps: list[dict[str, Any]]) -> tuple[int, int]:
        """The reconSpace window of the grid, no larger than the ground truth (which is cropped to it)."""
        grid = (self._rows, self._sampled.shape[-1])
        crop = grid if self.geometry is None else tuple(min(r, g) for r, g in zip(self.geometry.recon[:2], grid,
                                                                                   strict=True))
        if self.truth_key is not None:
            crop = tuple(min(c, t) for c, t in zip(crop, self._file[self.truth_key].shape[-2:], strict=True))
        if crop != grid:
            steps.append({"step": "crop", "grid": list(grid), "output": list(crop),
                          "source": "ground truth shape" if self.geometry is None else "reconSpace matrix size"})
        return crop

    # ---------------------------------------------------------------- MeasurementReader's hooks

    @property
    def provenance(self) -> dict[str, Any]:
        return {"layout": self.layout, "spec": self.spec.id, "sources": [str(self.path)], "steps": list(self._steps)}

    def close(self) -> None:
        self._file.close()

    def undersampled(self) -> bool:
        """False for a fully sampled file: the same acquired region in every slice, a contiguous block of columns
        (zero padding beside it allowed, as fastMRI's) each acquired along the whole readout."""
        first = self._sampled[0]
        columns = np.flatnonzero(first.any(axis=0))
        return not (bool((self._sampled == first).all()) and bool(first[:, columns].all())
                    and len(columns) == columns[-1] - columns[0] + 1)

    def _present(self, key: str) -> bool:
        return key in self._shapes

    def _dataset_shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def _blocks(self, key: str, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """``kspace`` complex64 (S, C, ny, nx), ``mask`` bool (ny, nx) or (S, ny, nx), ``ground_truth`` float32
        (S, crop_ny, crop_nx), converted as the module says, one slice per block (the k-space of a slice is a few
        million values: fastMRI's knee, 15 coils x 640 x 368)."""
        if key == "mask":
            yield start, self._sampled[start:stop] if key in self._sliced else self._sampled[0]
            return
        for i in range(start, stop):
            if key == "ground_truth":
                truth = self._raw_truth(i, i + 1)
                yield i, truth[..., centre_slice(truth.shape[-2], self._crop[0]),
                               centre_slice(truth.shape[-1], self._crop[1])]
                continue
            kspace = self._grid_kspace(i, i + 1)
            virtual = self._shapes["kspace"][1]
            if virtual < self._coils:
                kspace, _ = compress_coils(kspace, self._sampled if len(self._sampled) == 1 else
                                           self._sampled[i:i + 1], virtual)
            yield i, kspace

    def _grid_kspace(self, start: int, stop: int) -> np.ndarray:
        """K-space (S, C, ny, nx) of slices start:stop after oversampling removal, zero where not sampled."""
        kspace = self._raw_kspace(start, stop)
        if self._rows < kspace.shape[-2]:
            kspace = remove_readout_oversampling(kspace, self._rows)
        sampled = self._sampled if len(self._sampled) == 1 else self._sampled[start:stop]
        return np.where(sampled[:, None], kspace, 0).astype(np.complex64)

    # ---------------------------------------------------------------- for the subclasses

    def _raw_kspace(self, start: int, stop: int) -> np.ndarray:
        """Complex k-space (S, C, R, P) of slices start:stop on the encoded grid, zero where not acquired."""
        raise NotImplementedError

    def _acquired(self, start: int, stop: int) -> np.ndarray:
        """Bool (1, R, P) when all slices share it, else (S, R, P): where the encoded grid was acquired."""
        raise NotImplementedError

    def _raw_truth(self, start: int, stop: int) -> np.ndarray:
        """Ground truth (S, h, w) of slices start:stop as stored."""
        raise NotImplementedError

    def describe(self) -> str:
        """``recon info``'s text: the layout, how it maps to mri-cartesian/1, each conversion step."""
        lines = [f"{self.path}: {self.title} (layout {self.layout}), read as {SPEC} without conversion on disk",
                 f"source: {self._source}",
                 "mapping: readout -> ny (rows), phase encoding -> nx (columns, the axis 1D masks sample)",
                 "dims: " + ", ".join(f"{sym}={n}" for sym, n in self.dims.items())]
        lines += ["steps:"] + [f"  - {_describe_step(step)}" for step in self._steps] if self._steps else \
            ["steps: none (the grid is read as stored)"]
        sampled = self._sampled.any(axis=-2).mean()
        lines.append(f"sampling: {sampled:.1%} of the columns (acceleration {1 / max(sampled, 1e-12):.2f})"
                     + (", fully sampled: --read acceleration=4 undersamples it" if not self.undersampled() and
                        not any(step["step"] == "undersampling" for step in self._steps) else ""))
        lines.append(f"ground truth: {self.truth_key or 'none'}")
        lines.append(f"coil maps: estimated at reconstruction ({self.coil_map_estimator})")
        return "\n".join(lines)


def _describe_step(step: dict[str, Any]) -> str:
    name = step["step"].replace("_", " ")
    return name + ": " + ", ".join(f"{key} {value}" for key, value in step.items() if key != "step")
