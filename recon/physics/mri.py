"""Cartesian (multi-coil) MRI ``y = M F S x`` on deepinv's ``MultiCoilMRI``; on-disk <-> tensor layouts.

Layouts (``mri-cartesian/1``; docs/reference/specs.md, Conventions): on disk k-space is complex
(n_slices, n_coils, ny, nx) with a centred orthonormal 2D FFT per slice; inside, images are real (B, 2, ny, nx)
(real, imag) and k-space is real (B, 2, C, ny, nx), with the slices of a stack in the batch dimension B.
"""

from __future__ import annotations

import numpy as np
import torch
from deepinv.physics import MultiCoilMRI

from recon.errors import UserError
from recon.physics.coil_maps import synthetic_coil_maps
from recon.physics.masks import make_mask
from recon.physics.registry import register_example


class CartesianMRI(MultiCoilMRI):
    """Multi-coil Cartesian MRI ``y_c = M F (S_c x)``, centred orthonormal 2D FFT per slice.

    ``x`` is (B, 2, H, W), ``y`` is (B, 2, C, H, W). B is the slice (batch) dimension: a mask or coil maps
    with a leading dimension of 1 apply to every slice, otherwise that dimension must equal B.

    :param mask: 0/1 sampling mask (H, W) or (B, H, W), numpy or torch; 1 = sampled. (deepinv's (B, 2, H, W)
        form is accepted too.)
    :param coil_maps: complex sensitivities (C, H, W) or (B, C, H, W), numpy or torch; ``None`` = one coil
        of ones (single-coil MRI).
    :param dtype: real working dtype; the mask is stored in it and the coil maps in the complex dtype of the
        same precision. ``.to(torch.float64)`` keeps that pairing (plain ``nn.Module.to`` would drop the
        imaginary part of the maps).
    """

    def __init__(self, mask: np.ndarray | torch.Tensor, coil_maps: np.ndarray | torch.Tensor | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **kwargs):
        mask = self.check_mask(mask).to(dtype)
        if not torch.all((mask == 0) | (mask == 1)):
            raise UserError("mask values must be 0 or 1", key="mask", fix="store a binary sampling mask")
        img_size = tuple(mask.shape[-2:])
        if coil_maps is None:
            coil_maps = torch.ones((1, 1, *img_size), dtype=dtype.to_complex())
        coil_maps = torch.as_tensor(coil_maps).to(dtype.to_complex())
        if tuple(coil_maps.shape[-2:]) != img_size or coil_maps.ndim not in (2, 3, 4):
            raise UserError(f"coil_maps shape {tuple(coil_maps.shape)} does not match the mask {img_size}",
                            key="coil_maps",
                            fix="give maps of shape (n_coils, ny, nx) or (n_slices, n_coils, ny, nx)")
        super().__init__(mask=mask, coil_maps=coil_maps, img_size=img_size, device=device, **kwargs)
        self.to(device=device, dtype=dtype)

    @staticmethod
    def check_mask(mask: np.ndarray | torch.Tensor, three_d: bool = False) -> torch.Tensor:
        """Mask (H, W), (B, H, W), (B, 1, H, W) or (B, 2, H, W) -> (B, 2, H, W) (deepinv's form)."""
        if three_d:
            raise ValueError("CartesianMRI is 2D per slice; put the slices in the batch dimension")
        mask = torch.as_tensor(mask)
        if mask.ndim == 2:
            mask = mask[None]
        if mask.ndim == 3:
            mask = mask[:, None]
        if mask.ndim != 4 or mask.shape[1] not in (1, 2):
            raise UserError(f"mask shape {tuple(mask.shape)} is not (ny, nx) or (n_slices, ny, nx)",
                            key="mask", fix="store the mask as (ny, nx) or (n_slices, ny, nx)")
        return torch.cat([mask, mask], dim=1) if mask.shape[1] == 1 else mask

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Image (B, 2, H, W) -> k-space (B, 2, C, H, W)."""
        self._check_batch(x.shape[0])
        return super().A(x, **kwargs)

    def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        """K-space (B, 2, C, H, W) -> image (B, 2, H, W)."""
        self._check_batch(y.shape[0])
        return super().A_adjoint(y, **kwargs)

    def _check_batch(self, batch: int) -> None:
        """Per-slice masks or maps must match the batch (torch would broadcast a batch of 1 silently)."""
        for name in ("mask", "coil_maps"):
            n = getattr(self, name).shape[0]
            if n not in (1, batch):
                raise ValueError(f"{name} is given for {n} slices but the input has a batch of {batch}")

    def to(self, *args, **kwargs) -> CartesianMRI:
        """``nn.Module.to``, except that a real dtype casts complex buffers to its complex dtype."""
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is None or dtype.is_complex:
            return super().to(*args, **kwargs)

        def convert(t: torch.Tensor) -> torch.Tensor:
            if t.is_complex():
                return t.to(device, dtype.to_complex(), non_blocking)
            if t.is_floating_point():
                return t.to(device, dtype, non_blocking)
            return t.to(device, non_blocking=non_blocking)

        return self._apply(convert)


def kspace_to_tensor(kspace: np.ndarray | torch.Tensor, device: str | torch.device = "cpu",
                     dtype: torch.dtype | None = None) -> torch.Tensor:
    """Complex k-space (S, C, H, W) -> real (S, 2, C, H, W); ``dtype`` (real) defaults to the input's."""
    return _complex_to_channels(kspace, device, dtype)


def tensor_to_kspace(y: torch.Tensor) -> np.ndarray:
    """Real k-space tensor (S, 2, C, H, W) -> complex numpy (S, C, H, W) (complex64 from float32)."""
    return _channels_to_complex(y)


def image_to_tensor(image: np.ndarray | torch.Tensor, device: str | torch.device = "cpu",
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """Complex or real images (S, H, W) -> real tensor (S, 2, H, W); real images get a zero imaginary part."""
    return _complex_to_channels(image, device, dtype)


def tensor_to_complex_image(x: torch.Tensor) -> np.ndarray:
    """Real image tensor (S, 2, H, W) -> complex numpy (S, H, W) (complex64 from float32)."""
    return _channels_to_complex(x)


def _complex_to_channels(a: np.ndarray | torch.Tensor, device: str | torch.device,
                         dtype: torch.dtype | None) -> torch.Tensor:
    """Complex or real (S, ...) -> real (S, 2, ...) on ``device``, contiguous."""
    a = torch.as_tensor(a)
    if not a.is_complex():
        a = a.to(dtype or (a.dtype if a.is_floating_point() else torch.float32))
        a = torch.complex(a, torch.zeros_like(a))
    if dtype is not None:
        a = a.to(dtype.to_complex())
    return torch.view_as_real(a.to(device)).movedim(-1, 1).contiguous()


def _channels_to_complex(t: torch.Tensor) -> np.ndarray:
    """Real (S, 2, ...) -> complex numpy (S, ...)."""
    if t.shape[1] != 2 or t.is_complex():
        raise ValueError(f"expected a real tensor with channels (real, imag) in dim 1, got {tuple(t.shape)}")
    return torch.view_as_complex(t.detach().movedim(1, -1).contiguous()).cpu().numpy()


@register_example("mri-singlecoil")
def _singlecoil_example(device: torch.device, dtype: torch.dtype) -> tuple[CartesianMRI, tuple[int, ...]]:
    mask = make_mask("gaussian1d", (32, 24), 3.0, acs=4, rng=np.random.default_rng(0))
    return CartesianMRI(mask, device=device, dtype=dtype), (2, 2, 32, 24)


@register_example("mri-multicoil")
def _multicoil_example(device: torch.device, dtype: torch.dtype) -> tuple[CartesianMRI, tuple[int, ...]]:
    rng = np.random.default_rng(0)
    mask = np.stack([make_mask("uniform1d", (32, 32), 4.0, acs=4, rng=rng),
                     make_mask("poisson2d", (32, 32), 3.0, acs=6, rng=rng)])
    maps = synthetic_coil_maps(4, (32, 32), rng=rng)
    return CartesianMRI(mask, maps, device=device, dtype=dtype), (2, 2, 32, 32)
