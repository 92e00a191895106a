"""Weights files of recon's networks: safetensors whose metadata holds a ``format`` tag and the architecture
``config`` (a dataclass as JSON), so that a file rebuilds its own network. Written by the ``recon train``
commands (with a card, :mod:`recon.training.weights_files`), read by the methods and priors."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from recon.errors import UserError

Config = TypeVar("Config")


def weight_tensors(model: nn.Module, format: str, config: Any, dtype: torch.dtype | None = None,
                   ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(name -> CPU tensor, metadata strings) for ``model``: what :func:`load_weights` reads back. ``dtype``
    (e.g. float16, half the file size) stores floating-point tensors in that type; loading casts them back to
    the model's own type."""
    tensors = {name: t.detach().cpu().to(dtype if dtype and t.is_floating_point() else t.dtype).contiguous()
               for name, t in model.state_dict().items()}
    return tensors, {"format": format, "config": json.dumps(asdict(config), sort_keys=True)}


def load_weights(path: str | Path, format: str, config_type: Callable[..., Config],
                 build: Callable[[Config], nn.Module], kind: str, device: torch.device | str = "cpu",
                 ) -> tuple[nn.Module, Config]:
    """The network stored in ``path`` with tag ``format``, rebuilt by ``build(config_type(**config))``, on
    ``device`` and in eval mode, with its config. ``kind`` names the network in errors ("LPN", "denoiser"; the
    file comes from ``recon train <kind>``). UserError (key ``weights``) for a missing, foreign or broken file."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    fix = f"give weights written by `recon train {kind.lower()}` (--set weights=W.safetensors)"
    if not path.is_file():
        raise UserError("weights file not found", path=path, key="weights", fix=fix)
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as error:
        raise UserError(f"not a safetensors file ({error})", path=path, key="weights", fix=fix) from None
    if metadata.get("format") != format:
        raise UserError(f"not {kind} weights (format {metadata.get('format')!r})", path=path, key="weights", fix=fix)
    try:
        config = config_type(**json.loads(metadata["config"]))
        model = build(config)
        model.load_state_dict(tensors)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"weights and their config do not fit ({error})", path=path, key="weights",
                        fix=fix) from None
    return model.to(device).eval(), config
