"""The spec registry: one :class:`SpecKind` per measurement spec, saying everything recon knows about it.

A spec's file format is its YAML (``data_specs/*.yaml``, parsed by :mod:`recon.io.specs`). What recon does with
such files lives in one module per built-in spec (:data:`BUILTIN`), whose ``KIND`` holds the spec's traits (real or
complex images, what the batch axis means, the output's axis names, whether generic linear methods take it), its
problem builder, simulator and noise estimators as ``"module:function"`` references, the viewer's presentation of
its datasets and the spec whose tuned parameter defaults it borrows. The CLI, the pipeline, the problem layout, the
noise estimates, the method and prior registries and the napari plugin ask the kind instead of comparing spec
strings.

Third-party packages add a spec through the ``recon.specs`` entry-point group: the entry point names a
:class:`SpecKind` whose ``yaml`` is a ``"package:file.yaml"`` resource. The registry, the built-in spec modules and
a plugin's module holding its ``SpecKind`` must stay torch-free at import: ``recon methods``, ``recon validate``
and every validation error answer without importing torch (the builder is imported the first time a file of the
spec is reconstructed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from recon.plugins import Registry, entry_point_objects, load_reference

BUILTIN = ("recon.specs.ct_parallel", "recon.specs.mri_cartesian", "recon.specs.ct_dynamic",
           "recon.specs.mri_dynamic", "recon.specs.sparse_linear", "recon.specs.mimo_nearfield")
"""The modules of the built-in specs (each defines ``KIND``)."""
BATCH_AXES = ("z", "time", "sample", "none")
IMAGES = ("real", "complex")


@dataclass(frozen=True)
class MeasurementView:
    """How the viewer shows one dataset of a measurement file: axis names (trailing), value transform,
    visibility, colour map."""

    key: str
    axes: tuple[str, ...]
    transform: str = "magnitude"  # magnitude (of complex data; real data unchanged) | logabs | frames_as_rows
    visible: bool = True
    colormap: str = "gray"
    square: bool = False
    """Stretch the second-last axis so the picture is as tall as it is wide (sinograms with few views)."""


Options = dict[str, Any]
"""The options of ``recon simulate`` as given (their Python names; None: not given)."""


def given(options: Options, name: str, default: Any) -> Any:
    """Option ``name``, or ``default`` when it was not given (unlike ``or``, keeps 0 so it can be refused)."""
    value = options.get(name)
    return default if value is None else value


@dataclass(frozen=True)
class Simulator:
    """How ``recon simulate`` makes a file of a spec (with ground truth).

    ``run(options, volume, spacing, rng, fits) -> (datasets, attrs)`` measures ``volume`` (the --volume or
    --phantom, read by the CLI when ``measures_volume``; else None) with the given ``options``; ``fits(elements)``
    refuses what cannot fit in memory. ``bytes_per_element(options, side)`` bounds the memory of one image element
    (``side``: the image's cube-root size). Defined torch-free in the spec's module; ``run`` imports what it needs.
    """

    options: frozenset[str]
    run: Callable[..., tuple[dict[str, Any], dict[str, Any]]]
    bytes_per_element: Callable[[Options, int], float]
    measures_volume: bool = True


@dataclass(frozen=True)
class SpecKind:
    """What recon knows about one measurement spec.

    ``build(measurement, slices, device, dtype) -> Problem`` reads an open, validated file into a
    :class:`~recon.problem.Problem` whose ``x`` is (S, C, *image) with S along ``batch`` and C = 2 for complex
    images. ``axes`` names the output's axes, outermost first (a 2D file's output uses the trailing ones).
    """

    id: str
    """The ``recon_spec`` attribute of its files, e.g. ``ct-parallel/1``."""
    yaml: str
    """Its format, as a ``"package:file.yaml"`` resource parsed by :mod:`recon.io.specs`."""
    build: str | Callable[..., Any]
    """The problem builder, ``"module:function"`` (imported on first use) or the function."""
    image: str = "real"
    """"real" or "complex": what the reconstruction is (complex: two channels, real and imaginary)."""
    batch: str = "z"
    """What axis 0 of the problem's x means: "z" (slices of a volume), "time" (frames), "sample" (independent
    signals) or "none" (one image or volume)."""
    axes: tuple[str, ...] = ("z", "y", "x")
    image_dims: int = 2
    """Dimensions of one image the operator acts on: 1 (signals), 2 (slices, frames) or 3 (volumes)."""
    linear_slices: bool = False
    """Static 2D images (or stacks of them along z) under a linear operator, the generic case: adjoint, cgls, tv
    and the plug-and-play methods take any spec with this trait, slice priors act on its images."""
    reflectivity: bool = False
    """A complex reflectivity whose scale and phase carry no meaning (radar): stored complex, scored on magnitudes
    each divided by its maximum."""
    defaults_like: str | None = None
    """The spec whose per-spec parameter defaults apply to this one (a new spec borrows tuned values)."""
    simulate: Simulator | None = None
    """How ``recon simulate`` makes its files, where it can."""
    noise: str | None = None
    """``"module:function"``: ``function(problem, attrs) -> NoiseEstimate``, the noise level of a built problem in
    the unit of its ``y`` (S, ...), with ``sq_norms`` (S,) per slice (``attrs``: its file's attributes); the
    methods' ``auto`` parameters use it through ``problem.noise()`` (None: they fall back to fixed defaults).
    The estimators from the data live in :mod:`recon.noise`; the hook picks one and the arrays it reads."""
    file_noise: str | None = None
    """``"module:function"``: ``function(measurement, slices) -> NoiseEstimate``, the noise level of an open,
    validated file's datasets in the file's unit (:func:`recon.noise.estimate_noise`, no torch), of its ``slices``
    (None: all) where the spec estimates slices apart, else of the whole file (None: no estimator)."""
    views: tuple[MeasurementView, ...] = ()
    """How the viewer shows its measurement datasets."""
    voxel_size: str | None = None
    """``"module:function"``: ``function(attrs, ndim) -> (sizes per axis or None, unit or None)``, the voxel size of
    its images from a file's attributes (the viewer's scale of the ground truth); None: pixels."""

    def __post_init__(self) -> None:
        if self.image not in IMAGES or self.batch not in BATCH_AXES or self.image_dims not in (1, 2, 3):
            raise ValueError(f"spec {self.id!r}: image in {IMAGES}, batch in {BATCH_AXES}, image_dims 1, 2 or 3")

    @property
    def name(self) -> str:
        """The id without its version, e.g. ``ct-parallel``."""
        return self.id.rpartition("/")[0]

    @property
    def complex_image(self) -> bool:
        return self.image == "complex"

    @property
    def dynamic(self) -> bool:
        """Frames of a moving object along the batch axis."""
        return self.batch == "time"

    def yaml_text(self) -> str:
        package, _, name = self.yaml.partition(":")
        return files(package).joinpath(name).read_text()

    def builder(self) -> Callable[..., Any]:
        return load_reference(self.build)

    def image_voxel_size(self, attrs: dict[str, Any], ndim: int) -> tuple[tuple[float, ...] | None, str | None]:
        """Voxel size per axis and unit of an ``ndim``-axis image of a file with ``attrs`` ((None, None): pixels)."""
        return (None, None) if self.voxel_size is None else load_reference(self.voxel_size)(attrs, ndim)

    def output_axes(self, ndim: int) -> tuple[str, ...]:
        """Names of the axes of an output with ``ndim`` axes (the trailing ``axes``)."""
        return self.axes[-ndim:]


_KINDS = Registry("spec")


@functools.cache
def _load() -> None:
    for module in BUILTIN:
        kind = load_reference(f"{module}:KIND")
        _KINDS.add(kind.id, kind)
    for kind in entry_point_objects("recon.specs", _KINDS):
        _KINDS.add(kind.id, kind)


def all_kinds() -> list[SpecKind]:
    """Every registered spec kind, built-in first, then third-party ones."""
    _load()
    return list(_KINDS.values())


def get_kind(spec: str) -> SpecKind:
    """The kind of spec id ``spec`` (e.g. ``ct-parallel/1``); UserError for an unknown one."""
    _load()
    return _KINDS.require(spec, "recon_spec", f"use one of {', '.join(_KINDS)}")


def spec_ids(where: Callable[[SpecKind], bool] = lambda kind: True) -> tuple[str, ...]:
    """Ids of the registered specs (third-party ones included) whose kind satisfies ``where``."""
    return tuple(kind.id for kind in all_kinds() if where(kind))
