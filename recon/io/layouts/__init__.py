"""Foreign HDF5 layouts read as they are: each module recognises its layout from the file's content (never its
name) and opens it as an object with :class:`~recon.io.measurement.MeasurementFile`'s reading API in a recon spec.

A layout module defines ``NAME``, ``SPEC`` (the recon spec it reads as), ``detect(file: h5py.File) -> bool`` and
``open(path, **options)``; the object it returns also has ``layout``, ``provenance`` (the layout, the source and
every conversion step with its parameters) and ``describe()`` (for ``recon info``). Options come from the CLI's
repeatable ``--read key=value``.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import h5py

from recon.errors import UserError
from recon.io.layouts import fastmri, ismrmrd
from recon.io.measurement import MeasurementFile

LAYOUTS: dict[str, ModuleType] = {module.NAME: module for module in (fastmri, ismrmrd)}


def detect_layout(path: str | Path) -> str | None:
    """Name of the first layout that recognises the file's content; None for recon's own files and unknown ones."""
    try:
        with h5py.File(path, "r") as file:
            if "recon_spec" in file.attrs:
                return None
            return next((name for name, module in LAYOUTS.items() if module.detect(file)), None)
    except OSError:
        return None  # not HDF5 (or unreadable): MeasurementFile says why


def open_measurement(path: str | Path, **options: Any) -> Any:
    """recon's own file as a MeasurementFile, or a foreign file through its layout's ``open(path, **options)``.

    A file neither recon's nor of a known layout opens as a MeasurementFile, which names what is missing.
    """
    name = detect_layout(path)
    if name is not None:
        return LAYOUTS[name].open(path, **options)
    if options:
        raise UserError(f"--read {next(iter(options))} applies to foreign layouts, and this file is not one",
                        path=path, key="--read", fix="leave out --read for recon's own files")
    return MeasurementFile(path)
