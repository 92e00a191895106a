"""Writing recon's HDF5 files atomically (``reconstruction/1`` outputs, and measurement files through
:func:`atomic_h5`), and reading reconstructions back.

A file is written under a temporary name in the output folder (``.NAME.XXXXXXXX.tmp``), flushed, synced,
checked against its spec in data_specs and only then renamed to its final name (:mod:`recon.io.atomic`), so
an interrupted run leaves either the old file or none under that name, never a half-written one, and never
replaces its input. Volumes (z, y, x) are chunked (1, y, x), images (y, x) as one chunk, all gzip-compressed
with shuffle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import recon
from recon.errors import UserError
from recon.io.atomic import atomic_output
from recon.io.atomic import check_output_path as check_output_path  # re-exported
from recon.io.specs import open_validated, read_attrs, validate_file

SPEC = "reconstruction/1"
# display_min/display_max are percentiles over a strided subsample of at most about this many values.
DISPLAY_SAMPLES = 1_000_000


@contextmanager
def atomic_h5(path: str | Path, spec_id: str, *, overwrite: bool = False, check_values: bool = False,
              protect: Iterable[str | Path] = ()) -> Iterator[h5py.File]:
    """Context manager giving a new HDF5 file (root attribute ``recon_spec`` set) that appears at ``path``
    only when the block ends without error and the file validates against ``spec_id`` (values too with
    ``check_values``). On any exception, KeyboardInterrupt included, the temporary file is removed and
    ``path`` is left as it was. A file that does not follow the spec raises ValueError (a bug, not the
    user's fault); an existing ``path`` raises UserError unless ``overwrite``, and ``path`` being one of the
    files in ``protect`` (what the run reads) or not a regular file raises UserError always (see
    :mod:`recon.io.atomic`).
    """
    with atomic_output(path, overwrite, protect) as tmp:
        with h5py.File(tmp, "w", locking=False) as file:  # the writer's own lock on tmp marks it live
            file.attrs["recon_spec"] = spec_id
            yield file
            file.flush()
        report = validate_file(tmp, check_values=check_values)
        if not report.ok:
            raise ValueError(f"the output does not follow {spec_id}: {'; '.join(report.problems)}")


def write_array(group: h5py.Group, key: str, array: np.ndarray, dtype: np.dtype | None = None) -> None:
    """Write ``array`` as ``group[key]``: as ``dtype`` when given, else real floats as float32 and complex
    as complex64; chunks (1, ..., y, x) for 3D and more, one chunk otherwise; gzip with shuffle."""
    array = np.asarray(array)
    if dtype is None and np.iscomplexobj(array):
        dtype = np.complex64
    elif dtype is None and np.issubdtype(array.dtype, np.floating):
        dtype = np.float32
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    if array.ndim == 0 or array.size == 0:
        group.create_dataset(key, data=array)
        return
    chunks = (1,) * (array.ndim - 2) + array.shape[-2:] if array.ndim >= 3 else array.shape
    group.create_dataset(key, data=array, chunks=chunks, compression="gzip", compression_opts=4, shuffle=True)


def attr_value(key: str, value: Any) -> Any:
    """Python value -> HDF5 attribute: dicts (``params``) as JSON strings, numbers as numbers. A JSON string
    is stored as it is; the spec's check of the written file catches one that is not JSON."""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=_json_default)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return np.asarray(value)
    if isinstance(value, str | bool | int | float | np.generic | np.ndarray):
        return value
    raise TypeError(f"attribute {key!r}: cannot store a {type(value).__name__} in HDF5")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return str(value)


def display_range(image: np.ndarray) -> tuple[float, float]:
    """0.5 and 99.5 percentiles of the finite values (of the magnitude for complex data), over a strided
    subsample of at most about DISPLAY_SAMPLES values; ``(lo, hi)`` with ``hi > lo``."""
    stride = max(1, math.ceil((image.size / DISPLAY_SAMPLES) ** (1 / max(image.ndim, 1))))
    sample = np.asarray(image[(slice(None, None, stride),) * image.ndim])
    values = np.abs(sample) if np.iscomplexobj(sample) else sample
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    if hi > lo:
        return lo, hi
    width = max(abs(lo), 1.0)
    return (lo, lo + width) if math.isfinite(lo + width) else (lo - width, lo)


def write_reconstruction(path: str | Path, reconstruction: np.ndarray, *, attrs: dict[str, Any],
                         datasets: dict[str, np.ndarray] | None = None,
                         history: dict[str, np.ndarray] | None = None, overwrite: bool = False,
                         protect: Iterable[str | Path] = ()) -> Path:
    """Write a ``reconstruction/1`` file atomically and return its path.

    ``reconstruction``: (y, x) or (z, y, x), real (stored float32) or complex (stored complex64).
    ``attrs``: the attributes of data_specs/reconstruction.yaml (``params`` a dict or JSON string; None
    values are left out); ``display_min``/``display_max`` are computed when absent and ``recon_version``
    defaults to the installed version. ``datasets``: optional ``uncertainty``, ``complex``,
    ``ground_truth`` shaped like the reconstruction; ``history``: any arrays, stored under ``history/``.
    An existing ``path`` raises UserError unless ``overwrite``, one of the files in ``protect`` (the inputs)
    always. A result that does not follow the spec is a programming error (ValueError) and leaves no file
    behind.
    """
    attrs = {key: value for key, value in attrs.items() if value is not None}
    if "display_min" not in attrs or "display_max" not in attrs:
        lo, hi = display_range(reconstruction)
        attrs.setdefault("display_min", lo)
        attrs.setdefault("display_max", hi)
    attrs.setdefault("recon_version", recon.__version__)
    with atomic_h5(path, SPEC, overwrite=overwrite, protect=protect) as file:
        for key, value in attrs.items():
            file.attrs[key] = attr_value(key, value)
        write_array(file, "reconstruction", reconstruction)
        for key, array in (datasets or {}).items():
            write_array(file, key, array)
        if history is not None:
            group = file.create_group("history")
            for key, array in history.items():
                write_array(group, key, array)
    return Path(path)


def read_reconstruction(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a ``reconstruction/1`` file: ``(reconstruction, attrs)`` with ``params`` parsed from JSON."""
    file, report = open_validated(path)
    with file:
        if report.spec.id != SPEC:
            raise UserError(f"is a {report.spec.id} file, not a reconstruction", path=report.path,
                            fix="give a file written by `recon reconstruct`")
        return file["reconstruction"][()], read_attrs(file, report.spec)
