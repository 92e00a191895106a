"""The reader a foreign layout returns: its datasets mapped onto a recon spec, read lazily, with provenance.

A layout module describes each dataset of the spec as a :class:`Source` (its shape in the spec's orientation
and a function reading a range along axis 0) and fills in the spec's attributes; :class:`LayoutReader` checks
that the mapping binds the spec's dimensions (a bug otherwise), then reads, slices and checks values like
:class:`~recon.io.measurement.MeasurementFile`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon.errors import UserError
from recon.io.measurement import MeasurementReader
from recon.io.specs import BLOCK_ELEMENTS, bind_shapes, load_spec


@dataclass(frozen=True)
class Source:
    """One dataset of the spec as a layout provides it: ``shape`` in the spec's orientation and ``read(start,
    stop)`` giving rows ``start:stop`` along axis 0 (converted, e.g. rotated or preprocessed)."""

    shape: tuple[int, ...]
    read: Callable[[int, int], np.ndarray]
    slices_per_block: int | None = None
    """Rows per read (default: as many as fit BLOCK_ELEMENTS elements)."""


def options_taken(options: dict[str, Any], allowed: dict[str, str], layout: str, path: str | Path) -> dict[str, Any]:
    """``options`` when every key is one that ``layout`` takes (``allowed``: name -> help), else UserError."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = "; ".join(f"{key}: {text}" for key, text in allowed.items()) or "no options"
        raise UserError(f"the {layout} reader takes no option {unknown[0]!r}", path=path, key=f"--read {unknown[0]}",
                        fix=f"it takes {takes}")
    return options


class LayoutReader(MeasurementReader):
    """A foreign layout read as the recon spec ``spec_id`` (see :class:`MeasurementReader` for the API).

    ``sources``: dataset key -> :class:`Source`; ``attrs``: the spec's attributes (defaults are filled in);
    ``mapping``: lines saying where each item comes from, for ``describe()``; ``steps``: the conversions, each a
    dict with a ``step`` name and its parameters; ``live``: a function giving more provenance when asked (counts
    of a preprocessing stage that grow as slices are read); ``files``: open files to close.
    """

    def __init__(self, path: str | Path, layout: str, spec_id: str, sources: dict[str, Source], attrs: dict[str, Any],
                 *, title: str, mapping: list[str], steps: list[dict[str, Any]], source_files: list[str | Path],
                 files: list[h5py.File], live: Callable[[], dict[str, Any]] | None = None):
        self.path, self.layout, self.spec = Path(path), layout, load_spec(spec_id)
        defaults = {key: a.default for key, a in self.spec.attributes.items() if a.default is not None}
        self.attrs = {**defaults, **{key: value for key, value in attrs.items() if value is not None}}
        self.dims, axes = bind_shapes(self.spec, {key: s.shape for key, s in sources.items()}, self.attrs)
        self._sliced = frozenset(key for key, found in axes.items() if found[:1] == (self.spec.slice_dim,))
        self._sources, self._title, self._mapping, self._steps = sources, title, mapping, steps
        self._source_files, self._files, self._live = [str(p) for p in source_files], files, live

    def close(self) -> None:
        for file in self._files:
            file.close()

    @property
    def provenance(self) -> dict[str, Any]:
        record = {"layout": self.layout, "spec": self.spec.id, "sources": list(self._source_files),
                  "steps": copy.deepcopy(self._steps)}
        if self._live is not None:
            record.update(self._live())
        return record

    def describe(self) -> str:
        lines = [f"layout: {self.layout} ({self._title}), read as {self.spec.id}"]
        lines += [f"  {line}" for line in self._mapping]
        for step in self._steps:
            params = ", ".join(f"{k}={v}" for k, v in step.items() if k != "step")
            lines.append(f"  step: {step['step']}" + (f" ({params})" if params else ""))
        return "\n".join(lines)

    def _present(self, key: str) -> bool:
        return key in self._sources

    def _dataset_shape(self, key: str) -> tuple[int, ...]:
        return self._sources[key].shape

    def _blocks(self, key: str, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        source = self._sources[key]
        per = source.slices_per_block or max(1, BLOCK_ELEMENTS // max(1, math.prod(source.shape[1:])))
        for i in range(start, stop, per):
            yield i, source.read(i, min(i + per, stop))


def open_h5(path: str | Path) -> h5py.File:
    """Open ``path`` read-only with the compression filters beamlines use (Blosc, LZ4, bitshuffle... through
    ``hdf5plugin``) registered; UserError when it is missing or not HDF5."""
    import hdf5plugin  # noqa: F401  (registers the filters with HDF5)

    path = Path(path)
    if not path.is_file():
        raise UserError("file not found" if not path.exists() else "is not a file", path=path, fix="check the path")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise UserError(f"cannot be opened as HDF5 ({err})", path=path,
                        fix="check that the file is complete and not being written") from None
