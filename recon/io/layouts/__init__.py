"""The field's own HDF5 layouts, read as recon measurements without a conversion step.

:func:`open_measurement` is how recon opens any measurement (``recon reconstruct``, ``info``, ``batch``, the
napari reader): a file with the ``recon_spec`` root attribute is a :class:`~recon.io.measurement.MeasurementFile`;
any other HDF5 file is read by the first layout in :data:`LAYOUTS` whose ``detect`` recognises its content
(datasets, shapes, attributes: never the file's name).

A layout module defines:

- ``NAME`` (e.g. ``"lodopab"``) and ``SPEC`` (the recon spec it maps to, e.g. ``"ct-parallel/1"``);
- ``detect(file: h5py.File) -> bool``;
- ``open(path, **options)`` returning a :class:`~recon.io.measurement.MeasurementReader` (usually a
  :class:`~recon.io.layouts.reader.LayoutReader`) with ``layout``, ``provenance`` and ``describe()``; options
  come from ``--read key=value`` as strings, or from Python as values;
- optionally ``role(file) -> "measurement" | "ground_truth"`` (a file that only holds another file's ground
  truth, e.g. LoDoPaB's ``ground_truth_*.hdf5``: batch pairs it instead of counting it as a unit) and
  ``partner(path) -> Path | None`` (the file it pairs with), and ``OPTIONS`` (name -> help) for ``recon info``.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import h5py

from recon.errors import UserError
from recon.io.layouts import dxchange, fastmri, ismrmrd, lodopab, nxtomo
from recon.io.layouts.reader import open_h5
from recon.io.measurement import MeasurementFile, MeasurementReader

LAYOUTS: dict[str, ModuleType] = {module.NAME: module for module in (lodopab, dxchange, nxtomo, fastmri, ismrmrd)}
"""Layout name -> module, in the order detection tries them."""


def _detect(file: h5py.File) -> str | None:
    """The layout name (see :func:`detect_layout`); UserError when HDF5 cannot read what detection looks at (a
    damaged file: garbage in its object headers)."""
    from recon.io.specs import DAMAGED_FIX, HDF5_ERRORS

    try:
        if "recon_spec" in file.attrs:
            return "recon"
        return next((name for name, module in LAYOUTS.items() if module.detect(file)), None)
    except HDF5_ERRORS as err:
        raise UserError(f"cannot be read ({err})", path=file.filename, fix=DAMAGED_FIX) from None


def detect_layout(path: str | Path) -> str | None:
    """``"recon"`` for a recon-spec file, the name of the layout that recognises the file's content, or None."""
    with open_h5(path) as file:
        return _detect(file)


def role(path: str | Path) -> tuple[str | None, str]:
    """``(layout, role)`` of a file: role ``measurement`` (a unit of work), ``ground_truth`` (belongs to another
    file, see ``partner``) or ``unknown`` (no layout recognises it)."""
    with open_h5(path) as file:
        name = _detect(file)
        if name is None:
            return None, "unknown"
        module = LAYOUTS.get(name)
        return name, module.role(file) if module is not None and hasattr(module, "role") else "measurement"


def parse_read_options(items: list[str] | None) -> dict[str, str]:
    """``["center=auto", "rings=sorting"]`` (repeatable ``--read``) -> ``{"center": "auto", "rings": "sorting"}``."""
    options: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--read {item!r} is not key=value", key="--read", fix="write e.g. --read center=auto")
        options[key.strip()] = value.strip()
    return options


def open_measurement(path: str | Path, **options: Any) -> MeasurementReader:
    """The measurement at ``path``, in a recon spec or a layout recon reads (see the module docstring).

    ``options`` go to the layout's reader (``--read key=value``); a recon-spec file takes none. Raises
    UserError when the file cannot be read, follows no spec and no layout recognises it, or an option is bad.
    """
    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        return MeasurementFile(path)  # its validation says why (missing, a folder, not HDF5)
    return _open_detected(path, detect_layout(path), options)


def _open_detected(path: Path, name: str | None, options: dict[str, Any]) -> MeasurementReader:
    """The reader of an HDF5 file that :func:`detect_layout` called ``name``."""
    if name == "recon":
        if options:
            raise UserError(f"--read {next(iter(options))}=... applies to files in a foreign layout, this is a recon "
                            "file", path=path, key="--read", fix="leave out --read")
        return MeasurementFile(path)
    if name is None:
        raise UserError(f"recon_spec: root attribute missing, and no layout recon reads ({', '.join(LAYOUTS)}) "
                        "recognises its content", path=path,
                        fix="convert it with `recon import` (e.g. `recon import sinogram ARRAY ...`), or set the "
                            "root attribute recon_spec and follow that spec (data_specs/*.yaml)")
    return LAYOUTS[name].open(path, **options)


def _semantic_problems(measurement: MeasurementReader) -> list[str]:
    """What a structurally valid measurement still gets wrong (ct-parallel: angles in degrees, units without a
    pixel size), as ``KEY: what; fix: ...`` lines."""
    if measurement.spec.id != "ct-parallel/1":
        return []
    from recon.io.ct_geometry import ct_problems

    return [f"{p.key}: {p.what}; fix: {p.fix}" for p in ct_problems(measurement.attrs, measurement.read("angles"))]


def _mapped_summary(measurement: MeasurementReader) -> list[str]:
    """The spec-side view of a foreign file: dims, datasets and attributes as recon reads them."""
    lines = ["dims: " + ", ".join(f"{sym}={n}" for sym, n in measurement.dims.items()), "datasets (as read):"]
    lines += [f"  {key}  {measurement.shape(key)}  {measurement.spec.datasets[key].description}"
              for key in measurement.spec.datasets if measurement.has(key)]
    lines.append("attributes (as read):")
    lines += [f"  {key}  {value!r}" for key, value in measurement.attrs.items()]
    return lines


def inspect_file(path: str | Path, options: dict[str, Any]) -> tuple[str, list[str]]:
    """What ``recon info`` prints about ``path`` and the problems it finds: a recon-spec file is described and
    validated as stored (plus the checks of its content, such as angles in degrees); a file in a foreign layout
    says which layout recognised it and how it maps onto its spec."""
    from recon.io.specs import describe_file, validate_file

    path = Path(path)
    hdf5 = path.is_file() and h5py.is_hdf5(path)
    name, kind = role(path) if hdf5 else (None, "unknown")  # one detection serves the whole description
    if name not in (None, "recon") and kind == "ground_truth":
        partner = getattr(LAYOUTS[name], "partner", lambda _: None)(path)
        return (f"{path}: layout {name}, a ground-truth file: recon pairs it with its measurement "
                f"({partner if partner else 'not found beside it'}) and reconstructs that"), []
    if name not in (None, "recon"):
        with _open_detected(path, name, options) as measurement:
            text = "\n".join([f"{path}: {measurement.spec.id}: {measurement.spec.description}", measurement.describe(),
                              *_mapped_summary(measurement)])
            return text, _semantic_problems(measurement)
    report = validate_file(path)
    text = describe_file(path, report)
    if not report.ok:
        known = ", ".join(LAYOUTS)
        return text, report.problems + ([f"no layout recon reads ({known}) recognises it either"]
                                        if name is None and hdf5 else [])
    with _open_detected(path, "recon", options) as measurement:
        return f"{text}\n{measurement.describe()}", _semantic_problems(measurement)
