"""Measurement files (any spec in data_specs): lazy reading by slice range, and atomic writing.

Opening validates the structure of the file (datasets, shapes, dtypes, attributes) without reading the
data; the values (NaN/Inf, masks 0/1) are checked on what :meth:`MeasurementFile.read` reads, so a run on
slices 10:20 of a huge file never reads the other slices.

Slice ranges select along the spec's ``slice_dim`` (``nz`` for CT and MRI, ``n_samples`` for
sparse-linear), which is axis 0 of the datasets that have it; datasets without it (angles, a 2D mask, A)
are read whole. A file without a slice axis (a 2D sinogram, a dynamic or radar file) counts as one slice:
the only range it accepts is the whole, ``0:1``, and ``read`` then returns the data unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon import memory
from recon.errors import UserError
from recon.io.reconstruction import atomic_h5, attr_value, write_array
from recon.io.specs import (
    DAMAGED_FIX,
    HDF5_ERRORS,
    Spec,
    dtype_matches,
    iter_blocks,
    load_spec,
    open_validated,
    read_attrs,
    value_problem,
)

_STORED_AS = {"float32": np.float32, "float64": np.float64, "complex64": np.complex64, "mask": np.bool_}


def parse_slice_range(text: str, n_slices: int, *, path: str | Path | None = None) -> slice:
    """Parse ``--slices`` text into ``slice(start, stop)`` with ``0 <= start < stop <= n_slices``.

    Python-like: ``a:b``, ``a:``, ``:b``, ``:`` or a single index ``a``; negative numbers count from the
    end. Out-of-bounds or empty ranges and steps raise UserError (nothing is clamped silently).
    """
    fix = f"give --slices a:b with 0 <= a < b <= {n_slices} (negative numbers count from the end)"
    parts = text.strip().split(":")
    try:
        numbers = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise UserError(f"--slices {text!r} is not a range of integers", path=path, fix=fix) from None
    if len(numbers) == 1 and numbers[0] is not None:
        start, stop = numbers[0], None if numbers[0] == -1 else numbers[0] + 1
    elif len(numbers) == 2:
        start, stop = numbers
    else:
        raise UserError(f"--slices {text!r} is not of the form a:b", path=path, fix=fix)
    start = 0 if start is None else start + n_slices if start < 0 else start
    stop = n_slices if stop is None else stop + n_slices if stop < 0 else stop
    if not (0 <= start < n_slices and 0 < stop <= n_slices):
        raise UserError(f"--slices {text!r} is out of bounds for {n_slices} slices", path=path, fix=fix)
    if start >= stop:
        raise UserError(f"--slices {text!r} selects no slice", path=path, fix=fix)
    return slice(start, stop)


class MeasurementReader:
    """What every measurement source offers the pipeline, the viewer and batch, whatever its layout on disk: a
    recon-spec file (:class:`MeasurementFile`) or a foreign layout mapped onto a spec (``recon.io.layouts``).

    ``path``; ``spec``: the Spec it maps to; ``dims``: symbol -> size; ``attrs``: spec attributes with defaults,
    units and geometry filled in; ``layout``: "recon" or the foreign layout's name; ``provenance``: a JSON-able
    dict (layout, source files, conversion and preprocessing steps with their parameters). Subclasses set
    these in ``__init__`` and implement :meth:`_dataset_shape`, :meth:`_present` and :meth:`_blocks`; reading,
    slice ranges and value checks are shared. Use as a context manager.
    """

    path: Path
    spec: Spec
    dims: dict[str, int]
    attrs: dict[str, Any]
    layout: str = "recon"
    _sliced: frozenset[str] = frozenset()
    """Dataset keys whose axis 0 is the spec's slice axis."""
    memory_fix = "use a machine with more memory, or crop the data"
    """What :meth:`check_memory` suggests when not even one slice fits (a layout may name its own option)."""

    def __enter__(self) -> MeasurementReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the open files (subclasses with files override)."""

    @property
    def provenance(self) -> dict[str, Any]:
        return {"layout": self.layout, "sources": [str(self.path)]}

    def describe(self) -> str:
        """What ``recon info`` prints about how the file is read (one line for a recon-spec file)."""
        return f"layout: {self.layout} (a {self.spec.id} file, read as it is)"

    @property
    def n_slices(self) -> int:
        """Size of the slice axis (``spec.slice_dim``), 1 when the file or its spec has none."""
        return self.dims.get(self.spec.slice_dim, 1)

    @property
    def sources(self) -> list[Path]:
        """The files a run reads (an output must be none of them)."""
        return [self.path]

    def has(self, key: str) -> bool:
        """Whether the measurement holds dataset ``key`` (optional ones like ``ground_truth`` may be absent)."""
        return key in self.spec.datasets and self._present(key)

    def shape(self, key: str) -> tuple[int, ...]:
        """Shape of dataset ``key``, without reading it."""
        self._check_key(key)
        return self._dataset_shape(key)

    def dtype(self, key: str) -> np.dtype:
        """The dtype :meth:`read` returns for ``key`` (the first dtype kind its spec accepts)."""
        return np.dtype(_STORED_AS[self.spec.datasets[key].dtypes[0]])

    def sliced(self, key: str) -> bool:
        """Whether axis 0 of dataset ``key`` is the slice axis (``read`` then takes a slice range)."""
        return key in self._sliced

    def check_slice_range(self, text: str) -> slice:
        """Parse ``--slices`` text against this file's ``n_slices`` (see :func:`parse_slice_range`); UserError for a
        spec without a slice axis (a dynamic sequence or a radar volume is reconstructed whole)."""
        self.check_sliceable()
        return parse_slice_range(text, self.n_slices, path=self.path)

    def check_sliceable(self) -> None:
        """UserError when the spec has no slice axis: a dynamic sequence or a radar volume is reconstructed whole."""
        if self.spec.slice_dim is None:
            raise UserError(f"a {self.spec.id} file is reconstructed whole: --slices does not apply", path=self.path,
                            key="--slices", fix="leave out --slices")

    def read(self, key: str, slices: slice | None = None) -> np.ndarray:
        """Read dataset ``key``, only ``slices`` along axis 0 when it has the slice axis (whole otherwise).

        ``slices`` is ``slice(a, b)`` with ``0 <= a < b <= n_slices`` (as :meth:`check_slice_range` gives)
        or None for all; a file without a slice axis accepts only None or ``slice(0, 1)``.

        Returns float32, float64, complex64 or bool (masks) as the spec stores the key. Raises UserError
        when the range is out of bounds, the values read contain NaN/Inf or a mask value other than 0/1 (or
        break the spec's minimum), or cannot be read (a damaged compressed chunk).
        """
        self._check_key(key)
        shape = self._dataset_shape(key)
        start, stop = self._bounds(slices)
        if key not in self._sliced:
            start, stop = 0, shape[0]  # specs have no 0-d datasets
        d = self.spec.datasets[key]
        out = None
        try:
            for i, block in self._blocks(key, start, stop):  # checked block by block, copied into ``out``
                kind = next(k for k in d.dtypes if dtype_matches(k, block.dtype))
                problem = value_problem(kind, d.finite, block, i, d.exclusive_minimum)
                if problem:
                    raise UserError(problem, path=self.path, key=key,
                                    fix="replace the bad values in the file, or choose other --slices")
                if out is None:
                    out = np.empty((stop - start, *shape[1:]), dtype=_STORED_AS[kind])
                out[i - start:i - start + len(block)] = block
        except HDF5_ERRORS as err:
            raise UserError(f"cannot be read ({err})", path=self.path, key=key, fix=DAMAGED_FIX) from None
        return out

    def memory_need(self, slices: slice | None = None) -> tuple[int, int, int]:
        """(bytes shared by all slices, bytes per slice, slice count) of a run over ``slices`` (None: all): the
        datasets the measurement holds, in the dtype :meth:`read` returns, plus the image to reconstruct in float32,
        from the declared shapes (nothing is read). A lower bound of what a method holds."""
        start, stop = self._bounds(slices)
        fixed, per_slice = self._image_bytes()
        for key in self.spec.datasets:
            if not self.has(key):
                continue
            shape = self.shape(key)
            nbytes = math.prod(shape) * self.dtype(key).itemsize
            if self.sliced(key):
                per_slice += nbytes // shape[0]
            else:
                fixed += nbytes
        return fixed, per_slice, stop - start

    def check_memory(self, slices: slice | None = None) -> None:
        """UserError when a run over ``slices`` (None: all) cannot fit in memory by :meth:`memory_need`'s lower
        bound; the fix says how many slices fit."""
        fixed, per_slice, count = self.memory_need(slices)
        fits = max(0, memory.available_bytes() - fixed) // per_slice if per_slice else 0
        fix = (f"select at most {fits} slices at a time with --slices a:b (each needs {memory.format_bytes(per_slice)})"
               if 0 < fits < count else self.memory_fix)
        what = f"reading {count} slice(s)" if self.spec.slice_dim else "reconstructing this file"
        memory.check_fits(fixed + per_slice * count, what, fix, path=self.path)

    def _image_bytes(self) -> tuple[int, int]:
        """(bytes, bytes per slice) of the float32 image to reconstruct: the ground truth's longest shape whose
        sizes this measurement binds (per slice when it has the slice axis)."""
        d = self.spec.datasets.get("ground_truth")
        bound = [shape for shape in (d.shapes if d else ()) if all(s in self.dims or isinstance(s, int) for s in shape)]
        if not bound:
            return 0, 0
        shape = max(bound, key=len)
        nbytes = 4 * math.prod(self.dims.get(s, s) if isinstance(s, str) else s for s in shape)
        if shape[:1] == (self.spec.slice_dim,):
            return 0, nbytes // self.dims[self.spec.slice_dim]
        return nbytes, 0

    def _check_key(self, key: str) -> None:
        if not self.has(key):
            present = ", ".join(k for k in self.spec.datasets if self.has(k))
            raise UserError(f"no dataset {key!r} in this {self.spec.id} measurement", path=self.path, key=key,
                            fix=f"read one of {present}")

    def _bounds(self, slices: slice | None) -> tuple[int, int]:
        if slices is None:
            return 0, self.n_slices
        start = 0 if slices.start is None else slices.start
        stop = self.n_slices if slices.stop is None else slices.stop
        if slices.step not in (None, 1) or not 0 <= start < stop <= self.n_slices:
            raise UserError(f"slice range {start}:{stop} is empty, stepped or outside 0:{self.n_slices}",
                            path=self.path, fix=f"choose a:b with 0 <= a < b <= {self.n_slices}")
        return start, stop

    def _present(self, key: str) -> bool:
        raise NotImplementedError

    def _dataset_shape(self, key: str) -> tuple[int, ...]:
        raise NotImplementedError

    def _blocks(self, key: str, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_index, block)`` pairs covering ``[start, stop)`` of ``key`` along axis 0, in order."""
        raise NotImplementedError


class MeasurementFile(MeasurementReader):
    """An open, validated HDF5 measurement file in a recon spec, read lazily.

    ``spec``: its Spec; ``dims``: symbol -> size (e.g. ``{"nz": 40, "n_views": 180, ...}``);
    ``attrs``: root attributes as Python values with the spec's defaults filled in; ``n_slices``: size of
    the slice axis (1 when the file has none). Use as a context manager; raises UserError listing every
    structural problem when the file does not follow its spec. A file written by ``recon import`` carries
    the provenance of its conversion in the ``provenance`` attribute.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file, report = open_validated(self.path)
        self.spec, self.dims = report.spec, report.dims
        self._sliced = frozenset(key for key, axes in report.axes.items() if axes[:1] == (self.spec.slice_dim,))
        self.attrs: dict[str, Any] = read_attrs(self._file, self.spec)

    def close(self) -> None:
        self._file.close()

    @property
    def provenance(self) -> dict[str, Any]:
        stored = self.attrs.get("provenance")
        if isinstance(stored, dict):  # written by ``recon import``: where the data came from, then this file
            return {**stored, "sources": [*stored.get("sources", []), str(self.path)]}
        return super().provenance

    def describe(self) -> str:
        stored = self.attrs.get("provenance")
        if isinstance(stored, dict) and stored.get("layout"):
            return f"layout: recon ({self.spec.id}), imported from {stored['layout']} (see its provenance attribute)"
        return super().describe()

    @property
    def sources(self) -> list[Path]:
        """This file and those its datasets are externally linked to."""
        files = [self.path, *(Path(self._file[key].file.filename) for key in self.spec.datasets if self.has(key))]
        return list(dict.fromkeys(files))

    def _present(self, key: str) -> bool:
        return key in self._file and isinstance(self._file[key], h5py.Dataset)

    def _dataset_shape(self, key: str) -> tuple[int, ...]:
        return self._file[key].shape

    def _blocks(self, key: str, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        return iter_blocks(self._file[key], start, stop)


def _stored_dtype(kinds: tuple[str, ...], array: np.ndarray) -> np.dtype | None:
    """The dtype to store ``array`` as for a dataset accepting dtype kinds ``kinds`` (None: as it is)."""
    if np.iscomplexobj(array):
        return np.complex64 if "complex64" in kinds else None
    real = [k for k in kinds if k in ("float32", "float64")]
    if real and (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        return _STORED_AS[real[0]]
    return np.uint8 if "mask" in kinds and array.dtype == np.bool_ else None


def write_measurement(path: str | Path, spec_id: str, datasets: dict[str, np.ndarray], attrs: dict[str, Any], *,
                      overwrite: bool = False, protect: tuple[str | Path, ...] = ()) -> Path:
    """Write a measurement file of spec ``spec_id`` atomically (see :func:`recon.io.reconstruction.atomic_h5`).

    Datasets are stored as their spec says (float32/float64/complex64; bool masks as uint8), chunked
    (1, y, x) when 3D or more and gzip-compressed; ``attrs`` as given (None values left out, dicts as JSON);
    attributes outside the spec are kept (e.g. ``command``). The file is validated, values included, before
    it takes its name: a file that breaks the spec is a bug (ValueError). ``protect``: files the run read,
    which ``path`` must not be. Returns ``path``.
    """
    spec = load_spec(spec_id)
    with atomic_h5(path, spec.id, overwrite=overwrite, check_values=True, protect=protect) as file:
        for key, value in attrs.items():
            if value is not None:
                file.attrs[key] = attr_value(key, value)
        for key, array in datasets.items():
            array = np.asarray(array)
            kinds = spec.datasets[key].dtypes if key in spec.datasets else ()
            write_array(file, key, array, _stored_dtype(kinds, array))
    return Path(path)
