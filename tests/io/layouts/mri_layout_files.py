"""One simulated multi-coil acquisition written three ways: fastMRI's layout (h5py, as fastMRI publishes it),
ISMRMRD (with the ``ismrmrd`` package) and recon's own ``mri-cartesian/1`` (as ``recon simulate`` writes it).

The object lives on the reconSpace grid (ROWS readout x COLUMNS phase encoding); the scanner grid oversamples the
readout 2x (the object is zero in the outer rows), and only the columns FIRST_COLUMN:FIRST_COLUMN + ACQUIRED are
acquired (fastMRI's zero padding). The reconstruction field of view is ROWS x CROP_COLUMNS. recon's file holds the
same k-space without the oversampling, so a reader that converts correctly gives the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from recon.io.measurement import write_measurement
from recon.physics.coil_maps import synthetic_coil_maps

ROWS, COLUMNS, CROP_COLUMNS = 64, 72, 64
FIRST_COLUMN, ACQUIRED = 2, 68  # columns 0, 1, 70, 71 not acquired
SLICES, COILS = 2, 6


def fft2c(image: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes=axes), norm="ortho"), axes=axes)


def ifft2c(kspace: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=axes), norm="ortho"), axes=axes)


@dataclass
class Acquisition:
    """Fully sampled k-space on the scanner grid (S, C, 2 ROWS, COLUMNS), zero outside the acquired columns."""

    kspace: np.ndarray
    acquired: np.ndarray  # bool (COLUMNS,)

    @property
    def rss(self) -> np.ndarray:
        """fastMRI's reconstruction_rss: RSS of the coil images, centre-cropped to ROWS x CROP_COLUMNS."""
        rss = np.sqrt((np.abs(ifft2c(self.kspace)) ** 2).sum(1))
        top, left = (rss.shape[-2] - ROWS) // 2, (COLUMNS - CROP_COLUMNS) // 2
        return rss[:, top:top + ROWS, left:left + CROP_COLUMNS].astype(np.float32)

    def without_oversampling(self) -> np.ndarray:
        """The k-space of the central ROWS image rows (S, C, ROWS, COLUMNS)."""
        image = ifft2c(self.kspace)[:, :, ROWS // 2:ROWS // 2 + ROWS]
        return np.where(self.acquired, fft2c(image), 0).astype(np.complex64)


def simulate(noise: float = 0.01, seed: int = 0) -> Acquisition:
    """A complex Shepp-Logan pair of slices through COILS smooth maps, complex Gaussian noise of ``noise`` times
    the RMS of the acquired k-space."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:ROWS, :COLUMNS] / ROWS
    phantom = resize(shepp_logan_phantom(), (ROWS, ROWS), anti_aliasing=True)
    image = np.zeros((SLICES, 2 * ROWS, COLUMNS), complex)
    for s in range(SLICES):
        obj = np.pad(np.roll(phantom, 2 * s, axis=0), ((0, 0), (4, 4)))
        image[s, ROWS // 2:ROWS // 2 + ROWS] = obj * np.exp(1j * np.pi * (0.5 * xx - 0.3 * yy + 0.1 * s))
    maps = synthetic_coil_maps(COILS, (2 * ROWS, COLUMNS), rng=rng)
    acquired = np.zeros(COLUMNS, bool)
    acquired[FIRST_COLUMN:FIRST_COLUMN + ACQUIRED] = True
    kspace = fft2c(maps[None] * image[:, None]) * acquired
    level = noise * np.sqrt(np.mean(np.abs(kspace[..., acquired]) ** 2))
    kspace += level / np.sqrt(2) * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    return Acquisition((kspace * acquired).astype(np.complex64), acquired)


def column_mask(acceleration: int = 4, acs: int = 10, seed: int = 1) -> np.ndarray:
    """A random 1D mask (COLUMNS,) over the acquired columns with ``acs`` central columns."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(COLUMNS, bool)
    mask[COLUMNS // 2 - acs // 2:COLUMNS // 2 + acs // 2] = True
    columns = np.arange(COLUMNS)
    outer = np.flatnonzero(~mask & (columns >= FIRST_COLUMN) & (columns < FIRST_COLUMN + ACQUIRED))
    mask[rng.choice(outer, COLUMNS // acceleration - acs, replace=False)] = True
    return mask


def ismrmrd_header(coils: int = COILS, encoded: tuple[int, int] = (2 * ROWS, COLUMNS),
                   recon: tuple[int, int] = (ROWS, CROP_COLUMNS), acquired: int = ACQUIRED,
                   center: int = COLUMNS // 2 - FIRST_COLUMN, slices: int = SLICES, pixel_mm: float = 2.0,
                   thickness_mm: float = 3.0) -> str:
    """The ISMRMRD XML header of an acquisition, built with the ismrmrd package (fastMRI stores the same); by
    default this module's: ``encoded`` and ``recon`` matrices (readout, phase), ``acquired`` phase-encoding lines
    with the k-space centre at line ``center``, square pixels of ``pixel_mm``."""
    import ismrmrd.xsd as x

    def space(rows: int, columns: int) -> x.encodingSpaceType:
        return x.encodingSpaceType(matrixSize=x.matrixSizeType(x=rows, y=columns, z=1),
                                   fieldOfView_mm=x.fieldOfViewMm(x=rows * pixel_mm, y=columns * pixel_mm,
                                                                  z=thickness_mm))

    limits = x.encodingLimitsType(kspace_encoding_step_1=x.limitType(minimum=0, maximum=acquired - 1, center=center),
                                  slice=x.limitType(minimum=0, maximum=slices - 1, center=0))
    encoding = x.encodingType(encodedSpace=space(*encoded), reconSpace=space(*recon), encodingLimits=limits,
                              trajectory=x.trajectoryType.CARTESIAN)
    header = x.ismrmrdHeader(encoding=[encoding],
                             experimentalConditions=x.experimentalConditionsType(H1resonanceFrequency_Hz=128000000),
                             acquisitionSystemInformation=x.acquisitionSystemInformationType(receiverChannels=coils))
    return x.ToXML(header)


def write_fastmri(path: Path, acquisition: Acquisition, mask: np.ndarray | None = None,
                  single_coil: bool = False) -> Path:
    """fastMRI's layout: a training file (fully sampled, with reconstruction_rss/esc) or, with ``mask``, a test
    file (masked k-space, the 1D mask, acceleration and num_low_frequency, no ground truth)."""
    kspace = acquisition.kspace[:, 0] if single_coil else acquisition.kspace
    with h5py.File(path, "w") as file:
        file["ismrmrd_header"] = ismrmrd_header(1 if single_coil else COILS)
        file.attrs["acquisition"] = "CORPD_FBK"
        file.attrs["patient_id"] = "simulated"
        if mask is None:
            file["kspace"] = kspace
            truth = np.abs(ifft2c(kspace))[:, ROWS // 2:ROWS // 2 + ROWS, 4:4 + CROP_COLUMNS] if single_coil else \
                acquisition.rss
            file["reconstruction_esc" if single_coil else "reconstruction_rss"] = truth.astype(np.float32)
            file.attrs["max"] = float(truth.max())
            file.attrs["norm"] = float(np.linalg.norm(truth))
        else:
            file["kspace"] = (kspace * mask).astype(np.complex64)
            file["mask"] = mask.astype(np.float32)
            file.attrs["acceleration"] = round(COLUMNS / mask.sum())
            file.attrs["num_low_frequency"] = 10
    return path


def write_ismrmrd(path: Path, acquisition: Acquisition, mask: np.ndarray, acs: int = 10) -> Path:
    """ISMRMRD through the ismrmrd package: one acquisition per sampled column and slice (readout oversampled),
    the central ``acs`` columns flagged parallel calibration and imaging, plus noise acquisitions first."""
    import ismrmrd

    center = COLUMNS // 2
    rng = np.random.default_rng(5)
    with ismrmrd.Dataset(str(path), "dataset", create_if_needed=True) as dataset:
        dataset.write_xml_header(ismrmrd_header())
        noise = rng.standard_normal((COILS, 2 * ROWS)) + 1j * rng.standard_normal((COILS, 2 * ROWS))
        scan = ismrmrd.Acquisition.from_array(noise.astype(np.complex64))
        scan.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
        dataset.append_acquisition(scan)
        for s in range(SLICES):
            for column in np.flatnonzero(mask):
                acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(acquisition.kspace[s, :, :, column]),
                                                     center_sample=ROWS)
                acq.idx.kspace_encode_step_1 = int(column - FIRST_COLUMN)
                acq.idx.slice = s
                if abs(column - center) < acs // 2 or column - center == -(acs // 2):
                    acq.set_flag(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING)
                dataset.append_acquisition(acq)
    return path


def write_native(path: Path, acquisition: Acquisition, mask: np.ndarray) -> Path:
    """recon's own mri-cartesian/1 file of the same data: readout oversampling removed, 2D mask, the crop and
    fastMRI's ground truth."""
    kspace = acquisition.without_oversampling() * mask
    write_measurement(path, "mri-cartesian/1",
                      {"kspace": kspace.astype(np.complex64), "mask": np.broadcast_to(mask, (ROWS, COLUMNS)),
                       "ground_truth": acquisition.rss}, {"crop": [ROWS, CROP_COLUMNS]})
    return path
