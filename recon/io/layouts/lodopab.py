"""LoDoPaB-CT (Leuschner et al. 2021, zenodo record 3384092) read as ``ct-parallel/1`` without conversion.

The dataset ships pairs of files: ``observation_{part}_{NNN}.hdf5`` with one dataset ``data`` (n, 1000, 513)
float32, post-log line integrals of the normalised attenuation (mu / mu(3071 HU)) with path lengths in
**metres**, and ``ground_truth_{part}_{NNN}.hdf5`` with ``data`` (n, 362, 362), the images in [0, 1]. Neither
file has attributes; recon recognises them by that content.

The geometry is the one dival builds (``LoDoPaBDataset``: ``odl.tomo.parallel_beam_geometry(domain,
num_angles=1000, det_shape=(513,))`` on ``domain = uniform_discr([-0.13, -0.13], [0.13, 0.13], (362, 362))``):

- image: 362 x 362 pixels over [-0.13, 0.13]^2 m, so a pixel is 0.26 / 362 m (0.718 mm);
- angles: the 1000 cell midpoints of ``uniform_partition(0, pi, 1000)``, ``(k + 0.5) pi / 1000`` (not
  ``k pi / 1000``), counter-clockwise as in recon;
- detector: ``uniform_partition(-rho, rho, 513)`` with ``rho = 0.13 sqrt(2)`` m, the image's half diagonal:
  513 bins of ``2 rho / 513`` m = ``sqrt(2) 362 / 513`` = 0.99794 pixels, bin centres (not edges) at
  ``(k - 256)`` bins, so the rotation axis is on the middle bin's centre (det_offset 0);
- ODL's rays at angle phi are ``x cos(phi) + y sin(phi) = u`` with the detector axis ``(cos, sin)``, as recon's
  (odl's Parallel2dGeometry: det_pos_init (0, 1), det_axis_init (1, 0));
- ODL arrays index ``[x, y]`` (axis 0 is x, increasing), recon's ``[row, column]`` with rows going down y: a
  ground-truth image becomes ``numpy.rot90(data)`` (what dival's plots show, ``imshow(data.T, origin="lower")``).

Nothing is converted on disk or in memory apart from that rotation: the sinogram is served in metres and the
spec's attributes declare it (``path_length_unit: m``, ``pixel_size`` and ``unit``), so recon divides it by the
pixel size when it builds the problem. The matching ground-truth file is paired by name
(``observation_`` -> ``ground_truth_``, same part and index) when it lies beside the observation file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon.errors import UserError
from recon.io.layouts.reader import LayoutReader, Source, options_taken

NAME = "lodopab"
SPEC = "ct-parallel/1"
N_ANGLES, N_DET, IMAGE_SIZE = 1000, 513, 362
DOMAIN_M = 0.26
"""Side of the image domain [-0.13, 0.13] m."""
PIXEL_M = DOMAIN_M / IMAGE_SIZE
DET_HALF_WIDTH_M = DOMAIN_M / 2 * math.sqrt(2)
"""rho of odl's parallel_beam_geometry: the image's half diagonal."""
DET_SPACING_PIXELS = 2 * DET_HALF_WIDTH_M / N_DET / PIXEL_M
ANGLES = (np.arange(N_ANGLES) + 0.5) * math.pi / N_ANGLES
OPTIONS = {
    "angle_step": "keep every Nth view, with its exact angle (sparse-view subsets, as dival's AngleSubsetDataset) [1]",
    "ground_truth": "the ground-truth file, or none [ground_truth_* beside the observation file]",
}


def _shape(file: h5py.File) -> tuple[int, ...] | None:
    """The shape of the file's only dataset ``data`` when it is 3D floating point, else None."""
    if set(file.keys()) != {"data"} or not isinstance(file["data"], h5py.Dataset):
        return None
    data = file["data"]
    return data.shape if data.ndim == 3 and np.issubdtype(data.dtype, np.floating) else None


def detect(file: h5py.File) -> bool:
    """A LoDoPaB observation (n, 1000, 513) or ground-truth (n, 362, 362) file: one float dataset ``data``."""
    shape = _shape(file)
    return shape is not None and shape[1:] in ((N_ANGLES, N_DET), (IMAGE_SIZE, IMAGE_SIZE))


def role(file: h5py.File) -> str:
    return "ground_truth" if _shape(file)[1:] == (IMAGE_SIZE, IMAGE_SIZE) else "measurement"


def partner(path: str | Path) -> Path | None:
    """The other file of the pair (observation <-> ground truth, same part and index) if it lies beside ``path``."""
    path = Path(path)
    for mine, theirs in (("observation", "ground_truth"), ("ground_truth", "observation")):
        if path.name.startswith(mine):
            other = path.with_name(theirs + path.name[len(mine):])
            return other if other.is_file() else None
    return None


def ground_truth_images(data: h5py.Dataset, start: int, stop: int) -> np.ndarray:
    """Images ``start:stop`` of a ground-truth file's ``data`` in recon's [row (y down), column (x)] axes."""
    return np.ascontiguousarray(np.rot90(data[start:stop], axes=(1, 2)))


def _ground_truth_file(path: Path, option: str | None, n: int) -> h5py.File | None:
    if option == "none":
        return None
    truth = Path(option) if option else partner(path)
    if truth is None:
        return None
    from recon.io.layouts.reader import open_h5

    file = open_h5(truth)
    shape = _shape(file)
    if shape != (n, IMAGE_SIZE, IMAGE_SIZE):
        file.close()
        raise UserError(f"is not the ground truth of {path.name}: expected data ({n}, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                        f"found {shape}", path=truth, key="--read ground_truth",
                        fix="give the ground_truth file with the same part and index, or --read ground_truth=none")
    return file


def open(path: str | Path, **options: Any) -> LayoutReader:
    """A LoDoPaB observation file as ``ct-parallel/1`` (see the module docstring); options: OPTIONS."""
    from recon.io.layouts.reader import open_h5

    path = Path(path)
    options_taken(options, OPTIONS, NAME, path)
    try:
        step = int(options.get("angle_step", 1))
    except ValueError:
        step = 0
    if step < 1 or N_ANGLES % step:
        raise UserError(f"angle_step={options['angle_step']} does not divide the {N_ANGLES} views",
                        path=path, key="--read angle_step", fix="give a divisor of 1000, e.g. 2, 5, 10 or 20")
    file = open_h5(path)
    if not detect(file) or role(file) != "measurement":
        file.close()
        observation = partner(path)
        raise UserError("is a LoDoPaB ground-truth file, not a measurement", path=path,
                        fix=f"reconstruct its observation file{f' {observation}' if observation else ''}; the "
                            "ground truth is paired with it")
    data = file["data"]
    n = data.shape[0]
    truth_file = _ground_truth_file(path, options.get("ground_truth"), n)
    files = [file] + ([truth_file] if truth_file else [])
    n_views = N_ANGLES // step
    sources = {
        "sinogram": Source((n, n_views, N_DET), lambda a, b: data[a:b, ::step, :]),
        "angles": Source((n_views,), lambda a, b: ANGLES[::step][a:b]),
    }
    if truth_file is not None:
        truth = truth_file["data"]
        sources["ground_truth"] = Source((n, IMAGE_SIZE, IMAGE_SIZE), lambda a, b: ground_truth_images(truth, a, b))
    attrs = {"image_shape": [n, IMAGE_SIZE, IMAGE_SIZE], "det_spacing": DET_SPACING_PIXELS, "det_offset": 0.0,
             "pixel_size": PIXEL_M, "unit": "m", "path_length_unit": "m"}
    mapping = [
        f"sinogram <- {path.name}:data {data.shape}, line integrals with path lengths in metres (divided by the "
        f"pixel size {PIXEL_M:.6g} m when reconstructed)" + (f", every {step}th view" if step > 1 else ""),
        f"angles <- the {N_ANGLES} midpoints (k + 0.5) pi / {N_ANGLES} of [0, pi) (dival's odl geometry)"
        + (f", every {step}th" if step > 1 else ""),
        f"detector: {N_DET} bins over [-{DET_HALF_WIDTH_M:.5f}, {DET_HALF_WIDTH_M:.5f}] m = {DET_SPACING_PIXELS:.5f} "
        "pixels each, bin centres, the rotation axis on the middle bin (det_offset 0)",
        f"image: {IMAGE_SIZE} x {IMAGE_SIZE} pixels over [-0.13, 0.13]^2 m",
        (f"ground_truth <- {Path(truth_file.filename).name}:data, rotated from odl's [x, y] axes to recon's "
         "[row (y down), column (x)] (numpy.rot90)") if truth_file else "ground_truth: none (no ground_truth file "
                                                                         "beside it)",
    ]
    steps = [{"step": "geometry from dival's LoDoPaBDataset", "angles": f"(k + 0.5) pi / {N_ANGLES}",
              "det_spacing_m": 2 * DET_HALF_WIDTH_M / N_DET, "pixel_size_m": PIXEL_M}]
    if step > 1:
        steps.append({"step": "angle subset", "angle_step": step})
    if truth_file is not None:
        steps.append({"step": "ground truth axes odl [x, y] -> recon [row, column]", "operation": "numpy.rot90"})
    sources_files = [path] + ([Path(truth_file.filename)] if truth_file else [])
    return LayoutReader(path, NAME, SPEC, sources, attrs, title="LoDoPaB-CT observation", mapping=mapping,
                        steps=steps, source_files=sources_files, files=files)
