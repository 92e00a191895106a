"""Typed, documented parameters of methods, checked when the user passes ``--set key=value``.

A parameter's default is a value, ``None`` (the method decides, e.g. "the shipped weights"), or a table
``{spec: value}``: a default per spec, which the registry fills in once it knows the file's spec
(:meth:`recon.methods.Method.resolve`). Torch-free: ``recon methods`` and every validation error answer
without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from recon.errors import UserError

NUMBER_LIMIT = {float: float(np.finfo(np.float32).max), int: 2**63 - 1}
"""Largest magnitude of a numeric parameter: methods compute in float32 (larger floats, and NaN/Inf, overflow),
integers go into int64 tensors and attributes."""
AUTO = "auto"
"""The value of a parameter with ``auto`` that asks the method to choose it from the data."""
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One parameter: its type (int, float, str or bool), default, help text and allowed values.

    ``default`` given as a mapping ``{spec: value}`` declares per-spec defaults: they move to ``by_spec`` and
    ``default`` becomes None ("depends on the file's spec"; forms show it empty). Every spec a method accepts
    must then have an entry (checked when the method is declared). With ``auto``, the value ``"auto"`` (:data:`AUTO`)
    is accepted as well: the method chooses the value from the data (:mod:`recon.parameter_choice`) and records it.
    """

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    by_spec: Mapping[str, Any] = field(default_factory=dict, hash=False)
    auto: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.default, Mapping):
            object.__setattr__(self, "by_spec", MappingProxyType(dict(self.default)))
            object.__setattr__(self, "default", None)

    def parse(self, value: Any, owner: str) -> Any:
        """Convert a CLI string or a YAML value to this parameter's type; raise UserError when invalid."""
        key = f"--set {self.name}"
        if self.auto and isinstance(value, str) and value.strip().lower() == AUTO:
            return AUTO
        try:
            if self.kind is bool:
                if isinstance(value, bool):
                    parsed = value
                elif str(value).lower() in _TRUE | _FALSE:
                    parsed = str(value).lower() in _TRUE
                else:
                    raise ValueError
            elif self.kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            else:
                parsed = self.kind(value)
        except (TypeError, ValueError):
            kind = self.kind.__name__ + (f" or {AUTO!r}" if self.auto else "")
            raise UserError(f"{value!r} is not a valid {kind} for {owner}", key=key,
                            fix=f"{self.name}: {self.help}") from None
        if self.choices is not None and parsed not in self.choices:
            raise UserError(f"{parsed!r} is not allowed for {owner}", key=key,
                            fix=f"choose one of {', '.join(map(str, self.choices))}")
        if self.kind is float and not math.isfinite(parsed):
            raise UserError(f"{value!r} is not a finite number for {owner}", key=key,
                            fix=f"give a finite value{self.allowed()}")
        if self.kind in (int, float) and abs(parsed) > NUMBER_LIMIT[self.kind]:
            limit, arithmetic = NUMBER_LIMIT[self.kind], "float32" if self.kind is float else "int64"
            raise UserError(f"{value!r} is beyond the {arithmetic} arithmetic of {owner} (magnitude <= {limit:.3g})",
                            key=key, fix=f"give a smaller value{self.allowed()}")
        if (self.low is not None and parsed < self.low) or (self.high is not None and parsed > self.high):
            raise UserError(f"{parsed!r} is out of range for {owner}", key=key, fix=f"use a value{self.allowed()}")
        return parsed

    def allowed(self) -> str:
        """The range as words after a space: `` in [0.1, 2.0]``, `` >= 0.0``, `` <= 5``, or "" when unbounded."""
        if self.low is not None and self.high is not None:
            return f" in [{self.low}, {self.high}]"
        return f" >= {self.low}" if self.low is not None else f" <= {self.high}" if self.high is not None else ""

    def default_for(self, spec: str | None) -> Any:
        """The default on files of ``spec`` (None when it depends on a spec not given, or on the data)."""
        return self.by_spec.get(spec, self.default) if spec is not None else self.default

    def describe_default(self) -> str:
        """The default as help shows it: ``0.5``, or ``ct-parallel/1 0.0002, mri-cartesian/1 0.002``."""
        if not self.by_spec:
            return AUTO if self.default == AUTO else repr(self.default)
        return ", ".join(f"{spec} {value:g}" if isinstance(value, float) else f"{spec} {value}" if value == AUTO
                         else f"{spec} {value!r}"
                         for spec, value in self.by_spec.items())

    def describe(self) -> str:
        allowed = f" one of {'|'.join(map(str, self.choices))}" if self.choices else ""
        default = f"[{self.describe_default()}]" if self.by_spec else self.describe_default()
        kind = self.kind.__name__ + (f" or {AUTO}" if self.auto else "")
        return f"{self.name}={default} ({kind}{allowed}): {self.help}"


def parse_params(params: tuple[Param, ...], raw: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Defaults overridden by ``raw``; unknown keys and bad values raise UserError. Per-spec defaults stay
    None here: the registry fills them in when it knows the spec."""
    known = {p.name: p for p in params}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        names = ", ".join(known) or "none"
        raise UserError(f"unknown parameter {unknown[0]!r} for {owner}", key=f"--set {unknown[0]}",
                        fix=f"its parameters are: {names} (see `recon methods`)")
    values = {p.name: p.default for p in params}
    values.update({name: known[name].parse(value, owner) for name, value in raw.items()})
    return values


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """Turn ``["key=value", ...]`` from repeated ``--set`` options into a dict."""
    result = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{item!r} is not of the form key=value", key="--set",
                            fix="write --set iterations=100")
        result[key.strip()] = value.strip()
    return result


SEED_LIMIT = 2**63
"""Seeds are stored as a 64-bit integer attribute and seed torch, numpy and random: 0 <= seed < 2**63."""


def check_seed(seed: int, key: str = "--seed") -> int:
    """``seed`` when it is an integer in [0, SEED_LIMIT), else UserError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise UserError(f"{seed!r} is not a seed in [0, 2**63)", key=key, fix="give an integer such as 0 or 7")
    return seed
