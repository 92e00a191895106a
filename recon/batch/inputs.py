"""Expand ``recon batch`` inputs (files, folders, globs, or text files listing them) into candidate files.

A folder gives every file in it that is HDF5 by content (fastMRI's ``.h5``, LoDoPaB's ``.hdf5``, NXtomo's
``.nx``...) or by suffix (a damaged ``.h5`` file stays an input, so that its unit fails with the clear line);
every other file and every sub-folder is listed as skipped with the reason, never dropped silently.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import h5py

from recon.errors import UserError

H5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class SkippedInput:
    """A file or folder met among the inputs that is not reconstructed, and why."""

    path: Path
    reason: str

    def row(self) -> dict[str, str]:
        return {"input": str(self.path), "reason": self.reason}


@dataclass
class Inputs:
    """The candidate files in order, and what the expansion skipped."""

    files: list[Path]
    skipped: list[SkippedInput]


def _list_file_entries(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a list file; relative entries are relative to the list's folder."""
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(line if Path(line).is_absolute() else str(path.parent / line))
    return entries


def _is_hdf5(path: Path) -> bool:
    try:
        return h5py.is_hdf5(path)
    except OSError:
        return False


def _folder(path: Path, inputs: Inputs) -> None:
    """Add the HDF5 files of ``path`` (sorted) to ``inputs``; list the rest as skipped."""
    for entry in sorted(path.iterdir()):
        if entry.is_dir():
            inputs.skipped.append(SkippedInput(entry, f"a folder (folders are not searched; give it, or a quoted "
                                                      f"glob '{path}/**/*.h5')"))
        elif entry.suffix in H5_SUFFIXES or _is_hdf5(entry):
            inputs.files.append(entry)
        else:
            inputs.skipped.append(SkippedInput(entry, "not an HDF5 file"))


def expand_inputs(items: list[str], _depth: int = 0) -> Inputs:
    """Files in the order given (folders: see the module; globs expanded and sorted, .h5/.hdf5 only; a file that
    is not HDF5 by suffix is read as a list of inputs, one per line). Duplicates are dropped."""
    inputs = Inputs([], [])
    for item in items:
        path = Path(item)
        if path.is_dir():
            _folder(path, inputs)
        elif path.is_file() and path.suffix not in H5_SUFFIXES and _depth == 0 and not _is_hdf5(path):
            listed = expand_inputs(_list_file_entries(path), _depth + 1)
            inputs.files += listed.files
            inputs.skipped += listed.skipped
        elif path.is_file() or path.suffix in H5_SUFFIXES and not glob.has_magic(item):
            inputs.files.append(path)  # a missing .h5 file is kept: its unit fails with a clear line, the rest go on
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).suffix in H5_SUFFIXES)
            if not matches:
                raise UserError(f"the pattern {item!r} matches no .h5 file", key="INPUTS",
                                fix="check the pattern (quote it so the shell does not expand it)")
            inputs.files += matches
        else:
            raise UserError(f"{item} is not a file, folder, glob or list of inputs", key="INPUTS",
                            fix="give HDF5 files, folders holding them, quoted globs, or a text file listing them")
    inputs.files = list(dict.fromkeys(p.resolve() for p in inputs.files))
    if not inputs.files:
        skipped = f" ({len(inputs.skipped)} skipped: {inputs.skipped[0].path.name}, {inputs.skipped[0].reason})" \
            if inputs.skipped else ""
        raise UserError(f"no input files found{skipped}", key="INPUTS",
                        fix="give HDF5 files, folders, globs or a list file")
    return inputs
