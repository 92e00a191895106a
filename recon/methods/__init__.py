"""The method registry: every reconstruction method recon can run, with its specs, parameters and priors.

A method is declared by a :class:`Method` (name, family, summary, specs, parameters with their per-spec
defaults, what it needs from a prior, whether slices are independent) whose ``solve`` names its implementation as
``"module:function"``, imported on first use. The declarations of the built-in methods live in this package, one
module per family (:data:`BUILTIN`), and import nothing heavy: listing methods, ``--help`` texts and every
validation error answer without importing torch or deepinv. Their implementations live in :mod:`recon.solvers`.
Third-party packages add methods through the ``recon.methods`` entry-point group (the entry point names a
:class:`Method` object; its ``solve`` may be the function itself).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from recon.errors import UserError
from recon.params import AUTO, Param, parse_params
from recon.plugins import Registry, entry_point_objects, load_reference
from recon.progress import Progress, silent_progress, warn_on_stderr
from recon.specs import get_kind

if TYPE_CHECKING:
    import torch

    from recon.problem import Problem

BUILTIN = ("recon.methods.classical", "recon.methods.plug_and_play", "recon.methods.diffusion",
           "recon.methods.dynamic", "recon.methods.unfolded", "recon.methods.radar")
"""The modules declaring the built-in methods, in the order ``recon methods`` lists their families."""


def _cpu() -> torch.device:
    import torch

    return torch.device("cpu")


@dataclass
class RunContext:
    """How to run: the device, how to report progress and warnings, and how often to record history (every
    ``history_every`` iterations, and always the last). :meth:`Method.solve` sets ``method`` (the progress label).
    The pipeline seeds torch and numpy before solving."""

    device: torch.device = field(default_factory=_cpu)
    progress: Progress = silent_progress
    history_every: int = 1
    warn: Callable[[str], None] = warn_on_stderr
    method: str = ""


@dataclass
class Result:
    """A method's output in the problem's x layout, with its history (name -> values).

    ``extras["params"]`` holds every parameter's value as used (:meth:`Method.solve` fills in the declared ones;
    a method adds what it derives itself, e.g. ``eps``); the output records them. ``extras["datasets"]``
    (name -> array) and ``extras["attrs"]`` (name -> value) go into the output as they are; the
    ``reconstruction/1`` spec must declare them.
    """

    x: torch.Tensor
    history: dict[str, list[float]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


Solve = Callable[["Problem", dict[str, Any], RunContext], Result]
DataDefaults = Callable[[dict[str, Any], str, int], dict[str, Any]]
"""``(params, spec, slices) -> defaults``: what a method derives from the spec and the slice count (x's leading
extent: slices of a volume, frames of a sequence), both known before anything is read (so that streaming can
resolve them for the whole selection)."""


class _Solver:
    """What :attr:`Method.solve` calls: fill in the defaults that depend on the spec or the data, run the
    implementation (imported on first use when given as "module:function") and record every declared parameter."""

    def __init__(self, method: Method, target: Solve | str):
        self.method, self.target = method, target

    def function(self) -> Solve:
        self.target = load_reference(self.target)
        return self.target

    def __call__(self, problem: Problem, params: dict[str, Any], ctx: RunContext | None = None) -> Result:
        resolved = self.method.resolve(params, problem)
        result = self.function()(problem, resolved, replace(ctx or RunContext(), method=self.method.name))
        declared = {p.name: resolved.get(p.name) for p in self.method.params}
        result.extras["params"] = {**declared, **result.extras.get("params", {})}
        return result


@dataclass(frozen=True)
class Method:
    """A named method: which specs it accepts, its parameters and the function that runs it.

    ``solve(problem, params, ctx)`` runs it (see :class:`_Solver`); declare it as "module:function" to keep the
    declaration light. ``prior_capability`` names what the method needs from ``--prior`` (None: it takes no
    prior), ``default_prior`` the prior used when none is given and ``prior_dims`` what the prior must act on: 2
    (images, slice by slice) or 3 (volumes). ``slice_separable`` says whether slices are reconstructed
    independently (True, False, or a function of the parsed parameters), so that ``recon batch --slab`` may split
    a volume into slabs and get the same result; ``halo`` lets a z-coupled one be split with overlaps.
    ``data_defaults(params, spec, slices)`` returns defaults that depend on the data (e.g. pnp-admm's ``planes``
    from the slice count); they apply to the parameters still None, before the per-spec defaults.
    """

    name: str
    family: str
    summary: str
    specs: tuple[str, ...]
    params: tuple[Param, ...]
    solve: Solve | str
    prior_capability: str | None = None
    default_prior: str | None = None
    slice_separable: bool | Callable[[dict[str, Any]], bool] = False
    prior_dims: int = 2
    data_defaults: DataDefaults | None = None
    priors: tuple[str, ...] = ()
    """The only priors the method takes (its implementation checks), when not every prior with the capability."""
    halo: int | None = None
    """For a method that is not slice-separable but couples slices only through their neighbours in z: the slices a
    streamed slab is extended by on each side (the default of ``--halo``; ``scripts/bench_halo.py`` measures what it
    leaves). None: such a method is never split into slabs."""

    def __post_init__(self) -> None:
        for param in self.params:
            missing = [spec for spec in self.specs if param.by_spec and spec_default(param, spec) is None]
            if missing:
                raise ValueError(f"method {self.name!r}: parameter {param.name!r} has no default for {missing} (a "
                                 "new spec borrows a built-in spec's defaults through its kind's defaults_like)")
        if not isinstance(self.solve, _Solver):
            object.__setattr__(self, "solve", _Solver(self, self.solve))

    def separable(self, params: dict[str, Any], spec: str | None = None) -> bool:
        """Whether, with these parsed parameters on files of ``spec``, each slice's result depends on that slice
        only. Per-spec defaults that :meth:`parse_params` leaves None are taken as they resolve on ``spec``; without
        a spec, as ``auto`` where some spec's default is ``auto`` (which chooses one value for all the slices)."""
        if not callable(self.slice_separable):
            return self.slice_separable
        filled = dict(params)
        for param in self.params:
            if filled.get(param.name) is None and param.by_spec:
                filled[param.name] = (per_spec(param.by_spec, spec) if spec is not None
                                      else AUTO if AUTO in param.by_spec.values() else None)
        return self.slice_separable(filled)

    def parse_params(self, raw: Mapping[str, Any], prior: str | None = None, spec: str | None = None
                     ) -> dict[str, Any]:
        """Checked parameters with defaults filled in (per-spec ones stay None until :meth:`resolve`), plus
        ``prior`` (its name) for methods that take one, checked against ``spec`` when given."""
        values = parse_params(self.params, raw, owner=f"method {self.name!r}")
        if self.prior_capability is None:
            if prior is not None:
                raise UserError(f"method {self.name!r} takes no prior", key="--prior",
                                fix="leave out --prior, or pick a method that takes one (see `recon methods`)")
            return values
        from recon.priors import require

        values["prior"] = prior or self.default_prior
        chosen = require(values["prior"], self.prior_capability)  # fails early if unknown or lacking it
        if chosen.dims != self.prior_dims:
            acts_on = "3D volumes" if chosen.dims == 3 else f"{chosen.dims}D images"
            raise UserError(f"the prior {values['prior']!r} acts on {acts_on}, method {self.name!r} needs one for "
                            f"{self.prior_dims}D", key="--prior",
                            fix=f"choose one of {', '.join(compatible_priors(self))}")
        if not chosen.fits(spec):
            raise UserError(f"the prior {values['prior']!r} takes {chosen.images} images only, not those of {spec} "
                            "files", key="--prior", fix=f"choose one of {', '.join(compatible_priors(self, spec))}")
        return values

    def resolve(self, params: Mapping[str, Any], problem: Problem) -> dict[str, Any]:
        """``params`` with each None filled in: first from :attr:`data_defaults`, then from the per-spec defaults."""
        values = dict(params)
        if self.data_defaults is not None:
            derived = self.data_defaults(values, problem.spec, problem.x_shape[0])
            values.update({name: value for name, value in derived.items() if values.get(name) is None})
        for param in self.params:
            if values.get(param.name) is None and param.by_spec:
                values[param.name] = spec_default(param, problem.spec)
        return values

    def check_spec(self, spec: str, path: str | None = None) -> None:
        if spec not in self.specs:
            raise UserError(f"method {self.name!r} does not accept {spec} files", path=path, key="--method",
                            fix=f"{self.name} takes {', '.join(self.specs)}; see `recon methods` for {spec}")


def spec_default(param: Param, spec: str) -> Any:
    """``param``'s default on files of ``spec``: its entry in the per-spec table, else that of the spec the kind
    borrows defaults from (:attr:`recon.specs.SpecKind.defaults_like`); None when neither has one."""
    return per_spec(param.by_spec, spec)


def per_spec(table: Mapping[str, Any], spec: str) -> Any:
    """``table[spec]``, else the entry of the spec whose defaults ``spec`` borrows (:attr:`recon.specs.SpecKind.
    defaults_like`); None when neither is there."""
    if spec in table:
        return table[spec]
    return table.get(get_kind(spec).defaults_like)


_METHODS = Registry("method")


def register_method(method: Method) -> Method:
    return _METHODS.add(method.name, method)


@functools.cache
def _load() -> None:
    for module in BUILTIN:
        for declared in load_reference(f"{module}:METHODS"):
            register_method(declared)
    for method in entry_point_objects("recon.methods", _METHODS):
        register_method(method)


def all_methods() -> list[Method]:
    """Every registered method (built-in and third-party), in declaration order."""
    _load()
    return list(_METHODS.values())


def get_method(name: str) -> Method:
    """The method called ``name``; UserError listing the known ones when there is none."""
    _load()
    return _METHODS.require(name, "--method", f"choose one of {', '.join(sorted(_METHODS))} (see `recon methods`)")


def methods_for_spec(spec: str) -> list[Method]:
    """The methods that accept files of ``spec``."""
    return [method for method in all_methods() if spec in method.specs]


def compatible_priors(method: Method | str, spec: str | None = None) -> list[str]:
    """Names of the priors ``method`` can use (on files of ``spec``, when given): those offering its capability,
    acting on its dimensions and taking the spec's images; empty for methods without a prior."""
    method = get_method(method) if isinstance(method, str) else method
    if method.prior_capability is None:
        return []
    from recon.priors import names_with

    names = names_with(method.prior_capability, method.prior_dims, spec)
    return [name for name in names if name in method.priors] if method.priors else names
