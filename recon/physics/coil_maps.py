"""Coil sensitivity maps: smooth synthetic ones for simulation, estimates from the calibration region (ACS).

Maps are complex (C, ny, nx) or (B, C, ny, nx), normalised so that sum_c |S_c|^2 = 1 (inside the object,
for estimates). K-space is laid out as in ``recon.physics.mri``: centred orthonormal 2D FFT, DC at
(ny // 2, nx // 2).

Two estimators, both from the fully sampled centre of k-space: the low-resolution ratio
(:func:`estimate_coil_maps`) and ESPIRiT (:mod:`recon.physics.espirit`); :func:`calibrate` chooses between them
(``auto``) and says what it did. Written here because deepinv's birdcage maps and ESPIRiT estimate
(``MultiCoilMRI.simulate_birdcage_csm``, ``MultiCoilMRI.estimate_coil_maps``) need sigpy, which recon does not
depend on.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from deepinv.utils.mixins import MRIMixin

from recon.errors import UserError
from recon.physics.espirit import EspiritSettings, espirit_maps
from recon.physics.masks import centre_slice

ESTIMATORS = ("auto", "espirit", "ratio")
MIN_ESPIRIT_KERNEL = 3
AUTO_ESPIRIT_BELOW = 12
"""``auto`` uses ESPIRiT for calibration blocks narrower than this (see :func:`calibrate`)."""


def synthetic_coil_maps(n_coils: int, shape: tuple[int, int],
                        rng: np.random.Generator | None = None) -> np.ndarray:
    """Smooth complex64 maps (C, ny, nx) of coils evenly spaced on a circle around the field of view.

    Coil c sits at angle 2 pi c / C (plus a random rotation and small jitter when ``rng`` is given) at 1.5
    half-widths from the centre; its magnitude falls as 1 / (1 + d^2) with the distance d (in half-widths) and
    its phase is a linear ramp along the coil direction plus an offset. Normalised so sum_c |S_c|^2 = 1.
    """
    if n_coils < 1:
        raise UserError(f"n_coils must be >= 1, got {n_coils}", key="n_coils", fix="use 1 or more coils")
    ny, nx = shape
    y = (np.arange(ny) - ny // 2) / (ny / 2)
    x = (np.arange(nx) - nx // 2) / (nx / 2)
    y, x = np.meshgrid(y, x, indexing="ij")
    angles = 2 * np.pi * np.arange(n_coils) / n_coils
    offsets = np.zeros(n_coils)
    if rng is not None:
        angles = angles + rng.uniform(0, 2 * np.pi) + rng.uniform(-0.2, 0.2, n_coils) * np.pi / n_coils
        offsets = rng.uniform(-np.pi, np.pi, n_coils)
    cy, cx = 1.5 * np.sin(angles)[:, None, None], 1.5 * np.cos(angles)[:, None, None]
    magnitude = 1 / (1 + (y - cy) ** 2 + (x - cx) ** 2)
    phase = offsets[:, None, None] + angles[:, None, None] + 0.5 * np.pi * (y * cy + x * cx) / 1.5
    maps = magnitude * np.exp(1j * phase)
    return (maps / np.sqrt((np.abs(maps) ** 2).sum(0))).astype(np.complex64)


def estimate_coil_maps(kspace: torch.Tensor, acs: int | None = None, mask: torch.Tensor | None = None,
                       threshold: float = 0.05) -> torch.Tensor:
    """Coil maps (B, C, H, W), complex, from the fully sampled centre of k-space, on the input's device.

    Method: low-resolution ratio (as in SENSE calibration). The central calibration block is tapered by a Hann
    window, zero-filled, inverse-FFT'd to low-resolution coil images L_c, and S_c = L_c / sqrt(sum_c |L_c|^2).
    Where that root-sum-of-squares is below ``threshold`` times its per-slice maximum (outside the object)
    the maps are 0. The maps carry the object's low-resolution phase, so SENSE images come out nearly real.

    :param kspace: (B, 2, C, H, W) real or (B, C, H, W) complex; zero where not sampled.
    :param acs: side of a centred acs x acs calibration square; ``None`` detects the largest fully sampled
        centred rectangle of ``mask`` (for 1D masks: all rows x the ACS columns).
    :param mask: sampling mask (H, W) or (B, H, W) (or deepinv's (B, 2, H, W)); ``None`` takes the
        locations where any coil of any slice is non-zero.
    :param threshold: fraction of each slice's maximum low-resolution RSS below which the maps are 0.
    """
    k = kspace if kspace.is_complex() else MRIMixin.to_torch_complex(kspace)
    ny, nx = k.shape[-2:]
    if mask is None:
        sampled = (k != 0).any(dim=1).all(dim=0)
    else:
        mask = torch.as_tensor(mask, device=k.device)
        sampled = (mask.reshape(-1, ny, nx) != 0).all(dim=0)
    hy, hx = (acs, acs) if acs is not None else calibration_size(sampled.cpu().numpy())
    block = sampled[centre_slice(ny, hy), centre_slice(nx, hx)]
    if hy < 2 or hx < 2 or hy > ny or hx > nx or not bool(block.all()):
        raise UserError(f"no fully sampled {hy} x {hx} calibration region at the centre of k-space",
                        key="mask", fix="store coil_maps in the file or sample a central ACS block")
    real = k.real.dtype
    window = torch.zeros(ny, nx, dtype=real, device=k.device)
    taper = torch.outer(_hann(hy, real, k.device), _hann(hx, real, k.device))
    window[centre_slice(ny, hy), centre_slice(nx, hx)] = taper
    low = MRIMixin.ifft(k * window)
    rss = torch.sqrt((low.abs() ** 2).sum(dim=1, keepdim=True))
    inside = rss > threshold * rss.amax(dim=(-2, -1), keepdim=True)
    return torch.where(inside, low / torch.where(inside, rss, 1.0), 0.0)


def calibrate(kspace: torch.Tensor, mask: torch.Tensor, estimator: str = "auto") -> tuple[torch.Tensor, dict]:
    """Coil maps (B, C, H, W) from k-space ``kspace`` (B, 2, C, H, W) real or (B, C, H, W) complex sampled at
    ``mask`` (H, W) or (B, H, W), and the record of how they were made (estimator, calibration block, settings).

    ESPIRiT's kernel is at most half the calibration block's shorter side (6 from a 12-line block up, 3 at least):
    a kernel as wide as the block leaves one patch per row and no redundancy to find the coils' subspace.
    ``auto`` takes ESPIRiT when the block's shorter side is below ``AUTO_ESPIRIT_BELOW`` (and at least 6), else the
    ratio. Measured by scripts/bench_coil_maps.py on fastMRI-layout files (MNI152 slice, birdcage maps, 2 % noise,
    fastMRI random masks, tv / cgls at their defaults): 8x (7 calibration columns) ESPIRiT +3.7 / +2.8 dB over the
    ratio with 4 and 12 coils; 4x (15 columns) the ratio +0.15 / -0.1 dB; held out (Colin27) 8x ESPIRiT +1.1 to
    +1.4 dB (tv), 4x the ratio +0.15 to +0.2 dB; the real 2-coil phantom (16 columns) the ratio +0.2 dB (tv).
    """
    if estimator not in ESTIMATORS:
        raise UserError(f"unknown coil map estimator {estimator!r}", key="--read coil_maps",
                        fix=f"use one of {', '.join(ESTIMATORS)}")
    k = kspace if kspace.is_complex() else MRIMixin.to_torch_complex(kspace)
    sampled = (torch.as_tensor(mask).reshape(-1, *k.shape[-2:]) != 0).all(dim=0)
    block = calibration_size(sampled.cpu().numpy())
    settings = EspiritSettings(kernel=min(EspiritSettings.kernel, min(block) // 2))
    small = settings.kernel >= MIN_ESPIRIT_KERNEL and min(block) < AUTO_ESPIRIT_BELOW
    use_espirit = estimator == "espirit" or estimator == "auto" and small
    record = {"estimator": "espirit" if use_espirit else "ratio", "chosen_by": estimator,
              "calibration": list(block)}
    if not use_espirit:
        return estimate_coil_maps(k, mask=sampled), record
    if settings.kernel < MIN_ESPIRIT_KERNEL:
        raise UserError(f"the fully sampled centre ({block[0]} x {block[1]}) is too small for ESPIRiT (it needs "
                        f"{2 * MIN_ESPIRIT_KERNEL} x {2 * MIN_ESPIRIT_KERNEL})", key="--read coil_maps",
                        fix="use --read coil_maps=ratio, or sample a larger central block")
    maps, _ = espirit_maps(k, block, settings)
    record.update(kernel=settings.kernel, threshold=settings.threshold, crop=settings.crop,
                  calibration_used=[min(n, settings.max_calibration) for n in block])
    return maps, record


def calibration_size(sampled: np.ndarray) -> tuple[int, int]:
    """(height, width) of the largest fully sampled block centred at DC (ny // 2, nx // 2) of a bool (ny, nx).

    Starts from the sampled runs through the centre along the central column and row, then shrinks the
    larger side until the block is fully sampled. (0, 0) when the centre itself is not sampled.
    """
    ny, nx = sampled.shape
    if not sampled[ny // 2, nx // 2]:
        return 0, 0
    hy = _centred_run(sampled[:, nx // 2])
    hx = _centred_run(sampled[ny // 2, :])
    while not sampled[centre_slice(ny, hy), centre_slice(nx, hx)].all():
        hy, hx = (hy - 1, hx) if hy >= hx else (hy, hx - 1)
    return hy, hx


def _centred_run(line: np.ndarray) -> int:
    """Largest width w with line[centre_slice(n, w)] all True (line[n // 2] is True)."""
    n, c = len(line), len(line) // 2
    missing = np.flatnonzero(~line)
    left = c - (missing[missing < c].max() + 1 if (missing < c).any() else 0)  # sampled points left of c
    right = (missing[missing > c].min() if (missing > c).any() else n) - c  # c and to its right
    return int(min(2 * left + 1, 2 * right))


def _hann(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Hann taper of length n that is positive on all n samples (the zero end points fall outside)."""
    return torch.sin(math.pi * torch.arange(1, n + 1, dtype=dtype, device=device) / (n + 1)) ** 2
