"""Near-field MIMO radar (Born model), matrix-free: ``y[f, t, r] = sum_v x_v exp(-j k_f (R_tv + R_rv)) /
(4 pi R_tv R_rv)`` with k_f = 2 pi f / c and R_tv, R_rv the distances (m) from voxel v to transmitter t and
receiver r.

The kernel factorises per antenna, G_t[f, t, v] = exp(-j k_f R_tv) / (sqrt(4 pi) R_tv) and likewise G_r, so
``A x`` is, per frequency, ``G_t diag(x) G_r^T`` and is computed chunk by chunk over voxels: nothing of size
F x T x R x V (the dense matrix) is ever held. Memory bound: a chunk holds G_t, G_r and the product
G_t diag(x) for its voxels, 8 (F T + F R + B F T) bytes per voxel in complex64, twice that with temporaries;
``max_chunk_bytes`` (default 32 MiB) sets the chunk from it. Works on CPU and CUDA, float32 or float64.

Iterative solvers apply the operator hundreds of times, and computing the kernel tables (cos and sin of
F (T + R) V phases) takes most of each application: :meth:`NearFieldMIMO.cache_tables` keeps them, chunk by chunk,
when all of them fit in a given budget, 8 F (T + R) V bytes in complex64 (on the default grid and 20 frequencies
117 MiB, T R / (T + R) = 6x less than the dense matrix).

Layout: images are real (B, 2, nz, ny, nx) with channels (real, imag), z = range; measurements real
(B, 2, F, T, R). Voxel centres span ``grid_min``..``grid_max`` ([x, y, z], metres) inclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from deepinv.physics import LinearPhysics

from recon.errors import UserError
from recon.physics.registry import register_example

SPEED_OF_LIGHT = 299_792_458.0  # m/s
MIGRATIONS = ("adjoint", "matched", "kirchhoff")
"""Per-antenna amplitudes of :meth:`NearFieldMIMO.migrate`: the exact adjoint, the matched filter (phase
only), and Kirchhoff migration (spreading undone, obliquity cos theta, ramp k_f)."""


@dataclass(frozen=True)
class RadarGeometry:
    """Antennas, frequencies and the reconstruction grid. Positions (n, 3) in metres, frequencies in Hz."""

    frequencies: np.ndarray
    tx_positions: np.ndarray
    rx_positions: np.ndarray
    grid_min: tuple[float, float, float]
    grid_max: tuple[float, float, float]
    grid_shape: tuple[int, int, int]
    """(nz, ny, nx)."""

    def voxel_centres(self) -> np.ndarray:
        """(V, 3) voxel centres [x, y, z] in metres, in (z, y, x) C order."""
        nz, ny, nx = self.grid_shape
        axes = [np.linspace(lo, hi, n) for lo, hi, n in zip(self.grid_min, self.grid_max, (nx, ny, nz), strict=True)]
        z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
        return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)

    def voxel_size(self) -> tuple[float, float, float]:
        """(dz, dy, dx) in metres (1 along an axis of one voxel)."""
        spans = zip(self.grid_min[::-1], self.grid_max[::-1], self.grid_shape, strict=True)
        return tuple((hi - lo) / (n - 1) if n > 1 else 1.0 for lo, hi, n in spans)


def diagonal_array(n_tx: int = 12, n_rx: int = 13, aperture: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """The paper's array: ``n_tx`` transmitters on one diagonal and ``n_rx`` receivers on the other of an
    ``aperture`` x ``aperture`` m square at z = 0. Returns (tx (n_tx, 3), rx (n_rx, 3)) in metres."""
    half = aperture / 2
    t = np.linspace(-half, half, n_tx)
    r = np.linspace(-half, half, n_rx)
    tx = np.stack([t, t, np.zeros_like(t)], axis=1)
    rx = np.stack([r, -r, np.zeros_like(r)], axis=1)
    return tx, rx


class NearFieldMIMO(LinearPhysics):
    """The Born operator of a :class:`RadarGeometry`, applied in voxel chunks (see the module docstring)."""

    def __init__(self, geometry: RadarGeometry, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 max_chunk_bytes: int = 32 * 2**20):
        super().__init__()
        if np.any(np.asarray(geometry.frequencies) <= 0):
            raise UserError("frequencies must be positive (Hz)", key="frequencies", fix="store frequencies in Hz")
        self.geometry = geometry
        self.grid_shape = tuple(int(n) for n in geometry.grid_shape)
        self.max_chunk_bytes = max_chunk_bytes
        self.register_buffer("k", torch.as_tensor(2 * math.pi * np.asarray(geometry.frequencies) / SPEED_OF_LIGHT,
                                                  dtype=dtype, device=device))
        self.register_buffer("tx", torch.as_tensor(geometry.tx_positions, dtype=dtype, device=device))
        self.register_buffer("rx", torch.as_tensor(geometry.rx_positions, dtype=dtype, device=device))
        self.register_buffer("voxels", torch.as_tensor(geometry.voxel_centres(), dtype=dtype, device=device))
        self._cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] | None = None

    def table_bytes(self) -> int:
        """Bytes of the kernel tables G_t and G_r of the whole grid (what :meth:`cache_tables` keeps)."""
        f, t, r = self.measurement_shape
        return self.k.dtype.to_complex().itemsize * f * (t + r) * self.voxels.shape[0]

    def cache_tables(self, max_bytes: int) -> bool:
        """Keep the kernel tables of A and A^H from now on if :meth:`table_bytes` <= ``max_bytes``; returns
        whether they are kept (``max_bytes`` 0 drops a cache). The results do not change, only the time."""
        self._cache = {} if 0 < self.table_bytes() <= max_bytes else None
        self._cache_budget = max_bytes
        return self._cache is not None

    @property
    def measurement_shape(self) -> tuple[int, int, int]:
        """(F, T, R)."""
        return (self.k.shape[0], self.tx.shape[0], self.rx.shape[0])

    def chunk_voxels(self, batch: int) -> int:
        """Voxels per chunk so that one chunk's tables and product fit in ``max_chunk_bytes``."""
        f, t, r = self.measurement_shape
        per_voxel = 2 * self.k.dtype.to_complex().itemsize * f * (t + r + batch * t)
        return max(1, self.max_chunk_bytes // per_voxel)

    def _tables(self, chunk: slice, migration: str = "adjoint") -> tuple[torch.Tensor, torch.Tensor]:
        """Conjugate-free per-antenna kernels (F, T, Vc) and (F, R, Vc) for the voxels ``chunk``, from the cache
        when :meth:`cache_tables` keeps them."""
        if migration != "adjoint" or self._cache is None:
            return self._kernel_tables(chunk, migration)
        key = (chunk.start, chunk.stop)
        if key not in self._cache:
            held = sum(g.nbytes for tables in self._cache.values() for g in tables)
            if held + self.table_bytes() * (key[1] - key[0]) / self.voxels.shape[0] > self._cache_budget:
                self._cache.clear()  # the chunks of another batch size: keep one chunking at a time
            self._cache[key] = self._kernel_tables(chunk, migration)
        return self._cache[key]

    def _kernel_tables(self, chunk: slice, migration: str) -> tuple[torch.Tensor, torch.Tensor]:
        voxels = self.voxels[chunk]
        tables = []
        for antennas in (self.tx, self.rx):
            distance = torch.cdist(antennas, voxels)  # (n, Vc)
            if migration == "adjoint":
                amplitude = 1 / (math.sqrt(4 * math.pi) * distance)
            elif migration == "matched":
                amplitude = torch.ones_like(distance)
            else:  # kirchhoff: undo the spreading, weigh by the obliquity cos theta = dz / R
                amplitude = (voxels[:, 2] - antennas[:, 2:3]).abs() * math.sqrt(4 * math.pi)
            phase = self.k[:, None, None] * distance  # (F, n, Vc)
            # cos and sin apart, then combined: 2x faster on CPU than torch.polar (which does not vectorise)
            tables.append(torch.complex(torch.cos(phase) * amplitude, torch.sin(phase).neg_() * amplitude))
        return tables[0], tables[1]

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Reflectivity (B, 2, nz, ny, nx) -> measurements (B, 2, F, T, R)."""
        xc = self._to_complex(x, self.grid_shape).flatten(1)  # (B, V)
        batch, n_voxels = xc.shape
        y = xc.new_zeros((batch, *self.measurement_shape))
        step = self.chunk_voxels(batch)
        for start in range(0, n_voxels, step):
            chunk = slice(start, min(start + step, n_voxels))
            g_t, g_r = self._tables(chunk)
            y += (g_t * xc[:, None, None, chunk]) @ g_r.transpose(1, 2)  # (B, F, T, Vc) @ (F, Vc, R)
        return torch.view_as_real(y).movedim(-1, 1)

    def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        """Measurements (B, 2, F, T, R) -> image (B, 2, nz, ny, nx), the exact adjoint of :meth:`A`."""
        return self.migrate(y, "adjoint")

    def migrate(self, y: torch.Tensor, migration: str = "adjoint") -> torch.Tensor:
        """sum_{f,t,r} y[f,t,r] conj(a_t(v) a_r(v)) exp(+j k_f (R_tv + R_rv)), per voxel, with per-antenna
        amplitudes ``migration`` (one of MIGRATIONS) and, for Kirchhoff, the ramp k_f: (B, 2, F, T, R) ->
        (B, 2, nz, ny, nx)."""
        yc = self._to_complex(y, self.measurement_shape)
        if migration == "kirchhoff":
            yc = yc * self.k[:, None, None]
        batch, n_voxels = yc.shape[0], self.voxels.shape[0]
        x = yc.new_zeros((batch, n_voxels))
        step = self.chunk_voxels(batch)
        for start in range(0, n_voxels, step):
            chunk = slice(start, min(start + step, n_voxels))
            g_t, g_r = self._tables(chunk, migration)
            x[:, chunk] = ((yc @ g_r.conj()) * g_t.conj()).sum(dim=(1, 2))  # (B, F, T, R) @ (F, R, Vc)
        return torch.view_as_real(x.reshape(batch, *self.grid_shape)).movedim(-1, 1)

    def dense_matrix(self) -> torch.Tensor:
        """The operator as a dense complex (F T R, V) matrix, for tests and benchmarks on small grids."""
        g_t, g_r = self._tables(slice(None))
        f, t, r = self.measurement_shape
        return (g_t[:, :, None, :] * g_r[:, None, :, :]).reshape(f * t * r, -1)

    @staticmethod
    def _to_complex(a: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        if a.ndim != len(shape) + 2 or a.shape[1] != 2 or tuple(a.shape[2:]) != tuple(shape):
            raise ValueError(f"expected a real tensor (B, 2, {', '.join(map(str, shape))}), got {tuple(a.shape)}")
        return torch.view_as_complex(a.movedim(1, -1).contiguous())


@register_example("mimo-nearfield")
def _example(device: torch.device, dtype: torch.dtype) -> tuple[LinearPhysics, tuple[int, ...]]:
    tx, rx = diagonal_array(3, 4)
    geometry = RadarGeometry(np.linspace(4e9, 16e9, 3), tx, rx, (-0.15, -0.15, 0.35), (0.15, 0.15, 0.65), (5, 4, 3))
    # a small chunk budget, so that the test runs several chunks
    return NearFieldMIMO(geometry, device=device, dtype=dtype, max_chunk_bytes=4096), (2, 2, 5, 4, 3)
