"""Parallel-beam CT: a Joseph projector with an exact adjoint, stored or matrix-free, and filtered back-projection.

Geometry (all lengths in image pixels, the pixel size is 1):

- Images are ``(..., ny, nx)``; row ``i``, column ``j`` is the pixel centred at
  ``x = j - (nx - 1) / 2`` and ``y = (ny - 1) / 2 - i`` (x to the right, y up, origin at the image centre, which
  is the rotation axis).
- View ``v`` at angle ``theta`` (radians, counter-clockwise from the x axis) measures line integrals along
  the rays ``x cos(theta) + y sin(theta) = s``. Detector bin ``k`` sits at
  ``s = (k - (n_det - 1) / 2 - det_offset) * det_spacing``: ``det_spacing`` is the bin width in image pixels and
  ``det_offset`` (in bins, default 0) is where the rotation axis projects, counted from the detector centre, so
  positive values mean the axis falls on a higher bin index (a centre of rotation ``c`` in bin coordinates, as
  beamline files give it, is ``det_offset = c - (n_det - 1) / 2``).
- Sinograms are ``(..., n_views, n_det)``. They match ``skimage.transform.radon(image,
  theta=degrees(angles), circle=False).T`` on the bins both grids share (for odd image sizes exactly,
  where skimage's rotation centre is the image centre), and ASTRA's ``linear`` projector with the same angles.

The projector is Joseph's ray-driven method with linear interpolation (ASTRA's ``linear`` projector): each
ray takes one sample per row (or column, whichever axis it is closer to), interpolates linearly between
the two neighbouring pixels and weights by the path length per step, ``1 / |cos|`` (or ``1 / |sin|``).
Two implementations give the same values (to float rounding):

- ``"stored"``: a CSR matrix ``A`` (rows ``view * n_det + bin``, columns ``i * nx + j``) together with the CSR of
  its transpose, so forward and adjoint are both one CSR times dense product over all leading dims. Fastest
  per call on CPU, but it must be built (about 90 ns per non-zero, once per process) and held.
- ``"matrix-free"``: :class:`recon.physics.joseph.JosephPlan`, the same samples computed on the fly (compiled
  kernels on CPU, ``grid_sample`` on CUDA); memory ``O(n_views * (n_det + ny + nx))``, nothing to build.

``projector="auto"`` stores the matrix when the pair takes at most ``STORED_MATRIX_MAX_BYTES`` (and a quarter of
the available memory), else goes matrix-free.

Memory bound of the stored pair: ``nnz <= 2 * n_views * n_det * max(ny, nx)`` (about ``2 * n_views * ny * nx /
det_spacing`` in practice); each of the two matrices takes ``8 * nnz`` bytes in float32 with int32 indices (e.g.
256^2 pixels, 60 views: nnz = 7.1e6, 113 MB for the pair; 512^2, 720 views: 6 GB), and each copy made for
another device or dtype adds ``8 * nnz`` (float32) or ``12 * nnz`` (float64) bytes per matrix. A call on ``B``
columns (the product of the leading dims) also needs about twice its input plus twice its output, so callers
bound memory by chunking slices into the leading dims.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from deepinv.physics import LinearPhysics

from recon.errors import UserError
from recon.physics import FBP_FILTERS
from recon.physics.joseph import JosephFunction, JosephPlan, estimated_matrix_bytes
from recon.physics.registry import register_example

LOGGER = logging.getLogger(__name__)

STORED_MATRIX_MAX_BYTES = 2**30
"""Largest stored matrix pair that ``projector="auto"`` builds (see :func:`choose_projector` and the CT projector
guide for the measurements behind it)."""


@dataclass(frozen=True)
class ParallelGeometry:
    """Hashable description of a 2D parallel-beam geometry (key of the system-matrix cache)."""

    ny: int
    nx: int
    angles: tuple[float, ...]
    n_det: int
    det_spacing: float
    det_offset: float = 0.0

    @property
    def n_views(self) -> int:
        return len(self.angles)

    def bin_positions(self) -> np.ndarray:
        """``s`` of each detector bin centre (n_det,), in image pixels (see the module docstring)."""
        return (np.arange(self.n_det) - (self.n_det - 1) / 2 - self.det_offset) * self.det_spacing

    @classmethod
    def checked(cls, image_shape: tuple[int, int], angles: np.ndarray, n_det: int | None,
                det_spacing: float, det_offset: float = 0.0) -> ParallelGeometry:
        """The geometry of ``angles`` (radians, flattened in C order), checked; ``n_det`` defaults to
        ``ceil(sqrt(2) * max(ny, nx))``, which covers the image diagonal. Raises ValueError."""
        ny, nx = (int(n) for n in image_shape)
        if angles.size == 0 or not np.isfinite(angles).all():
            raise ValueError(f"angles must be a non-empty array of finite radians, got shape {angles.shape}")
        n_det = int(n_det) if n_det is not None else math.ceil(math.sqrt(2) * max(ny, nx))
        if min(ny, nx, n_det) < 1 or det_spacing <= 0:
            raise ValueError("need a positive image shape, n_det and det_spacing, "
                             f"got {image_shape}, {n_det}, {det_spacing}")
        if not math.isfinite(det_offset):
            raise ValueError(f"det_offset must be a finite number of detector bins, got {det_offset}")
        return cls(ny, nx, tuple(angles.ravel().tolist()), n_det, float(det_spacing), float(det_offset))


def as_radians(angles: Sequence[float] | np.ndarray | torch.Tensor) -> np.ndarray:
    """Angles as a float64 numpy array on the CPU (from a list, numpy array or tensor on any device)."""
    return np.asarray(torch.as_tensor(angles, dtype=torch.float64).cpu(), dtype=np.float64)


def _joseph_view(theta: float, g: ParallelGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries of one view's rows: (entries per row (n_det,), column indices, weights), row by row."""
    s = g.bin_positions()
    cos, sin = math.cos(theta), math.sin(theta)
    if abs(cos) >= abs(sin):  # ray closer to the y axis: one sample per row, interpolate along x
        y = (g.ny - 1) / 2 - np.arange(g.ny)
        pos = (s[:, None] - y[None, :] * sin) / cos + (g.nx - 1) / 2  # column index, (n_det, ny)
        start, stride, n_along, step_len = np.arange(g.ny) * g.nx, 1, g.nx, 1 / abs(cos)
    else:  # one sample per column, interpolate along y
        x = np.arange(g.nx) - (g.nx - 1) / 2
        pos = (g.ny - 1) / 2 - (s[:, None] - x[None, :] * cos) / sin  # row index, (n_det, nx)
        start, stride, n_along, step_len = np.arange(g.nx), g.nx, g.ny, 1 / abs(sin)
    lo = np.floor(pos)
    frac = (pos - lo).astype(np.float32)
    lo = lo.astype(np.int64)
    along = np.stack([lo, lo + 1], axis=-1)  # (n_det, n_steps, 2)
    weights = np.stack([1 - frac, frac], axis=-1) * np.float32(step_len)
    keep = (along >= 0) & (along < n_along) & (weights > 0)
    cols = start[None, :, None] + along * stride
    return keep.sum(axis=(1, 2)), cols[keep], weights[keep]


def _to_torch_csr(m: sp.csr_matrix) -> torch.Tensor:
    """Torch CSR sharing ``m``'s arrays (int32 indices when nnz allows, as scipy picks them)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr), torch.from_numpy(m.indices),
                                       torch.from_numpy(m.data), size=m.shape, check_invariants=False)


def joseph_matrix(geometry: ParallelGeometry) -> sp.csr_matrix:
    """Joseph system matrix (n_views * n_det, ny * nx), scipy float32 CSR with sorted indices, not cached."""
    parts = [_joseph_view(theta, geometry) for theta in geometry.angles]
    indptr = np.concatenate([[0], np.cumsum(np.concatenate([p[0] for p in parts]))])
    data, indices = np.concatenate([p[2] for p in parts]), np.concatenate([p[1] for p in parts])
    matrix = sp.csr_matrix((data, indices, indptr),
                           shape=(geometry.n_views * geometry.n_det, geometry.ny * geometry.nx))
    matrix.sort_indices()
    return matrix


def csr_pair(matrix: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """``matrix`` and its transpose as torch CSR tensors (what :class:`_MatrixCopies` holds)."""
    return _to_torch_csr(matrix), _to_torch_csr(matrix.T.tocsr())


@functools.lru_cache(maxsize=8)
def system_matrices(geometry: ParallelGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """Joseph system matrix ``A`` (n_views * n_det, ny * nx) and ``A^T``, both CPU float32 CSR, cached in this
    process. A build that will take long (about 90 ns per non-zero on one core) says so on the ``recon.physics.ct``
    logger: INFO from 64 MB, WARNING above ``STORED_MATRIX_MAX_BYTES``."""
    size = estimated_matrix_bytes(JosephPlan(geometry))
    if size >= 2**26:
        level = logging.WARNING if size > STORED_MATRIX_MAX_BYTES else logging.INFO
        LOGGER.log(level, "building the stored CT matrix (%d views of %dx%d, about %.1f GB, about %.0f s); "
                   "projector='matrix-free' stores nothing", geometry.n_views, geometry.ny, geometry.nx,
                   size / 1e9, size / 16 * 90e-9)
    start = time.perf_counter()
    pair = csr_pair(joseph_matrix(geometry))
    if size >= 2**26:
        LOGGER.log(level, "built the stored CT matrix in %.1f s", time.perf_counter() - start)
    return pair


STORED_PRODUCT_COLUMNS = 16
"""Slices per sparse product on the CPU: the CSR product's dense operand must stay in the caches. Measured at 256^2,
60 views, 64 slices, one thread: one product 407 ms (forward) and 90 ms (adjoint), in chunks of 32 217 / 89, of 16
89 / 71, of 8 92 / 91, of 4 159 / 134."""


STORED_COLUMN_GROUP = 4
"""The CPU's CSR product rounds a column differently when the column count is not a multiple of 4 (another code
path: measured 6e-5 apart at 256^2 / 60 views), so a slice's projection depended on how many slices shared the call,
and a streamed slab's CGLS drifted from the whole run's (a slice stopped by the discrepancy principle one iteration
later). Zero columns pad each product to a multiple of 4: every column then rounds alike whatever the batch (checked
with MKL dispatching AVX-512, AVX2 and SSE4.2 code), and the padded products are faster. At 256^2 / 60 views,
2 threads, ms per slice, unpadded / padded, forward 5.86 / 3.30 and adjoint 4.43 / 2.70 for one slice, 2.03 / 1.17
and 1.69 / 0.85 for three, 0.82 / 0.86 and 0.49 / 0.44 for eight (no padding needed). STORED_PRODUCT_COLUMNS
must stay a multiple of it, so that every chunk of a long product is one too."""


def _sparse_product(matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``matrix @ dense`` (rows, columns); on the CPU in chunks of ``STORED_PRODUCT_COLUMNS`` columns, padded to a
    multiple of ``STORED_COLUMN_GROUP`` so that each column's result does not depend on the others."""
    if dense.device.type != "cpu":
        return torch.sparse.mm(matrix, dense)
    columns = dense.shape[1]
    pad = -columns % STORED_COLUMN_GROUP
    padded = torch.nn.functional.pad(dense, (0, pad)) if pad else dense
    step = STORED_PRODUCT_COLUMNS
    products = [torch.sparse.mm(matrix, padded[:, i:i + step]) for i in range(0, padded.shape[1], step)]
    return (products[0] if len(products) == 1 else torch.cat(products, dim=1))[:, :columns]


class _SparseMatmul(torch.autograd.Function):
    """``matrix @ dense`` whose backward is ``matrix_t @ grad`` (CSR both ways)."""

    @staticmethod
    def forward(ctx, dense: torch.Tensor, matrix: torch.Tensor, matrix_t: torch.Tensor) -> torch.Tensor:
        ctx.matrices = (matrix, matrix_t)
        return _sparse_product(matrix, dense)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        matrix, matrix_t = ctx.matrices
        return _SparseMatmul.apply(grad, matrix_t, matrix), None, None


class _MatrixCopies:
    """The CPU float32 matrix pair and its copies per (device, dtype); shared, never deep-copied."""

    def __init__(self, base: tuple[torch.Tensor, torch.Tensor]):
        self._copies = {(torch.device("cpu"), torch.float32): base}

    def get(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (device, dtype)
        if key not in self._copies:
            base = self._copies[(torch.device("cpu"), torch.float32)]
            self._copies[key] = tuple(m.to(device=device, dtype=dtype) for m in base)
        return self._copies[key]

    def __deepcopy__(self, memo):
        return self


def angular_weights(angles: np.ndarray) -> np.ndarray:
    """Quadrature weight of each view (radians): half the gaps to its neighbours on the circle of period pi.

    Uniform angles over [0, pi) give ``pi / n_views`` each; a 360-degree scan shares the weight between the
    two opposite views; a single view gets pi. ``angles`` (..., n_views): each row along the last axis is
    one set of views.
    """
    folded = np.mod(angles, np.pi)
    order = np.argsort(folded, axis=-1, kind="stable")
    ordered = np.take_along_axis(folded, order, axis=-1)
    gaps = np.diff(np.concatenate([ordered, ordered[..., :1] + np.pi], axis=-1), axis=-1)  # to the next view
    weights = np.empty_like(folded)
    np.put_along_axis(weights, order, (gaps + np.roll(gaps, 1, axis=-1)) / 2, axis=-1)
    return weights


def fourier_filter(size: int, name: str) -> np.ndarray:
    """Frequency response (size,) of an FBP filter for unit detector spacing, in FFT order.

    The ramp is the DFT of the spatial Ram-Lak kernel (as in skimage's ``iradon``), so that zero-padding to
    ``size`` avoids the DC offset of a sampled ``|f|``; "shepp-logan" and "hann" apodise it.
    """
    if name not in FBP_FILTERS:
        raise UserError(f"unknown FBP filter {name!r}", key="filter",
                        fix=f"use one of {', '.join(FBP_FILTERS)}")
    n = np.concatenate([np.arange(1, size / 2 + 1, 2, dtype=int), np.arange(size / 2 - 1, 0, -2, dtype=int)])
    kernel = np.zeros(size)
    kernel[0] = 0.25
    kernel[1::2] = -1 / (np.pi * n) ** 2
    response = np.real(np.fft.fft(kernel))
    if name == "shepp-logan":
        omega = np.pi * np.fft.fftfreq(size)[1:]
        response[1:] *= np.sin(omega) / omega
    elif name == "hann":
        response *= np.fft.fftshift(np.hanning(size))
    return response


FILTER_CHUNK_BYTES = 64 * 2**20
"""Working memory of one batch of detector rows in :func:`filter_projections` (padded rows and their spectra)."""


def filter_projections(y: torch.Tensor, filter: str, det_spacing: float) -> torch.Tensor:
    """Projections (..., n_det) convolved with the FBP filter ``filter`` along the detector (zero-padded).

    All rows (slices x views) go through ``torch.fft.rfft`` together, in batches of ``FILTER_CHUNK_BYTES``.
    """
    n_det = y.shape[-1]
    size = max(64, 2 ** math.ceil(math.log2(2 * n_det)))
    # continuous convolution over s = detector spacing times the discrete one, hence / det_spacing
    response = fourier_filter(size, filter)[: size // 2 + 1] / det_spacing
    response = torch.as_tensor(response, dtype=y.dtype, device=y.device)
    rows = y.reshape(-1, n_det)
    filtered = torch.empty_like(rows)
    batch = max(1, FILTER_CHUNK_BYTES // (2 * size * y.element_size()))
    for start in range(0, rows.shape[0], batch):
        spectrum = torch.fft.rfft(rows[start:start + batch], n=size, dim=-1) * response
        filtered[start:start + batch] = torch.fft.irfft(spectrum, n=size, dim=-1)[:, :n_det]
    return filtered.reshape(y.shape)


class JosephProjector(LinearPhysics):
    """What the parallel-beam operators share: the checked geometry and its projector, either the stored Joseph
    matrix pair (copied per device and dtype on first use) or, where the subclass offers it, the matrix-free
    :class:`~recon.physics.joseph.JosephPlan`. Subclasses name the axes of ``angles`` in ``angle_layout``, list
    the projectors they implement in ``projectors`` and build their pair in ``matrices()``.

    :param image_shape: ``(ny, nx)`` in pixels.
    :param angles: view angles in radians, shaped as ``angle_layout`` says, any order and spacing.
    :param n_det: detector bins; default ``ceil(sqrt(2) * max(ny, nx))`` covers the image diagonal.
    :param det_spacing: detector bin width in image pixels.
    :param det_offset: where the rotation axis projects on the detector, in bins from the detector centre
        (positive: towards higher bin indices); see the module docstring.
    :param projector: ``"stored"``, ``"matrix-free"`` or ``"auto"`` (:func:`choose_projector`).
    :param device: device of the matrix copy prepared now; other devices are converted on first use.
    :param dtype: dtype of the matrix copy prepared now (float32 or float64).
    :param kwargs: passed to ``deepinv.physics.LinearPhysics`` (noise_model, max_iter, ...).
    """

    angle_layout: tuple[str, ...] = ("n_views",)
    projectors: tuple[str, ...] = ("stored",)

    def __init__(self, image_shape: tuple[int, int], angles: Sequence | np.ndarray | torch.Tensor,
                 n_det: int | None = None, det_spacing: float = 1.0, det_offset: float = 0.0,
                 projector: str = "auto", device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 **kwargs):
        ny, nx = (int(n) for n in image_shape)
        kwargs.setdefault("img_size", (1, ny, nx))
        super().__init__(device=device, **kwargs)
        angles = as_radians(angles)
        if angles.ndim != len(self.angle_layout):
            raise ValueError(f"angles must be ({', '.join(self.angle_layout)}), got shape {angles.shape}")
        self.geometry = ParallelGeometry.checked((ny, nx), angles, n_det, det_spacing, det_offset)
        self.image_shape = (ny, nx)
        self.angles = torch.from_numpy(angles)
        self.n_det = self.geometry.n_det
        self.det_spacing = self.geometry.det_spacing
        self.det_offset = self.geometry.det_offset
        if projector not in ("auto", *self.projectors):
            raise ValueError(f"projector must be one of auto, {', '.join(self.projectors)}; got {projector!r}")
        self.plan = JosephPlan(self.geometry) if "matrix-free" in self.projectors else None
        self.projector = choose_projector(self.plan) if projector == "auto" else projector
        if self.projector == "stored":
            self._matrices = _MatrixCopies(self.matrices())
            self._matrices.get(self._device_holder.device, dtype)

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The CPU float32 CSR pair (A, A^T) of this operator."""
        raise NotImplementedError


def choose_projector(plan: JosephPlan | None) -> str:
    """``"stored"`` when the matrix pair of ``plan``'s geometry takes at most ``STORED_MATRIX_MAX_BYTES`` and a
    quarter of the memory available now, else ``"matrix-free"`` (always ``"stored"`` without a plan)."""
    if plan is None:
        return "stored"
    size = estimated_matrix_bytes(plan)
    return "stored" if size <= min(STORED_MATRIX_MAX_BYTES, available_memory() // 4) else "matrix-free"


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable`` on Linux; elsewhere, unbounded)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**62


class ParallelBeamCT(JosephProjector):
    """2D parallel-beam CT, applied slice by slice to any leading dims (see the module docstring); parameters as
    :class:`JosephProjector`, ``angles`` 1D. Both projectors give the same values (to float rounding).

    ``A``: ``(..., ny, nx) -> (..., n_views, n_det)``; ``A_adjoint`` is its exact transpose.
    """

    projectors = ("stored", "matrix-free")

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        return system_matrices(self.geometry)

    @property
    def n_views(self) -> int:
        return self.geometry.n_views

    def _project(self, t: torch.Tensor, in_shape: tuple[int, int], out_shape: tuple[int, int],
                 transpose: bool) -> torch.Tensor:
        if tuple(t.shape[-2:]) != in_shape:
            raise ValueError(f"expected (..., {in_shape[0]}, {in_shape[1]}), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"CT needs a real floating tensor, got {t.dtype}")
        if self.projector == "matrix-free":
            out = JosephFunction.apply(t.reshape(-1, *in_shape).contiguous(), self.plan, transpose)
            return out.reshape(*t.shape[:-2], *out_shape)
        matrix, matrix_t = self._matrices.get(t.device, t.dtype)
        if transpose:
            matrix, matrix_t = matrix_t, matrix
        columns = t.reshape(-1, in_shape[0] * in_shape[1]).T  # (in_size, batch), one batched product
        out = _SparseMatmul.apply(columns, matrix, matrix_t)
        # Contiguous (batch-major) output: the transposed view would make every later elementwise op ~50x slower.
        return out.T.contiguous().reshape(*t.shape[:-2], *out_shape)

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Sinogram (..., n_views, n_det) of images (..., ny, nx)."""
        return self._project(x, self.image_shape, (self.n_views, self.n_det), transpose=False)

    def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        """Exact transpose: images (..., ny, nx) from sinograms (..., n_views, n_det)."""
        return self._project(y, (self.n_views, self.n_det), self.image_shape, transpose=True)

    def fbp(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:
        """Filtered back-projection (..., n_views, n_det) -> (..., ny, nx), in the units of the image.

        :param filter: one of ``FBP_FILTERS``.
        """
        weights = torch.as_tensor(angular_weights(self.angles.numpy()), dtype=y.dtype, device=y.device)
        # each pixel's interpolation kernel in A^T has unit area in s, so summing bins needs det_spacing
        filtered = filter_projections(y, filter, self.det_spacing) * weights[:, None]
        return self.A_adjoint(filtered) * self.det_spacing


@register_example("ct-parallel-2d")
def _example_2d(device: torch.device, dtype: torch.dtype) -> tuple[ParallelBeamCT, tuple[int, ...]]:
    angles = np.linspace(0, np.pi, 20, endpoint=False)
    return ParallelBeamCT((32, 32), angles, device=device, dtype=dtype), (2, 1, 32, 32)


@register_example("ct-parallel-3d")
def _example_3d(device: torch.device, dtype: torch.dtype) -> tuple[ParallelBeamCT, tuple[int, ...]]:
    angles = np.linspace(0, np.pi, 20, endpoint=False)
    return ParallelBeamCT((32, 32), angles, device=device, dtype=dtype), (1, 1, 4, 32, 32)


@register_example("ct-parallel-matrix-free")
def _example_matrix_free(device: torch.device, dtype: torch.dtype) -> tuple[ParallelBeamCT, tuple[int, ...]]:
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, 19)
    return ParallelBeamCT((28, 36), angles, det_spacing=0.8, det_offset=1.5, projector="matrix-free", device=device,
                          dtype=dtype), (2, 1, 28, 36)
