"""Weights files: ``W.safetensors`` plus its JSON card ``W.json``, checked before training, written atomically.

Imports nothing heavy at module level, so that the CLI can refuse a bad ``--out`` before loading torch.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from recon.errors import UserError
from recon.io.reconstruction import check_output_path


def card_path(weights: Path) -> Path:
    """W.safetensors -> W.json."""
    return weights.with_suffix(".json")


def check_weights_path(path: Path, overwrite: bool) -> None:
    """UserError unless ``path`` is a writable ``.safetensors`` name whose card can be written too."""
    if path.suffix != ".safetensors":
        raise UserError("the weights file must end in .safetensors", path=path, key="--out",
                        fix="write e.g. --out W.safetensors (the card goes to W.json)")
    check_output_path(path, overwrite)
    check_output_path(card_path(path), overwrite)


def write_weights_and_card(tensors: dict, metadata: dict[str, str], path: Path, card: dict,
                           overwrite: bool = False) -> None:
    """Write ``tensors`` (name -> CPU tensor) with ``metadata`` to ``path`` and ``card`` to its JSON, atomically:
    both go to temporaries in the folder first, then are renamed; on any failure neither name changes."""
    from safetensors.torch import save_file

    check_weights_path(path, overwrite)
    token = secrets.token_hex(4)
    temporaries = [path.parent / f".{p.name}.{token}.tmp" for p in (path, card_path(path))]
    try:
        save_file(tensors, str(temporaries[0]), metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporaries[0], 0o666 & ~umask)  # safetensors creates its files 0600
        temporaries[1].write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
        for temporary, final in zip(temporaries, (path, card_path(path)), strict=True):
            os.replace(temporary, final)
    except BaseException:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise


def init_state(path: str, network, matches: bool, found: str, options: str) -> dict:
    """The float32 state of ``network``, loaded from ``path`` to start a training from (``--init``); UserError
    naming what the weights are (``found``) and the ``options`` to change unless ``matches`` (same architecture)."""
    if not matches:
        raise UserError(f"the weights are {found}", path=path, key="--init",
                        fix=f"give weights of the same architecture, or the matching {options}")
    return {name: tensor.float() for name, tensor in network.state_dict().items()}
