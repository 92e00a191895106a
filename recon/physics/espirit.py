"""ESPIRiT coil sensitivities (Uecker et al., MRM 71:990, 2014) in torch, from a fully sampled calibration block.

The calibration block (C, hy, hx) of each slice gives a block-Hankel matrix whose rows are all k x k patches of
all coils; its dominant right singular vectors (singular values above ``threshold`` times the largest) are the
kernels v_n (C, k, k). In the image domain the kernels define at each pixel r the C x C matrix

    G(r) = (1 / k^2) sum_n a_n(r) a_n(r)^H,   a_n = centred IFFT of v_n zero-padded to the image,

whose eigenvector of eigenvalue ~1 is the coil sensitivity vector there; the eigenvalue falls below 1 where no
signal supports the model (outside the object). G is a trigonometric polynomial of degree k - 1 in each axis, so
it is evaluated from the (2k - 1)^2 cross-correlations of the kernels, P_ij[d] = sum_n sum_u v_ni[u + d]
conj(v_nj[u]), as G_ij(r) = (1 / k^2) sum_d P_ij[d] exp(2 pi i d . (r - centre) / N): a few rows of pixels at a time,
so that memory stays at O(C^2 (H W + rows W)) whatever the number of kernels.

Conventions as :mod:`recon.physics.coil_maps`: k-space (C, H, W) with DC at (H // 2, W // 2), centred
orthonormal FFT, maps normalised to sum_c |S_c|^2 = 1 where kept. Written here because deepinv's
``MultiCoilMRI.estimate_coil_maps`` calls sigpy's ``EspiritCalib`` (numpy/cupy, one slice at a time, with numba
among its dependencies); sigpy stays a test-only reference: tests/physics/test_coil_maps.py checks these maps
against sigpy's on the same data. Unlike sigpy, the calibration block may be rectangular (a 1D mask's ACS
columns over all rows), and the maps' phase is chosen so that the coil-combined calibration image is real and
positive (like the low-resolution ratio's maps) rather than relative to coil 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from deepinv.utils.mixins import MRIMixin

from recon.physics.masks import centre_slice

ROWS_PER_CHUNK = 16
"""Pixel rows whose C x C matrices are built and diagonalised at once."""


@dataclass(frozen=True)
class EspiritSettings:
    """ESPIRiT's parameters (sigpy's defaults): kernel side, singular-value threshold relative to the largest,
    eigenvalue crop below which a pixel's maps are 0, and the largest calibration side used (the central part of
    a bigger fully sampled block: the outer calibration lines add noise to the kernels, not information on the
    smooth sensitivities)."""

    kernel: int = 6
    threshold: float = 0.02
    crop: float = 0.95
    max_calibration: int = 32


def espirit_maps(kspace: torch.Tensor, calibration: tuple[int, int],
                 settings: EspiritSettings = EspiritSettings()) -> tuple[torch.Tensor, torch.Tensor]:
    """ESPIRiT maps (B, C, H, W) and their eigenvalue maps (B, H, W) from complex k-space (B, C, H, W).

    :param calibration: (hy, hx), the fully sampled block centred at DC; each side is capped at
        ``settings.max_calibration`` and must be at least ``settings.kernel``.
    """
    hy, hx = (min(n, settings.max_calibration) for n in calibration)
    k = settings.kernel
    if hy < k or hx < k:
        raise ValueError(f"a {hy} x {hx} calibration block is smaller than the {k} x {k} ESPIRiT kernel")
    maps = torch.empty_like(kspace)
    eigenvalues = torch.empty((kspace.shape[0], *kspace.shape[-2:]), dtype=kspace.real.dtype, device=kspace.device)
    for b in range(kspace.shape[0]):
        block = kspace[b][:, centre_slice(kspace.shape[-2], hy), centre_slice(kspace.shape[-1], hx)]
        correlations = _kernel_correlations(_kernels(block, settings), k)
        maps[b], eigenvalues[b] = _eigenmaps(correlations, kspace.shape[-2:], k)
        maps[b] *= _phase_reference(maps[b], block)
    maps = torch.where(eigenvalues[:, None] > settings.crop, maps, 0)
    return maps, eigenvalues


def _kernels(block: torch.Tensor, settings: EspiritSettings) -> torch.Tensor:
    """Dominant right singular vectors (n, C, k, k) of the calibration matrix of ``block`` (C, hy, hx)."""
    k = settings.kernel
    n_coils = block.shape[0]
    patches = block.to(torch.complex128).unfold(1, k, 1).unfold(2, k, 1)  # (C, py, px, k, k)
    matrix = patches.permute(1, 2, 0, 3, 4).reshape(-1, n_coils * k * k)
    _, singular, vh = torch.linalg.svd(matrix, full_matrices=False)
    keep = singular > settings.threshold * singular[0]
    return vh[keep].reshape(-1, n_coils, k, k)


def _kernel_correlations(kernels: torch.Tensor, k: int) -> torch.Tensor:
    """P (C, C, 2k - 1, 2k - 1), P_ij[d] = sum_n sum_u v_ni[u + d] conj(v_nj[u]), d stored modulo 2k - 1."""
    size = 2 * k - 1
    spectra = torch.fft.fft2(kernels, s=(size, size))  # zero-padded: circular = linear correlation
    return torch.fft.ifft2(torch.einsum("niab,njab->ijab", spectra, spectra.conj()))


def _eigenmaps(correlations: torch.Tensor, shape: tuple[int, int], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dominant eigenvector (C, H, W) and eigenvalue (H, W) of G(r) built from the kernel correlations."""
    height, width = shape
    size = correlations.shape[-1]
    shifts = torch.fft.fftfreq(size, 1 / size, dtype=torch.float64, device=correlations.device)  # 0..k-1, -(k-1)..-1

    def phases(n: int) -> torch.Tensor:
        position = torch.arange(n, dtype=torch.float64, device=correlations.device) - n // 2
        return torch.exp(2j * math.pi * shifts[:, None] * position[None] / n)  # (size, n)

    along_x = torch.einsum("ijab,bx->ijax", correlations, phases(width)) / k**2  # (C, C, size, W)
    rows = phases(height)
    n_coils = correlations.shape[0]
    vectors = torch.empty((height, width, n_coils), dtype=torch.complex64, device=correlations.device)
    values = torch.empty((height, width), dtype=torch.float32, device=correlations.device)
    for start in range(0, height, ROWS_PER_CHUNK):
        stop = min(start + ROWS_PER_CHUNK, height)
        gram = torch.einsum("ijax,ay->yxij", along_x, rows[:, start:stop])  # (rows, W, C, C), Hermitian
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        vectors[start:stop] = eigenvectors[..., -1].to(torch.complex64)
        values[start:stop] = eigenvalues[..., -1].to(torch.float32)
    return vectors.permute(2, 0, 1), values


def _phase_reference(maps: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
    """Unit phase factor (H, W) making sum_c conj(S_c) L_c real and positive, L the zero-filled calibration
    image (so the maps carry the object's low-resolution phase and SENSE images come out nearly real)."""
    padded = torch.zeros_like(maps)
    padded[:, centre_slice(maps.shape[-2], block.shape[-2]), centre_slice(maps.shape[-1], block.shape[-1])] = block
    combined = (maps.conj() * MRIMixin.ifft(padded[None])[0]).sum(0)
    magnitude = combined.abs()
    return torch.where(magnitude > 0, combined / magnitude.clamp_min(torch.finfo(magnitude.dtype).tiny), 1)
