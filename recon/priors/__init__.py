"""Prior plugins: a registry of named priors and the capabilities each offers.

A prior states what it can do — ``prox(x, tau)``, ``grad(x)`` (RED), ``denoise(x, sigma)`` or
``eps(x_t, t)`` (diffusion) — and a solver asks for the capability it needs with :func:`get_prior`,
which fails with a clear message when the prior lacks it. Third-party priors register through the
``recon.priors`` entry-point group (the entry point names a :class:`Prior` subclass).
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

import torch

from recon.errors import UserError

CAPABILITIES = ("prox", "grad", "denoise", "eps")


class Prior:
    """Base class: subclasses set ``name``, ``summary`` and ``capabilities`` and implement those methods."""

    name: str = ""
    summary: str = ""
    capabilities: frozenset[str] = frozenset()
    dims: int = 2
    """Spatial dimensions of what the prior acts on at once: 2 (slices, images, vectors) or 3 (volumes)."""

    def prox(self, x: torch.Tensor, tau: float) -> torch.Tensor:
        """argmin_z tau * R(z) + ||z - x||^2 / 2, same shape as x."""
        raise NotImplementedError

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """R(x) per batch element, shape (B,)."""
        raise NotImplementedError


_PRIORS: dict[str, type[Prior]] = {}


def register_prior(cls: type[Prior]) -> type[Prior]:
    """Class decorator: make a prior available by its ``name``."""
    unknown = set(cls.capabilities) - set(CAPABILITIES)
    if not cls.name or unknown:
        raise ValueError(f"prior {cls!r} needs a name and capabilities among {CAPABILITIES}")
    _PRIORS[cls.name] = cls
    return cls


@functools.cache  # scanning the entry points takes ~10 ms, and every get_prior call asks
def _load_plugins() -> None:
    from recon.priors import classical, denoiser, diffusion, lpn, radar, wavelet  # noqa: F401  (registers the built-in priors)

    for entry in entry_points(group="recon.priors"):
        if entry.name not in _PRIORS:
            register_prior(entry.load())


def prior_names() -> list[str]:
    _load_plugins()
    return sorted(_PRIORS)


def get_prior(name: str, capability: str, **options) -> Prior:
    """The prior registered as ``name``, built with ``options``; UserError if unknown or lacking ``capability``."""
    _load_plugins()
    if name not in _PRIORS:
        raise UserError(f"unknown prior {name!r}", key="--prior", fix=f"choose one of {', '.join(prior_names())}")
    cls = _PRIORS[name]
    if capability not in cls.capabilities:
        offers = ", ".join(sorted(cls.capabilities)) or "nothing"
        raise UserError(f"prior {name!r} offers {offers}, but this method needs {capability}", key="--prior",
                        fix=f"choose a prior with {capability}: {', '.join(names_with(capability))}")
    return cls(**options)


def names_with(capability: str, dims: int | None = None) -> list[str]:
    """Names of the registered priors that offer ``capability`` (and act on ``dims``-D data, when given)."""
    _load_plugins()
    return sorted(name for name, cls in _PRIORS.items()
                  if capability in cls.capabilities and dims in (None, cls.dims))
