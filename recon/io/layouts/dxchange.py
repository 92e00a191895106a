"""DXchange (Data Exchange, De Carlo et al. 2014: APS, SLS, Elettra tomography) raw projections, read as
``ct-parallel/1`` sinograms per detector row.

What recon reads (dxfile's "X-ray Tomography" definition):

- ``/exchange/data`` (n_angles, rows, columns): raw projections in counts (uint16 usually; axes ``theta:y:x``,
  the default, which is the only order recon reads);
- ``/exchange/data_white`` and ``/exchange/data_dark``: flat and dark frames of the same size (flats required,
  darks taken as 0 when absent);
- ``/exchange/theta``: one angle per projection, in the unit of its ``units`` attribute; DXchange stores
  degrees ("deg") and its reader converts unconditionally; without the attribute, angles spanning more than
  2 pi are degrees, and a span within 2 pi could be radians or a few degrees: ``--read angle_unit`` decides. Without
  ``theta``, dxchange's own reader assumes n angles from 0 to 180 degrees inclusive; recon does the same and
  records it;
- ``/measurement/instrument/detector/actual_pixel_size_x`` (the pixel size at the sample, SI metres unless a
  ``units`` attribute says otherwise), when present, becomes the output's voxel size.

The compressed datasets beamlines write (Blosc, LZ4, bitshuffle...) open through ``hdf5plugin``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon.errors import UserError
from recon.io.layouts.projections import OPTIONS, FrameSet, RawScan, angles_in_radians, length_in, open_scan
from recon.io.layouts.reader import options_taken

NAME = "dxchange"
SPEC = "ct-parallel/1"


def detect(file: h5py.File) -> bool:
    """A Data Exchange tomography file: ``/exchange/data``, a 3D dataset of projections."""
    data = file.get("exchange/data")
    return isinstance(data, h5py.Dataset) and data.ndim == 3


def _frames(file: h5py.File, key: str, shape: tuple[int, ...], path: Path) -> FrameSet:
    dataset = file.get(key)
    if dataset is None:
        return FrameSet(None)
    if dataset.ndim != 3 or dataset.shape[1:] != shape[1:]:
        raise UserError(f"frames of shape {dataset.shape[1:]}, the projections' are {shape[1:]}", path=path, key=key,
                        fix="store flats and darks with the projections' rows and columns")
    return FrameSet(dataset, np.arange(dataset.shape[0]))


def _units(dataset: h5py.Dataset) -> str | None:
    unit = dataset.attrs.get("units")
    return None if unit is None else (unit.decode() if isinstance(unit, bytes) else str(unit))


def open(path: str | Path, **options: Any):
    """A DXchange file as ``ct-parallel/1``; options: :data:`~recon.io.layouts.projections.OPTIONS`."""
    from recon.io.layouts.reader import open_h5

    path = Path(path)
    options_taken(options, OPTIONS, NAME, path)
    file = open_h5(path)
    try:
        data = file["exchange/data"]
        axes = data.attrs.get("axes")
        if axes is not None and (axes.decode() if isinstance(axes, bytes) else str(axes)) != "theta:y:x":
            raise UserError(f"axes {axes!r}: recon reads projections stored theta:y:x", path=path, key="exchange/data",
                            fix="store the projections as (angles, rows, columns)")
        steps = []
        if "exchange/theta" in file:
            theta = file["exchange/theta"]
            angles, how = angles_in_radians(np.asarray(theta[()], np.float64).ravel(), _units(theta),
                                            options.get("angle_unit"), "exchange/theta", path)
            angle_line = f"angles <- exchange/theta in {how}"
        else:
            angles = np.linspace(0, np.pi, data.shape[0])
            angle_line = (f"angles: no exchange/theta; {data.shape[0]} from 0 to 180 degrees inclusive "
                          "(dxchange's default)")
            steps.append({"step": "angles assumed", "rule": "numpy.linspace(0, pi, n), as dxchange.read_aps_32id"})
        pixel = None
        if "measurement/instrument/detector/actual_pixel_size_x" in file:
            size = file["measurement/instrument/detector/actual_pixel_size_x"]
            pixel = length_in(float(np.asarray(size[()]).ravel()[0]), _units(size))
        scan = RawScan(FrameSet(data, np.arange(data.shape[0])), _frames(file, "exchange/data_white", data.shape, path),
                       _frames(file, "exchange/data_dark", data.shape, path), angles,
                       title="DXchange raw projections", steps=steps,
                       mapping=["projections <- exchange/data, flats <- exchange/data_white, darks <- "
                                "exchange/data_dark", angle_line], pixel_size=pixel)
        return open_scan(path, NAME, SPEC, scan, options, [file])
    except BaseException:
        file.close()
        raise
