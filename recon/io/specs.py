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

YAML fields (unknown fields are rejected): ``name``, ``version``, ``description``, ``dims`` (symbol ->
meaning), optional ``slice_dim`` (the symbol ``--slices`` selects along); ``datasets.KEY``: ``dtype`` (a kind
or a list of kinds), ``shapes`` (alternatives, each a list of symbols or integers), ``required``, ``finite``,
``description``, optional ``broadcast``; ``attributes.KEY``: ``type``, ``required``, ``description``,
optional ``default``, ``values``, ``length``, ``shapes`` (the list's entries bind symbols), ``minimum``,
``exclusive_minimum`` (every entry), ``less_than`` (another attribute, entry by entry); optional
``groups.KEY``: ``required``, ``description`` (content free).
"""

from __future__ import annotations

import functools
import json
import math
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

    @property
    def id(self) -> str:
        """The value of the ``recon_spec`` attribute, e.g. ``ct-parallel/1``."""
        return f"{self.name}/{self.version}"

    @property
    def yaml_file(self) -> str:
        """Where the spec is described, for messages."""
        return f"data_specs/{self.name}.yaml"


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
        _check_fields(d, {"dtype", "shapes", "required", "finite", "broadcast", "description"},
              {"dtype", "shapes", "required", "finite", "description"}, w)
        dtypes = tuple(d["dtype"]) if isinstance(d["dtype"], list) else (d["dtype"],)
        if set(dtypes) - set(DTYPE_KINDS):
            raise ValueError(f"{w}: unknown dtype kind in {dtypes}")
        datasets[key] = DatasetSpec(key, dtypes, _shapes(d["shapes"], dims, w), bool(d["required"]),
                                    bool(d["finite"]), bool(d.get("broadcast", False)), d["description"])
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


@functools.cache
def _all_specs() -> dict[str, Spec]:
    specs = {}
    for entry in sorted(files("recon.data_specs").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            spec = _parse_spec(yaml.safe_load(entry.read_text()), f"data_specs/{entry.name}")
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


def value_problem(kind: str, finite: bool, block: np.ndarray, offset: int = 0) -> str | None:
    """What is wrong with the values of ``block`` (slices ``offset...`` along axis 0 of a dataset of dtype
    kind ``kind``), or None: masks must hold only 0 and 1, ``finite`` data no NaN or Inf."""
    if kind == "mask" and block.dtype != np.bool_:
        bad = (block != 0) & (block != 1)
    elif kind != "mask" and finite and np.issubdtype(block.dtype, np.inexact):
        bad = ~np.isfinite(block)
    else:
        return None
    if not bad.any():
        return None
    where = ""
    if block.ndim:
        first = offset + int(np.argmax(bad.reshape(len(block), -1).any(axis=1)))
        where = f" (first at index {first} along axis 0)"
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
    elif path.is_dir() or not h5py.is_hdf5(path):
        report.issues.append((None, "not an HDF5 file"))
        report.fix = "give an HDF5 file written by `recon simulate` or following a spec in data_specs/"
    else:
        try:
            return h5py.File(path, "r")
        except OSError as err:
            report.issues.append((None, f"cannot be opened as HDF5 ({err})"))
            report.fix = "check that the file is complete and not being written"
    return None


def validate_file(path: str | Path, *, check_values: bool = True) -> Report:
    """Check the HDF5 file at ``path`` against the spec named by its root attribute ``recon_spec``.

    All problems are collected. With ``check_values`` the values of every dataset are checked too
    (finite where the spec says so, masks 0/1), read block by block along axis 0 so that memory stays
    below BLOCK_ELEMENTS elements per dataset.
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


def _check_file(file: h5py.File, report: Report, check_values: bool) -> None:
    if "recon_spec" not in file.attrs:
        report.issues.append(("recon_spec", "root attribute missing"))
        report.fix = f"set the root attribute recon_spec to one of {', '.join(spec_names())}"
        return
    name = _to_python(file.attrs["recon_spec"])
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
        if group.key in file and not isinstance(file[group.key], h5py.Group):
            report.issues.append((group.key, "expected a group, found a dataset"))
        elif group.required and group.key not in file:
            report.issues.append((group.key, f"missing (required group: {group.description})"))
    report.dims = dims.sizes()


def _check_dataset(file: h5py.File, d: DatasetSpec, dims: _Dims, report: Report, check_values: bool) -> None:
    problems = report.issues
    if d.key not in file:
        if d.required:
            problems.append((d.key, f"missing (required dataset: {d.description})"))
        return
    ds = file[d.key]
    if not isinstance(ds, h5py.Dataset):
        problems.append((d.key, "expected a dataset, found a group"))
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
    if ds.size == 0:
        problems.append((d.key, f"is empty (shape {_fmt_shape(ds.shape)})"))
    elif check_values and kind is not None:
        for i, block in iter_blocks(ds):
            problem = value_problem(kind, d.finite, block, i)
            if problem:
                problems.append((d.key, problem))
                break


def _check_attribute(file: h5py.File, a: AttributeSpec, dims: _Dims, report: Report) -> None:
    problems = report.issues
    if a.key not in file.attrs:
        if a.required:
            problems.append((a.key, f"root attribute missing (required: {a.description})"))
        return
    try:
        value = parse_attribute(file.attrs[a.key], a)
    except (ValueError, OSError, TypeError) as err:
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
    if a.less_than is not None and a.less_than in file.attrs:
        try:
            other = parse_attribute(file.attrs[a.less_than], report.spec.attributes[a.less_than])
        except ValueError:
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
        spec = report.spec
        lines = [f"{probe.path}: {spec.id}: {spec.description}" if spec else f"{probe.path}: no known spec"]
        if report.dims:
            lines.append("dims: " + ", ".join(f"{sym}={n}" for sym, n in report.dims.items()))
        found: list[tuple[str, h5py.Dataset]] = []
        file.visititems(lambda name, obj: found.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
        rows = []
        for name, ds in found:
            storage = f"chunks {_fmt_shape(ds.chunks)}" if ds.chunks else "contiguous"
            storage += f" {ds.compression}" if ds.compression else ""
            about = spec.datasets[name].description if spec and name in spec.datasets else ""
            rows.append((name, f"{_fmt_shape(ds.shape)} {ds.dtype}", storage, about))
        lines += ["datasets:", *_columns(rows)] if rows else ["datasets: none"]
        rows = [(key, _describe_value(value), "", "") for key, value in file.attrs.items()]
        if spec:
            rows += [(key, repr(a.default), "(default)", "") for key, a in spec.attributes.items()
                     if key not in file.attrs and a.default is not None]
        lines += ["attributes:", *_columns(rows)] if rows else ["attributes: none"]
    return "\n".join(lines)


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
