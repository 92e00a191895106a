"""``recon import FORMAT IN... --out OUT.h5``: write a recon-spec file for archiving, from a file in a layout recon
reads (lodopab, dxchange, nxtomo and every other name in :data:`recon.io.layouts.LAYOUTS`) or from a bare sinogram
array (``sinogram``: .npy, .tif stacks, .h5 datasets).

A layout is read exactly as ``recon reconstruct`` reads it (same reader, options ``--read key=value``), slice
block by slice block, and written atomically with the reader's provenance in the ``provenance`` attribute; the
file validates, values included, before it takes its name. A bare array states nothing, so what recon would
otherwise have to guess must be given: the angles (``--angles FILE|N``) and their unit (``--angle-unit``, never
guessed), which axis holds the views when the shape does not say, the detector spacing and the centre.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from recon.errors import UserError

SINOGRAM = "sinogram"
SINOGRAM_ONLY = ("angles", "angle_unit", "angle_range", "det_spacing", "center", "axes", "image_size", "pixel_size",
                 "unit", "path_length_unit", "ground_truth", "key")
BLOCK_ELEMENTS = 1 << 24
"""Values per block copied from a layout to the output (64 MB of float32)."""


def import_command(
    format: Annotated[str, typer.Argument(help="lodopab | dxchange | nxtomo | sinogram (a bare array), or another "
                                               "layout recon reads (see `recon info`).")],
    inputs: Annotated[list[Path], typer.Argument(help="The file to import; for lodopab optionally its ground-truth "
                                                      "file second.")],
    out: Annotated[Path, typer.Option("--out", help="The recon-spec HDF5 file to write.")],
    read: Annotated[list[str] | None, typer.Option("--read", help="Reader option key=value (repeatable).")] = None,
    angles: Annotated[str | None, typer.Option(help="sinogram: a file of angles (.npy, .txt) or a number N of views "
                                                    "evenly over --angle-range, endpoint excluded.")] = None,
    angle_unit: Annotated[str | None, typer.Option(help="sinogram: deg | rad, the unit of --angles and "
                                                        "--angle-range (required).")] = None,
    angle_range: Annotated[float | None, typer.Option(help="sinogram: range of N views [180 deg, pi rad].")] = None,
    det_spacing: Annotated[float | None, typer.Option(help="sinogram: detector bin spacing, image pixels [1].")] = None,
    center: Annotated[str | None, typer.Option(help="sinogram: column of the rotation axis, or auto to estimate it "
                                                    "[the detector's middle, (n_det - 1) / 2].")] = None,
    axes: Annotated[str | None, typer.Option(help="sinogram: axis names, e.g. z,angle,det or angle,z,det (a stack of "
                                                  "projections) [from the shape and the angles].")] = None,
    image_size: Annotated[int | None, typer.Option(help="sinogram: side of the image in pixels [the ground truth's, "
                                                        "else n_det].")] = None,
    pixel_size: Annotated[float | None, typer.Option(help="sinogram: image pixel size in --unit.")] = None,
    unit: Annotated[str | None, typer.Option(help="sinogram: m | cm | mm | um | nm, of --pixel-size.")] = None,
    path_length_unit: Annotated[str | None, typer.Option(help="sinogram: pixel | m | cm | mm | um | nm: the unit of "
                                                              "the line integrals' path lengths [pixel].")] = None,
    ground_truth: Annotated[Path | None, typer.Option(help="sinogram: the true image(s), for PSNR.")] = None,
    key: Annotated[str | None, typer.Option(help="sinogram: the dataset inside an .h5 array file.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Write FORMAT data as a recon-spec file (atomically, with its provenance) for archiving or sharing."""
    from recon.io.layouts import LAYOUTS, parse_read_options
    from recon.io.reconstruction import check_output_path

    check_output_path(out, overwrite=overwrite)
    command = shlex.join(["recon", *sys.argv[1:]])
    options = locals()
    given = {name for name in SINOGRAM_ONLY if options[name] is not None}
    if format == SINOGRAM:
        if read:
            raise UserError("--read applies to layouts, not to a bare sinogram", key="--read",
                            fix="give the sinogram's geometry with --angles, --center, --det-spacing")
        if len(inputs) != 1:
            raise UserError(f"{len(inputs)} inputs for one sinogram", key="IN", fix="import one array at a time")
        spec_id, shapes = import_sinogram(
            inputs[0], out, angles=angles, angle_unit=angle_unit, angle_range=angle_range, det_spacing=det_spacing,
            center=center, axes=axes, image_size=image_size, pixel_size=pixel_size, unit=unit,
            path_length_unit=path_length_unit, ground_truth=ground_truth, key=key, overwrite=overwrite,
            command=command)
    elif format in LAYOUTS:
        if given:
            flag = "--" + sorted(given)[0].replace("_", "-")
            raise UserError(f"{flag} applies to `recon import sinogram`; a {format} file states its geometry",
                            key=flag, fix="leave it out (reader options: --read key=value, see `recon info FILE`)")
        spec_id, shapes = import_layout(format, inputs, out, parse_read_options(read), overwrite=overwrite,
                                        command=command)
    else:
        raise UserError(f"unknown format {format!r}", key="FORMAT", fix=f"use one of {', '.join([*LAYOUTS, SINOGRAM])}")
    described = ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in shapes.items())
    print(f"wrote {out} ({spec_id} from {format}: {described})")


def import_layout(layout: str, inputs: list[Path], out: Path, options: dict[str, Any], *, overwrite: bool = False,
                  command: str = "") -> tuple[str, dict[str, tuple[int, ...]]]:
    """Copy the measurement at ``inputs[0]``, read by ``layout``'s reader with ``options`` (and ``inputs[1]`` as
    its ground truth when given), into a new recon-spec file ``out``, slice block by slice block. Returns the spec
    id and the written datasets' shapes."""
    from recon.io.layouts import LAYOUTS, detect_layout, open_measurement
    from recon.io.reconstruction import atomic_h5, attr_value
    from recon.io.specs import dtype_matches

    source = inputs[0]
    found = detect_layout(source)
    if found != layout:
        what = "a recon-spec file" if found == "recon" else f"a {found} file" if found else "in no layout recon reads"
        raise UserError(f"is {what}, not a {layout} file", path=source, key="FORMAT",
                        fix=f"import it as {found}" if found and found != "recon" else "check the file and the format")
    if len(inputs) > 2 or (len(inputs) == 2 and "ground_truth" not in getattr(LAYOUTS[layout], "OPTIONS", {})):
        raise UserError(f"{len(inputs)} inputs: a {layout} import takes one file", key="IN",
                        fix="import one file at a time")
    if len(inputs) == 2:
        options = {**options, "ground_truth": str(inputs[1])}
    with open_measurement(source, **options) as measurement:
        spec = measurement.spec
        shapes = {key: measurement.shape(key) for key in spec.datasets if measurement.has(key)}
        with atomic_h5(out, spec.id, overwrite=overwrite, check_values=True) as file:
            for key, shape in shapes.items():
                first = measurement.read(key, slice(0, 1) if measurement.sliced(key) else None)
                kind = next(k for k in spec.datasets[key].dtypes if dtype_matches(k, first.dtype))
                chunks = (1, *shape[1:]) if len(shape) >= 3 else None
                dataset = file.create_dataset(key, shape=shape, dtype=np.uint8 if kind == "mask" else first.dtype,
                                              chunks=chunks, compression="gzip", compression_opts=4, shuffle=True)
                if not measurement.sliced(key):
                    dataset[...] = first
                    continue
                step = max(1, BLOCK_ELEMENTS // max(1, math.prod(shape[1:])))
                for start in range(0, shape[0], step):
                    dataset[start:start + step] = measurement.read(key, slice(start, min(start + step, shape[0])))
            provenance = measurement.provenance  # after the reads: the preprocessing counts are complete
            for name, value in measurement.attrs.items():
                if name in spec.attributes and name != "provenance":
                    file.attrs[name] = attr_value(name, value)
            file.attrs["provenance"] = json.dumps({**provenance, "import_command": command}, default=str)
            file.attrs["command"] = command
    return spec.id, shapes


def _angles(text: str | None, unit: str | None, angle_range: float | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Angles in radians from ``--angles`` (a file or a count) in ``--angle-unit``, and how they were made."""
    if unit not in ("deg", "rad"):
        raise UserError("the unit of the angles is not given" if unit is None else f"unknown angle unit {unit!r}",
                        key="--angle-unit", fix="add --angle-unit deg or --angle-unit rad (recon never guesses it)")
    if text is None:
        raise UserError("no angles given", key="--angles", fix="give a file of angles or the number of views")
    to_radians = math.pi / 180 if unit == "deg" else 1.0
    if text.strip().isdigit():
        n = int(text)
        span = (180.0 if unit == "deg" else math.pi) if angle_range is None else angle_range
        if n < 1 or span <= 0:
            raise UserError(f"{n} views over {span} {unit}", key="--angles", fix="give at least 1 view, range > 0")
        return np.arange(n) * span / n * to_radians, {"step": "angles", "views": n, "range": span, "unit": unit,
                                                     "rule": "k * range / n, endpoint excluded"}
    path = Path(text)
    if angle_range is not None:
        raise UserError("--angle-range applies to a number of views, not to a file of angles", key="--angle-range",
                        fix="leave it out")
    if not path.is_file():
        raise UserError("neither a file nor a number of views", path=path, key="--angles",
                        fix="give a .npy or text file of angles, or the number of views")
    try:
        values = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=None)
    except ValueError as err:
        raise UserError(f"cannot be read as numbers ({err})", path=path, key="--angles",
                        fix="save the angles with numpy.save or one number per line") from None
    values = np.asarray(values, np.float64).ravel()
    if not values.size or not np.isfinite(values).all():
        raise UserError("holds no finite angles", path=path, key="--angles", fix="store one finite angle per view")
    return values * to_radians, {"step": "angles", "file": str(path), "unit": unit}


def _view_axes(shape: tuple[int, ...], n_views: int, axes: str | None, path: Path) -> tuple[str, ...]:
    """Names of ``shape``'s axes among z, angle, det: given by ``--axes``, or the one axis before the last whose
    length is the number of views (the detector is last)."""
    if axes is not None:
        names = tuple(a.strip() for a in axes.split(","))
        if sorted(names) != sorted(("z", "angle", "det")[3 - len(shape):] if len(shape) == 3 else ("angle", "det")):
            raise UserError(f"--axes {axes} does not name the {len(shape)} axes of shape {shape}", key="--axes",
                            fix="e.g. angle,det for one sinogram, z,angle,det or angle,z,det for a stack")
        return names
    matches = [i for i in range(len(shape) - 1) if shape[i] == n_views]
    if len(matches) != 1:
        raise UserError(f"cannot tell which axis of shape {shape} holds the {n_views} views", path=path, key="--axes",
                        fix="give --axes, e.g. angle,det, z,angle,det or angle,z,det (the detector last)")
    if len(shape) == 2:
        return ("angle", "det")
    return ("angle", "z", "det") if matches[0] == 0 else ("z", "angle", "det")


def import_sinogram(path: Path, out: Path, *, angles: str | None, angle_unit: str | None,
                    angle_range: float | None = None, det_spacing: float | None = None, center: str | None = None,
                    axes: str | None = None, image_size: int | None = None, pixel_size: float | None = None,
                    unit: str | None = None, path_length_unit: str | None = None, ground_truth: Path | None = None,
                    key: str | None = None, overwrite: bool = False,
                    command: str = "") -> tuple[str, dict[str, tuple[int, ...]]]:
    """Write the post-log sinogram(s) in the array file ``path`` as ``ct-parallel/1`` (see ``recon import --help``
    for the options); returns the spec id and the written datasets' shapes."""
    from recon.io.measurement import write_measurement
    from recon.io.volumes import load_volume
    from recon.preprocess.tomography import CENTER_ROWS, estimate_center

    radians, angle_step = _angles(angles, angle_unit, angle_range)
    array = load_volume(path, key=key)
    names = _view_axes(array.shape, len(radians), axes, path)
    order = [names.index(n) for n in (("z", "angle", "det") if "z" in names else ("angle", "det"))]
    sinogram = np.ascontiguousarray(array.transpose(order))
    if sinogram.shape[-2] != len(radians):
        raise UserError(f"{sinogram.shape[-2]} views but {len(radians)} angles", path=path, key="--angles",
                        fix="give one angle per view")
    n_det = sinogram.shape[-1]
    steps = [angle_step, {"step": "axes", "read_as": ",".join(names),
                          "stored_as": "z,angle,det" if sinogram.ndim == 3 else "angle,det"}]
    if center is None:
        column, how = (n_det - 1) / 2, "the detector's middle (no --center)"
    elif center == "auto":
        stack = sinogram.reshape(-1, *sinogram.shape[-2:])
        middle = max(0, len(stack) // 2 - CENTER_ROWS // 2)
        column, found = estimate_center(stack[middle:middle + CENTER_ROWS], radians, path)
        how = found["method"]
    else:
        try:
            column, how = float(center), "--center"
        except ValueError:
            raise UserError(f"--center {center} is neither auto nor a column", key="--center",
                            fix="give the rotation axis' column, e.g. 255.5, or auto") from None
    det_offset = column - (n_det - 1) / 2
    steps.append({"step": "centre of rotation", "method": how, "center": column, "det_offset": det_offset})
    datasets = {"sinogram": sinogram, "angles": radians}
    if ground_truth is not None:
        datasets["ground_truth"] = load_volume(ground_truth)
    ny, nx = (image_size, image_size) if image_size else datasets["ground_truth"].shape[-2:] if ground_truth else (
        n_det, n_det)
    image_shape = [ny, nx] if sinogram.ndim == 2 else [sinogram.shape[0], ny, nx]
    attrs = {"image_shape": image_shape, "det_spacing": det_spacing or 1.0, "det_offset": det_offset,
             "pixel_size": pixel_size, "unit": unit, "path_length_unit": path_length_unit, "command": command}
    attrs["provenance"] = {"layout": SINOGRAM, "sources": [str(path)] + ([str(ground_truth)] if ground_truth else []),
                           "steps": steps, "import_command": command}
    try:
        write_measurement(out, "ct-parallel/1", datasets, attrs, overwrite=overwrite)
    except ValueError as err:  # the options made a file that breaks the spec: say which
        raise UserError(f"the options give no valid ct-parallel file ({err})", path=out,
                        fix="check --unit, --pixel-size, --path-length-unit and --ground-truth's shape") from None
    return "ct-parallel/1", {name: np.shape(value) for name, value in datasets.items()}
