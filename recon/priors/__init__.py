"""Prior plugins: a registry of named priors, the capabilities each offers and their typed contracts.

A prior offers some of four capabilities, each a method with a fixed signature (the protocols below):
``prox(x, tau)``, ``denoise(x, sigma)``, ``grad(x, sigma)`` (RED) and ``eps(x_t, t)`` (diffusion). A solver asks
for the capability it needs with :func:`get_prior`, which fails with a clear message when the prior lacks it;
:func:`compatible_priors` says which priors a method can use on a spec. Learned priors take ``weights=`` (a
path, None for their shipped weights) as their one constructor option.

The registry is torch-free: built-in priors are declared here by name and loaded ("module:Class") on first use,
so ``recon methods`` and validation errors answer without importing torch. Third-party priors register through
the ``recon.priors`` entry-point group (the entry point names a :class:`Prior` subclass, whose class attributes
declare it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from recon.errors import UserError
from recon.plugins import Registry, entry_point_objects, load_reference

if TYPE_CHECKING:
    from torch import Tensor

CAPABILITIES = ("prox", "grad", "denoise", "eps")


@runtime_checkable
class Proximal(Protocol):
    """Capability ``prox``: a regulariser R with its proximal operator."""

    def prox(self, x: Tensor, tau: float) -> Tensor:
        """argmin_z tau R(z) + ||z - x||^2 / 2 for x (B, C, ...), same shape."""

    def value(self, x: Tensor) -> Tensor:
        """R(x) per batch element, shape (B,)."""


@runtime_checkable
class Denoiser(Protocol):
    """Capability ``denoise``: a Gaussian denoiser."""

    def denoise(self, x: Tensor, sigma: float) -> Tensor:
        """D(x, sigma) for x (B, C, ...) with noise std sigma in x's (normalised) unit; same shape."""


@runtime_checkable
class RedGradient(Protocol):
    """Capability ``grad``: the gradient of a RED regulariser, R(x) = x^T (x - D(x, sigma)) / 2."""

    def grad(self, x: Tensor, sigma: float) -> Tensor:
        """x - D(x, sigma) for x (B, C, ...); same shape."""


@runtime_checkable
class NoisePredictor(Protocol):
    """Capability ``eps``: a diffusion model's noise prediction (variance preserving, T steps)."""

    def eps(self, x_t: Tensor, t: float) -> Tensor:
        """eps_theta(x_t, t) for x_t (S, C, ny, nx) in the model unit at (fractional) time step t; same shape."""


PROTOCOLS: dict[str, type] = {"prox": Proximal, "denoise": Denoiser, "grad": RedGradient, "eps": NoisePredictor}


class Prior:
    """Base class of third-party priors: set ``name``, ``summary``, ``capabilities`` (and ``dims``, ``images`` where
    they differ from the defaults) and implement the capabilities' methods with the protocols' signatures."""

    name: str = ""
    summary: str = ""
    capabilities: frozenset[str] = frozenset()
    dims: int = 2
    """Spatial dimensions of what the prior acts on at once: 2 (slices, images, vectors) or 3 (volumes)."""
    images: str | None = None
    """"real" or "complex" when the prior takes only such images (e.g. 1-channel weights), None: both."""


@dataclass(frozen=True)
class PriorInfo:
    """A registered prior: what it offers and where its class is (a class, or "module:Class" loaded on first use,
    built with ``options`` plus the caller's)."""

    name: str
    summary: str
    capabilities: frozenset[str]
    load: str | type
    dims: int = 2
    images: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if not self.name or unknown or self.images not in (None, "real", "complex"):
            raise ValueError(f"prior {self.name!r} needs a name, capabilities among {CAPABILITIES} and images in "
                             "(None, 'real', 'complex')")
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def cls(self) -> type:
        return load_reference(self.load)

    def fits(self, spec: str | None) -> bool:
        """Whether the prior takes the images of ``spec`` (any spec when None)."""
        if spec is None or self.images is None:
            return True
        from recon.specs import get_kind

        return self.images == get_kind(spec).image


_DENOISER = "recon.priors.denoiser:DenoiserPrior"
_LPN = "recon.priors.lpn:LPNPrior"
_DIFFUSION = "recon.priors.diffusion:DiffusionPrior"
BUILTIN = (
    PriorInfo("l1", "l1 norm, prox = soft thresholding", {"prox"}, "recon.priors.classical:L1"),
    PriorInfo("l0", "l0 count, prox = hard thresholding", {"prox"}, "recon.priors.classical:L0"),
    PriorInfo("wavelet-l1", "l1 norm of orthonormal Haar detail coefficients (complex magnitude for MRI)", {"prox"},
              "recon.priors.wavelet:WaveletL1"),
    PriorInfo("drunet", "trained DRUNet denoiser (shipped drunet-ct weights for real images, drunet-mri for complex "
              "ones)", {"denoise", "grad"}, _DENOISER),
    PriorInfo("drunet-ct", "trained DRUNet denoiser (CT-like images; MRI as real and imaginary parts)",
              {"denoise", "grad"}, _DENOISER, options={"shipped": "drunet-ct"}),
    PriorInfo("drunet-mri", "trained DRUNet denoiser (MRI-like images, real and imaginary parts apart)",
              {"denoise", "grad"}, _DENOISER, options={"shipped": "drunet-mri"}),
    PriorInfo("drunet-radar", "trained 3D DRUNet denoiser of radar reflectivity magnitudes (random synthetic scenes)",
              {"denoise"}, "recon.priors.radar:DrunetRadar", dims=3),
    PriorInfo("lpn", "learned proximal network: lpn-ct for real images, lpn-mri for complex ones", {"prox", "denoise"},
              _LPN),
    PriorInfo("lpn-ct", "learned proximal network trained on CT-like images (real, 1 channel)", {"prox", "denoise"},
              _LPN, images="real", options={"shipped": "lpn-ct"}),
    PriorInfo("lpn-mri", "learned proximal network trained on MRI-like images (complex, 2 channels)",
              {"prox", "denoise"}, _LPN, images="complex", options={"shipped": "lpn-mri"}),
    PriorInfo("diffusion", "trained slice diffusion model (VP, eps); shipped weights by image type: diffusion-ct, "
              "diffusion-mri", {"eps"}, _DIFFUSION),
    PriorInfo("diffusion-ct", "trained slice diffusion model on CT-like slices (shipped)", {"eps"}, _DIFFUSION,
              options={"shipped": "diffusion-ct"}),
    PriorInfo("diffusion-mri", "trained slice diffusion model on MRI magnitude slices (shipped)", {"eps"}, _DIFFUSION,
              options={"shipped": "diffusion-mri"}),
)

_PRIORS = Registry("prior")


def register(info: PriorInfo) -> PriorInfo:
    return _PRIORS.add(info.name, info)


def register_prior(cls: type[Prior]) -> type[Prior]:
    """Class decorator (and what the entry points go through): make a :class:`Prior` subclass available by its
    ``name``, declared by its class attributes."""
    register(PriorInfo(cls.name, cls.summary, cls.capabilities, cls, cls.dims, cls.images))
    return cls


@functools.cache  # scanning the entry points takes ~10 ms, and every get_prior call asks
def _load_plugins() -> None:
    for info in BUILTIN:
        register(info)
    for cls in entry_point_objects("recon.priors", _PRIORS):
        register_prior(cls)


def prior_names() -> list[str]:
    _load_plugins()
    return sorted(_PRIORS)


def prior_info(name: str) -> PriorInfo:
    """The declaration of prior ``name``; UserError if unknown."""
    _load_plugins()
    if name not in _PRIORS:
        raise UserError(f"unknown prior {name!r}", key="--prior", fix=f"choose one of {', '.join(prior_names())}")
    return _PRIORS[name]


def require(name: str, capability: str) -> PriorInfo:
    """The declaration of prior ``name``; UserError if unknown or lacking ``capability``."""
    info = prior_info(name)
    if capability not in info.capabilities:
        offers = ", ".join(sorted(info.capabilities)) or "nothing"
        raise UserError(f"prior {name!r} offers {offers}, but this method needs {capability}", key="--prior",
                        fix=f"choose a prior with {capability}: {', '.join(names_with(capability))}")
    return info


def get_prior(name: str, capability: str, **options) -> Any:
    """The prior registered as ``name``, built with ``options`` (e.g. ``weights``); UserError if unknown or lacking
    ``capability``."""
    info = require(name, capability)
    prior = info.cls()(**{**info.options, **options})
    if not isinstance(prior, PROTOCOLS[capability]):
        raise TypeError(f"prior {name!r} declares {capability} but does not implement {PROTOCOLS[capability].__name__}")
    return prior


def method_prior(params: Mapping[str, Any], capability: str) -> Any:
    """The prior a method's parsed ``params`` name (``prior``), built with their ``weights`` when given."""
    options = {"weights": params["weights"]} if params.get("weights") else {}
    return get_prior(params["prior"], capability, **options)


def names_with(capability: str, dims: int | None = None, spec: str | None = None) -> list[str]:
    """Names of the registered priors that offer ``capability`` (and act on ``dims``-D data and take the images of
    ``spec``, when given)."""
    _load_plugins()
    return sorted(name for name, info in _PRIORS.items()
                  if capability in info.capabilities and dims in (None, info.dims) and info.fits(spec))
