"""Slabs of a volume: how its slices are cut into slabs, and merging the slab outputs into one ``reconstruction/1``
file, slab by slab.

Memory is bounded by one slab. PSNR and NMSE are recomputed over the whole volume from accumulated squared errors,
the ground truth's energy and its global range (the same formulas as recon.metrics); SSIM is the mean over slices, so
the slice-count-weighted mean of the slabs' SSIMs is exact.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np

from recon.io.reconstruction import atomic_h5, attr_value
from recon.io.specs import load_spec, read_attrs
from recon.pipeline import finite_metrics

VOLUME_KEYS = ("reconstruction", "complex", "uncertainty", "ground_truth", "prior_value", "prior_map")


def slab_ranges(n_slices: int, slab: int) -> list[tuple[int, int]]:
    """[(0, slab), (slab, 2 slab), ...] covering ``n_slices``: the slabs a user asked for (``recon batch --slab``)."""
    return [(start, min(start + slab, n_slices)) for start in range(0, n_slices, slab)]


def balanced_ranges(start: int, count: int, parts: int) -> tuple[tuple[int, int], ...]:
    """``count`` slices from ``start`` in ``parts`` contiguous ranges whose sizes differ by at most one (the first ones
    larger): the slabs of a memory budget (recon.streaming). No small last slab, which would cost a slab's overhead
    for a few slices, and whose one slice the matrix-free CT projector rounds unlike the several-slice calls of the
    others."""
    size, extra = divmod(count, parts)
    bounds = [start + index * size + min(index, extra) for index in range(parts + 1)]
    return tuple(zip(bounds[:-1], bounds[1:], strict=True))


def copy_slices(source: h5py.Dataset, target: h5py.Dataset, offset: int) -> None:
    """Write ``source`` (n, ...) into ``target`` at slices ``offset:offset + n``. Where both store each slice as one
    chunk with the same filters (as every slab that recon writes does), the compressed chunks are copied as they
    are: decoding and re-compressing a 512^2 float32 slice took 45 ms here, copying it 1.6 ms, and a 512^3 merge
    copies the reconstruction and the ground truth (the fbp row of the large-volumes guide: 202 s before, 165 s
    after). Otherwise the values are decoded and written again."""
    plane = source.shape[1:]
    raw = (source.chunks == target.chunks == (1, *plane) and source.dtype == target.dtype
           and source.compression == target.compression and source.compression_opts == target.compression_opts
           and source.shuffle == target.shuffle and source.fletcher32 == target.fletcher32
           and source.scaleoffset is None and source.id.get_num_chunks() == source.shape[0])
    if not raw:
        target[offset:offset + source.shape[0]] = source[()]
        return
    origin = (0,) * len(plane)
    for index in range(source.shape[0]):
        filter_mask, chunk = source.id.read_direct_chunk((index, *origin))
        target.id.write_direct_chunk((offset + index, *origin), chunk, filter_mask)


def merge_slabs(slabs: list[Path], output: Path, source: Path, overwrite: bool = False,
                selection: str | None = None) -> dict[str, float]:
    """Write ``output`` from ``slabs`` (in slice order) of the measurement ``source`` (which ``output`` must not
    be), recorded as ``source`` plus `` slices SELECTION`` when the slabs cover a ``--slices`` selection (as a whole
    run over it records); returns its PSNR/SSIM when there is a ground truth and they are finite (else
    ``metrics_note`` says why)."""
    spec = load_spec("reconstruction/1")
    with h5py.File(slabs[0], "r") as first:
        attrs = read_attrs(first, spec)
        keys = [key for key in VOLUME_KEYS if key in first]
        plane = {key: first[key].shape[1:] for key in keys}
        dtypes = {key: first[key].dtype for key in keys}
    sizes = []
    for path in slabs:
        with h5py.File(path, "r") as file:
            sizes.append(file["reconstruction"].shape[0])
    total = sum(sizes)

    sse, truth_energy, truth_low, truth_high, ssim_sum, elapsed = 0.0, 0.0, math.inf, -math.inf, 0.0, 0.0
    display = [math.inf, -math.inf]
    with atomic_h5(output, "reconstruction/1", overwrite=overwrite, protect=[source, *slabs]) as out:
        for key in keys:
            out.create_dataset(key, shape=(total, *plane[key]), dtype=dtypes[key], chunks=(1, *plane[key]),
                               compression="gzip", compression_opts=4, shuffle=True)
        offset = 0
        for path, size in zip(slabs, sizes, strict=True):
            with h5py.File(path, "r") as file:
                slab_attrs = read_attrs(file, spec)
                for key in keys:
                    copy_slices(file[key], out[key], offset)
                if "ground_truth" in file:
                    truth, recon = file["ground_truth"][()], file["reconstruction"][()]
                    sse += float(np.sum((recon.astype(np.float64) - truth) ** 2))
                    truth_energy += float(np.sum(truth.astype(np.float64) ** 2))
                    truth_low, truth_high = min(truth_low, float(truth.min())), max(truth_high, float(truth.max()))
                    ssim_sum += slab_attrs.get("ssim", math.nan) * size
                if "history" in file:
                    file.copy("history", out.require_group("history"), name=f"slices_{offset}_{offset + size}")
            display = [min(display[0], slab_attrs["display_min"]), max(display[1], slab_attrs["display_max"])]
            elapsed += slab_attrs["elapsed_s"]
            offset += size
        metrics = {"nmse": sse / max(truth_energy, 1e-30)} if "ground_truth" in keys else {}
        if "ground_truth" in keys and truth_high > truth_low:
            mse = sse / (total * int(np.prod(plane["reconstruction"])))
            metrics["psnr"] = 20 * math.log10((truth_high - truth_low) / math.sqrt(mse)) if mse > 0 else math.inf
            if not math.isnan(ssim_sum):
                metrics["ssim"] = ssim_sum / total
        metrics, note = finite_metrics(metrics)
        kept = {key: value for key, value in attrs.items() if key not in ("nmse", "psnr", "ssim", "metrics_note")}
        origin = str(source) + (f" slices {selection}" if selection else "")
        merged = {**kept, "source": origin, "elapsed_s": elapsed, "display_min": display[0],
                  "display_max": display[1], **metrics, **({"metrics_note": note} if note else {})}
        for key, value in merged.items():
            out.attrs[key] = attr_value(key, value)
    return metrics
