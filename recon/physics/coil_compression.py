"""Coil compression: many receive coils -> a few virtual coils, by the SVD (PCA) of the coils' k-space samples.

For each slice, the C x C covariance of the sampled k-space values across coils has eigenvectors U; the virtual
coils are the projections U_n^H y onto the n dominant ones (Buehrer et al., MRM 57:1131, 2007; Huang et al., MRI
26:133, 2008). The projection is unitary on the kept subspace, so noise that is white across coils stays white
with the same standard deviation, and the SENSE model y_c = M F (S_c x) holds for the virtual coils with maps
U^H S. Coil maps are estimated after compression, from the virtual coils' calibration data.
"""

from __future__ import annotations

import numpy as np

AUTO_ABOVE = 16
"""Files with more coils than this are compressed by default."""
AUTO_ENERGY = 0.99
"""Default compression keeps the fewest virtual coils holding this fraction of the k-space energy ..."""
AUTO_RANGE = (8, 16)
"""... but no fewer than 8 (parallel imaging needs coils beyond the acceleration) and no more than 16."""


def compress_coils(kspace: np.ndarray, sampled: np.ndarray, n_virtual: int) -> tuple[np.ndarray, np.ndarray]:
    """Virtual-coil k-space (S, n_virtual, H, W) and the fraction of each slice's energy kept (S,).

    :param kspace: complex (S, C, H, W), zero where not sampled.
    :param sampled: bool (H, W) or (S, H, W), where k-space was measured.
    :param n_virtual: number of virtual coils, 1 <= n_virtual <= C.
    """
    n_slices, n_coils = kspace.shape[:2]
    if not 1 <= n_virtual <= n_coils:
        raise ValueError(f"{n_virtual} virtual coils asked of {n_coils} coils")
    sampled = np.broadcast_to(sampled, (n_slices, *kspace.shape[-2:]))
    out = np.empty((n_slices, n_virtual, *kspace.shape[-2:]), dtype=kspace.dtype)
    kept = np.empty(n_slices)
    for s in range(n_slices):
        basis, energy = _coil_basis(kspace[s][:, sampled[s]])
        out[s] = np.einsum("cn,chw->nhw", basis[:, :n_virtual].conj(), kspace[s]).astype(kspace.dtype)
        kept[s] = energy[:n_virtual].sum() / max(energy.sum(), np.finfo(float).tiny)
    return out, kept


def auto_virtual_coils(kspace: np.ndarray, sampled: np.ndarray) -> int:
    """The default number of virtual coils for one slice's k-space (C, H, W) sampled at ``sampled`` (H, W): C when
    C <= ``AUTO_ABOVE``, else the fewest holding ``AUTO_ENERGY`` of its energy, clipped to ``AUTO_RANGE``.

    Readers decide once per file, from one (the middle) slice, so that every slice range has the same coils.
    """
    n_coils = kspace.shape[0]
    if n_coils <= AUTO_ABOVE:
        return n_coils
    _, energy = _coil_basis(kspace[:, sampled])
    needed = int(np.searchsorted(np.cumsum(energy) / energy.sum(), AUTO_ENERGY) + 1)
    return int(np.clip(needed, *AUTO_RANGE))


def _coil_basis(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors (C, C), strongest first, and eigenvalues (C,) of the coil covariance of ``samples`` (C, M)."""
    samples = samples.astype(np.complex128)
    energy, basis = np.linalg.eigh(samples @ samples.conj().T)
    return basis[:, ::-1], np.clip(energy[::-1], 0, None)
