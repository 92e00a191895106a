"""Matrix-free Joseph projector: the stored matrix of :mod:`recon.physics.ct`, computed on the fly.

The same operator as :func:`recon.physics.ct.joseph_matrix` (Joseph's ray-driven projector with linear
interpolation, geometry in that module's docstring), without storing it. A view whose rays are closer to the y
axis (``|cos| >= |sin|``) samples every image row once: bin ``k`` reads row ``i`` at the column

    ``pos(k, i) = a k + b_i``,  ``a = det_spacing / cos``,  ``b_i = (s_0 - y_i sin) / cos + (nx - 1) / 2``

(``s_0`` the position of bin 0), interpolating linearly between the two neighbouring pixels, times the path
length per row ``1 / |cos|``; other views do the same along columns of the transposed image. So one view is a
sum over image rows of a 1D linear interpolation at positions affine in ``k``.

Two ways to compute it, chosen by the tensor's device:

- **CPU** (float32, float64): the compiled kernels of :mod:`recon.physics.joseph_cpu` (numba), one pass per
  sample, as fast as the stored matrix or faster (the CT projector guide has the measurements).
- **Other devices** (CUDA): ``torch.nn.functional.grid_sample`` (bilinear, zero padding) with each image row its
  own batch entry of height 1 (so the vertical coordinate is exactly 0 and nothing leaks from the neighbouring
  row), in chunks of (view, bin) pairs sized to ``chunk_bytes``. Its backward with respect to the input
  (``grid_sampler_2d_backward``) is the exact transpose. On CPU this path was 4-16x slower than the stored matrix
  (measured on 2 cores: it fuses index, gather and interpolation, yet separate torch ops were 2.6x slower still,
  ``torch.compile`` no faster after a 2-minute compilation, a prefix-sum formulation stalled on per-row gathers),
  which is why the CPU has its own kernels.

What is stored: per view, ``b`` for each row (``O(n_views * (ny + nx))``) and its footprint on the detector; the
``grid_sample`` path adds per (view, bin) pair its ``a k``, weight and output index (``O(n_views * n_det)``) per
device and dtype used: 31 MB at 720 views of 512^2 in all. Nothing grows with views x pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_CHUNK_BYTES = 16 * 2**20
"""Working memory of one chunk (sampling grid and samples), bytes; measured: 4 to 64 MB run about equally fast."""
FORWARD_SLICES = 32
"""Most slices per call of the compiled forward. A view adds into its sinogram rows (n_det x S values) once per
image row, and beyond about 32 slices they no longer stay in cache: at 512^2, 720 views, 2 threads, one call took
126 / 164 / 107 ms per slice for 128 / 64 / 256 slices, calls of 32 slices 75 / 72 / 81 (chunks of 16 or 24 were
slower). The adjoint writes each image row once per view and runs best in one call (57 ms per slice at 128 slices,
70 in calls of 32), so it is not split."""


@dataclass(frozen=True)
class _ViewGroup:
    """The views that interpolate along the same image axis, in pixel units (float64/int64 numpy).

    ``transposed``: the views step along columns (``|sin| > |cos|``), so they read the transposed image, whose
    rows have ``n_along`` pixels. ``offsets`` (n_rows, V): ``b`` per row and view; ``slope``, ``weight`` (V,): ``a``
    and the path length per row; ``first``, ``last`` (V,): the bins of the view's footprint; ``view_index`` (V,):
    each view's index among all views.
    """

    transposed: bool
    n_along: int
    offsets: np.ndarray
    slope: np.ndarray
    weight: np.ndarray
    first: np.ndarray
    last: np.ndarray
    view_index: np.ndarray

    @property
    def n_rows(self) -> int:
        return self.offsets.shape[0]

    @property
    def n_pairs(self) -> int:
        """(view, bin) pairs inside the footprints."""
        return int((self.last - self.first + 1).sum())


def _view_group(angles: np.ndarray, view_index: np.ndarray, image_shape: tuple[int, int], n_det: int,
                det_spacing: float, det_offset: float, transposed: bool) -> _ViewGroup:
    """The group of the views ``angles`` (all row-driven, or all column-driven when ``transposed``)."""
    ny, nx = image_shape
    s0 = -((n_det - 1) / 2 + det_offset) * det_spacing  # s of bin 0
    cos, sin = np.cos(angles), np.sin(angles)
    if not transposed:  # row i at y_i, interpolate along x: pos = (s - y sin) / cos + (nx - 1) / 2
        n_along = nx
        y = (ny - 1) / 2 - np.arange(ny)
        slope = det_spacing / cos
        offsets = (s0 - y[:, None] * sin) / cos + (nx - 1) / 2
        weight = 1 / np.abs(cos)
    else:  # column j at x_j, interpolate along rows: pos = (ny - 1) / 2 - (s - x cos) / sin
        n_along = ny
        x = np.arange(nx) - (nx - 1) / 2
        slope = -det_spacing / sin
        offsets = (ny - 1) / 2 - (s0 - x[:, None] * cos) / sin
        weight = 1 / np.abs(sin)
    # footprint: bins whose position is inside (-1, n_along) on at least one row, widened by one bin
    ends = np.stack([(-1 - offsets.max(axis=0)) / slope, (n_along - offsets.min(axis=0)) / slope])
    first = np.clip(np.floor(ends.min(axis=0)), 0, n_det - 1).astype(np.int64)
    last = np.clip(np.ceil(ends.max(axis=0)), 0, n_det - 1).astype(np.int64)
    return _ViewGroup(transposed, n_along, np.ascontiguousarray(offsets), slope, weight, first, last,
                      view_index.astype(np.int64))


class _GroupTensors:
    """One group as ``grid_sample``'s flat (view, bin) pairs, tensors on one device and dtype: ``offsets`` (n_rows,
    V) and ``pair_slope`` (``a k``) in grid_sample's normalised units, ``pair_view`` (index into ``offsets``'
    columns), ``pair_weight`` and ``pair_out``, the flat output index ``view * n_det + bin``."""

    def __init__(self, group: _ViewGroup, n_det: int, device: torch.device, dtype: torch.dtype):
        def as_tensor(a: np.ndarray, dt: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)

        counts = group.last - group.first + 1
        pair_view = np.repeat(np.arange(counts.size), counts)
        bins = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + group.first[pair_view]
        # grid_sample (align_corners=False) reads position p at normalised (2 p + 1) / n_along - 1
        self.transposed = group.transposed
        self.offsets = as_tensor((2 * group.offsets + 1) / group.n_along - 1, dtype)
        self.pair_view = as_tensor(pair_view, torch.int64)
        self.pair_slope = as_tensor(2 * group.slope[pair_view] * bins / group.n_along, dtype)
        self.pair_weight = as_tensor(group.weight[pair_view], dtype)
        self.pair_out = as_tensor(group.view_index[pair_view] * n_det + bins, torch.int64)

    @property
    def n_pairs(self) -> int:
        return self.pair_view.numel()


class JosephPlan:
    """Everything the matrix-free projector of one geometry needs, ``O(n_views * (n_det + ny + nx))``.

    Cheap to build (milliseconds for 720 views) and shareable between operators and threads: it holds no
    per-call state. On CPU, float32 and float64 tensors go through the compiled kernels of
    :mod:`recon.physics.joseph_cpu`; other devices and dtypes through ``grid_sample`` (tensor copies of the plan
    are made per device and dtype on first use).

    :param geometry: a :class:`recon.physics.ct.ParallelGeometry` (or anything with its fields).
    :param chunk_bytes: working memory of one chunk of (view, bin) pairs on the ``grid_sample`` path.
    :param compiled: use the compiled kernels on CPU (default); False forces ``grid_sample`` everywhere.
    """

    def __init__(self, geometry, chunk_bytes: int = DEFAULT_CHUNK_BYTES, compiled: bool = True):
        g = geometry
        self.image_shape = (g.ny, g.nx)
        self.n_views, self.n_det = g.n_views, g.n_det
        self.chunk_bytes = int(chunk_bytes)
        self.compiled = compiled
        angles = np.asarray(g.angles, dtype=np.float64)
        column_driven = np.abs(np.sin(angles)) > np.abs(np.cos(angles))
        self._groups = []
        for transposed in (False, True):
            index = np.flatnonzero(column_driven == transposed)
            if index.size:
                self._groups.append(_view_group(angles[index], index, self.image_shape, g.n_det, g.det_spacing,
                                                g.det_offset, transposed))
        self._copies: dict[tuple[torch.device, torch.dtype], list[_GroupTensors]] = {}

    @property
    def n_samples(self) -> int:
        """Interpolation samples of one forward projection (rows x (view, bin) pairs); nnz <= 2 x this."""
        return sum(group.n_rows * group.n_pairs for group in self._groups)

    def _uses_kernels(self, t: torch.Tensor) -> bool:
        return self.compiled and t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Sinograms (S, n_views, n_det) of images (S, ny, nx), on their device and in their dtype."""
        if self._uses_kernels(images):
            return self._forward_compiled(images)
        return self._forward_sampled(images)

    def adjoint(self, sinograms: torch.Tensor) -> torch.Tensor:
        """Exact transpose of :meth:`forward`: images (S, ny, nx) from sinograms (S, n_views, n_det)."""
        if self._uses_kernels(sinograms):
            return self._adjoint_compiled(sinograms)
        return self._adjoint_sampled(sinograms)

    @staticmethod
    def _kernel_arguments(group: _ViewGroup) -> tuple[np.ndarray, ...]:
        return group.offsets, group.slope, group.weight, group.first, group.last, group.view_index

    def _forward_compiled(self, images: torch.Tensor) -> torch.Tensor:
        """The kernels' forward, in calls of at most ``FORWARD_SLICES`` slices (equal parts) written into one
        result."""
        n_slices = images.shape[0]
        if n_slices <= FORWARD_SLICES:
            return self._forward_call(images)
        result = images.new_empty(n_slices, self.n_views, self.n_det)
        part = math.ceil(n_slices / math.ceil(n_slices / FORWARD_SLICES))
        for start in range(0, n_slices, part):
            result[start:start + part] = self._forward_call(images[start:start + part])
        return result

    def _forward_call(self, images: torch.Tensor) -> torch.Tensor:
        from recon.physics import joseph_cpu

        threads = torch.get_num_threads()
        out = images.new_zeros(self.n_views, self.n_det, images.shape[0])
        for group in self._groups:
            rows = images.detach().permute(2, 1, 0) if group.transposed else images.detach().permute(1, 2, 0)
            padded = F.pad(rows, (0, 0, 1, 2))  # (rows, 1 + along + 2, S), see joseph_cpu
            joseph_cpu.forward_group(padded.numpy(), self._kernel_arguments(group), out.numpy(), threads)
        return out.permute(2, 0, 1).contiguous()

    def _adjoint_compiled(self, sinograms: torch.Tensor) -> torch.Tensor:
        from recon.physics import joseph_cpu

        threads = torch.get_num_threads()
        n_slices = sinograms.shape[0]
        values = sinograms.detach().reshape(n_slices, self.n_views, self.n_det).permute(1, 2, 0).contiguous()
        ny, nx = self.image_shape
        images = sinograms.new_zeros(n_slices, ny, nx)
        for group in self._groups:
            n_rows, n_along = (nx, ny) if group.transposed else (ny, nx)
            padded = sinograms.new_zeros(n_rows, n_along + 3, n_slices)
            joseph_cpu.adjoint_group(values.numpy(), self._kernel_arguments(group), padded.numpy(), threads)
            rows = padded[:, 1:n_along + 1]
            images += rows.permute(2, 1, 0) if group.transposed else rows.permute(2, 0, 1)
        return images

    def _tensors(self, device: torch.device, dtype: torch.dtype) -> list[_GroupTensors]:
        key = (device, dtype)
        if key not in self._copies:
            self._copies[key] = [_GroupTensors(group, self.n_det, device, dtype) for group in self._groups]
        return self._copies[key]

    def _chunks(self, group: _GroupTensors, n_rows: int, n_slices: int, like: torch.Tensor):
        """Pair ranges ``(start, stop)`` whose grid and samples fit ``chunk_bytes``, and a zeroed buffer for their
        grids (the y coordinates stay 0)."""
        size = min(group.n_pairs, max(1, self.chunk_bytes // (n_rows * like.element_size() * (2 + n_slices))))
        buffer = like.new_zeros(n_rows * size * 2)
        return [(start, min(start + size, group.n_pairs)) for start in range(0, group.n_pairs, size)], buffer

    @staticmethod
    def _grid(group: _GroupTensors, start: int, stop: int, buffer: torch.Tensor) -> torch.Tensor:
        """Sampling grid (n_rows, 1, pairs, 2) of pairs ``start:stop``: x from the pairs, y = 0 (the row itself)."""
        n_rows = group.offsets.shape[0]
        grid = buffer[: n_rows * (stop - start) * 2].view(n_rows, 1, stop - start, 2)
        torch.add(group.offsets.index_select(1, group.pair_view[start:stop]), group.pair_slope[start:stop],
                  out=grid[:, 0, :, 0])
        return grid

    @staticmethod
    def _rows_as_batch(images: torch.Tensor, transposed: bool) -> torch.Tensor:
        """(S, ny, nx) -> (rows, S, 1, along): each image row (column if ``transposed``) a batch entry of height 1."""
        rows = images.transpose(1, 2) if transposed else images
        return rows.permute(1, 0, 2).unsqueeze(2).contiguous()

    def _forward_sampled(self, images: torch.Tensor) -> torch.Tensor:
        n_slices = images.shape[0]
        out = images.new_zeros(n_slices, self.n_views * self.n_det)
        for group in self._tensors(images.device, images.dtype):
            rows = self._rows_as_batch(images, group.transposed)
            chunks, buffer = self._chunks(group, rows.shape[0], n_slices, images)
            for start, stop in chunks:
                grid = self._grid(group, start, stop, buffer)
                samples = F.grid_sample(rows, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
                values = samples.sum(dim=0).view(n_slices, -1) * group.pair_weight[start:stop]
                out.index_copy_(1, group.pair_out[start:stop], values)
        return out.view(n_slices, self.n_views, self.n_det)

    def _adjoint_sampled(self, sinograms: torch.Tensor) -> torch.Tensor:
        n_slices = sinograms.shape[0]
        sinograms = sinograms.reshape(n_slices, self.n_views * self.n_det)
        ny, nx = self.image_shape
        images = sinograms.new_zeros(n_slices, ny, nx)
        for group in self._tensors(sinograms.device, sinograms.dtype):
            n_rows, n_along = (nx, ny) if group.transposed else (ny, nx)
            shape = sinograms.new_zeros(()).expand(n_rows, n_slices, 1, n_along)  # grid_sample's input, values unused
            total = sinograms.new_zeros(n_rows, n_slices, 1, n_along)
            chunks, buffer = self._chunks(group, n_rows, n_slices, sinograms)
            for start, stop in chunks:
                grid = self._grid(group, start, stop, buffer)
                values = sinograms.index_select(1, group.pair_out[start:stop]) * group.pair_weight[start:stop]
                grad = values.view(1, n_slices, 1, -1).expand(n_rows, -1, -1, -1)
                back, _ = torch.ops.aten.grid_sampler_2d_backward(grad, shape, grid, 0, 0, False, [True, False])
                total += back
            rows = total.squeeze(2).permute(1, 0, 2)  # (S, rows, along)
            images += rows.transpose(1, 2) if group.transposed else rows
        return images

    def __deepcopy__(self, memo):
        return self


class JosephFunction(torch.autograd.Function):
    """``plan.forward`` (or ``plan.adjoint`` when ``transpose``) whose backward is the other one."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, plan: JosephPlan, transpose: bool) -> torch.Tensor:
        ctx.plan, ctx.transpose = plan, transpose
        return plan.adjoint(t) if transpose else plan.forward(t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return JosephFunction.apply(grad.contiguous(), ctx.plan, not ctx.transpose), None, None


def estimated_matrix_bytes(plan: JosephPlan) -> int:
    """Bytes of the stored matrix pair of the same geometry (float32, int32 indices): 16 per non-zero, at most
    two non-zeros per sample, so an upper bound; about 1.1x the real size for square images."""
    return 16 * 2 * plan.n_samples + 4 * (plan.n_views * plan.n_det + math.prod(plan.image_shape))
