"""Weights shipped with recon: ``NAME.safetensors`` plus ``NAME.json`` (the card: data, command, steps, scores)."""

from __future__ import annotations

import json
from pathlib import Path

from recon.errors import UserError

WEIGHTS_DIR = Path(__file__).resolve().parent


def shipped(name: str) -> Path:
    """The path of the shipped weights ``name`` (which may be missing from a broken install)."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def weights_path(given: Path | None, name: str, trained_by: str) -> Path:
    """The weights a prior loads: ``given`` (the user's ``--set weights``, checked when loaded) or the shipped
    ``name``; UserError when the shipped file is missing (a broken install). ``trained_by``: the ``recon train``
    command that makes such weights, for the fix."""
    if given is not None:
        return given
    path = shipped(name)
    if not path.is_file():
        raise UserError(f"the shipped weights {path.name} are missing", path=path, key="--prior",
                        fix=f"reinstall recon, or train some with `{trained_by}` and pass --set weights=W.safetensors")
    return path


def shipped_card(name: str) -> dict | None:
    """The card of the shipped weights ``name``, or None when it is not there."""
    path = WEIGHTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def all_cards() -> dict[str, dict]:
    """Name -> card of every shipped weights file, sorted by name."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(WEIGHTS_DIR.glob("*.json"))}


def describe_card(card: dict) -> tuple[str, str, str]:
    """(what, trained on, validation) of a card, one short text each, for `recon methods`."""
    what = card.get("summary") or f"unfolded-{card.get('algo', '?')} on {card.get('spec', '?')}"
    if card.get("kind") == "lpn":
        what = f"LPN, {card['config']['channels']} channel(s), trained at sigma {card['config']['sigma']}"
    steps = card.get("steps") or card.get("schedule", {}).get("steps")
    data = card.get("data", {})
    sources = [str(item) for item in data.get("sources") or data.get("files") or []]
    pictures = [item for item in sources if item.startswith("skimage:")]
    named = [item if item.startswith("phantom:") else Path(item).name for item in sources if item not in pictures]
    if pictures:
        named.append(f"{len(pictures)} scikit-image pictures")
    if "synthetic" in data:
        named.append("synthetic problems")
    trained = f"{', '.join(named) or '?'}; {steps} steps on {card.get('device', '?')}"
    scores = card.get("validation", {})
    if "psnr_x0" in scores:
        validation = f"held-out eps loss {scores['loss']:.4f}, Tweedie x0 PSNR {scores['psnr_x0']:.2f} dB"
    elif "psnr_denoised" in scores:
        validation = f"held-out PSNR {scores['psnr_noisy']:.2f} -> {scores['psnr_denoised']:.2f} dB"
    else:
        validation = ", ".join(f"{key} {scores['init'][key]:.4g} -> {value:.4g}"
                               for key, value in scores.get("trained", {}).items())
    return what, trained, validation or "-"


def describe_shipped(names: list[str]) -> str:
    """"name: what; validation" for each of ``names`` that ships (from its card), joined by "; "."""
    entries = []
    for name in names:
        if card := shipped_card(name):
            what, _, validation = describe_card(card)
            entries.append(f"{name}: {what}; {validation}")
    return "; ".join(entries) or "none shipped"
