"""Dynamic parallel-beam CT: a 2D object changing in time, each time frame seen from its own few views.

Frames live on the batch axis (``ct-dynamic/1``; docs/reference/specs.md, Conventions): images are
``(P, C, ny, nx)`` and sinograms ``(P, C, V, n_det)`` for ``P`` frames of ``V`` views each (often ``V = 1``);
frame ``t`` is projected only at its own angles ``angles[t]``. Geometry and projector are those of
:mod:`recon.physics.ct` (Joseph, pixel
units, ``det_spacing`` and ``det_offset`` as there); only the stored projector is implemented here.

The operator is block diagonal over frames. It is stored as one CSR matrix of shape ``(P * V * n_det,
P * ny * nx)`` — the Joseph matrix of all ``P * V`` views with each frame's column indices shifted to that
frame's pixels — and the CSR of its transpose, so that ``A`` and ``A^T`` are each one sparse times dense
product over all frames (at P = 256 frames of 128^2, one view each, on one CPU thread: 18 ms for ``A``
where a loop of per-frame products takes 27 ms).

Memory bound: each matrix of the pair holds ``nnz <= 2 * P * V * n_det * max(ny, nx)`` entries (about
``2 * P * V * ny * nx / det_spacing`` in practice) at 8 bytes each in float32 with int32 indices, plus
4-byte row pointers: ``16 * nnz + 4 * (P * V * n_det + P * ny * nx)`` bytes for the pair, linear in
frames x pixels (P = 256 frames of 128^2, one view each: nnz = 7.5e6, 137 MB). Each copy made for another
device or dtype adds as much again (1.5x in float64). Building it takes about 0.75 s for that size.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.sparse as sp
import torch

from recon.errors import UserError
from recon.physics.ct import (
    JosephProjector,
    ParallelGeometry,
    _SparseMatmul,
    angular_weights,
    csr_pair,
    filter_projections,
    joseph_matrix,
)
from recon.physics.registry import register_example

VIEW_ORDERS = ("bit-reversal", "golden-angle", "linear")
GOLDEN_ANGLE = math.pi * (math.sqrt(5) - 1) / 2
"""pi / phi = 111.246 degrees: the increment whose views, folded modulo pi, form a golden-ratio sequence."""


def bit_reversal_permutation(n: int) -> np.ndarray:
    """The indices 0..n-1 in bit-reversed order, (n,) int64.

    For n = 2^b, entry i is i with its b bits reversed; otherwise the bit-reversal permutation of the next
    power of two with the entries >= n skipped (so that consecutive entries stay spread over 0..n-1).
    """
    bits = max(0, math.ceil(math.log2(n)))
    index = np.arange(2**bits)
    reversed_ = np.zeros_like(index)
    for b in range(bits):
        reversed_ |= ((index >> b) & 1) << (bits - 1 - b)
    return reversed_[reversed_ < n]


def view_angles(n_frames: int, views_per_frame: int = 1, order: str = "bit-reversal",
                angle_range: float = math.pi, pi_symmetry: bool = False) -> np.ndarray:
    """Projection angles (n_frames, views_per_frame) in radians for a time-sequential acquisition.

    The ``M = n_frames * views_per_frame`` views are taken one after the other; frame t holds views
    ``t * views_per_frame`` to ``(t + 1) * views_per_frame - 1``. View i is at

    - ``linear``: ``angle_range * i / M``, evenly increasing (a slow rotation);
    - ``bit-reversal``: ``angle_range * rev(i) / M`` with ``rev`` the bit-reversal permutation of 0..M-1
      (:func:`bit_reversal_permutation`): the paper's order, each new view far from the recent ones and all
      M views together evenly spaced; 8 frames over [0, pi) give pi * [0, 4, 2, 6, 1, 5, 3, 7] / 8;
    - ``golden-angle``: ``(i * 111.246 deg) mod angle_range`` (increment pi / phi): any run of consecutive
      views is nearly evenly spread, and no two views coincide.

    :param angle_range: the views lie in [0, angle_range); pi covers every parallel-beam line once.
    :param pi_symmetry: fold the angles into [0, pi). Parallel views at theta and theta + pi are mirror images
        of each other (exactly so for this centred detector), so folding keeps the information and stores a
        2 pi acquisition on the half circle; the FBP weights fold anyway.
    """
    if order not in VIEW_ORDERS:
        raise UserError(f"unknown view order {order!r}", key="--order", fix=f"choose {', '.join(VIEW_ORDERS)}")
    if n_frames < 1 or views_per_frame < 1:
        raise UserError(f"need >= 1 frame and >= 1 view per frame (got {n_frames}, {views_per_frame})",
                        key="--frames", fix="e.g. --frames 64 --views-per-frame 1")
    if not (math.isfinite(angle_range) and angle_range > 0):
        raise UserError(f"angle range {angle_range} is not a positive number of radians", key="--angle-range",
                        fix="e.g. --angle-range 3.14159 (pi)")
    n_views = n_frames * views_per_frame
    index = np.arange(n_views)
    if order == "linear":
        angles = angle_range * index / n_views
    elif order == "bit-reversal":
        angles = angle_range * bit_reversal_permutation(n_views) / n_views
    else:
        angles = np.mod(index * GOLDEN_ANGLE, angle_range)
    if pi_symmetry:
        angles = np.mod(angles, math.pi)
    return angles.reshape(n_frames, views_per_frame)


@functools.lru_cache(maxsize=4)
def dynamic_system_matrices(geometry: ParallelGeometry, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-diagonal Joseph matrix (P * V * n_det, P * ny * nx) and its transpose, CPU float32 CSR, cached.

    ``geometry`` holds the ``P * V`` angles frame by frame; row block t (the rows of frame t's views) acts on
    column block t (frame t's pixels) only.
    """
    matrix = joseph_matrix(geometry)
    pixels = geometry.ny * geometry.nx
    rows_per_frame = matrix.shape[0] // n_frames
    frame_of_entry = np.repeat(np.arange(matrix.shape[0]) // rows_per_frame, np.diff(matrix.indptr))
    index_dtype = np.int32 if n_frames * pixels < 2**31 else np.int64
    indices = (matrix.indices + frame_of_entry * pixels).astype(index_dtype)  # row order is kept: still sorted
    block = sp.csr_matrix((matrix.data, indices, matrix.indptr.astype(index_dtype)),
                          shape=(matrix.shape[0], n_frames * pixels))
    return csr_pair(block)


class DynamicParallelCT(JosephProjector):
    """Time-sequential parallel-beam CT: frame t of a sequence is projected at its own angles only. Parameters as
    :class:`~recon.physics.ct.JosephProjector`, with ``angles`` (P, V): frame t's V views in row t (e.g. from
    :func:`view_angles`).

    ``A``: ``(P, C, ny, nx) -> (P, C, V, n_det)``; ``A_adjoint`` is its exact transpose. The batch axis is
    time, so it must have exactly P entries (channels C are independent columns). Memory: see the module
    docstring (linear in P * V * n_det * max(ny, nx)).
    """

    angle_layout = ("n_frames", "views_per_frame")

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        return dynamic_system_matrices(self.geometry, self.n_frames)

    @property
    def n_frames(self) -> int:
        return self.angles.shape[0]

    @property
    def views_per_frame(self) -> int:
        return self.angles.shape[1]

    def _project(self, t: torch.Tensor, in_shape: tuple[int, int], out_shape: tuple[int, int],
                 transpose: bool) -> torch.Tensor:
        if t.ndim != 4 or t.shape[0] != self.n_frames or tuple(t.shape[-2:]) != in_shape:
            raise ValueError(f"expected ({self.n_frames}, C, {in_shape[0]}, {in_shape[1]}) (frames first), "
                             f"got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"CT needs a real floating tensor, got {t.dtype}")
        matrix, matrix_t = self._matrices.get(t.device, t.dtype)
        if transpose:
            matrix, matrix_t = matrix_t, matrix
        frames, channels = t.shape[:2]
        columns = t.reshape(frames, channels, -1).transpose(1, 2).reshape(-1, channels)  # frame-major pixels
        out = _SparseMatmul.apply(columns, matrix, matrix_t)
        return out.reshape(frames, -1, channels).transpose(1, 2).contiguous().reshape(frames, channels, *out_shape)

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Sinograms (P, C, V, n_det) of frames (P, C, ny, nx), each frame at its own V angles."""
        return self._project(x, self.image_shape, (self.views_per_frame, self.n_det), transpose=False)

    def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        """Exact transpose: frames (P, C, ny, nx) from sinograms (P, C, V, n_det)."""
        return self._project(y, (self.views_per_frame, self.n_det), self.image_shape, transpose=True)

    def fbp(self, y: torch.Tensor, filter: str = "ramp", static: bool = False) -> torch.Tensor:
        """Filtered back-projection (P, C, V, n_det) -> (P, C, ny, nx), in the units of the image.

        Frame-wise (default): each frame from its own V views, weighted as a scan of its own (a single view
        gets the weight pi), so strongly streaked for few views. ``static=True``: one FBP of all P * V views
        pooled, as if the object did not move, repeated over the frames (a static baseline).

        :param filter: one of ``FBP_FILTERS``.
        """
        angles = self.angles.numpy()
        weights = angular_weights(angles.ravel()).reshape(angles.shape) if static else angular_weights(angles)
        weights = torch.as_tensor(weights, dtype=y.dtype, device=y.device)[:, None, :, None]
        # each pixel's interpolation kernel in A^T has unit area in s, so summing bins needs det_spacing
        images = self.A_adjoint(filter_projections(y, filter, self.det_spacing) * weights) * self.det_spacing
        if static:  # the pooled back-projection is the sum of the frames' back-projections
            images = images.sum(dim=0, keepdim=True).expand_as(images).contiguous()
        return images


@register_example("ct-dynamic")
def _example(device: torch.device, dtype: torch.dtype) -> tuple[DynamicParallelCT, tuple[int, ...]]:
    return DynamicParallelCT((24, 20), view_angles(6, 2), device=device, dtype=dtype), (6, 1, 24, 20)
