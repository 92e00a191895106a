"""napari writer: an image layer -> a ``reconstruction/1`` file (atomic, never over an existing file).

A layer that came from recon (a reconstruction file or the Reconstruct widget) keeps its provenance
(method, params, source, command, device, time, seed, scores); any other image is saved as method
``napari-layer`` with its layer name as the source. Scale, units and axis labels are kept.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from recon.errors import UserError
from recon.io.reconstruction import write_reconstruction

PROVENANCE = ("method", "params", "source", "command", "device", "elapsed_s", "seed", "psnr", "ssim")


def reconstruction_attrs(meta: dict[str, Any]) -> dict[str, Any]:
    """The reconstruction/1 attributes of a layer, from its recon metadata, scale, units and labels."""
    stored = meta.get("metadata", {}).get("recon", {}).get("attrs", {})
    attrs = {key: stored[key] for key in PROVENANCE if key in stored}
    attrs.setdefault("method", "napari-layer")
    attrs.setdefault("params", json.dumps({}))
    attrs.setdefault("source", meta.get("name", "napari layer"))
    attrs.setdefault("command", "napari: File > Save Selected Layers")
    attrs.setdefault("device", "cpu")
    attrs.setdefault("elapsed_s", 0.0)
    attrs.setdefault("seed", 0)
    if meta.get("axis_labels"):
        attrs["axes"] = ",".join(meta["axis_labels"])
    scale = meta.get("scale")
    units = [str(u) for u in meta.get("units") or ()]
    if scale is not None and (any(s != 1 for s in scale) or any(u not in ("pixel", "") for u in units)):
        attrs["voxel_size"] = [float(s) for s in scale]
        attrs["unit"] = units[0] if units else "pixel"
    limits = meta.get("contrast_limits")
    if limits is not None and limits[1] > limits[0]:
        attrs["display_min"], attrs["display_max"] = float(limits[0]), float(limits[1])
    return attrs


def write_image(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """The npe2 single-layer writer hook; returns the written path (an existing file is refused)."""
    if meta.get("rgb") or np.ndim(data) not in (2, 3):
        raise UserError(f"layer {meta.get('name')!r} has {np.ndim(data)} dimensions{' (RGB)' * bool(meta.get('rgb'))}",
                        path=path, fix="save a 2D image or a 3D volume (a reconstruction), not measurements or RGB")
    image = np.asarray(data)
    write_reconstruction(path, image, attrs=reconstruction_attrs(meta))
    return [path]
