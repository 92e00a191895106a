"""Reconstruct one unit: (input file, method, parameters, slice range) -> output file.

Pure apart from the output file it writes: everything it needs comes in as arguments, so the CLI, the
batch executor and the napari widget call it alike. All checks a user can fail (file, spec, method,
parameters, output path, device, slice range, seed, NaN, memory for the declared sizes, measurements that
carry no information) run before any computation, and the output is written atomically, never over a file
the run reads. A result with NaN/Inf is never written (:class:`~recon.errors.ComputationFailed`); a finite
result is, even when a quality metric is not finite (the metric is left out and ``metrics_note`` says why).
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import recon
from recon.device import resolve_device
from recon.errors import ComputationFailed, ReconWarning, UserError
from recon.io.layouts import open_measurement
from recon.io.reconstruction import check_output_path, write_reconstruction
from recon.methods import RunContext, get_method
from recon.metrics import quality
from recon.params import check_seed
from recon.problem import Problem, scored_pair
from recon.problems import build_problem
from recon.progress import Progress, silent_progress


@dataclass
class Request:
    """What to reconstruct and how; ``params`` are raw ``--set`` values (strings or YAML values), ``read`` the
    reader's options (``--read key=value``, for files in a foreign layout)."""

    input: Path
    method: str
    output: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    read: dict[str, Any] = field(default_factory=dict)
    """Reader options of a foreign layout (``--read key=value``)."""
    prior: str | None = None
    device: str = "auto"
    slices: str | None = None
    seed: int = 0
    overwrite: bool = False
    command: str = ""
    protect: tuple[Path, ...] = ()
    """Other files the run reads (a --config file): the output must be none of them, nor the input."""

    @property
    def output_path(self) -> Path:
        """``output``, or the default beside the input (:func:`default_output`)."""
        return Path(self.output) if self.output else default_output(Path(self.input), self.method)


@dataclass
class Summary:
    """The outcome of one unit, for the one-line report, batch tables and tests."""

    output: Path | None
    method: str
    shape: tuple[int, ...]
    elapsed_s: float
    device: str
    metrics: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        shape = "x".join(map(str, self.shape))
        scores = "".join(f", {k.upper()} {v:.4g}" + (" dB" if k == "psnr" else "") for k, v in self.metrics.items())
        target = self.output if self.output is not None else "(not saved)"
        return f"{self.method}: {shape} in {self.elapsed_s:.2f} s on {self.device}{scores} -> {target}"


def default_output(input_path: Path, method: str) -> Path:
    """``scan.h5`` reconstructed by ``tv`` goes to ``scan.tv.h5`` beside it."""
    return input_path.with_name(f"{input_path.stem}.{method}.h5")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Outcome:
    """A computed reconstruction, not yet written: the arrays and attributes of a ``reconstruction/1`` file."""

    image: np.ndarray
    datasets: dict[str, np.ndarray]
    attrs: dict[str, Any]
    history: dict[str, np.ndarray]
    summary: Summary
    sources: list[Path] = field(default_factory=list)
    """The files the run read, which the output must not replace."""


def compute(request: Request, output: Path | None = None, progress: Progress = silent_progress,
            keep: slice | None = None) -> Outcome:
    """Check ``request``, run its method and return the result in memory (the napari widget's entry point).

    ``output`` is only checked (exists without ``overwrite``, unwritable folder), so that a run that could
    not be saved fails before it computes. ``keep``: return and score only these slices of the result (a streamed
    slab reconstructed with its halo keeps its own slices).
    """
    method = get_method(request.method)
    check_seed(request.seed)
    with warnings.catch_warnings(record=True) as caught, open_measurement(request.input, **request.read) as measurement:
        warnings.simplefilter("always", ReconWarning)
        method.check_spec(measurement.spec.id, path=str(request.input))
        params = method.parse_params(request.params, prior=request.prior, spec=measurement.spec.id)
        sources = [*measurement.sources, *request.protect]
        if output is not None:
            check_output_path(output, overwrite=request.overwrite, protect=sources)
        device = resolve_device(request.device)
        slices = measurement.check_slice_range(request.slices) if request.slices else None
        measurement.check_memory(slices)
        seed_everything(request.seed)
        with _out_of_memory_as_user_error(request):
            problem = build_problem(measurement, slices, device)
        provenance = measurement.provenance
    for caught_warning in caught:  # shown now, and kept in the output's provenance
        warnings.warn_explicit(caught_warning.message, caught_warning.category, caught_warning.filename,
                               caught_warning.lineno)
    notes = [str(w.message) for w in caught if issubclass(w.category, ReconWarning)]
    if notes:
        provenance["warnings"] = notes

    ctx = RunContext(device=device, progress=progress)
    start = time.perf_counter()
    with torch.no_grad(), _out_of_memory_as_user_error(request):  # learned priors enable grad locally
        result = method.solve(problem, params, ctx)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    _check_finite(result.x, method.name, request.params, params, problem)

    params.update(result.extras.get("params", {}))
    datasets = problem.to_output(result.x)
    datasets.update({key: problem.crop_output(value) for key, value in result.extras.get("datasets", {}).items()})
    if problem.ground_truth is not None:
        datasets["ground_truth"] = problem.ground_truth.reshape(datasets["reconstruction"].shape)
    if keep is not None:
        datasets = {key: value[keep] for key, value in datasets.items()}
    image = datasets.pop("reconstruction")
    metrics, note = {}, None
    if "ground_truth" in datasets:
        metrics, note = finite_metrics(quality(*scored_pair(problem.spec, image, datasets["ground_truth"]),
                                               images=problem.kind.image_dims >= 2))
    source = str(request.input) + (f" slices {request.slices}" if request.slices else "")
    attrs = {
        "method": method.name, "params": params, "source": source,
        "command": request.command, "recon_version": recon.__version__, "device": str(device),
        "elapsed_s": elapsed, "seed": request.seed, "axes": ",".join(problem.axes), "provenance": provenance, **metrics,
        **result.extras.get("attrs", {}),
    }
    if problem.coil_maps is not None:
        attrs["coil_maps"] = problem.coil_maps
    if note:
        attrs["metrics_note"] = note
    if problem.voxel_size is not None:
        attrs.update(voxel_size=list(problem.voxel_size), unit=problem.unit)
    history = {name: np.asarray(values) for name, values in result.history.items()}
    summary = Summary(output, method.name, image.shape, elapsed, str(device), metrics)
    return Outcome(image, datasets, attrs, history, summary, sources)


@contextmanager
def _out_of_memory_as_user_error(request: Request) -> Iterator[None]:
    """Running out of memory (numpy, torch on CPU or CUDA) is a UserError whose fix is a smaller selection."""
    try:
        yield
    except (MemoryError, torch.OutOfMemoryError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and not isinstance(error, torch.OutOfMemoryError) and \
                "can't allocate memory" not in str(error):
            raise
        raise UserError("ran out of memory", path=request.input,
                        fix="select fewer slices with --slices a:b, or use a machine with more memory") from None


def _check_finite(x: torch.Tensor, method: str, raw: dict[str, Any], params: dict[str, Any], problem: Problem) -> None:
    """ComputationFailed when the result ``x`` holds NaN/Inf, naming ``method`` and the likely cause: the
    numeric parameters the user set (``raw``), else the scale of the measurements."""
    finite = torch.isfinite(x)
    if bool(finite.all()):
        return
    bad = int((~finite).sum())
    set_numbers = {k: params[k] for k in raw if isinstance(params.get(k), int | float) and not isinstance(
        params.get(k), bool)}
    if set_numbers:
        cause = "the parameter(s) you set: " + ", ".join(f"{k}={v:g}" for k, v in set_numbers.items())
        fix = "try values nearer the defaults (see `recon methods`)"
    else:
        scale = float(problem.y.abs().max())
        cause = f"the scale of the measurements (largest magnitude {scale:.3g}) or the geometry"
        fix = "check the file's values and attributes (recon info), or set a smaller step or weight with --set"
    raise ComputationFailed(f"method {method!r} produced NaN/Inf in {bad} of {x.numel()} values; likely cause: "
                            f"{cause}; nothing was written; fix: {fix}")


def finite_metrics(scores: dict[str, float]) -> tuple[dict[str, float], str | None]:
    """The finite quality scores, and the ``metrics_note`` saying why the others are left out (None if none is)."""
    metrics = {k: v for k, v in scores.items() if math.isfinite(v)}
    notes = [f"{k} not recorded: " + ("infinite: the reconstruction equals the ground truth" if v == math.inf and
                                      k == "psnr" else f"not finite ({v}): the errors overflow float32 arithmetic")
             for k, v in scores.items() if not math.isfinite(v)]
    return metrics, "; ".join(notes) or None


def reconstruct(request: Request, progress: Progress = silent_progress, keep: slice | None = None) -> Summary:
    """Run ``request`` and write its output (only the slices ``keep``, if given); raises UserError for anything the
    user can fix."""
    output = request.output_path
    outcome = compute(request, output, progress, keep)
    write_reconstruction(output, outcome.image, attrs=outcome.attrs, datasets=outcome.datasets,
                         history=outcome.history, overwrite=request.overwrite, protect=outcome.sources)
    return outcome.summary
