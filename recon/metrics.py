"""Image quality against ground truth: PSNR over the whole array and SSIM averaged over slices (deepinv)."""

from __future__ import annotations

import numpy as np
import torch
from deepinv.loss.metric import PSNR, SSIM

SSIM_CHUNK_PIXELS = 2**20
"""Pixels per SSIM call (whole slices, at least one): deepinv's SSIM holds about 25 float copies of its input
(256 slices of 128^2: 1.6 GB; 16 slices of 1024^2 per call raised an fbp run's peak from 1.8 to 5.0 GB)."""


def quality(reconstruction: np.ndarray, ground_truth: np.ndarray, images: bool = True) -> dict[str, float]:
    """PSNR (dB), normalised MSE ||x - x*||^2 / ||x*||^2 and, for ``images`` (…, ny, nx), mean slice SSIM.

    The PSNR peak is the ground truth's range (no PSNR/SSIM for a constant ground truth); SSIM needs slices
    of at least 16 x 16 pixels.
    """
    truth = torch.from_numpy(np.ascontiguousarray(ground_truth, dtype=np.float32))
    recon = torch.from_numpy(np.ascontiguousarray(reconstruction, dtype=np.float32)).reshape(truth.shape)
    low, high = float(truth.min()), float(truth.max())
    result = {"nmse": float(((recon - truth) ** 2).sum() / (truth**2).sum().clamp_min(1e-30))}
    if high == low:  # a constant ground truth (an empty slice) has no range to compare against
        return result
    result["psnr"] = float(PSNR(max_pixel=high, min_pixel=low)(recon.reshape(1, -1), truth.reshape(1, -1)))
    if images and truth.dim() >= 2 and min(truth.shape[-2:]) >= 16:
        ssim = SSIM(max_pixel=high, min_pixel=low)
        slices = truth.reshape(-1, 1, *truth.shape[-2:]), recon.reshape(-1, 1, *truth.shape[-2:])
        per_call = max(1, SSIM_CHUNK_PIXELS // (truth.shape[-2] * truth.shape[-1]))
        chunks = zip(slices[0].split(per_call), slices[1].split(per_call), strict=True)
        result["ssim"] = float(torch.cat([ssim(estimate, reference) for reference, estimate in chunks]).mean())
    return result
