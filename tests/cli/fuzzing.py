"""Fuzzing the CLI with mutated measurement files (tests/cli/test_fuzz.py and scripts/fuzz_cli.py).

``make_case(spec, rng, folder)`` writes a tiny valid file of ``spec`` (tests/io/make_files.py) as
``folder/in.h5`` and applies one mutation drawn from ``rng``: a dtype or shape change, NaN/Inf, extreme or zero
values, a missing key, a wrong attribute, a soft/external/dangling/self link, an ``h5py.Empty`` dataspace, a
corrupted gzip chunk, a huge declared dataset with no data, a truncated or damaged file. It returns a
:class:`Case`: the file, the mutation's name and details, and a method of recon that takes the spec.

``check_case(case, via_subprocess)`` runs ``recon reconstruct`` and ``recon info`` on it and lists every
broken promise. A mutated file may still be valid (a cast that keeps the values, an extra dataset): the
contract is "exit 0 with a finite output, or exit 2 with one line; never exit 1, never a traceback, no file
left behind, the input unchanged", whatever the file holds; ``info`` exits 0 or 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from make_files import write_valid_file

from recon.io.specs import load_spec

SPECS = ("ct-parallel", "mri-cartesian", "ct-dynamic", "mri-dynamic", "mimo-nearfield", "sparse-linear")
METHODS = {"ct-parallel": ("fbp", "cgls", "adjoint"), "mri-cartesian": ("adjoint", "cgls"),
           "ct-dynamic": ("fbp", "cgls"), "mri-dynamic": ("adjoint", "cgls"),
           "mimo-nearfield": ("backprojection", "adjoint"), "sparse-linear": ("cgls", "ista")}
HUGE = 10**9


@dataclass
class Case:
    spec: str
    mutation: str
    detail: str
    path: Path
    method: str


Mutation = Callable[[h5py.File, np.random.Generator, "_Context"], str]


@dataclass
class _Context:
    spec: str
    path: Path
    after: list  # byte-level edits to apply once the file is closed: callables taking the path


def _pick(rng: np.random.Generator, items):
    items = list(items)
    return items[int(rng.integers(len(items)))]


def _datasets(f: h5py.File) -> list[str]:
    return [key for key in f if isinstance(f.get(key, getlink=True), h5py.HardLink)
            and isinstance(f[key], h5py.Dataset)]


def _replace(f: h5py.File, key: str, data=None, **kwargs) -> None:
    del f[key]
    if data is None:
        f.create_dataset(key, **kwargs)
    else:
        f.create_dataset(key, data=data, **kwargs)


def mutate_dtype(f, rng, ctx):
    key = _pick(rng, _datasets(f))
    data = f[key][()]
    dtype = _pick(rng, ["int8", "int32", "uint8", "float16", "float64", "complex64", "complex128", "bool", "S8"])
    if dtype == "S8":
        _replace(f, key, np.full(data.shape, b"abc"))
    else:
        values = data.real if np.iscomplexobj(data) and not dtype.startswith("complex") else data
        with np.errstate(all="ignore"):
            _replace(f, key, np.asarray(values).astype(dtype))
    return f"{key} as {dtype}"


def mutate_shape(f, rng, ctx):
    key = _pick(rng, _datasets(f))
    data = f[key][()]
    how = _pick(rng, ["drop-axis", "add-axis", "shorter", "longer", "transpose", "flatten"])
    if how == "drop-axis" and data.ndim > 1:
        data = data[0]
    elif how == "add-axis":
        data = data[None]
    elif how == "shorter" and data.shape[-1] > 1:
        data = data[..., :-1]
    elif how == "longer":
        data = np.concatenate([data, data[..., :1]], axis=-1)
    elif how == "transpose" and data.ndim > 1:
        data = np.ascontiguousarray(data.T)
    else:
        data = data.reshape(-1)
    _replace(f, key, data)
    return f"{key} {how} -> {data.shape}"


def _float_keys(f):
    return [k for k in _datasets(f) if np.issubdtype(f[k].dtype, np.inexact)]


def mutate_nonfinite(f, rng, ctx):
    key = _pick(rng, _float_keys(f))
    data = f[key][()]
    value = _pick(rng, [np.nan, np.inf, -np.inf])
    data.flat[int(rng.integers(data.size))] = value
    f[key][...] = data
    return f"{key} holds {value}"


def mutate_extreme(f, rng, ctx):
    spec = load_spec(ctx.spec)
    if "det_spacing" in spec.attributes and rng.random() < 0.3:
        value = _pick(rng, [1e-300, 1e-30, 1e30, 1e300])
        f.attrs["det_spacing"] = value
        return f"det_spacing = {value}"
    key = _pick(rng, _float_keys(f))
    data = f[key][()]
    scale = _pick(rng, [1e-30, 1e-20, 1e20, 1e30])
    with np.errstate(all="ignore"):
        if rng.random() < 0.3 and f[key].dtype == np.float32:
            data = np.full_like(data, 3e38)
            scale = "3e38 everywhere"
        else:
            data = (data * scale).astype(data.dtype)
    f[key][...] = data
    return f"{key} scaled by {scale}"


def mutate_zero(f, rng, ctx):
    key = _pick(rng, _datasets(f))
    f[key][...] = np.zeros(f[key].shape, f[key].dtype)
    return f"{key} all zero"


def mutate_missing(f, rng, ctx):
    if rng.random() < 0.3 and len(f.attrs):
        key = _pick(rng, list(f.attrs))
        del f.attrs[key]
        return f"attribute {key} deleted"
    key = _pick(rng, _datasets(f))
    del f[key]
    return f"dataset {key} deleted"


def mutate_attribute(f, rng, ctx):
    spec = load_spec(ctx.spec)
    key = _pick(rng, [*spec.attributes, "recon_spec"])
    value = _pick(rng, ["abc", b"\xff\xfe", np.zeros(0), -1, 0, 10**12, np.nan, np.inf, [1, 2, 3, 4, 5], 2.5,
                        [10**6, 10**6], [0, 16], [-0.1, 0.1, 1e308], "nope/1", 7, np.array([1, 2], dtype="u8")])
    f.attrs[key] = value
    return f"attribute {key} = {value!r}"


def mutate_soft_link(f, rng, ctx):
    key = _pick(rng, _datasets(f))
    del f[key]
    target = _pick(rng, ["/nowhere", f"/{key}", "/group/missing"])
    f[key] = h5py.SoftLink(target)
    return f"{key} soft link to {target}"


def mutate_external_link(f, rng, ctx):
    key = _pick(rng, _datasets(f))
    data = f[key][()]
    del f[key]
    how = _pick(rng, ["missing-file", "self", "sibling", "sibling-missing-key"])
    if how == "missing-file":
        f[key] = h5py.ExternalLink("missing.h5", f"/{key}")
    elif how == "self":
        f[key] = h5py.ExternalLink(ctx.path.name, f"/{key}")
    else:
        sibling = ctx.path.with_name("sibling.h5")
        with h5py.File(sibling, "w") as other:
            other[key if how == "sibling" else "other"] = data
        f[key] = h5py.ExternalLink(sibling.name, f"/{key}")
    return f"{key} external link ({how})"


def mutate_group(f, rng, ctx):
    key = _pick(rng, _datasets(f))
    del f[key]
    f.create_group(key)
    return f"{key} is a group"


def mutate_empty(f, rng, ctx):
    key = _pick(rng, _datasets(f))
    dtype = f[key].dtype
    del f[key]
    if rng.random() < 0.5:
        f[key] = h5py.Empty(dtype)
        return f"{key} h5py.Empty"
    f[key] = np.zeros((), dtype)
    return f"{key} scalar"


def mutate_corrupt_chunk(f, rng, ctx):
    key = _pick(rng, [k for k in _datasets(f) if f[k].size >= 8])
    data = f[key][()]
    _replace(f, key, data, chunks=True, compression="gzip", shuffle=bool(rng.random() < 0.5))
    f.flush()
    info = f[key].id.get_chunk_info(0)
    offset, size = info.byte_offset, info.size
    flips = int(rng.integers(1, 8))
    positions = [offset + int(rng.integers(size)) for _ in range(flips)]

    def flip(path: Path) -> None:
        with open(path, "r+b") as raw:
            for position in positions:
                raw.seek(position)
                byte = raw.read(1)
                raw.seek(position)
                raw.write(bytes([byte[0] ^ 0xFF]))

    ctx.after.append(flip)
    return f"{key} gzip chunk 0: {flips} byte(s) flipped"


def mutate_huge(f, rng, ctx):
    """A dataset declared huge (no data written): along the slice axis so that the file stays valid, or
    everywhere."""
    spec = load_spec(ctx.spec)
    key = _pick(rng, _datasets(f))
    shape, dtype = f[key].shape, f[key].dtype
    consistent = spec.slice_dim is not None and rng.random() < 0.5
    if consistent:
        # every dataset with the slice axis grows along it; the image shape follows
        for name in _datasets(f):
            d = spec.datasets.get(name)
            if d is None or not any(s[:1] == (spec.slice_dim,) and len(s) == f[name].ndim for s in d.shapes):
                continue
            old_shape, old_dtype = f[name].shape, f[name].dtype
            del f[name]
            f.create_dataset(name, shape=(HUGE, *old_shape[1:]), dtype=old_dtype, chunks=True)
        if "image_shape" in f.attrs and len(f.attrs["image_shape"]) == 3:
            f.attrs["image_shape"] = [HUGE, *f.attrs["image_shape"][1:]]
        return f"slice axis declared {HUGE} long, no data"
    new_shape = tuple(n * int(rng.integers(100, 1000)) for n in shape)
    del f[key]
    f.create_dataset(key, shape=new_shape, dtype=dtype, chunks=bool(rng.random() < 0.5) or None)
    return f"{key} declared {new_shape}, no data"


def mutate_truncate(f, rng, ctx):
    fraction = float(rng.uniform(0.05, 0.95))

    def cut(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])

    ctx.after.append(cut)
    return f"truncated to {fraction:.0%}"


def mutate_garbage(f, rng, ctx):
    count = int(rng.integers(1, 64))
    seed = int(rng.integers(2**31))

    def damage(path: Path) -> None:
        local = np.random.default_rng(seed)
        data = bytearray(path.read_bytes())
        for _ in range(count):
            data[int(local.integers(len(data)))] = int(local.integers(256))
        path.write_bytes(bytes(data))

    ctx.after.append(damage)
    return f"{count} random byte(s) overwritten"


def mutate_extra(f, rng, ctx):
    f["unexpected"] = np.arange(5)
    f.attrs["unexpected"] = "x"
    return "extra dataset and attribute"


MUTATIONS: dict[str, Mutation] = {
    "dtype": mutate_dtype, "shape": mutate_shape, "nonfinite": mutate_nonfinite, "extreme": mutate_extreme,
    "zero": mutate_zero, "missing": mutate_missing, "attribute": mutate_attribute, "soft-link": mutate_soft_link,
    "external-link": mutate_external_link, "group": mutate_group, "empty": mutate_empty,
    "corrupt-chunk": mutate_corrupt_chunk, "huge": mutate_huge, "truncate": mutate_truncate,
    "garbage": mutate_garbage, "extra": mutate_extra,
}


def make_case(spec: str, rng: np.random.Generator, folder: Path, mutation: str | None = None) -> Case:
    """Write ``folder/in.h5``, a valid ``spec`` file with one mutation (``mutation`` or one drawn from ``rng``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "in.h5"
    n_slices = _pick(rng, [None, 1, 3]) if load_spec(spec).slice_dim else None
    write_valid_file(spec, path, n_slices=n_slices)
    name = mutation or _pick(rng, MUTATIONS)
    ctx = _Context(spec, path, [])
    with h5py.File(path, "r+") as f:
        detail = MUTATIONS[name](f, rng, ctx)
    for edit in ctx.after:
        edit(path)
    return Case(spec, name, detail, path, _pick(rng, METHODS[spec]))


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that runs too long (not an Exception, so the CLI does not catch it)."""


def _alarm(signum, frame):
    raise CaseTimeout


def run_in_process(args: list[str], timeout: float | None = None) -> tuple[int, str, str]:
    """``recon ARGS`` through :func:`recon.cli.main` in this process: (exit code, stdout, stderr); -1 on timeout
    (an alarm: only where nothing else uses SIGALRM, e.g. not under pytest-timeout)."""
    from recon.cli import main

    out, err = io.StringIO(), io.StringIO()
    if timeout:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    except CaseTimeout:
        code = -1
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
    if code == 130:  # no case interrupts itself: someone stopped the fuzzing (main turns SIGTERM into this)
        raise KeyboardInterrupt
    return code, out.getvalue(), err.getvalue()


def run_subprocess(args: list[str], timeout: float | None = None) -> tuple[int, str, str]:
    """``recon ARGS`` through the console script: (exit code, stdout, stderr); -1 on timeout."""
    recon = str(Path(sys.executable).with_name("recon"))
    try:
        done = subprocess.run([recon, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return -1, "", ""
    return done.returncode, done.stdout, done.stderr


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def _finite_output(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return bool(np.isfinite(f["reconstruction"][()]).all())
    except (OSError, KeyError):
        return False


def check_case(case: Case, via_subprocess: bool = False, timeout: float | None = None) -> dict:
    """Run ``reconstruct`` and ``info`` on ``case``; the outcome, with every broken promise under ``broken``."""
    run = run_subprocess if via_subprocess else run_in_process
    folder = case.path.parent
    before = {p.name for p in folder.iterdir()}
    digest = _digest(case.path)
    out = folder / "out.h5"
    start = time.perf_counter()
    code, _, stderr = run(["reconstruct", str(case.path), "--method", case.method, "--out", str(out)], timeout)
    seconds = time.perf_counter() - start
    lines = stderr.strip().splitlines()
    broken = []
    if code not in (0, 2):
        broken.append(f"exit {code}")
    if code == 2 and (len(lines) != 1 or not lines[0].startswith("error: ")):
        broken.append(f"{len(lines)} stderr lines")
    if "Traceback" in stderr:
        broken.append("traceback")
    if code == 0 and not _finite_output(out):
        broken.append("output missing or not finite")
    left = sorted({p.name for p in folder.iterdir()} - before - ({"out.h5"} if code == 0 else set()))
    if left:
        broken.append(f"left behind: {left}")
    if _digest(case.path) != digest:
        broken.append("input changed")
    start = time.perf_counter()
    info_code, _, info_err = run(["info", str(case.path)], timeout)
    info_seconds = time.perf_counter() - start
    if info_code not in (0, 2):
        broken.append(f"info exit {info_code}")
    if "Traceback" in info_err or "internal error" in info_err:
        broken.append("info traceback")
    return {"spec": case.spec, "mutation": case.mutation, "detail": case.detail, "method": case.method,
            "subprocess": via_subprocess, "exit": code, "seconds": round(seconds, 3), "info_exit": info_code,
            "info_seconds": round(info_seconds, 3), "traceback": "Traceback" in stderr + info_err,
            "left_behind": left, "stderr": lines[-1] if lines else "", "broken": broken}
