"""The method registry: every reconstruction method recon can run, with its specs and parameters.

Built-in methods live in :mod:`recon.solvers`; third-party packages add theirs through the
``recon.methods`` entry-point group (the entry point names a :class:`Method` object).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import torch

from recon.errors import UserError
from recon.params import Param, parse_params
from recon.problem import Problem
from recon.progress import Progress, silent_progress


@dataclass
class RunContext:
    """How to run: the device and how to report progress (the pipeline seeds torch and numpy before solving)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: Progress = silent_progress


@dataclass
class Result:
    """A method's output in the problem's x layout, with per-iteration history (name -> values).

    ``extras["params"]`` holds parameter values the method resolved itself (defaults that depend on the
    spec or the data); the output records them in place of the ``None`` it was given. ``extras["datasets"]``
    (name -> array) and ``extras["attrs"]`` (name -> value) go into the output as they are; the
    ``reconstruction/1`` spec must declare them.
    """

    x: torch.Tensor
    history: dict[str, list[float]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


Solve = Callable[[Problem, dict[str, Any], RunContext], Result]


@dataclass(frozen=True)
class Method:
    """A named method: which specs it accepts, its parameters and the function that runs it.

    ``prior_capability`` names what the method needs from ``--prior`` (None: it takes no prior),
    ``default_prior`` the prior used when none is given and ``prior_dims`` what the prior must act on: 2 (images,
    slice by slice) or 3 (volumes). ``slice_separable`` says whether slices are
    reconstructed independently (True, False, or a function of the parsed parameters), so that ``recon batch
    --slab`` may split a volume into slabs and get the same result.
    """

    name: str
    family: str
    summary: str
    specs: tuple[str, ...]
    params: tuple[Param, ...]
    solve: Solve
    prior_capability: str | None = None
    default_prior: str | None = None
    slice_separable: bool | Callable[[dict[str, Any]], bool] = False
    prior_dims: int = 2

    def separable(self, params: dict[str, Any]) -> bool:
        """Whether, with these parsed parameters, each slice's result depends on that slice only."""
        return self.slice_separable(params) if callable(self.slice_separable) else self.slice_separable

    def parse_params(self, raw: Mapping[str, Any], prior: str | None = None) -> dict[str, Any]:
        """Checked parameters with defaults filled in, plus ``prior`` (its name) for methods that take one."""
        values = parse_params(self.params, raw, owner=f"method {self.name!r}")
        if self.prior_capability is None:
            if prior is not None:
                raise UserError(f"method {self.name!r} takes no prior", key="--prior",
                                fix="leave out --prior, or pick a method that takes one (see `recon methods`)")
            return values
        from recon.priors import get_prior, names_with

        values["prior"] = prior or self.default_prior
        chosen = get_prior(values["prior"], self.prior_capability)  # fails early if unknown or lacking it
        if chosen.dims != self.prior_dims:
            acts_on = "3D volumes" if chosen.dims == 3 else f"{chosen.dims}D images"
            raise UserError(f"the prior {values['prior']!r} acts on {acts_on}, method {self.name!r} needs one for "
                            f"{self.prior_dims}D", key="--prior",
                            fix=f"choose one of {', '.join(names_with(self.prior_capability, self.prior_dims))}")
        return values

    def check_spec(self, spec: str, path: str | None = None) -> None:
        if spec not in self.specs:
            raise UserError(f"method {self.name!r} does not accept {spec} files", path=path, key="--method",
                            fix=f"{self.name} takes {', '.join(self.specs)}; see `recon methods` for {spec}")


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    if method.name in _METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    _METHODS[method.name] = method
    return method


def method(name: str, *, family: str, specs: tuple[str, ...], params: tuple[Param, ...] = (),
           prior_capability: str | None = None, default_prior: str | None = None,
           slice_separable: bool | Callable[[dict[str, Any]], bool] = False,
           prior_dims: int = 2) -> Callable[[Solve], Solve]:
    """Decorator registering a solve function as a method; its docstring's first line is the summary."""

    def decorate(solve: Solve) -> Solve:
        summary = next(iter((solve.__doc__ or "").strip().splitlines()), name)
        register_method(Method(name, family, summary, specs, params, solve, prior_capability, default_prior,
                               slice_separable, prior_dims))
        return solve

    return decorate


@functools.cache
def _load() -> None:
    import recon.solvers  # noqa: F401  (registers the built-in methods)

    for entry in entry_points(group="recon.methods"):
        if entry.name not in _METHODS:
            register_method(entry.load())


def all_methods() -> list[Method]:
    _load()
    return list(_METHODS.values())


def get_method(name: str) -> Method:
    _load()
    if name not in _METHODS:
        raise UserError(f"unknown method {name!r}", key="--method",
                        fix=f"choose one of {', '.join(sorted(_METHODS))} (see `recon methods`)")
    return _METHODS[name]
