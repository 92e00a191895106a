"""Synthetic objects: the 3D modified Shepp-Logan phantom, random ellipses, foam, Bernoulli-Gaussian signals."""

from __future__ import annotations

import numpy as np

# Modified Shepp-Logan ellipsoids (Toft / Kak-Slaney 3D extension): value, semi-axes (a, b, c),
# centre (x0, y0, z0) in [-1, 1]^3 and rotation about z in degrees.
_SHEPP_LOGAN_3D = (
    (1.0, 0.6900, 0.920, 0.810, 0.0, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.780, 0.0, -0.0184, 0.0, 0.0),
    (-0.2, 0.1100, 0.310, 0.220, 0.22, 0.0, 0.0, -8.0),
    (-0.2, 0.1600, 0.410, 0.280, -0.22, 0.0, 0.0, 28.0),
    (0.1, 0.2100, 0.250, 0.410, 0.0, 0.35, -0.15, 0.0),
    (0.1, 0.0460, 0.046, 0.050, 0.0, 0.1, 0.25, 0.0),
    (0.1, 0.0460, 0.046, 0.050, 0.0, -0.1, 0.25, 0.0),
    (0.1, 0.0460, 0.023, 0.050, -0.08, -0.605, 0.0, 0.0),
    (0.1, 0.0230, 0.023, 0.020, 0.0, -0.606, 0.0, 0.0),
    (0.1, 0.0230, 0.046, 0.020, 0.06, -0.605, 0.0, 0.0),
)


def shepp_logan_3d(size: int, n_slices: int | None = None) -> np.ndarray:
    """The 3D modified Shepp-Logan phantom, float32 (n_slices, size, size) with values in [0, 1].

    Slices cover z in [-1, 1] (``n_slices`` defaults to ``size``); row 0 is y = +1 (top of the head).
    """
    n_slices = size if n_slices is None else n_slices
    axis = (np.arange(size) - (size - 1) / 2) / (size / 2)
    z = ((np.arange(n_slices) - (n_slices - 1) / 2) / (n_slices / 2))[:, None, None]
    y = -axis[None, :, None]
    x = axis[None, None, :]
    volume = np.zeros((n_slices, size, size), dtype=np.float32)
    for value, a, b, c, x0, y0, z0, degrees in _SHEPP_LOGAN_3D:
        cos, sin = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        xr = (x - x0) * cos + (y - y0) * sin
        yr = -(x - x0) * sin + (y - y0) * cos
        inside = (xr / a) ** 2 + (yr / b) ** 2 + ((z - z0) / c) ** 2 <= 1
        volume += np.float32(value) * inside
    return np.clip(volume, 0, 1)


def bernoulli_gaussian(n_samples: int, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Signals (n_samples, n) float32, each with exactly k nonzeros drawn from N(0, 1) at random positions."""
    signals = np.zeros((n_samples, n), dtype=np.float32)
    for row in signals:
        row[rng.choice(n, size=k, replace=False)] = rng.standard_normal(k)
    return signals


def _grid(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Open coordinate grids in [-1, 1] along each axis of ``shape`` (2D: y, x; 3D: z, y, x)."""
    return list(np.ogrid[tuple(slice(-1, 1, complex(0, n)) for n in shape)])


def random_ellipses(shape: tuple[int, ...], rng: np.random.Generator, count: int = 12) -> np.ndarray:
    """A random piecewise-constant image (ny, nx) or volume (nz, ny, nx) of ``count`` overlapping ellipses
    (ellipsoids in 3D, rotated about z), float32 in [0, 1]: a large body ellipse with smaller ones added."""
    grid = _grid(shape)
    image = np.zeros(shape, dtype=np.float32)
    for index in range(count):
        size = rng.uniform(0.6, 0.9, len(shape)) if index == 0 else rng.uniform(0.03, 0.4, len(shape))
        centre = np.zeros(len(shape)) if index == 0 else rng.uniform(-0.6, 0.6, len(shape))
        angle = rng.uniform(0, np.pi)
        cos, sin = np.cos(angle), np.sin(angle)
        dy, dx = grid[-2] - centre[-2], grid[-1] - centre[-1]
        axes = [dx * cos + dy * sin, -dx * sin + dy * cos] + ([grid[0] - centre[0]] if len(shape) == 3 else [])
        inside = sum((a / s) ** 2 for a, s in zip(axes, size[::-1], strict=True)) <= 1
        image += np.float32(1.0 if index == 0 else rng.uniform(-0.5, 0.5)) * inside
    return np.clip(image / max(float(image.max()), 1e-6), 0, 1)


def foam(shape: tuple[int, ...], rng: np.random.Generator, holes: int = 60) -> np.ndarray:
    """A foam-like image (ny, nx) or volume (nz, ny, nx), float32 in [0, 1]: a disk (ball) of density 1 with
    ``holes`` random circular (spherical) voids of density 0 to 0.3, radii 0.02 to 0.15 of the field."""
    grid = _grid(shape)
    radius2 = sum(g**2 for g in grid)
    image = (radius2 <= 0.85**2).astype(np.float32)
    for _ in range(holes):
        centre = rng.uniform(-0.65, 0.65, len(shape))
        hole = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= rng.uniform(0.02, 0.15) ** 2
        image[hole] = np.float32(rng.uniform(0, 0.3))
    return image
