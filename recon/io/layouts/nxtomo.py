"""NXtomo (the NeXus application definition for tomography, written by ESRF's ``nxtomo`` package, BLISS and
DAWN) raw frames, read as ``ct-parallel/1`` sinograms per detector row.

What recon reads from the first ``NXentry`` whose ``definition`` is ``NXtomo`` (or ``--read entry=NAME``):

- ``instrument/detector/data`` (n_frames, rows, columns): all frames in acquisition order;
- ``instrument/detector/image_key_control`` when present (nxtomo's: 0 projection, 1 flat, 2 dark, -1 alignment
  projection, 3 invalid), else the standard ``image_key`` (0, 1, 2, 3): projections, flats and darks are picked
  by it; alignment and invalid frames are left out;
- ``sample/rotation_angle``: one angle per frame, in its ``units`` attribute (``degree`` as nxtomo writes, or
  ``rad``); without one, ``--read angle_unit`` decides unless the span exceeds 2 pi;
- ``sample/x_pixel_size`` (else ``instrument/detector/x_pixel_size``) with its units: the output's voxel size;
- ``instrument/detector/x_rotation_axis_pixel_position``, when present, is recorded beside recon's estimate but
  not used: writers disagree on its origin (nxtomo documents an absolute position, converters have written
  offsets from the middle), and half a pixel off costs dB. ``--read center=COLUMN`` gives a centre.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon.errors import UserError
from recon.io.layouts.projections import OPTIONS as SCAN_OPTIONS
from recon.io.layouts.projections import FrameSet, RawScan, angles_in_radians, length_in, open_scan
from recon.io.layouts.reader import options_taken

NAME = "nxtomo"
SPEC = "ct-parallel/1"
OPTIONS = {**SCAN_OPTIONS, "entry": "the NXtomo entry to read [the first]"}
PROJECTION, FLAT, DARK = 0, 1, 2


def _text(value: Any) -> str:
    value = value[()] if isinstance(value, h5py.Dataset) else value
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(file: h5py.File) -> list[str]:
    return [name for name, node in file.items() if isinstance(node, h5py.Group)
            and _text(node.attrs.get("NX_class", "")) == "NXentry"
            and isinstance(node.get("definition"), h5py.Dataset) and _text(node["definition"]) == "NXtomo"]


def detect(file: h5py.File) -> bool:
    """An HDF5 file with an NXentry whose definition is NXtomo and whose detector holds 3D data."""
    return any(isinstance(file.get(f"{entry}/instrument/detector/data"), h5py.Dataset) for entry in _entries(file))


def _units(dataset: h5py.Dataset) -> str | None:
    unit = dataset.attrs.get("units")
    return None if unit is None else _text(unit)


def open(path: str | Path, **options: Any):
    """An NXtomo file as ``ct-parallel/1``; options: OPTIONS."""
    from recon.io.layouts.reader import open_h5

    path = Path(path)
    options_taken(options, OPTIONS, NAME, path)
    file = open_h5(path)
    try:
        entries = _entries(file)
        entry = options.get("entry", entries[0] if entries else "")
        if entry not in entries:
            raise UserError(f"no NXtomo entry {entry!r}", path=path, key="--read entry",
                            fix=f"choose one of {', '.join(entries)}")
        group = file[entry]
        detector = group["instrument/detector"]
        data = detector["data"]
        key_name = "image_key_control" if "image_key_control" in detector else "image_key"
        keys = np.asarray(detector[key_name][()]).ravel()
        if keys.shape != (data.shape[0],) or data.ndim != 3:
            raise UserError(f"{key_name} has {keys.size} entries for {data.shape[0]} frames", path=path,
                            key=f"{entry}/instrument/detector/{key_name}", fix="store one image key per frame")
        angle_ds = group["sample/rotation_angle"]
        all_angles = np.asarray(angle_ds[()], np.float64).ravel()
        if all_angles.shape != keys.shape:
            raise UserError(f"{all_angles.size} rotation angles for {keys.size} frames", path=path,
                            key=f"{entry}/sample/rotation_angle", fix="store one angle per frame")
        projections = np.flatnonzero(keys == PROJECTION)
        angles, how = angles_in_radians(all_angles[projections], _units(angle_ds), options.get("angle_unit"),
                                        f"{entry}/sample/rotation_angle", path)
        pixel = None
        for where in ("sample/x_pixel_size", "instrument/detector/x_pixel_size"):
            if isinstance(group.get(where), h5py.Dataset):
                pixel = length_in(float(np.asarray(group[where][()]).ravel()[0]), _units(group[where]))
                break
        stated = detector.get("x_rotation_axis_pixel_position")
        left_out = int(np.count_nonzero(~np.isin(keys, (PROJECTION, FLAT, DARK))))
        mapping = [f"frames <- {entry}/instrument/detector/data picked by {key_name}: {len(projections)} projections, "
                   f"{np.count_nonzero(keys == FLAT)} flats, {np.count_nonzero(keys == DARK)} darks"
                   + (f", {left_out} alignment/invalid frames left out" if left_out else ""),
                   f"angles <- {entry}/sample/rotation_angle in {how}"]
        scan = RawScan(FrameSet(data, projections), FrameSet(data, np.flatnonzero(keys == FLAT)),
                       FrameSet(data, np.flatnonzero(keys == DARK)), angles, title=f"NXtomo entry {entry}",
                       mapping=mapping, pixel_size=pixel,
                       stated_center=float(stated[()]) if isinstance(stated, h5py.Dataset) else None)
        return open_scan(path, NAME, SPEC, scan, {k: v for k, v in options.items() if k != "entry"}, [file])
    except BaseException:
        file.close()
        raise
