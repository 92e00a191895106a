"""Expand ``recon batch`` inputs (files, folders, globs, or text files listing them) into HDF5 paths."""

from __future__ import annotations

import glob
from pathlib import Path

from recon.errors import UserError

H5_SUFFIXES = (".h5", ".hdf5")


def _list_file_entries(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a list file; relative entries are relative to the list's folder."""
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(line if Path(line).is_absolute() else str(path.parent / line))
    return entries


def expand_inputs(inputs: list[str], _depth: int = 0) -> list[Path]:
    """Files in the order given (folders: their .h5/.hdf5 files sorted; globs expanded and sorted; a file
    that is not HDF5 by suffix is read as a list of inputs, one per line). Duplicates are dropped."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in H5_SUFFIXES and p.is_file())
        elif path.is_file() and path.suffix not in H5_SUFFIXES and _depth == 0:
            found += expand_inputs(_list_file_entries(path), _depth + 1)
        elif path.is_file() or path.suffix in H5_SUFFIXES and not glob.has_magic(item):
            found.append(path)  # a missing .h5 file is kept: its unit fails with a clear line, the rest go on
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).suffix in H5_SUFFIXES)
            if not matches:
                raise UserError(f"the pattern {item!r} matches no .h5 file", key="INPUTS",
                                fix="check the pattern (quote it so the shell does not expand it)")
            found += matches
        else:
            raise UserError(f"{item} is not a file, folder, glob or list of inputs", key="INPUTS",
                            fix="give HDF5 files, folders holding them, quoted globs, or a text file listing them")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise UserError("no input files found", key="INPUTS", fix="give HDF5 files, folders, globs or a list file")
    return unique
