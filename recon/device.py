"""Choosing the torch device from the user's ``--device`` option."""

from __future__ import annotations

import torch

from recon.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """Return the device for ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name} was asked for but no CUDA device is available",
                            fix="use --device cpu or --device auto")
        index, count = name.partition(":")[2], torch.cuda.device_count()
        if index and not (index.isdigit() and int(index) < count):
            raise UserError(f"--device {name} names no CUDA device of this machine ({count} present)",
                            fix=f"use cuda or cuda:N with 0 <= N < {count}")
        return torch.device(name)
    raise UserError(f"unknown device {name!r}", fix=f"use one of {', '.join(DEVICE_CHOICES)} or cuda:N")
