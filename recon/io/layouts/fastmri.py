"""fastMRI HDF5 files (knee and brain; multi-coil and single-coil; training, validation and test files).

The layout (fastMRI's README and ``fastmri/data/mri_data.py``): ``kspace`` complex64 (slices, coils, readout,
phase) for multi-coil, (slices, readout, phase) for single-coil, with the readout oversampled 2x (640 rows for a
320-row reconSpace), centred (DC at index n // 2 on both axes, fastMRI's ``ifft2c``: ifftshift, orthonormal
inverse FFT, fftshift) and zero in the phase-encoding columns outside the acquisition (outside
[padding_left, padding_right), from the header's kspace_encoding_step_1 limits); ``ismrmrd_header`` the ISMRMRD
XML header (encodedSpace, reconSpace, encoding limits); ``reconstruction_rss`` (multi-coil) or
``reconstruction_esc`` (single-coil) the ground truth (slices, 320, 320): the root-sum-of-squares (or magnitude)
of the centred inverse FFT of the fully sampled k-space, centre-cropped to reconSpace. Test and challenge files
have no ground truth, their k-space is undersampled already, and they carry a 1D ``mask`` (phase,) and the
attributes ``acceleration`` and ``num_low_frequency``.

Read as ``mri-cartesian/1`` by :class:`~recon.io.layouts.cartesian.CartesianKSpaceFile` (readout -> ny, phase ->
nx, readout oversampling removed, output cropped to reconSpace so it lines up with the ground truth pixel for
pixel). PSNR: recon's peak is the ground truth's range (max - min) over the slices read, fastMRI's
``evaluate.psnr`` uses the volume's maximum; for these non-negative images the two differ by
20 log10(max / (max - min)), a few hundredths of a dB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon.errors import UserError
from recon.io.layouts.cartesian import OPTIONS, SPEC, CartesianKSpaceFile, EncodingGeometry, parse_options

NAME = "fastmri"
__all__ = ["NAME", "SPEC", "FastMRIFile", "detect", "open"]
_TRUTH_KEYS = {True: "reconstruction_esc", False: "reconstruction_rss"}


def detect(file: h5py.File) -> bool:
    """A complex 3D or 4D ``kspace`` dataset beside an ``ismrmrd_header`` or a fastMRI ground truth."""
    kspace = file.get("kspace")
    return (isinstance(kspace, h5py.Dataset) and kspace.ndim in (3, 4) and kspace.dtype.kind == "c"
            and any(key in file for key in ("ismrmrd_header", *_TRUTH_KEYS.values())))


def open(path: str | Path, **options: Any) -> FastMRIFile:  # noqa: A001 (the layout protocol's name)
    """Open a fastMRI file; ``options`` are the ``--read`` options of :mod:`recon.io.layouts.cartesian`."""
    return FastMRIFile(path, **options)


class FastMRIFile(CartesianKSpaceFile):
    """A fastMRI file read lazily as ``mri-cartesian/1``; see the module."""

    layout = NAME

    def __init__(self, path: str | Path, **options: Any):
        options = parse_options(options, OPTIONS, path)
        file = h5py.File(path, "r")
        try:
            kspace = file["kspace"]
            self.single_coil = kspace.ndim == 3
            self.title = f"fastMRI {'single' if self.single_coil else 'multi'}-coil"
            header = file.get("ismrmrd_header")
            geometry = None if header is None else EncodingGeometry.from_xml(_text(header[()]), path)
            self.truth_key = _TRUTH_KEYS[self.single_coil] if _TRUTH_KEYS[self.single_coil] in file else None
            self._kspace, self._geometry_for_columns = kspace, geometry
            self._test_mask = self._mask_dataset(file, path)
            n_coils = 1 if self.single_coil else kspace.shape[1]
            names = "slices, readout, phase" if self.single_coil else "slices, coils, readout, phase"
            source = f"kspace {tuple(kspace.shape)} {kspace.dtype} ({names})"
            if self._test_mask is not None:
                source += (f", 1D mask ({kspace.shape[-1]},), acceleration {file.attrs.get('acceleration')}, "
                           f"num_low_frequency {file.attrs.get('num_low_frequency')}")
            if "acquisition" in file.attrs:
                source += f", acquisition {_text(file.attrs['acquisition'])}"
            self._setup(path, file, geometry, kspace.shape[0], n_coils, options, source)
        except BaseException:
            file.close()
            raise

    def _mask_dataset(self, file: h5py.File, path: str | Path) -> np.ndarray | None:
        """A test file's 1D mask (phase,) as bool, or None; UserError when it does not fit the k-space."""
        if "mask" not in file:
            return None
        mask = np.asarray(file["mask"][()])
        n_columns = self._kspace.shape[-1]
        if mask.shape != (n_columns,) or not np.isin(mask, (0, 1)).all():
            raise UserError(f"mask {mask.shape} is not a 0/1 vector over the {n_columns} phase-encoding columns",
                            path=path, key="mask", fix="store the 1D sampling mask (phase,) of fastMRI's test files")
        return mask.astype(bool)

    def _acquired(self, start: int, stop: int) -> np.ndarray:
        rows, columns = self._kspace.shape[-2:]
        if self._test_mask is not None:
            acquired = self._test_mask
        else:
            acquired = np.zeros(columns, bool)
            geometry = self._geometry_for_columns
            first = 0 if geometry is None else max(geometry.first_column(), 0)
            last = columns if geometry is None or geometry.step1_maximum is None else \
                min(first + geometry.step1_maximum + 1, columns)
            acquired[first:last] = True  # fastMRI's padding_left:padding_right
        return np.broadcast_to(acquired, (1, rows, columns))

    def _raw_kspace(self, start: int, stop: int) -> np.ndarray:
        kspace = self._kspace[start:stop]
        return kspace[:, None] if self.single_coil else kspace

    def _raw_truth(self, start: int, stop: int) -> np.ndarray:
        return self._file[self.truth_key][start:stop]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
