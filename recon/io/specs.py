"""HDF5 specs loaded from ``data_specs/*.yaml`` and validation of files against them.

A spec names its datasets (dtype kind, allowed shapes as lists of symbolic dimensions, required or not,
finite or not), its groups and its root attributes (type, allowed values, length or symbolic shape,
bounds, default). Symbols bind once per file: every dataset and attribute that uses ``n_views`` must
agree on its value, and a symbol that a chosen shape leaves out (``nz`` of a 2D sinogram) is bound as
*absent*, so another item may not have it either, unless the item is marked ``broadcast`` (a 2D mask
shared by all slices). The checking code knows nothing about a particular spec.

Dtype kinds of datasets: ``float32`` and ``float64`` (real floating point, stored as that type by recon),
``complex64`` (complex floating point), ``mask`` (only 0 and 1, any bool, integer or real dtype).
Attribute types: ``str``, ``int``, ``float``, ``bool``, ``int-list``, ``float-list``, ``json`` (a string).

Damaged files are problems like any other, never crashes: a soft or external link that does not resolve (or
points at itself), a null dataspace (``h5py.Empty``), a chunk that fails to decompress, an attribute that
cannot be decoded. Value checks read only what the file stores: the unwritten part of a dataset declared
huge is checked through its fill value, so a small file declaring terabytes is checked in milliseconds.

YAML fields (unknown fields are rejected): ``name``, ``version``, ``description``, ``dims`` (symbol ->
meaning), optional ``slice_dim`` (the symbol ``--slices`` selects along); ``datasets.KEY``: ``dtype`` (a kind
or a list of kinds), ``shapes`` (alternatives, each a list of symbols or integers), ``required``, ``finite``,
``description``, optional ``broadcast``, ``exclusive_minimum`` (every value); ``attributes.KEY``: ``type``,
``required``, ``description``, optional ``default``, ``values``, ``length``, ``shapes`` (the list's entries
bind symbols), ``minimum``, ``exclusive_minimum`` (every entry), ``less_than`` (another attribute, entry by
entry); optional ``groups.KEY``: ``required``, ``description`` (content free).
"""

from __future__ import annotations

import dataclasses
import faulthandler
import functools
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml

from recon.errors import UserError

Symbol = str | int
SymShape = tuple[Symbol, ...]

DTYPE_KINDS = {
    "float32": "real floating-point data (stored as float32)",
    "float64": "real floating-point data (stored as float64)",
    "complex64": "complex data (stored as complex64)",
    "mask": "a 0/1 mask (bool, integer or real)",
}
ATTR_TYPES = {
    "str": "a string",
    "int": "an integer",
    "float": "a finite number",
    "bool": "a boolean",
    "int-list": "a list of integers",
    "float-list": "a list of finite numbers",
    "json": "a JSON string",
}
# Value checks read at most this many elements at a time (whole slices along axis 0).
BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: dtype kinds it accepts, symbolic shapes it may have, and value rules."""

    key: str
    dtypes: tuple[str, ...]
    shapes: tuple[SymShape, ...]
    required: bool
    finite: bool
    broadcast: bool
    description: str
    exclusive_minimum: float | None = None
    """Every value must be above this (real data only), e.g. 0 for frequencies."""


@dataclass(frozen=True)
class AttributeSpec:
    """One root attribute: its type and the rules its value follows."""

    key: str
    type: str
    required: bool
    description: str
    default: Any = None
    values: tuple | None = None
    length: int | None = None
    shapes: tuple[SymShape, ...] | None = None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    less_than: str | None = None


@dataclass(frozen=True)
class GroupSpec:
    """One group whose content the spec leaves free (e.g. ``history``)."""

    key: str
    required: bool
    description: str


@dataclass(frozen=True)
class Spec:
    """An HDF5 spec as loaded from its YAML file. ``slice_dim`` is the symbol of axis 0 that ``--slices``
    selects along (None when the spec has no slice axis)."""

    name: str
    version: int
    description: str
    dims: dict[str, str]
    slice_dim: str | None
    datasets: dict[str, DatasetSpec]
    attributes: dict[str, AttributeSpec]
    groups: dict[str, GroupSpec] = field(default_factory=dict)
    source: str | None = None
    """Where its YAML came from, when not ``data_specs/`` (a third-party spec's ``"package:file.yaml"``)."""

    @property
    def id(self) -> str:
        """The value of the ``recon_spec`` attribute, e.g. ``ct-parallel/1``."""
        return f"{self.name}/{self.version}"

    @property
    def yaml_file(self) -> str:
        """Where the spec is described, for messages."""
        return self.source or f"data_specs/{self.name}.yaml"


# --------------------------------------------------------------------------------------------- loading


def _check_fields(entry: dict, allowed: set[str], required: set[str], where: str) -> None:
    unknown, missing = set(entry) - allowed, required - set(entry)
    if unknown or missing:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")


def _shapes(raw: list, dims: dict[str, str], where: str) -> tuple[SymShape, ...]:
    shapes = tuple(tuple(s) for s in raw)
    for shape in shapes:
        for sym in shape:
            if not (isinstance(sym, int) or sym in dims):
                raise ValueError(f"{where}: symbol {sym!r} is not declared under dims")
    return shapes


def _parse_spec(doc: dict, where: str) -> Spec:
    _check_fields(doc, {"name", "version", "description", "dims", "slice_dim", "datasets", "attributes", "groups"},
          {"name", "version", "description", "dims", "datasets", "attributes"}, where)
    dims = dict(doc["dims"])
    datasets = {}
    for key, d in doc["datasets"].items():
        w = f"{where}: datasets.{key}"
        _check_fields(d, {"dtype", "shapes", "required", "finite", "broadcast", "description", "exclusive_minimum"},
              {"dtype", "shapes", "required", "finite", "description"}, w)
        dtypes = tuple(d["dtype"]) if isinstance(d["dtype"], list) else (d["dtype"],)
        if set(dtypes) - set(DTYPE_KINDS):
            raise ValueError(f"{w}: unknown dtype kind in {dtypes}")
        datasets[key] = DatasetSpec(key, dtypes, _shapes(d["shapes"], dims, w), bool(d["required"]),
                                    bool(d["finite"]), bool(d.get("broadcast", False)), d["description"],
                                    d.get("exclusive_minimum"))
    attributes = {}
    fields = {"type", "required", "description", "default", "values", "length", "shapes", "minimum",
              "exclusive_minimum", "less_than"}
    for key, a in doc["attributes"].items():
        w = f"{where}: attributes.{key}"
        _check_fields(a, fields, {"type", "required", "description"}, w)
        if a["type"] not in ATTR_TYPES:
            raise ValueError(f"{w}: unknown type {a['type']!r}")
        if a.get("less_than") is not None and a["less_than"] not in doc["attributes"]:
            raise ValueError(f"{w}: less_than names an unknown attribute")
        extra = {k: a[k] for k in fields - {"type", "required", "description"} if k in a}
        if "values" in extra:
            extra["values"] = tuple(extra["values"])
        if "shapes" in extra:
            extra["shapes"] = _shapes(extra["shapes"], dims, w)
        attributes[key] = AttributeSpec(key, a["type"], bool(a["required"]), a["description"], **extra)
    groups = {key: GroupSpec(key, bool(g["required"]), g["description"])
              for key, g in (doc.get("groups") or {}).items()}
    slice_dim = doc.get("slice_dim")
    if slice_dim is not None and slice_dim not in dims:
        raise ValueError(f"{where}: slice_dim {slice_dim!r} is not declared under dims")
    return Spec(doc["name"], int(doc["version"]), " ".join(doc["description"].split()), dims, slice_dim,
                datasets, attributes, groups)


def _load_yaml(text: str):
    """YAML ``text`` parsed by libyaml where PyYAML was built with it (the spec files parse in 0.03 s instead of
    0.3 s, most of a validation error's wall time), else by the pure-Python parser."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def _all_specs() -> dict[str, Spec]:
    """recon's own specs (``data_specs/*.yaml``, the reconstruction spec included), then those that third-party
    packages register (:mod:`recon.specs`)."""
    from recon.specs import all_kinds

    specs = {}
    for entry in sorted(files("recon.data_specs").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            spec = _parse_spec(_load_yaml(entry.read_text()), f"data_specs/{entry.name}")
            specs[spec.id] = spec
    for kind in all_kinds():
        if kind.id not in specs:
            spec = dataclasses.replace(_parse_spec(_load_yaml(kind.yaml_text()), kind.yaml), source=kind.yaml)
            if spec.id != kind.id:
                raise ValueError(f"{kind.yaml} declares {spec.id}, its SpecKind {kind.id}")
            specs[spec.id] = spec
    return specs


def spec_names() -> list[str]:
    """All known spec ids, e.g. ``["ct-dynamic/1", "ct-parallel/1", ...]``."""
    return sorted(_all_specs())


def load_spec(name: str) -> Spec:
    """The spec ``name`` given as ``ct-parallel/1`` or ``ct-parallel`` (then its latest version)."""
    specs = _all_specs()
    if name in specs:
        return specs[name]
    versions = [s for s in specs.values() if s.name == name]
    if versions:
        return max(versions, key=lambda s: s.version)
    raise UserError(f"unknown spec {name!r}", key="recon_spec", fix=f"use one of {', '.join(spec_names())}")


# --------------------------------------------------------------------------------------------- values


def _fmt_shape(shape: SymShape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _fmt_alternatives(shapes: tuple[SymShape, ...]) -> str:
    return " or ".join(_fmt_shape(s) for s in shapes)


def _to_python(raw: Any) -> Any:
    """h5py attribute value -> plain Python (str, int, float, bool, list)."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    if isinstance(raw, np.ndarray):
        return [_to_python(v) for v in raw.tolist()] if raw.ndim else _to_python(raw[()])
    if isinstance(raw, np.generic):
        return raw.item()
    return raw


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def parse_attribute(raw: Any, spec: AttributeSpec) -> Any:
    """Convert a raw h5py attribute value to the Python value of ``spec.type`` (JSON is parsed).

    Raises ValueError with a short reason when the value does not have the type.
    """
    v = _to_python(raw)
    expected = f"expected {ATTR_TYPES[spec.type]}, found {v!r}"
    if spec.type in ("str", "json"):
        if not isinstance(v, str):
            raise ValueError(expected)
        if spec.type == "json":
            try:
                return json.loads(v)
            except json.JSONDecodeError as err:
                raise ValueError(f"expected a JSON string, found invalid JSON ({err})") from None
        return v
    if spec.type == "bool":
        if isinstance(v, bool) or v in (0, 1):
            return bool(v)
        raise ValueError(expected)
    if spec.type == "int":
        if not (_is_int(v) or (_is_number(v) and float(v).is_integer())):
            raise ValueError(expected)
        return int(v)
    if spec.type == "float":
        if not _is_number(v):
            raise ValueError(expected)
        return float(v)
    values = v if isinstance(v, list) else [v]
    if not all(_is_number(x) for x in values) or (
            spec.type == "int-list" and not all(float(x).is_integer() for x in values)):
        raise ValueError(expected)
    return [int(x) for x in values] if spec.type == "int-list" else [float(x) for x in values]


def read_attrs(file: h5py.File, spec: Spec) -> dict[str, Any]:
    """Root attributes as Python values (JSON parsed), with the spec's defaults filled in.

    Call on a file that validated; attributes outside the spec are converted as they are.
    """
    attrs = {key: _to_python(value) for key, value in file.attrs.items()}
    for key, a in spec.attributes.items():
        if key in attrs:
            attrs[key] = parse_attribute(file.attrs[key], a)
        elif a.default is not None:
            attrs[key] = a.default
    return attrs


def dtype_matches(kind: str, dtype: np.dtype) -> bool:
    """Whether data of ``dtype`` is acceptable for a dataset of dtype kind ``kind``."""
    if kind == "complex64":
        return np.issubdtype(dtype, np.complexfloating)
    if kind == "mask":
        return dtype == np.bool_ or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    return np.issubdtype(dtype, np.floating)


def value_problem(kind: str, finite: bool, block: np.ndarray, offset: int | None = 0,
                  exclusive_minimum: float | None = None) -> str | None:
    """What is wrong with the values of ``block`` (slices ``offset...`` along axis 0 of a dataset of dtype
    kind ``kind``; ``offset`` None: the fill value standing for the dataset's unwritten part), or None: masks
    must hold only 0 and 1, ``finite`` data no NaN or Inf, and real data with ``exclusive_minimum`` only
    values above it."""
    rule = None
    if kind == "mask" and block.dtype != np.bool_:
        bad = (block != 0) & (block != 1)
    elif kind != "mask" and finite and np.issubdtype(block.dtype, np.inexact) and not np.isfinite(block).all():
        bad = ~np.isfinite(block)
    elif exclusive_minimum is not None and not np.iscomplexobj(block):
        bad, rule = ~(block > exclusive_minimum), f"every value must be > {exclusive_minimum:g}"
    else:
        return None
    if not bad.any():
        return None
    if offset is None:
        where = " (the fill value of its unwritten part)"
    elif block.ndim:
        first = offset + int(np.argmax(bad.reshape(len(block), -1).any(axis=1)))
        where = f" (first at index {first} along axis 0)"
    else:
        where = ""
    if rule:
        return f"{rule}, found {block[bad].flat[0].item()!r}{where}"
    if kind == "mask":
        return f"must hold only 0 and 1, found {block[bad].flat[0].item()!r}{where}"
    return f"contains NaN/Inf values{where}; measurements must be finite"


def iter_blocks(ds: h5py.Dataset, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_index, block)``: whole slices along axis 0 of ``ds[start:stop]``, at most
    BLOCK_ELEMENTS elements per block (at least one slice). 0-d datasets give one block."""
    if ds.ndim == 0:
        yield 0, ds[()]
        return
    stop = ds.shape[0] if stop is None else stop
    per_slice = max(1, math.prod(ds.shape[1:]))
    step = max(1, BLOCK_ELEMENTS // per_slice)
    for i in range(start, stop, step):
        yield i, ds[i:min(i + step, stop)]


def _written_chunks(ds: h5py.Dataset) -> Iterator[tuple[int, ...]]:
    """Offsets of the chunks of ``ds`` that the file stores."""
    offsets: list[tuple[int, ...]] = []
    if hasattr(ds.id, "chunk_iter"):  # HDF5 >= 1.14: one pass over the chunk index
        ds.id.chunk_iter(lambda info: offsets.append(info.chunk_offset))
    else:
        offsets = [ds.id.get_chunk_info(i).chunk_offset for i in range(ds.id.get_num_chunks())]
    return iter(offsets)


def stored_blocks(ds: h5py.Dataset) -> Iterator[tuple[int | None, np.ndarray]]:
    """The values ``ds`` holds, as ``(first_index, block)`` along axis 0, reading only what the file stores.

    A fully written dataset is read by :func:`iter_blocks`; of one partly or not at all written, only the
    stored chunks are read, one at a time, and its unwritten part is stood for by one element, the fill
    value, with ``first_index`` None. Time and memory follow what is stored, not what is declared.
    """
    if ds.ndim == 0 or ds.size == 0:
        yield from iter_blocks(ds)
        return
    stored = ds.id.get_storage_size()
    n_chunks = math.prod(math.ceil(n / c) for n, c in zip(ds.shape, ds.chunks, strict=True)) if ds.chunks else 1
    written = (ds.id.get_num_chunks() if ds.chunks else 1) if stored else 0
    if written >= n_chunks:
        yield from iter_blocks(ds)
        return
    yield None, np.full((1,) * ds.ndim, ds.fillvalue, dtype=ds.dtype)
    for offset in _written_chunks(ds) if written else ():
        region = tuple(slice(o, min(o + c, n)) for o, c, n in zip(offset, ds.chunks, ds.shape, strict=True))
        yield offset[0], ds[region]


# --------------------------------------------------------------------------------------------- validation


class _Dims:
    """Bindings of symbols to sizes (None = absent), each remembering the item that bound it."""

    def __init__(self) -> None:
        self.bound: dict[str, tuple[int | None, str]] = {}

    def bind(self, key: str, alternatives: tuple[SymShape, ...], found: tuple[int, ...], *,
             broadcast: bool, shown: str) -> tuple[SymShape | None, str | None]:
        """Choose the alternative matching ``found`` and bind its symbols; return it, or a problem.

        ``shown`` is how problems quote ``found``, e.g. ``shape (3, 180, 256)``.
        """
        candidates = [alt for alt in alternatives if len(alt) == len(found)]
        if not candidates:
            return None, f"expected {_fmt_alternatives(alternatives)}, found {shown}"
        first_problem = None
        for alt in candidates:
            new, problem = self._match(key, alt, alternatives, found, broadcast, shown)
            if problem is None:
                self.bound.update(new)
                return alt, None
            first_problem = first_problem or problem
        return None, first_problem

    def _match(self, key, alt, alternatives, found, broadcast, shown):
        new: dict[str, tuple[int | None, str]] = {}
        for i, (sym, n) in enumerate(zip(alt, found, strict=True)):
            if isinstance(sym, int):
                if n != sym:
                    return None, f"axis {i} of {shown} must be {sym}"
                continue
            known = new.get(sym) or self.bound.get(sym)
            if known is None:
                new[sym] = (n, key)
            elif known[0] is None:
                return None, f"{shown} gives {sym}={n} but {known[1]} has no {sym} axis"
            elif known[0] != n:
                return None, f"{shown} gives {sym}={n} but {known[1]} has {sym}={known[0]}"
        if not broadcast:
            left_out = {s for other in alternatives for s in other if isinstance(s, str)} - set(alt)
            for sym in sorted(left_out):
                known = self.bound.get(sym)
                if known is None:
                    new[sym] = (None, key)
                elif known[0] is not None:
                    return None, f"{shown} has no {sym} axis but {known[1]} has {sym}={known[0]}"
        return new, None

    def sizes(self) -> dict[str, int]:
        return {sym: n for sym, (n, _) in self.bound.items() if n is not None}


@dataclass
class Report:
    """Outcome of :func:`validate_file`. ``dims`` maps each bound symbol to its size (absent symbols left
    out); ``axes`` gives the symbolic shape each present dataset and shaped attribute matched."""

    path: Path
    spec: Spec | None = None
    dims: dict[str, int] = field(default_factory=dict)
    axes: dict[str, SymShape] = field(default_factory=dict)
    issues: list[tuple[str | None, str]] = field(default_factory=list)
    fix: str | None = None

    @property
    def problems(self) -> list[str]:
        """Every problem as ``KEY: what is wrong`` (or just the text for whole-file problems)."""
        return [f"{key}: {what}" if key else what for key, what in self.issues]

    @property
    def ok(self) -> bool:
        return not self.issues

    def raise_if_bad(self) -> None:
        """Raise one UserError listing every problem (the first first), naming the file and the key."""
        if self.ok:
            return
        (key, first), rest = self.issues[0], self.problems[1:]
        raise UserError("; ".join([first, *rest]), path=self.path, key=key, fix=self.fix)


def _open(report: Report) -> h5py.File | None:
    """Open ``report.path`` read-only, or record in ``report`` why it cannot be opened (then None)."""
    path = report.path
    if not path.exists():
        report.issues.append((None, "file not found"))
        report.fix = "check the path"
    elif not path.is_file() or not h5py.is_hdf5(path):  # is_file first: opening a FIFO would wait for a writer
        kind = "" if path.is_dir() or path.is_file() else " (a FIFO, socket or device, not a regular file)"
        report.issues.append((None, f"not an HDF5 file{kind}"))
        report.fix = "give an HDF5 file written by `recon simulate` or following a spec in data_specs/"
    elif problem := _probe_structure(path):
        report.issues.append((None, problem))
        report.fix = DAMAGED_FIX
    else:
        try:
            return h5py.File(path, "r")
        except OSError as err:
            report.issues.append((None, f"cannot be opened as HDF5 ({err})"))
            report.fix = "check that the file is complete and not being written"
    return None


PROBE_TIMEOUT_S = 30.0
"""How long a forked child may take to read a file's structure (a healthy file takes milliseconds)."""


def _probe_structure(path: Path) -> str | None:
    """Why reading the structure of ``path`` hangs or crashes the HDF5 library, or None.

    Some damaged files make HDF5 loop forever (a corrupt global heap behind a string attribute) or crash, which
    no exception reports. The structure (what :func:`_check_file` and :func:`describe_file` read, no values)
    is therefore read first in a forked child: if it does not finish within PROBE_TIMEOUT_S or dies by a
    signal, the file is refused; otherwise this process reads the file itself. Skipped where fork is missing
    or unsafe: other Python threads (a GUI, a Dask worker) may hold h5py's lock, which the child would wait
    on forever. The outcome is remembered per file version (inode, size, modification time).
    """
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    stat = path.stat()
    version = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if version not in _PROBED:
        _all_specs()  # parsed once here, so that the child inherits them and this process does not parse again
        _PROBED[version] = _probe_in_child(path)
    return _PROBED[version]


_PROBED: dict[tuple[int, ...], str | None] = {}


def _probe_in_child(path: Path) -> str | None:
    pid = os.fork()
    if pid == 0:  # the child: read silently, then leave without running any exit handler of the parent's
        try:
            faulthandler.disable()
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)
            os.dup2(quiet, 2)
            with h5py.File(path, "r") as file:
                report = Report(path)
                _check_file(file, report, check_values=False)
                _describe(file, path, report.spec, report.dims)
        finally:
            os._exit(0)
    deadline, status = time.monotonic() + PROBE_TIMEOUT_S, (0, 0)
    try:
        while (status := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        if status[0] == 0:  # still reading (or this process is being interrupted): stop it
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    if status[0] == 0:
        return f"HDF5 does not finish reading its structure within {PROBE_TIMEOUT_S:g} s (the library loops on it)"
    if os.WIFSIGNALED(status[1]):
        return f"reading its structure crashes the HDF5 library ({signal.Signals(os.WTERMSIG(status[1])).name})"
    return None


def validate_file(path: str | Path, *, check_values: bool = True) -> Report:
    """Check the HDF5 file at ``path`` against the spec named by its root attribute ``recon_spec``.

    All problems are collected. With ``check_values`` the values of every dataset are checked too
    (finite where the spec says so, masks 0/1, minimums), read block by block along axis 0 so that memory
    stays below BLOCK_ELEMENTS elements per dataset, and only where the file stores data (see
    :func:`stored_blocks`).
    """
    report = Report(Path(path))
    file = _open(report)
    if file is not None:
        with file:
            _check_file(file, report, check_values)
    return report


def open_validated(path: str | Path) -> tuple[h5py.File, Report]:
    """Open the HDF5 file at ``path`` read-only once its structure (not its values) follows its spec.

    Returns the open file, which the caller closes, and the report (spec, dims, axes); raises one
    UserError listing every problem otherwise (see :meth:`Report.raise_if_bad`).
    """
    report = Report(Path(path))
    file = _open(report)
    try:
        if file is not None:
            _check_file(file, report, check_values=False)
        report.raise_if_bad()
    except BaseException:
        if file is not None:
            file.close()
        raise
    return file, report


HDF5_ERRORS = (OSError, KeyError, RuntimeError, ValueError)
"""What h5py raises for a damaged file: I/O and filter failures, objects that cannot be opened, links that
cannot be followed, messages that cannot be decoded."""
DAMAGED_FIX = "the file is damaged or incomplete: check it with h5dump, restore or re-export it"
CHUNK_BYTES_LIMIT = 1 << 30
"""Chunks larger than this are refused: HDF5 decompresses a whole chunk to read any part of it."""


def _read_attr(file: h5py.File, key: str) -> Any:
    """The raw root attribute ``key`` (KeyError when absent); an attribute that cannot be decoded raises
    ValueError with HDF5's reason."""
    try:
        present = key in file.attrs
        if present:
            return file.attrs[key]
    except HDF5_ERRORS as err:
        raise ValueError(f"cannot be read ({err})") from None
    raise KeyError(key)


def _check_file(file: h5py.File, report: Report, check_values: bool) -> None:
    try:
        name = _to_python(_read_attr(file, "recon_spec"))
    except KeyError:
        report.issues.append(("recon_spec", "root attribute missing"))
        report.fix = f"set the root attribute recon_spec to one of {', '.join(spec_names())}"
        return
    except ValueError as err:
        report.issues.append(("recon_spec", str(err)))
        report.fix = DAMAGED_FIX
        return
    try:
        spec = load_spec(str(name))
    except UserError as err:
        report.issues.append(("recon_spec", err.what))
        report.fix = err.fix
        return
    report.spec = spec
    report.fix = f"make the file follow {spec.id} as described in {spec.yaml_file}"
    dims = _Dims()
    items = [*spec.datasets.values(), *spec.attributes.values()]
    for item in sorted(items, key=lambda item: not item.required):  # stable: required items bind first
        if isinstance(item, DatasetSpec):
            _check_dataset(file, item, dims, report, check_values)
        else:
            _check_attribute(file, item, dims, report)
    for group in spec.groups.values():
        found, problem = _resolve(file, group.key)
        if problem:
            report.issues.append((group.key, problem))
        elif found is not None and not isinstance(found, h5py.Group):
            report.issues.append((group.key, "expected a group, found a dataset"))
        elif group.required and found is None:
            report.issues.append((group.key, f"missing (required group: {group.description})"))
    _check_other_attributes(file, spec, report)
    report.dims = dims.sizes()


def _check_other_attributes(file: h5py.File, spec: Spec, report: Report) -> None:
    """Attributes outside the spec may hold anything, but must be readable (read_attrs reads them all)."""
    try:
        keys = [key for key in file.attrs if key not in spec.attributes and key != "recon_spec"]
    except HDF5_ERRORS as err:
        report.issues.append((None, f"its attributes cannot be listed ({err})"))
        report.fix = DAMAGED_FIX
        return
    for key in keys:
        try:
            _read_attr(file, key)
        except ValueError as err:
            report.issues.append((key, str(err)))
            report.fix = DAMAGED_FIX


def _resolve(file: h5py.File, key: str) -> tuple[h5py.Dataset | h5py.Group | None, str | None]:
    """The object at ``key`` (None when there is none) or why it cannot be opened: a soft or external link that
    does not resolve, a link to itself, a damaged object header."""
    try:
        link = file.get(key, getlink=True)
    except HDF5_ERRORS as err:
        return None, f"cannot be read ({err})"
    if link is None:
        return None, None
    if isinstance(link, h5py.SoftLink):
        what = f"is a soft link to {link.path}"
    elif isinstance(link, h5py.ExternalLink):
        what = f"is an external link to {link.path} in {link.filename}"
    else:
        what = "cannot be opened"
    try:
        found = file.get(key)
    except HDF5_ERRORS as err:
        return None, f"{what}, which cannot be followed ({err})"
    if found is None:
        return None, f"{what}, which does not exist"
    return found, None


def _check_dataset(file: h5py.File, d: DatasetSpec, dims: _Dims, report: Report, check_values: bool) -> None:
    problems = report.issues
    ds, problem = _resolve(file, d.key)
    if problem:
        problems.append((d.key, problem))
        report.fix = DAMAGED_FIX if "cannot be read" in problem else report.fix
        return
    if ds is None:
        if d.required:
            problems.append((d.key, f"missing (required dataset: {d.description})"))
        return
    if not isinstance(ds, h5py.Dataset):
        problems.append((d.key, "expected a dataset, found a group"))
        return
    if ds.shape is None:
        problems.append((d.key, "has a null dataspace (h5py.Empty): it holds no values"))
        return
    kind = next((k for k in d.dtypes if dtype_matches(k, ds.dtype)), None)
    if kind is None:
        expected = " or ".join(DTYPE_KINDS[k] for k in d.dtypes)
        problems.append((d.key, f"expected {expected}, found dtype {ds.dtype}"))
    axes, problem = dims.bind(d.key, d.shapes, ds.shape, broadcast=d.broadcast,
                             shown=f"shape {_fmt_shape(ds.shape)}")
    if problem:
        problems.append((d.key, problem))
    else:
        report.axes[d.key] = axes
    chunk_bytes = math.prod(ds.chunks) * ds.dtype.itemsize if ds.chunks else 0
    if ds.size == 0:
        problems.append((d.key, f"is empty (shape {_fmt_shape(ds.shape)})"))
    elif chunk_bytes > CHUNK_BYTES_LIMIT:
        problems.append((d.key, f"has chunks {_fmt_shape(ds.chunks)} of {chunk_bytes / 2**30:.1f} GiB, too large to "
                                "read in bounded memory; rechunk it (h5repack -l)"))
    elif check_values and kind is not None and not problem:
        problem = _values_problem(ds, kind, d)
        if problem:
            problems.append((d.key, problem))


def _values_problem(ds: h5py.Dataset, kind: str, d: DatasetSpec) -> str | None:
    """The first problem with the stored values of ``ds`` (see :func:`value_problem`), or why they cannot be read."""
    try:
        for i, block in stored_blocks(ds):
            problem = value_problem(kind, d.finite, block, i, d.exclusive_minimum)
            if problem:
                return problem
    except HDF5_ERRORS as err:
        return f"cannot be read ({err}); {DAMAGED_FIX}"
    return None


def _check_attribute(file: h5py.File, a: AttributeSpec, dims: _Dims, report: Report) -> None:
    problems = report.issues
    try:
        value = parse_attribute(_read_attr(file, a.key), a)
    except KeyError:
        if a.required:
            problems.append((a.key, f"root attribute missing (required: {a.description})"))
        return
    except (ValueError, TypeError) as err:
        problems.append((a.key, str(err)))
        return
    if a.values is not None and value not in a.values:
        problems.append((a.key, f"must be one of {', '.join(map(repr, a.values))}, found {value!r}"))
    numbers = value if isinstance(value, list) else [value]
    if a.length is not None and len(numbers) != a.length:
        problems.append((a.key, f"expected {a.length} entries, found {len(numbers)}"))
    if a.minimum is not None and any(x < a.minimum for x in numbers):
        problems.append((a.key, f"every value must be >= {a.minimum}, found {value!r}"))
    if a.exclusive_minimum is not None and any(x <= a.exclusive_minimum for x in numbers):
        problems.append((a.key, f"every value must be > {a.exclusive_minimum}, found {value!r}"))
    if a.shapes is not None:
        axes, problem = dims.bind(a.key, a.shapes, tuple(numbers), broadcast=False, shown=f"value {value}")
        if problem:
            problems.append((a.key, problem))
        else:
            report.axes[a.key] = axes
    if a.less_than is not None:
        try:
            other = parse_attribute(_read_attr(file, a.less_than), report.spec.attributes[a.less_than])
        except (KeyError, ValueError, TypeError):
            return  # reported with that attribute
        others = other if isinstance(other, list) else [other]
        if len(others) == len(numbers) and not all(x < y for x, y in zip(numbers, others, strict=True)):
            problems.append((a.key, f"must be below {a.less_than} entry by entry, found {value!r} "
                                    f"and {a.less_than}={other!r}"))


def bind_shapes(spec: Spec, shapes: dict[str, tuple[int, ...]],
                attrs: dict[str, Any]) -> tuple[dict[str, int], dict[str, SymShape]]:
    """Dims and axes of a measurement given as dataset shapes and attribute values instead of a file (what a
    foreign layout maps onto ``spec``), bound by the same rules as a file: ``(dims, axes)``. Raises ValueError
    listing every mismatch: a mapping that breaks its spec is a bug in the layout, not the user's fault."""
    dims, problems, axes = _Dims(), [], {}
    for key, d in spec.datasets.items():
        if key in shapes:
            found, problem = dims.bind(key, d.shapes, tuple(shapes[key]), broadcast=d.broadcast,
                                       shown=f"shape {_fmt_shape(tuple(shapes[key]))}")
            problems += [f"{key}: {problem}"] if problem else []
            axes[key] = found
        elif d.required:
            problems.append(f"{key}: missing")
    for key, a in spec.attributes.items():
        if a.shapes is not None and key in attrs:
            value = tuple(attrs[key])
            found, problem = dims.bind(key, a.shapes, value, broadcast=False, shown=f"value {list(value)}")
            problems += [f"{key}: {problem}"] if problem else []
        elif a.required and key not in attrs:
            problems.append(f"{key}: missing")
    if problems:
        raise ValueError(f"the mapping onto {spec.id} is inconsistent: {'; '.join(problems)}")
    return dims.sizes(), axes


# --------------------------------------------------------------------------------------------- description


def _describe_value(value: Any, width: int = 70) -> str:
    text = repr(_to_python(value))
    return text if len(text) <= width else text[:width - 3] + "..."


def describe_file(path: str | Path, report: Report | None = None) -> str:
    """A readable summary of an HDF5 file for ``recon info``: its spec, bound dimensions, every dataset
    (shape, dtype, chunks, compression, the spec's description) and root attribute (defaults marked).
    Problems are not listed: they are in ``report``. ``report`` defaults to a structural validation."""
    probe = Report(Path(path))
    file = _open(probe)
    if file is None:
        return str(probe.path)
    with file:
        if report is None:
            _check_file(file, probe, check_values=False)
            report = probe
        return _describe(file, probe.path, report.spec, report.dims)


def _describe(file: h5py.File, path: Path, spec: Spec | None, dims: dict[str, int]) -> str:
    lines = [f"{path}: {spec.id}: {spec.description}" if spec else f"{path}: no known spec"]
    if dims:
        lines.append("dims: " + ", ".join(f"{sym}={n}" for sym, n in dims.items()))
    rows = _dataset_rows(file, spec)
    lines += ["datasets:", *_columns(rows)] if rows else ["datasets: none"]
    rows = _attribute_rows(file, spec)
    lines += ["attributes:", *_columns(rows)] if rows else ["attributes: none"]
    return "\n".join(lines)


def _dataset_rows(file: h5py.File, spec: Spec | None) -> list[tuple[str, str, str, str]]:
    """One row per dataset or link (name, shape and dtype, storage, the spec's description), without following
    links and without reading values; what cannot be read is shown as such."""
    links: list[tuple[str, Any]] = []
    try:
        file.visititems_links(lambda name, link: links.append((name, link)))
    except (*HDF5_ERRORS, SystemError) as err:  # h5py's link iteration surfaces some HDF5 errors as SystemError
        links.append(("(the rest)", f"cannot be read ({err})"))
    rows = []
    for name, link in links:
        about = spec.datasets[name].description if spec and name in spec.datasets else ""
        if isinstance(link, str):
            rows.append((name, link, "", about))
        elif isinstance(link, h5py.SoftLink | h5py.ExternalLink):
            target = link.path if isinstance(link, h5py.SoftLink) else f"{link.filename}:{link.path}"
            rows.append((name, f"-> {target}", f"{type(link).__name__}", about))
        else:
            try:
                ds = file[name]
            except HDF5_ERRORS as err:
                rows.append((name, f"cannot be read ({err})", "", about))
                continue
            if not isinstance(ds, h5py.Dataset):
                continue
            if ds.shape is None:
                rows.append((name, f"null dataspace {ds.dtype}", "", about))
                continue
            storage = f"chunks {_fmt_shape(ds.chunks)}" if ds.chunks else "contiguous"
            storage += f" {ds.compression}" if ds.compression else ""
            rows.append((name, f"{_fmt_shape(ds.shape)} {ds.dtype}", storage, about))
    return rows


def _attribute_rows(file: h5py.File, spec: Spec | None) -> list[tuple[str, str, str, str]]:
    """One row per root attribute (name, value), then the spec's defaults for those absent."""
    try:
        keys = list(file.attrs)
    except HDF5_ERRORS as err:
        return [("(attributes)", f"cannot be read ({err})", "", "")]
    rows = []
    for key in keys:
        try:
            rows.append((key, _describe_value(_read_attr(file, key)), "", ""))
        except (KeyError, ValueError) as err:
            rows.append((key, str(err), "", ""))
    if spec:
        rows += [(key, repr(a.default), "(default)", "") for key, a in spec.attributes.items()
                 if key not in keys and a.default is not None]
    return rows


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
