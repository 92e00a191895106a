"""Synthetic 3D radar scenes: complex reflectivities (nz, ny, nx), z = range, magnitude in [0, 1] and a random
phase per voxel. No radar scene data ships anywhere (docs/guides/training.md), so training and tests draw these.

- ``points``: a few isolated point scatterers;
- ``shapes``: flat plates (boxes one to three voxels thick) and balls at random ranges;
- ``letters``: capital letters drawn in planes at a few ranges (the paper's test scenes);
- ``random``: a mix of the three.
"""

from __future__ import annotations

import string

import numpy as np

from recon.errors import UserError

SCENES = ("points", "shapes", "letters", "random")


def make_scene(kind: str, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A complex64 scene of ``kind`` (one of SCENES) on a grid ``shape`` = (nz, ny, nx)."""
    if kind not in SCENES:
        raise UserError(f"unknown scene {kind!r}", key="--scene", fix=f"choose one of {', '.join(SCENES)}")
    magnitude = np.zeros(shape, np.float32)
    draw = {"points": _points, "shapes": _shapes, "letters": _letters}
    kinds = rng.choice(["points", "shapes", "letters"], size=2, replace=False) if kind == "random" else [kind]
    for name in kinds:
        magnitude = np.maximum(magnitude, draw[str(name)](shape, rng))
    phase = rng.uniform(-np.pi, np.pi, shape)
    return (magnitude * np.exp(1j * phase)).astype(np.complex64)


def _points(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    count = int(rng.integers(3, 9))
    index = tuple(rng.integers(1, max(2, n - 1), count) for n in shape)
    out[index] = rng.uniform(0.5, 1.0, count)
    return out


def _shapes(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    for _ in range(int(rng.integers(2, 5))):
        value = rng.uniform(0.4, 1.0)
        centre = [rng.uniform(0.2, 0.8) * n for n in shape]
        if rng.random() < 0.5:  # a plate facing the array
            half = [rng.uniform(0.5, 1.5), rng.uniform(0.1, 0.3) * shape[1], rng.uniform(0.1, 0.3) * shape[2]]
            inside = np.all([np.abs(c - m) <= h for c, m, h in zip((z, y, x), centre, half, strict=True)], axis=0)
        else:
            radius = rng.uniform(0.06, 0.15) * min(shape[1:])
            inside = sum(((c - m) / s) ** 2 for c, m, s in
                         zip((z, y, x), centre, (radius * shape[0] / shape[1], radius, radius), strict=True)) <= 1
        out[inside] = np.maximum(out[inside], value)
    return out


def _letters(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    nz, ny, nx = shape
    out = np.zeros(shape, np.float32)
    font = ImageFont.load_default(size=max(8, int(0.7 * min(ny, nx))))
    for depth in rng.choice(np.arange(2, max(3, nz - 2)), size=min(2, max(1, nz - 4)), replace=False):
        canvas = Image.new("L", (nx, ny), 0)
        ImageDraw.Draw(canvas).text((nx / 2, ny / 2), str(rng.choice(list(string.ascii_uppercase))), fill=255,
                                    font=font, anchor="mm")
        out[int(depth)] = np.asarray(canvas, np.float32)[::-1] / 255 * rng.uniform(0.6, 1.0)
    return out


def magnitude_stack(count: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """The magnitudes of ``count`` random scenes (kind "random") of ``shape`` drawn from
    ``numpy.random.default_rng(seed)``, stacked along z: (count * nz, ny, nx) float16, values in [0, 1]. The
    training data of the radar magnitude denoiser (``recon train radar-denoiser``, scripts/training_data.py)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([np.abs(make_scene("random", shape, rng)) for _ in range(count)]).astype(np.float16)
