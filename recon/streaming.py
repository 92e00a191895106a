"""Streaming reconstruction: a selection of slices too large for the memory budget is read, reconstructed and
written in slabs of slices, one after another, then merged into one output that appears atomically.

Methods that reconstruct each slice on its own (``Method.separable``) are split into plain slabs: their slabbed
result is the whole-volume result (``tests/test_method_contract.py`` checks every such claim). Methods whose slices
are coupled only through neighbours in z (a method's ``halo``: 3D tv, tri-planar pnp-admm, dds with its TV_z) are
split into slabs each reconstructed with ``--halo`` more slices on both sides (by default the method's), of which only
the slab's own slices are kept; the difference that leaves against the whole run is measured by
``scripts/bench_halo.py``. A method whose parameter is ``auto`` (one value chosen for the whole selection), or that
couples slices in another way, runs whole.

The budget (``--memory``; by default half the memory available when the run starts, :func:`default_budget`) is
compared with an estimate of what the run holds: the per-slice bytes the measurement declares
(:meth:`MeasurementReader.memory_need`: its sliced datasets plus the float32 image) times the method's working
copies, for the slab's own slices plus its halo. ``WORKING_COPIES`` were measured as the growth of peak RSS with the
slice count through ``recon reconstruct`` (``scripts/bench_streaming.py``).

A file that declares far more data than its files hold (:data:`HOLLOW_RATIO`) is never streamed: it runs whole,
and the memory check refuses it before anything is read, naming the slices that fit.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recon.errors import UserError
from recon.memory import format_bytes

if TYPE_CHECKING:  # torch-free at import: the CLI checks a request before loading torch
    from recon.pipeline import Request, Summary
    from recon.progress import Progress

WORKING_COPIES = {"classical": 8, "learned": 80}
"""Peak bytes a run holds per byte the measurement declares per slice, for methods without a learned prior and
for those with one (network activations). Measured on 256^2 CT slices with 180 views (0.78 MB declared per slice):
fbp and cgls 5x, 2D tv 6.8x, pnp-admm with DRUNet 66x; the figures here leave a margin."""
DEFAULT_FRACTION = 0.5
"""The default budget: this fraction of the memory available when the run starts (RAM, the cgroup's headroom and
the address-space limit, whichever is least)."""
HOLLOW_RATIO = 1000
"""A selection declaring more than this many times the bytes its source files hold on disk is not streamed. An HDF5
dataset can declare 10^12 rows with no chunk written; streaming such a file by default planned 111218 slabs of
nothing. Real measurements are noisy and compress little (gzip: about 1 to 3 times); even a noiseless phantom file
stays far under this ratio."""
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_memory(text: str) -> int:
    """``"8G"`` -> bytes: a positive number with an optional binary unit K, M, G or T (``KiB``, ``GB`` read
    the same; no unit: bytes). UserError otherwise."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (raw[:-1], raw[-1]) if raw[-1:] in _UNITS and raw[-1:] else (raw, "")
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        value = float("nan")
    if not value >= 1:  # also refuses NaN
        raise UserError(f"{text!r} is not a memory size", key="--memory",
                        fix="give a size such as 8G, 512M or 2.5G (binary units)")
    return int(value)



def parse_halo(text: str) -> int:
    """``"4"`` -> 4: the slices a z-coupled slab extends on each side (``--halo``); UserError unless a whole number
    >= 0."""
    try:
        value = int(text.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise UserError(f"{text!r} is not a slice count", key="--halo",
                        fix=f"give a whole number of slices >= 0 (default: the method's; {default_halos()})")
    return value


def default_halos() -> str:
    """The methods that stream with a halo and their default, e.g. ``"tv 4, pnp-admm 8, dds 4"``."""
    from recon.methods import all_methods

    return ", ".join(f"{method.name} {method.halo}" for method in all_methods() if method.halo is not None)


@dataclass(frozen=True)
class SlabPlan:
    """How a run over ``start:stop`` is split: ``ranges`` of slices kept from each slab, each slab reconstructed with
    ``halo`` more slices on both sides (clipped at the selection's ends) and parameters ``pinned`` to the values
    the whole run would derive from its data."""

    ranges: tuple[tuple[int, int], ...]
    per_slice: int
    """Estimated bytes one slice holds during the run."""
    halo: int = 0
    pinned: dict[str, Any] = field(default_factory=dict)
    """Parameters the method derives from the slice count (pnp-admm's planes), as the whole selection resolves them."""

    @property
    def slab(self) -> int:
        return self.ranges[0][1] - self.ranges[0][0]

    def extended(self, a: int, b: int) -> tuple[int, int]:
        """The slices reconstructed for the kept slices ``a:b``: ``halo`` more on each side, within the selection."""
        return max(self.ranges[0][0], a - self.halo), min(self.ranges[-1][1], b + self.halo)


def default_budget() -> int:
    """Bytes a run may hold without ``--memory``: DEFAULT_FRACTION of what is available now."""
    from recon.memory import available_bytes

    return int(DEFAULT_FRACTION * available_bytes())


def plan_slabs(request: Request, budget: int, halo: int | None = None) -> SlabPlan | None:
    """The slabs that keep ``request`` within ``budget`` bytes, or None when it runs whole: its estimate fits, its
    file has no slice axis, its method couples the slices beyond a halo (no ``halo`` declared, or a parameter set to
    ``auto``, chosen once for the whole selection), or its file is hollow (:data:`HOLLOW_RATIO`). Slice-separable
    methods get no halo; z-coupled ones ``halo`` slices on each side (None: the method's own),
    counted in the budget. A run that goes whole
    is refused by the memory check if even its declared data cannot fit."""
    from recon.batch.slabs import balanced_ranges
    from recon.io.layouts import open_measurement
    from recon.methods import get_method, spec_default
    from recon.params import AUTO

    method = get_method(request.method)
    with open_measurement(request.input, **request.read) as measurement:
        spec = measurement.spec.id
        if not measurement.spec.slice_dim:
            return None
        selection = measurement.check_slice_range(request.slices) if request.slices else None
        fixed, declared, count = measurement.memory_need(selection)
        start = (selection.start or 0) if selection else 0
        on_disk = sum(path.stat().st_size for path in measurement.sources if path.is_file())
    params = method.parse_params(request.params, prior=request.prior, spec=spec)
    derived = method.data_defaults(params, spec, count) if method.data_defaults else {}
    pinned = {name: value for name, value in derived.items() if params.get(name) is None}
    filled = {**params, **pinned}
    if method.separable(filled, spec):
        halo = 0
    else:
        resolved = {p.name: spec_default(p, spec) if filled.get(p.name) is None else filled[p.name]
                    for p in method.params}
        if method.halo is None or AUTO in resolved.values():
            return None
        halo = method.halo if halo is None else halo
    if fixed + declared * count > HOLLOW_RATIO * on_disk:
        return None
    copies = WORKING_COPIES["learned" if method.prior_capability else "classical"]
    per_slice = declared * copies
    if count <= 1 or fixed + per_slice * count <= budget:
        return None
    slab = max(1, (budget - fixed) // per_slice - 2 * halo)
    ranges = balanced_ranges(start, count, -(-count // slab))
    return SlabPlan(ranges, per_slice, halo, pinned) if len(ranges) > 1 else None



def reconstruct(request: Request, budget: int | None = None, progress: Progress | None = None,
                halo: int | None = None) -> Summary:
    """Run ``request`` within ``budget`` bytes (None: whole, never streamed) and write its output; returns the
    :class:`recon.pipeline.Summary` (its time: the methods' own, summed over the slabs, as a whole run reports it).
    A streamed run prints one line per slab on stderr; its slab files (the kept slices of each slab, scored on
    them) live in a hidden folder beside the output until the merge, and are removed after it, whatever the
    outcome."""
    from recon.batch.slabs import merge_slabs
    from recon.io.atomic import check_output_path
    from recon.pipeline import Summary
    from recon.pipeline import reconstruct as reconstruct_whole
    from recon.progress import silent_progress

    progress = progress or silent_progress
    plan = plan_slabs(request, budget, halo) if budget is not None else None
    if plan is None:
        return reconstruct_whole(request, progress)
    output = request.output_path
    check_output_path(output, overwrite=request.overwrite, protect=[request.input, *request.protect])
    overlap = f" with a halo of {plan.halo} slices on each side (--halo)" if plan.halo else ""
    print(f"streaming {plan.ranges[0][0]}:{plan.ranges[-1][1]} in {len(plan.ranges)} slabs of up to {plan.slab} "
          f"slices{overlap} (about {format_bytes(plan.per_slice)} per slice; --memory sets the budget)",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name[:64]}.slabs-") as folder:
        slabs, elapsed, last = [], 0.0, None
        for index, (a, b) in enumerate(plan.ranges, 1):
            lo, hi = plan.extended(a, b)
            solved = f" (reconstructed {lo}:{hi})" if (lo, hi) != (a, b) else ""
            print(f"slab {index}/{len(plan.ranges)}: slices {a}:{b}{solved}", file=sys.stderr, flush=True)
            slabs.append(Path(folder) / f"slices-{a:06d}-{b:06d}.h5")
            slab_request = replace(request, slices=f"{lo}:{hi}", params={**request.params, **plan.pinned},
                                   output=slabs[-1], overwrite=False)
            last = reconstruct_whole(slab_request, progress, keep=slice(a - lo, b - lo))
            elapsed += last.elapsed_s
        metrics = merge_slabs(slabs, output, Path(request.input), overwrite=request.overwrite,
                              selection=request.slices)
    shape = (plan.ranges[-1][1] - plan.ranges[0][0], *last.shape[1:])
    return Summary(output, last.method, shape, elapsed, last.device, metrics)

