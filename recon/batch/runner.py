"""Drive a batch: plan units, skip finished ones (``--resume``), run the rest, retry lost workers, merge
slabs, and write the summary. Nothing is lost: every unit writes its own output atomically, a failing unit
is recorded and the others go on, and Ctrl-C lets running units finish (a second Ctrl-C stops at once).

Accounting of dead workers: a unit's attempts are the times it started (each start appends a line to its
attempt log in ``OUT_DIR/.attempts``, removed at the end). A dead worker fails only the unit it ran; that
unit is resubmitted while it has started at most ``--retries`` times, so a unit that kills its worker
``--retries + 1`` times fails alone, with the cause (signal or exit code) in the summary, and units that had
not started are never charged.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from recon.batch.datasets import Datasets, Measurement, sort_inputs
from recon.batch.executors import check_scheduler, make_executor
from recon.batch.inputs import expand_inputs
from recon.batch.slabs import merge_slabs, slab_ranges
from recon.batch.summary import print_table, write_summary
from recon.batch.units import (
    Unit,
    UnitRecord,
    WorkerLost,
    attempt_log,
    attempts_started,
    output_for,
    record_for,
    slab_output,
)
from recon.errors import UserError
from recon.io.atomic import same_file
from recon.io.specs import validate_file
from recon.params import check_seed
from recon.pipeline import Request

ATTEMPTS_DIR = ".attempts"
LOSSES_BEFORE_START = 3
"""Times a unit may be lost before it ever started (its worker died for another reason) beyond --retries + 1."""


@dataclass
class BatchRequest:
    """What ``recon batch`` was asked to do."""

    inputs: list[str]
    method: str
    out_dir: Path
    params: dict[str, Any] = field(default_factory=dict)
    prior: str | None = None
    device: str = "auto"
    workers: int | None = None
    threads: int | None = None
    scheduler: str | None = None
    slab: int | None = None
    read: dict[str, str] = field(default_factory=dict)
    """Reader options (``--read``), each given to the units whose layout takes it."""
    resume: bool = False
    overwrite: bool = False
    seed: int = 0
    retries: int = 2
    command: str = ""


def is_complete(path: Path) -> bool:
    """Whether ``path`` is a finished, valid reconstruction (what ``--resume`` skips)."""
    if not path.exists():
        return False
    report = validate_file(path, check_values=False)
    return report.ok and report.spec.id == "reconstruction/1"


def _slicing(path: Path, read: dict[str, str]) -> tuple[int, str] | None:
    """(slice count, spec id) of the measurement at ``path``, or None when it cannot be opened."""
    from recon.io.layouts import open_measurement

    try:
        with open_measurement(path, **read) as measurement:
            return measurement.n_slices, measurement.spec.id
    except UserError:
        return None  # the unit will fail with the clear line when it runs


def plan_units(request: BatchRequest, measurements: list[Measurement], threads: int) -> list[Unit]:
    """One unit per measurement, or one per slab of ``request.slab`` slices for files that have more (the
    slice count of a recon file or of a layout's reader)."""
    from recon.methods import get_method

    method = get_method(request.method)
    params = method.parse_params(request.params, prior=request.prior)
    units = []
    for measurement in measurements:
        path = measurement.path
        final = output_for(path, request.out_dir, request.method)
        run = Request(input=path, method=request.method, output=final, params=request.params, prior=request.prior,
                      device=request.device, seed=request.seed, overwrite=request.overwrite, command=request.command,
                      read=read_options_for(request.read, measurement.layout))
        labels = {"layout": measurement.layout, "ground_truth": measurement.ground_truth}
        slicing = _slicing(path, run.read) if request.slab else None
        if slicing is None or slicing[0] <= request.slab:
            units.append(Unit(path.name, run, threads, **labels))
            continue
        n, spec = slicing
        if not method.separable(params, spec):
            raise UserError(f"method {method.name!r} couples the slices of {spec} files with these parameters (a "
                            "parameter set to auto chooses one value for all of them), so slabs would change its "
                            "result", path=path, key="--slab",
                            fix="give that parameter a number (see `recon methods " + method.name + "`), or leave "
                            "out --slab")
        for start, stop in slab_ranges(n, request.slab):
            slab = replace(run, slices=f"{start}:{stop}", output=slab_output(final, start, stop))
            units.append(Unit(f"{path.name}[{start}:{stop}]", slab, threads, final=final, **labels))
    return units


def _options_of(layout: str) -> dict[str, str]:
    """The ``--read`` options (name -> help) that ``layout``'s reader takes; none for recon files."""
    from recon.io.layouts import LAYOUTS

    return getattr(LAYOUTS.get(layout), "OPTIONS", {})


def read_options_for(options: dict[str, str], layout: str) -> dict[str, str]:
    """The ``--read`` options that ``layout``'s reader takes (a batch may mix layouts; recon files take none)."""
    return {key: value for key, value in options.items() if key in _options_of(layout)}


def check_read_options(options: dict[str, str], datasets: Datasets) -> None:
    """UserError when a ``--read`` option is taken by the layout of no input (a typo would else do nothing)."""
    layouts = {m.layout for m in datasets.measurements}
    taken = {key for layout in layouts for key in _options_of(layout)}
    for key in options:
        if key not in taken:
            raise UserError(f"--read {key} is an option of none of the inputs' layouts ({', '.join(sorted(layouts))})",
                            key="--read", fix=f"use one of {', '.join(sorted(taken))}" if taken else "leave out --read")


def check_request(request: BatchRequest) -> None:
    """Usage checks before any work: method, parameters, slab use, output folder."""
    from recon.methods import get_method

    method = get_method(request.method)
    params = method.parse_params(request.params, prior=request.prior)
    if request.slab is not None:
        if request.slab < 1:
            raise UserError(f"--slab {request.slab} is not positive", key="--slab", fix="give slices per slab, >= 1")
        if not any(method.separable(params, spec) for spec in method.specs):
            raise UserError(f"method {method.name!r} couples slices, so slabs would change its result",
                            key="--slab", fix="leave out --slab, or use a slice-separable method or setting "
                            "(e.g. pnp-admm with --set planes=1; see recon methods)")
    if request.retries < 0:
        raise UserError(f"--retries {request.retries} is negative", key="--retries",
                        fix="give 0 (no resubmission) or more")
    check_seed(request.seed)
    check_scheduler(request.scheduler)
    if request.resume and request.overwrite:
        raise UserError("--resume and --overwrite contradict each other", key="--resume",
                        fix="--resume keeps finished outputs, --overwrite redoes them: pick one")
    if request.out_dir.exists() and not request.out_dir.is_dir():
        raise UserError(f"{request.out_dir} is a file", key="--out-dir", fix="give a folder")


def run_batch(request: BatchRequest, show_progress: bool = True) -> list[UnitRecord]:
    """Run the batch and return one record per unit (plus one per merged volume); raises UserError for bad
    usage and KeyboardInterrupt (after writing the summary) when interrupted."""
    check_request(request)
    inputs = expand_inputs(request.inputs)
    files = inputs.files
    datasets = sort_inputs(files)
    check_read_options(request.read, datasets)
    skipped = inputs.skipped + datasets.skipped
    if not datasets.measurements:
        raise UserError(f"none of the {len(files)} HDF5 input(s) is a measurement recon reads (first: "
                        f"{skipped[0].path}: {skipped[0].reason})", key="INPUTS",
                        fix="give recon files or files in a layout that `recon info FILE` recognises")
    request.out_dir.mkdir(parents=True, exist_ok=True)
    from recon.device import resolve_device

    gpu = resolve_device(request.device).type == "cuda"
    units = plan_units(request, datasets.measurements, threads=1)
    finals = list(dict.fromkeys(unit.final or unit.output for unit in units))
    for final in finals:
        source = next((path for path in files if same_file(final, path)), None)
        if source is not None:
            raise UserError(f"the output {final} of one unit is the input {source} (or a link to it)", key="--out-dir",
                            fix="choose an --out-dir that holds no inputs named like outputs (NAME.METHOD.h5)")
    if not request.resume and not request.overwrite:
        existing = [path for path in finals if path.exists()]
        if existing:
            raise UserError(f"{existing[0]} exists ({len(existing)} output(s) from an earlier run)", key="--out-dir",
                            fix="pass --resume to skip finished units, --overwrite to redo them, or another --out-dir")

    records: dict[str, UnitRecord] = {}
    todo = []
    for unit in units:
        done = is_complete(unit.final) if unit.final else False
        if request.resume and (done or is_complete(unit.output)):
            records[unit.name] = record_for(unit, "skipped")
        else:
            todo.append(unit)

    executor, threads = make_executor(request.workers, request.scheduler, gpu, request.threads)
    attempts_dir = request.out_dir / ATTEMPTS_DIR
    shutil.rmtree(attempts_dir, ignore_errors=True)
    attempts_dir.mkdir()
    todo = [replace(unit, threads=threads, attempt_log=attempt_log(attempts_dir, unit.name)) for unit in todo]
    print(f"recon batch: {len(units)} unit(s) from {len(datasets.measurements)} measurement file(s) "
          f"({len(datasets.paired)} ground-truth file(s) paired, {len(skipped)} input(s) skipped), {len(todo)} to "
          f"run on {executor.description}", file=sys.stderr)
    if getattr(executor, "dashboard", None):
        print(f"dask dashboard: {executor.dashboard}", file=sys.stderr)
    inventory = {"paired_ground_truths": [{"ground_truth": str(truth), "measurement": str(measurement)}
                                          for truth, measurement in datasets.paired.items()],
                 "skipped_inputs": [item.row() for item in skipped]}
    start = time.perf_counter()
    try:
        _run_units(executor, todo, records, request.retries, show_progress, gpu)
    except KeyboardInterrupt:
        _interrupted(executor, todo, records)
        write_summary(_ordered(units, records), request.out_dir, {"interrupted": True, **inventory})
        raise
    finally:
        shutil.rmtree(attempts_dir, ignore_errors=True)
    executor.close()
    merged = _merge(units, records, request)
    ordered = _ordered(units, records) + merged
    write_summary(ordered, request.out_dir, {"method": request.method, "wall_s": time.perf_counter() - start,
                                             "executor": executor.description, **inventory})
    if show_progress:
        print_table(ordered, skipped)
    return ordered


def _run_units(executor, units: list[Unit], records: dict[str, UnitRecord], retries: int, show: bool,
               gpu: bool) -> None:
    from recon.progress import default_progress, silent_progress

    began = time.time()
    losses = {unit.name: 0 for unit in units}
    pending = {executor.submit(unit, gpu=gpu): unit for unit in units}
    progress = default_progress() if show else silent_progress
    with progress("units", len(units)) as step:
        while pending:
            for future in executor.as_completed(list(pending)):
                unit = pending.pop(future)
                try:
                    record = executor.result(future)
                except WorkerLost as lost:
                    started, losses[unit.name] = attempts_started(unit), losses[unit.name] + 1
                    record = _finished_before_loss(unit, began)
                    if record is None and started <= retries and \
                            losses[unit.name] <= retries + 1 + LOSSES_BEFORE_START:
                        pending[executor.submit(unit, gpu=gpu)] = unit
                        print(f"recon batch: the worker running {unit.name} died ({lost}); resubmitted "
                              f"(started {started} time(s), --retries {retries})", file=sys.stderr)
                        break  # resubmitted: restart as_completed over the new set
                    if record is None:
                        record = record_for(unit, "failed", error=f"its worker died {losses[unit.name]} time(s) "
                                                                  f"running it; last: {lost}")
                record.attempts = max(1, attempts_started(unit))
                records[unit.name] = record
                step(ok=sum(r.status == "ok" for r in records.values()),
                     failed=sum(r.status == "failed" for r in records.values()))


def _finished_before_loss(unit: Unit, began: float) -> UnitRecord | None:
    """The record of a unit that wrote its complete output in this run but whose result was lost with its worker
    (a Dask worker holds results until they are fetched; it can die, running the next unit, before that), read
    from the output; None when it did not finish (an output older than ``began``, the run's start, is not its)."""
    import h5py

    if not is_complete(unit.output) or unit.output.stat().st_mtime < began:
        return None
    with h5py.File(unit.output, "r") as file:
        attrs = {key: file.attrs.get(key) for key in ("psnr", "ssim", "elapsed_s")}
    value = {key: None if v is None else float(v) for key, v in attrs.items()}
    return record_for(unit, "ok", time_s=value["elapsed_s"] or 0.0, psnr=value["psnr"], ssim=value["ssim"])


def _interrupted(executor, units: list[Unit], records: dict[str, UnitRecord]) -> None:
    running = [unit for unit in units if unit.name not in records]
    print(f"interrupted: letting running units finish, cancelling the rest ({len(running)} not done); "
          "Ctrl-C again to stop at once", file=sys.stderr)
    try:
        executor.close(cancel=True)
    except KeyboardInterrupt:
        executor.kill()
    for unit in running:
        status = "ok" if is_complete(unit.output) else "not run"
        records[unit.name] = record_for(unit, status, error="" if status == "ok" else "interrupted")


def _ordered(units: list[Unit], records: dict[str, UnitRecord]) -> list[UnitRecord]:
    return [records[unit.name] for unit in units if unit.name in records]


def _merge(units: list[Unit], records: dict[str, UnitRecord], request: BatchRequest) -> list[UnitRecord]:
    """Merge each volume whose slabs all finished; one record per merged volume."""
    merged = []
    for final in dict.fromkeys(unit.final for unit in units if unit.final):
        slabs = [unit for unit in units if unit.final == final]
        name = f"{slabs[0].input.name} (merged)"
        if request.resume and is_complete(final):
            merged.append(record_for(slabs[0], "skipped", unit=name, output=str(final)))
            continue
        if not all(records[unit.name].status in ("ok", "skipped") for unit in slabs):
            merged.append(record_for(slabs[0], "not run", unit=name, output=str(final), error="a slab failed"))
            continue
        start = time.perf_counter()
        try:
            metrics = merge_slabs([unit.output for unit in slabs], final, slabs[0].input, overwrite=request.overwrite)
        except (UserError, OSError, ValueError) as error:
            merged.append(record_for(slabs[0], "failed", unit=name, output=str(final), error=str(error)))
            continue
        merged.append(record_for(slabs[0], "ok", unit=name, output=str(final), time_s=time.perf_counter() - start,
                                 psnr=metrics.get("psnr"), ssim=metrics.get("ssim")))
        for unit in slabs:
            unit.output.unlink(missing_ok=True)
    slab_dir = request.out_dir / ".slabs"
    if slab_dir.is_dir() and not any(slab_dir.iterdir()):
        shutil.rmtree(slab_dir)
    return merged
