"""Synthetic test objects: the 3D modified Shepp-Logan phantom and Bernoulli-Gaussian sparse signals."""

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
