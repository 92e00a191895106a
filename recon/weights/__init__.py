"""Weights shipped with recon: ``NAME.safetensors`` plus ``NAME.json`` (the card: data, command, steps, scores)."""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent


def shipped(name: str) -> Path:
    """The path of the shipped weights ``name`` (which may be missing from a broken install)."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def shipped_card(name: str) -> dict | None:
    """The card of the shipped weights ``name``, or None when it is not there."""
    path = WEIGHTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None
