"""Which input files are units of a batch: recon files and measurements in a layout recon reads become units;
a layout's ground-truth file (LoDoPaB's ``ground_truth_*.hdf5``) is paired with its measurement instead of
counted; HDF5 files that neither follow a recon spec nor match a layout are skipped with the reason.

Recognition is by content (:func:`recon.io.layouts.role`), the same as ``recon reconstruct`` and ``recon info``.
A file that cannot be opened at all stays a unit, so that it fails with the reader's clear line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recon.batch.inputs import SkippedInput
from recon.errors import UserError


@dataclass(frozen=True)
class Measurement:
    """One file to reconstruct: ``layout`` is ``recon``, a layout name, or "" when the file could not be opened;
    ``ground_truth`` the paired ground-truth file that its reader picks up (None: none, or inside the file)."""

    path: Path
    layout: str
    ground_truth: Path | None = None


@dataclass
class Datasets:
    measurements: list[Measurement]
    paired: dict[Path, Path]
    """Ground-truth file -> the measurement it belongs to."""
    skipped: list[SkippedInput]


def sort_inputs(files: list[Path]) -> Datasets:
    """Sort ``files`` into measurements (in order), paired ground truths and skipped files (see the module)."""
    from recon.io.layouts import LAYOUTS, role

    roles: dict[Path, tuple[str | None, str]] = {}
    for path in files:
        try:
            roles[path] = role(path)
        except UserError:
            roles[path] = ("", "measurement")  # missing or damaged: its unit says why
    datasets = Datasets([], {}, [])
    for path, (layout, kind) in roles.items():
        partner = getattr(LAYOUTS.get(layout or ""), "partner", lambda _: None)
        if kind == "unknown":
            datasets.skipped.append(SkippedInput(path, "HDF5 but no recon_spec attribute, and no layout recon reads "
                                                       f"({', '.join(LAYOUTS)}) recognises its content"))
        elif kind == "ground_truth":
            measurement = partner(path)
            measurement = measurement.resolve() if measurement is not None else None
            if measurement in roles and roles[measurement][1] == "measurement":
                datasets.paired[path] = measurement
            else:
                where = "is not among the inputs" if measurement else "is not beside it"
                datasets.skipped.append(SkippedInput(path, f"a {layout} ground-truth file whose measurement {where}"))
        else:
            truth = partner(path) if layout else None
            datasets.measurements.append(Measurement(path, layout or "", truth.resolve() if truth else None))
    return datasets
