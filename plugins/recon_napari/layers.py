"""recon HDF5 files -> napari layer data, lazily (no Qt, no viewer: testable on its own).

A reconstruction opens as an image layer with its physical scale, axis labels and the contrast limits stored
in the file (no pass over the data), plus hidden layers for the uncertainty, the ground truth and, for complex
data, the phase; a radar reflectivity (complex, z = range) also gets its maximum-intensity projection along range
(hidden, in metres). A measurement file opens as its natural picture: the sinogram, log-magnitude k-space or
the magnitude of the radar data per frequency. Arrays stay on disk as dask arrays over the HDF5 chunks, so
opening a 512^3 volume reads one slice; napari reads the others when the user moves to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array as da
import h5py
import numpy as np

from recon.errors import UserError
from recon.io.measurement import MeasurementReader
from recon.io.reconstruction import display_range
from recon.io.specs import load_spec, read_attrs, validate_file
from recon.specs import get_kind

LayerData = tuple[Any, dict[str, Any], str]
"""napari's (data, layer keyword arguments, layer type)."""

DEFAULT_AXES = ("z", "y", "x")
"""Axis names of images whose spec is unknown (a phantom, a file of an unregistered spec)."""


def image_axes(spec_id: str) -> tuple[str, ...]:
    """Axis names of the images of a spec (ground truth, reconstructions), trailing ones for fewer dimensions."""
    try:
        return get_kind(spec_id).axes
    except UserError:
        return DEFAULT_AXES


def lazy(dataset: h5py.Dataset) -> da.Array:
    """A dask array over ``dataset`` whose blocks are its HDF5 chunks (2D slices when it is not chunked)."""
    chunks = dataset.chunks or ((1,) * (dataset.ndim - 2) + dataset.shape[-2:] if dataset.ndim >= 3 else "auto")
    return da.from_array(dataset, chunks=chunks, lock=True)


def _transform(array: da.Array | np.ndarray, transform: str) -> da.Array | np.ndarray:
    if transform == "magnitude":
        return abs(array) if np.iscomplexobj(array) else array
    if transform == "logabs":  # log10 |k|, floored 60 dB below the bright part of the middle slice
        floor = 1e-3 * max(sample_range(abs(array))[1], 1e-30)
        return da.log10(abs(array) + floor) if isinstance(array, da.Array) else np.log10(abs(array) + floor)
    if transform == "frames_as_rows":  # (frames, views per frame, n_det) -> one sinogram over time
        return array.reshape(-1, array.shape[-1])
    return array


def sample_range(array: da.Array | np.ndarray) -> tuple[float, float]:
    """Display limits from the middle 2D slice only (one chunk read), robust percentiles like the writer's."""
    middle = tuple(n // 2 for n in array.shape[:-2])
    lo, hi = display_range(np.asarray(array[middle]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _labels(names: tuple[str, ...], ndim: int) -> tuple[str, ...]:
    return tuple(names[-ndim:]) if ndim <= len(names) else tuple(f"axis {i}" for i in range(ndim))


def _meta(path: str | None, spec: str, kind: str, attrs: dict[str, Any], key: str) -> dict[str, Any]:
    """Layer metadata that tells the widgets where a layer came from (``metadata["recon"]``)."""
    return {"recon": {"path": path, "spec": spec, "kind": kind, "key": key, "attrs": attrs}}


def image_layer(data, name: str, axes: tuple[str, ...], limits: tuple[float, float], metadata: dict, *,
                scale=None, unit: str | None = None, visible: bool = True, colormap: str = "gray") -> LayerData:
    """One image layer's data tuple: ``data`` (lazy or not) with its labels, scale, unit and limits."""
    ndim = data.ndim
    kwargs = {"name": name, "axis_labels": _labels(axes, ndim), "contrast_limits": [float(limits[0]), float(limits[1])],
              "metadata": metadata, "visible": visible, "colormap": colormap,
              "scale": list(scale) if scale is not None else [1.0] * ndim}
    if unit:
        kwargs["units"] = unit
    return data, kwargs, "image"


def reconstruction_layers(arrays: dict[str, Any], attrs: dict[str, Any], name: str, path: str | None = None,
                          spec: str = "reconstruction/1") -> list[LayerData]:
    """Layers of a reconstruction: ``arrays`` maps dataset keys (``reconstruction``, optional ``uncertainty``,
    ``ground_truth``, ``complex``) to numpy or dask arrays; ``attrs`` are the file's attributes."""
    image = arrays["reconstruction"]
    axes = tuple(attrs["axes"].split(",")) if attrs.get("axes") else DEFAULT_AXES
    scale, unit = attrs.get("voxel_size"), attrs.get("unit")
    if scale is not None and len(scale) != image.ndim:
        scale = None
    radar = np.iscomplexobj(image) and image.ndim == 3  # a complex reflectivity, z = range
    if radar and axes[0] == "z":
        axes = ("z (range)", *axes[1:])
    shown = _transform(image, "magnitude")
    limits = (attrs["display_min"], attrs["display_max"]) if "display_max" in attrs else sample_range(shown)
    common = {"scale": scale, "unit": unit}
    method = attrs.get("method", "image")
    layers = [image_layer(shown, f"{name} [{method}]", axes, limits,
                          _meta(path, spec, "reconstruction", attrs, "reconstruction"), **common)]
    if "uncertainty" in arrays:
        layers.append(image_layer(arrays["uncertainty"], f"{name} [{method} uncertainty]", axes,
                                  sample_range(arrays["uncertainty"]),
                                  _meta(path, spec, "uncertainty", attrs, "uncertainty"), colormap="magma", **common))
    if "ground_truth" in arrays:
        truth = _transform(arrays["ground_truth"], "magnitude")
        layers.append(image_layer(truth, f"{name} [ground truth]", axes, limits,
                                  _meta(path, spec, "ground_truth", attrs, "ground_truth"), visible=False, **common))
    if radar:  # the maximum-intensity projection along range
        mip = shown.max(axis=0)
        layers.append(image_layer(mip, f"{name} [{method} MIP]", axes[1:], limits,
                                  _meta(path, spec, "mip", attrs, "reconstruction"), visible=False,
                                  scale=scale[1:] if scale is not None else None, unit=unit))
    phase_source = arrays.get("complex", image if np.iscomplexobj(image) else None)
    if phase_source is not None:
        phase = da.angle(phase_source) if isinstance(phase_source, da.Array) else np.angle(phase_source)
        layers.append(image_layer(phase, f"{name} [{method} phase]", axes, (-np.pi, np.pi),
                                  _meta(path, spec, "phase", attrs, "phase"), visible=False,
                                  colormap="twilight_shifted", **common))
    return layers


def measurement_layers(arrays: dict[str, da.Array], spec_id: str, attrs: dict[str, Any], name: str,
                       path: str) -> list[LayerData]:
    """Layers of a measurement: its datasets (``arrays``: key -> lazy array) as its spec's kind shows them
    (:attr:`recon.specs.SpecKind.views`), then the ground
    truth (hidden); ``attrs`` as read (spec defaults, units and geometry filled in)."""
    layers = []
    for view in get_kind(spec_id).views:
        if view.key not in arrays:
            continue
        data = _transform(arrays[view.key], view.transform)
        scale = [1.0] * data.ndim
        if view.square and data.ndim >= 2:
            scale[-2] = data.shape[-1] / data.shape[-2]
        layers.append(image_layer(data, f"{name} [{view.key}]", view.axes, sample_range(data),
                                  _meta(path, spec_id, "measurement", attrs, view.key), visible=view.visible,
                                  colormap=view.colormap, scale=scale))
    if "ground_truth" in arrays:
        truth = _transform(arrays["ground_truth"], "magnitude")
        scale, unit = get_kind(spec_id).image_voxel_size(attrs, truth.ndim)
        axes = image_axes(spec_id)
        layers.append(image_layer(truth, f"{name} [ground truth]", axes, sample_range(truth),
                                  _meta(path, spec_id, "ground_truth", attrs, "ground_truth"), visible=False,
                                  scale=scale, unit=unit if scale else None))
    return layers


class _ReaderArray:
    """One dataset of an open measurement reader as an array dask can slice: whole slices along axis 0 are read
    (and, for raw projections, preprocessed) when napari shows them."""

    def __init__(self, reader: MeasurementReader, key: str):
        self.reader, self.key = reader, key
        self.shape = reader.shape(key)
        self.ndim, self.dtype = len(self.shape), reader.dtype(key)

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        rows = range(self.shape[0])[index[0]] if index else range(self.shape[0])
        if not self.reader.sliced(self.key) or isinstance(rows, int) or rows.step != 1 or not rows:
            return self.reader.read(self.key)[index]  # what dask never asks: read all, index in memory
        return self.reader.read(self.key, slice(rows.start, rows.stop))[(slice(None), *index[1:])]


def layout_layers(path: Path) -> list[LayerData]:
    """Layers of a file in a foreign layout (LoDoPaB, DXchange, NXtomo...), read as the spec it maps onto."""
    from recon.io.layouts import open_measurement

    reader = open_measurement(path)  # open while its dask arrays live
    arrays = {key: da.from_array(_ReaderArray(reader, key), chunks=(1, *reader.shape(key)[1:]), lock=True)
              for key in reader.spec.datasets if reader.has(key) and len(reader.shape(key)) >= 2}
    attrs = {**reader.attrs, "provenance": reader.provenance}
    return measurement_layers(arrays, reader.spec.id, attrs, path.name.rsplit(".", 1)[0], str(path))


def read_layers(path: str | Path) -> list[LayerData]:
    """All layers of a recon HDF5 file or of a file in a layout recon reads, lazily; raises UserError (one clear
    line) when the file is not valid.

    The file stays open for as long as its dask arrays live (h5py closes it when they are released).
    """
    from recon.io.layouts import detect_layout

    path = Path(path)
    if path.is_file() and h5py.is_hdf5(path) and detect_layout(path) not in ("recon", None):
        return layout_layers(path)
    report = validate_file(path, check_values=False)
    report.raise_if_bad()
    spec_id = report.spec.id
    file = h5py.File(path, "r")
    name = path.name.removesuffix(".h5").removesuffix(".hdf5")
    if spec_id == "reconstruction/1":
        attrs = read_attrs(file, load_spec(spec_id))
        arrays = {key: lazy(file[key]) for key in ("reconstruction", "uncertainty", "ground_truth", "complex")
                  if key in file}
        return reconstruction_layers(arrays, attrs, name, str(path), spec_id)
    arrays = {key: lazy(file[key]) for key in file if isinstance(file[key], h5py.Dataset)}
    return measurement_layers(arrays, spec_id, read_attrs(file, load_spec(spec_id)), name, str(path))


def measurements_below(layers: list[LayerData], hide: bool = False) -> list[LayerData]:
    """``layers`` with those of measurement files first (napari stacks later layers on top, so the
    reconstructions stay visible); with ``hide``, the measurement layers open hidden."""
    measured, others = [], []
    for data, kwargs, kind in layers:
        if kwargs["metadata"]["recon"]["kind"] == "measurement":
            measured.append((data, {**kwargs, "visible": kwargs["visible"] and not hide}, kind))
        else:
            others.append((data, kwargs, kind))
    return measured + others
