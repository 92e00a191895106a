"""Training data for learned priors: clean patches cut from real volumes and phantoms, augmented, made noisy.

Sources (``--data`` items) are files of any format :func:`recon.io.volumes.load_volume` reads (npy, NIfTI,
DICOM file or folder, HDF5 ``FILE.h5:KEY``), files in the field's layouts (fastMRI, LoDoPaB ground truths...:
:mod:`recon.training.layout_images`), or generators: ``phantom:ellipses``, ``phantom:foam``,
``phantom:shepp-logan`` and ``skimage:NAME`` (a bundled scikit-image picture, e.g. ``skimage:camera``).
Each source becomes a float32 volume (z, y, x), normalised so that its 0.99 quantile is 1 — the same unit
the solvers work in (:func:`recon.solvers.normalised.robust_scale`), so that noise levels ``sigma`` mean the
same in training and in reconstruction. Images in Hounsfield units (``hu=True``) are first mapped to
attenuation relative to water, max(HU + 1000, 0) / 1000, so air is 0 as in a CT reconstruction.

A :class:`PatchDataset` draws random 2D patches (C, p, p) from random slices, or 3D patches (C, p, p, p),
with random flips and quarter turns in the (y, x) plane; ``channels=2`` gives complex images as (real,
imaginary) with a smooth random phase. Everything random takes a ``torch.Generator``: same seed, same data.

    volumes = load_sources(["phantom:ellipses", "head.nii.gz"], dim=2)
    train, held_out = hold_out(volumes, 0.2)
    data = PatchDataset(train, patch=48, channels=1)
    clean = data.sample(16, generator)                     # (16, 1, 48, 48)
    noisy, sigma = noisy_pair(clean, (0.0, 0.2), generator)  # sigma (16,)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recon.errors import UserError
from recon.io.volumes import FORMATS, load_volume

PHANTOMS = ("ellipses", "foam", "shepp-logan")
PHANTOM_COUNT = 24
"""Phantom images per 2D source (3D: volumes of ``PHANTOM_SIZE`` slices; phantoms are seeded by index)."""
PHANTOM_SIZE = 128
SCALE_QUANTILE = 0.99


def normalise(volume: np.ndarray, hu: bool = False) -> np.ndarray:
    """``volume`` (z, y, x) divided by its 0.99 quantile of |.| (HU first mapped to attenuation, see module)."""
    if hu:
        volume = np.maximum(volume + 1000.0, 0.0) / 1000.0
    scale = float(np.quantile(np.abs(volume[:: max(1, volume.shape[0] // 16)]), SCALE_QUANTILE))
    return (volume / (scale if scale > 0 else 1.0)).astype(np.float32)


def phantom_volumes(kind: str, dim: int, seed: int = 0) -> np.ndarray:
    """``PHANTOM_COUNT`` 2D phantoms stacked (n, 128, 128) for dim 2, one 128^3 phantom volume for dim 3."""
    from recon.phantoms import foam, random_ellipses, shepp_logan_3d

    rng = np.random.default_rng(seed)
    if kind == "shepp-logan":
        return shepp_logan_3d(PHANTOM_SIZE, PHANTOM_SIZE if dim == 3 else PHANTOM_COUNT)
    make = {"ellipses": random_ellipses, "foam": foam}[kind]
    if dim == 3:
        return make((PHANTOM_SIZE,) * 3, rng)
    return np.stack([make((PHANTOM_SIZE, PHANTOM_SIZE), rng) for _ in range(PHANTOM_COUNT)])


def skimage_picture(name: str) -> np.ndarray:
    """A grey-level picture bundled with scikit-image (no download), as float32 (1, ny, nx)."""
    import skimage.data
    from skimage.color import rgb2gray

    bundled = {"astronaut", "brick", "camera", "cell", "checkerboard", "chelsea", "clock", "coffee", "coins",
               "grass", "gravel", "horse", "moon", "page", "rocket", "text", "shepp_logan_phantom"}
    if name not in bundled:
        raise UserError(f"unknown scikit-image picture {name!r}", key="--data",
                        fix=f"use skimage:NAME with NAME one of {', '.join(sorted(bundled))}")
    image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
    return (rgb2gray(image) if image.ndim == 3 else image)[None]


def load_source(item: str, dim: int = 2, hu: bool = False, seed: int = 0) -> np.ndarray:
    """One ``--data`` item (a file, ``phantom:KIND`` or ``skimage:NAME``) as a normalised volume (z, y, x)."""
    kind, sep, name = item.partition(":")
    if sep and kind == "phantom":
        if name not in PHANTOMS:
            raise UserError(f"unknown phantom {name!r}", key="--data",
                            fix=f"use phantom:KIND with KIND one of {', '.join(PHANTOMS)}")
        return normalise(phantom_volumes(name, dim, seed))
    if sep and kind == "skimage":
        return normalise(skimage_picture(name))
    from recon.training.layout_images import layout_images, layout_of

    volume = layout_images(item) if layout_of(item)[0] else load_volume(item)
    return normalise(volume.reshape(-1, *volume.shape[-2:]), hu=hu)


def load_sources(items: Sequence[str], dim: int = 2, hu: bool = False, seed: int = 0) -> list[np.ndarray]:
    """Every ``--data`` item as a normalised volume (z, y, x); UserError when there are none."""
    if not items:
        raise UserError("no training data given", key="--data",
                        fix=f"give files ({FORMATS}), phantom:KIND or skimage:NAME")
    return [load_source(item, dim, hu, seed + index) for index, item in enumerate(items)]


def hold_out(volumes: Sequence[np.ndarray], fraction: float = 0.2) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split each volume into a training part and a held-out part (the last ``fraction`` of it): along z when
    it has at least 5 slices, else along x (the right-most columns). Returns (train, held_out)."""
    train, held = [], []
    for volume in volumes:
        axis = 0 if volume.shape[0] >= 5 else 2
        cut = volume.shape[axis] - max(1, round(fraction * volume.shape[axis]))
        parts = np.split(volume, [cut], axis=axis)
        train.append(parts[0])
        held.append(parts[1])
    return train, held


def smooth_phase(shape: tuple[int, ...], generator: torch.Generator, order: int = 2) -> torch.Tensor:
    """A random smooth phase map (radians) of ``shape`` (spatial axes): a constant in [-pi, pi) plus a random
    polynomial of degree ``order`` in coordinates in [-1, 1] with coefficients N(0, 1)."""
    axes = torch.meshgrid(*(torch.linspace(-1, 1, n) for n in shape), indexing="ij")
    phase = (torch.rand((), generator=generator) * 2 - 1) * math.pi
    for degree in range(1, order + 1):
        for axis in axes:
            phase = phase + torch.randn((), generator=generator) * axis**degree
    return phase


@dataclass
class PatchDataset:
    """Random patches of ``volumes`` (each (z, y, x), normalised): (B, C, p, p) for ``dim`` 2 (a random slice),
    (B, C, p, p, p) for ``dim`` 3. ``channels`` 1: real images; 2: (real, imaginary) of the image times a
    smooth random phase. ``augment``: random flips of y and x and quarter turns in the (y, x) plane.
    ``signed``: half the patches negated, for networks that denoise the real and imaginary parts of complex
    images (a ReLU network trained on non-negative images only ruins negated ones: 30.4 -> 14.4 dB)."""

    volumes: Sequence[np.ndarray]
    patch: int
    dim: int = 2
    channels: int = 1
    augment: bool = True
    signed: bool = False

    def __post_init__(self) -> None:
        if self.dim not in (2, 3) or self.channels not in (1, 2):
            raise UserError(f"dim {self.dim} / channels {self.channels} not supported", key="--dim",
                            fix="use --dim 2 or 3 and --channels 1 (real) or 2 (complex)")
        need = (1, self.patch, self.patch) if self.dim == 2 else (self.patch,) * 3
        small = [v.shape for v in self.volumes if any(n < m for n, m in zip(v.shape, need, strict=True))]
        if small or not self.volumes:
            raise UserError(f"a source of shape {small[0] if small else None} is smaller than the "
                            f"{self.dim}D patch {self.patch}", key="--patch",
                            fix=f"use --patch <= the smallest image side, or larger sources ({need} at least)")
        sizes = torch.tensor([float(v.size) for v in self.volumes])
        self._weights = sizes / sizes.sum()

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """``batch`` random clean patches, float32 on the CPU; sources drawn in proportion to their size."""
        picks = torch.multinomial(self._weights, batch, replacement=True, generator=generator)
        return torch.stack([self._patch(self.volumes[int(i)], generator) for i in picks])

    def _patch(self, volume: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        p = self.patch
        depth = 1 if self.dim == 2 else p
        corner = [int(torch.randint(0, n - m + 1, (), generator=generator))
                  for n, m in zip(volume.shape, (depth, p, p), strict=True)]
        block = torch.from_numpy(np.ascontiguousarray(
            volume[corner[0]:corner[0] + depth, corner[1]:corner[1] + p, corner[2]:corner[2] + p]))
        if self.dim == 2:
            block = block[0]
        if self.augment:
            block = augment(block, generator)
        if self.signed and torch.rand((), generator=generator) < 0.5:
            block = -block
        if self.channels == 2:
            phase = smooth_phase(tuple(block.shape), generator)
            return torch.stack((block * torch.cos(phase), block * torch.sin(phase)))
        return block[None]


@dataclass
class PatchBank:
    """Patches of a 2D :class:`PatchDataset` drawn once and kept on a device (a GPU): ``sample`` then draws batches
    there, each patch turned by a random one of the 8 symmetries of the square (and negated half the time for
    signed data), with only the indices and symmetries drawn on the CPU. A bank of N patches of p^2 pixels and C
    channels holds 4 N C p^2 bytes (20000 patches of 64^2: 330 MB)."""

    patches: torch.Tensor
    """(N, C, p, p) on the device, each drawn with the dataset's augmentation."""
    signed: bool = False

    @classmethod
    def draw(cls, dataset: PatchDataset, count: int, generator: torch.Generator, device: torch.device) -> PatchBank:
        if dataset.dim != 2 or count < 1:
            raise UserError(f"a bank of {count} patches of {dataset.dim}D data", key="--bank",
                            fix="banks hold 2D patches: use a positive --bank with 2D training, or leave it out")
        chunks = [dataset.sample(min(1024, count - start), generator).to(device) for start in range(0, count, 1024)]
        return cls(torch.cat(chunks), dataset.signed)

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """``batch`` patches (B, C, p, p) on the bank's device."""
        index = torch.randint(0, len(self.patches), (batch,), generator=generator)
        symmetry = torch.randint(0, 8, (batch,), generator=generator)
        out = self.patches[index.to(self.patches.device)]
        for code in range(1, 8):
            chosen = (symmetry == code).nonzero()[:, 0].to(out.device)
            if len(chosen):
                turned = out[chosen].rot90(code % 4, dims=(-2, -1))
                out[chosen] = turned.flip(-1) if code >= 4 else turned
        if self.signed:
            signs = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
            out = out * signs.to(out.device, out.dtype).reshape(-1, 1, 1, 1)
        return out


def augment(block: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random flip of each of the last two axes and a random quarter turn in their plane (square patches)."""
    flips = [axis for axis in (-2, -1) if torch.rand((), generator=generator) < 0.5]
    if flips:
        block = block.flip(flips)
    return block.rot90(int(torch.randint(0, 4, (), generator=generator)), dims=(-2, -1))


NOISES = ("gaussian", "rician")


def noisy_pair(clean: torch.Tensor, sigma_range: tuple[float, float], generator: torch.Generator,
               noise: str = "gaussian") -> tuple[torch.Tensor, torch.Tensor]:
    """``clean`` (B, C, ...) made noisy with a per-sample std sigma drawn uniformly in ``sigma_range`` (in the
    normalised unit). ``noise`` "gaussian": plus white Gaussian noise of std sigma (each channel);
    "rician": the magnitude |clean + sigma (n1 + j n2)| with n1, n2 standard normal, for non-negative magnitudes
    (what a magnitude denoiser sees of a complex image with complex white noise of std sigma per component: mean
    sigma sqrt(pi / 2) where clean is 0, about clean + N(0, sigma^2) where clean >> sigma). Returns (noisy, sigma
    of shape (B,))."""
    low, high = sigma_range
    sigma = low + (high - low) * torch.rand(clean.shape[0], generator=generator)
    sigma = sigma.to(clean.device, clean.dtype)
    return add_noise(clean, sigma, generator, noise), sigma


def add_noise(clean: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator,
              noise: str = "gaussian") -> torch.Tensor:
    """``clean`` (B, C, ...) with noise of std ``sigma`` (B,) per sample, of kind ``noise`` (see :func:`noisy_pair`;
    the rician imaginary part is a second draw after the real one)."""
    if noise not in NOISES:
        raise UserError(f"unknown noise {noise!r}", key="--noise", fix=f"choose one of {', '.join(NOISES)}")
    draws = torch.randn((2 if noise == "rician" else 1, *clean.shape), generator=generator)
    scaled = sigma.reshape(-1, *([1] * (clean.dim() - 1))) * draws.to(clean.device, clean.dtype)
    if noise == "rician":
        return torch.sqrt((clean + scaled[0]) ** 2 + scaled[1] ** 2)
    return clean + scaled[0]
