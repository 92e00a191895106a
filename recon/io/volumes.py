"""Import of images and volumes from npy, NIfTI, DICOM and HDF5 files.

Every loader returns float32 (z, y, x) or (y, x): NIfTI arrays (x, y, z) are transposed, scaling is
applied (NIfTI scl_slope/scl_inter, DICOM RescaleSlope/RescaleIntercept), DICOM slices are ordered along
the slice normal. Axes of length 1 are dropped while more than three axes remain. :func:`load_volume_and_spacing`
also gives the voxel size the file states (NIfTI header zooms; DICOM PixelSpacing and the distance between slice
positions, else SpacingBetweenSlices or SliceThickness), in mm. Sizes declared by a file's header are checked
against the memory available before its data is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from recon.errors import UserError

FORMATS = ".npy, .nii, .nii.gz, .dcm (or a folder of DICOM slices), .tif/.tiff (pages = slices), .h5/.hdf5 (with a key)"
H5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class VoxelSize:
    """Size of a voxel along each axis of a loaded array ((z, y, x) or (y, x)), in ``unit``."""

    sizes: tuple[float, ...]
    unit: str = "mm"


def load_volume(path: str | Path, key: str | None = None) -> np.ndarray:
    """The array of :func:`load_volume_and_spacing`, without its voxel size."""
    return load_volume_and_spacing(path, key)[0]


def load_volume_and_spacing(path: str | Path, key: str | None = None) -> tuple[np.ndarray, VoxelSize | None]:
    """Load a volume as float32 (z, y, x) or an image as (y, x), and its voxel size when the file states one
    (NIfTI, DICOM; None for npy and HDF5).

    ``path``: a ``.npy``, ``.nii``/``.nii.gz``, ``.dcm``, ``.tif`` file, a folder of DICOM slices, or a
    ``.h5``/``.hdf5`` file with ``key`` given here or as ``FILE.h5:KEY``. Without a key an HDF5 file gives
    ``reconstruction`` (of a reconstruction file) or ``ground_truth`` (of a measurement file), or its only
    dataset. Raises UserError for a missing file, unknown format, missing key, complex, non-finite or
    not 2D/3D data.
    """
    text = str(path)
    path = Path(text)
    if key is None and not path.exists() and ":" in text:
        head, _, tail = text.rpartition(":")
        if head.lower().endswith(H5_SUFFIXES):
            path, key = Path(head), tail
    if not path.exists():
        raise UserError("file not found", path=path, fix="check the path")
    name = path.name.lower()
    if key is not None and not name.endswith(H5_SUFFIXES):
        raise UserError(f"a key ({key!r}) only applies to HDF5 files", path=path, fix="leave out the key")
    spacing = None
    if path.is_dir():
        data, spacing = _load_dicom_folder(path)
    elif name.endswith(".npy"):
        data = _load_npy(path)
    elif name.endswith((".nii", ".nii.gz")):
        data, spacing = _load_nifti(path)
    elif name.endswith((".dcm", ".dicom")):
        data, spacing = _load_dicom_file(path)
    elif name.endswith((".tif", ".tiff")):
        data = _load_tiff(path)
    elif name.endswith(H5_SUFFIXES):
        data, key = _load_h5(path, key)
    else:
        raise UserError(f"unknown volume format {path.suffix!r}", path=path, fix=f"give one of {FORMATS}")
    volume = _as_volume(data, path, key)
    if spacing is not None and len(spacing.sizes) != volume.ndim:  # axes of length 1 were dropped
        spacing = VoxelSize(spacing.sizes[-volume.ndim:], spacing.unit) if len(spacing.sizes) > volume.ndim else None
    return volume, spacing


def _as_volume(data: np.ndarray, path: Path, key: str | None) -> np.ndarray:
    if np.iscomplexobj(data):
        raise UserError("holds complex data; volumes must be real", path=path, key=key,
                        fix="save the magnitude (np.abs) or the real part")
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == np.bool_):
        raise UserError(f"holds {data.dtype} data, not numbers", path=path, key=key, fix="save a numeric array")
    while data.ndim > 3 and 1 in data.shape:
        data = data.squeeze(axis=data.shape.index(1))
    if data.ndim > 3 or data.ndim < 2:
        raise UserError(f"has {data.ndim} dimensions (shape {data.shape}); expected (z, y, x) or (y, x)",
                        path=path, key=key, fix="save a single 2D image or 3D volume (e.g. one time point)")
    data = np.ascontiguousarray(data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise UserError("contains NaN/Inf values", path=path, key=key, fix="replace them (e.g. np.nan_to_num)")
    return data


def _check_declared(shape: tuple[int, ...], dtype: np.dtype, path: Path, key: str | None = None) -> None:
    """UserError when a volume of ``shape`` (as float32, the loaders' output, or ``dtype`` if larger) cannot fit
    in memory: checked from the file's header before the data is read."""
    from recon.memory import check_fits

    itemsize = max(np.dtype(dtype).itemsize if dtype is not None else 4, 4)
    check_fits(math.prod(shape) * itemsize * 2, f"loading a volume of shape {shape}", path=path, key=key,
               fix="crop or downsample the volume first")


def _load_npy(path: Path) -> np.ndarray:
    try:
        header = np.load(path, mmap_mode="r", allow_pickle=False)  # reads the header, maps the data
        _check_declared(header.shape, header.dtype, path)
        return np.array(header)
    except (ValueError, OSError) as err:
        raise UserError(f"cannot be read as .npy ({err})", path=path, fix="save it with numpy.save") from None


_NIFTI_UNITS = {"meter": "m", "mm": "mm", "micron": "um"}


def _load_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(path)  # a multi-page stack is (pages, rows, columns)
    except Exception as err:  # tifffile raises several types for damaged files (TiffFileError, struct.error...)
        raise UserError(f"cannot be read as TIFF ({err})", path=path, fix="check the file") from None


def _load_nifti(path: Path) -> tuple[np.ndarray, VoxelSize | None]:
    import nibabel as nib

    try:
        image = nib.load(path)
        _check_declared(image.shape, np.float32, path)
        data = image.get_fdata(dtype=np.float32)  # applies scl_slope/scl_inter
    except UserError:
        raise
    except Exception as err:  # nibabel raises several types for damaged or foreign files
        raise UserError(f"cannot be read as NIfTI ({err})", path=path, fix="check the file") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim > 3:
        raise UserError(f"is a {data.ndim}D NIfTI image (shape {data.shape}); expected 2D or 3D", path=path,
                        fix="extract one volume, e.g. with nibabel: img.slicer[..., 0]")
    zooms = [float(z) for z in image.header.get_zooms()[:data.ndim]]
    unit = _NIFTI_UNITS.get(image.header.get_xyzt_units()[0], "mm")  # "unknown": NIfTI tools read mm
    spacing = VoxelSize(tuple(zooms[::-1]), unit) if all(z > 0 for z in zooms) else None
    return data.T, spacing  # (x, y[, z]) -> ([z,] y, x)


def _dicom_pixels(ds, path: Path) -> np.ndarray:
    if int(getattr(ds, "SamplesPerPixel", 1)) != 1:
        raise UserError("is a colour DICOM image", path=path, fix="give grey-scale (CT/MR) DICOM images")
    try:
        pixels = ds.pixel_array
    except Exception as err:  # pydicom raises several types for compressed data without a decoder
        raise UserError(f"cannot decode the DICOM pixel data ({err})", path=path,
                        fix="install a decoder (pylibjpeg or gdcm) or convert to uncompressed DICOM") from None
    slope, intercept = float(getattr(ds, "RescaleSlope", 1.0)), float(getattr(ds, "RescaleIntercept", 0.0))
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _pixel_spacing(ds) -> tuple[float, float] | None:
    """(row spacing, column spacing) in mm from PixelSpacing, or None."""
    spacing = getattr(ds, "PixelSpacing", None)
    return (float(spacing[0]), float(spacing[1])) if spacing is not None and len(spacing) == 2 else None


def _load_dicom_file(path: Path) -> tuple[np.ndarray, VoxelSize | None]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as err:
        raise UserError(f"is not a DICOM file ({err})", path=path, fix="check the file") from None
    if "PixelData" not in ds:
        raise UserError("holds no image (no PixelData)", path=path, fix="give a DICOM image file")
    in_plane = _pixel_spacing(ds)
    return _dicom_pixels(ds, path), VoxelSize(in_plane) if in_plane else None


def _slice_position(ds) -> float | None:
    """Position of a slice along its normal (ImageOrientationPatient x ImagePositionPatient), or None."""
    if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
        return None
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    return float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float)))


def _load_dicom_folder(path: Path) -> tuple[np.ndarray, VoxelSize | None]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    slices = []
    for file in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            ds = pydicom.dcmread(file)
        except InvalidDicomError:
            continue  # other files in the folder (notes, DICOMDIR without pixels are skipped below)
        if "PixelData" in ds:
            slices.append((file, ds))
    if not slices:
        raise UserError("holds no DICOM images", path=path, fix=f"give a folder of DICOM slices or one of {FORMATS}")
    series = {str(getattr(ds, "SeriesInstanceUID", "")) for _, ds in slices}
    if len(series) > 1:
        raise UserError(f"holds {len(series)} DICOM series", path=path, fix="put each series in its own folder")
    positions = [_slice_position(ds) for _, ds in slices]
    numbers = [getattr(ds, "InstanceNumber", None) for _, ds in slices]
    if None not in positions:
        order = np.argsort(positions, kind="stable")
    elif None not in numbers:
        order = np.argsort([int(n) for n in numbers], kind="stable")
    else:
        order = range(len(slices))  # file name order
    images = [_dicom_pixels(slices[i][1], slices[i][0]) for i in order]
    shapes = {image.shape for image in images}
    if len(shapes) > 1 or images[0].ndim != 2:
        raise UserError(f"holds DICOM images of shapes {sorted(shapes)}; expected 2D slices of one shape",
                        path=path, fix="put only the slices of one volume in the folder")
    return np.stack(images), _dicom_voxel_size([slices[i][1] for i in order], positions)


def _dicom_voxel_size(ordered: list, positions: list[float | None]) -> VoxelSize | None:
    """(dz, dy, dx) in mm of sorted slices: dz from the slice positions (their median step), else
    SpacingBetweenSlices, else SliceThickness, else dy; None without PixelSpacing."""
    in_plane = _pixel_spacing(ordered[0])
    if in_plane is None:
        return None
    steps = np.diff(sorted(positions)) if None not in positions else np.empty(0)
    steps = steps[steps > 0]
    first = ordered[0]
    dz = float(np.median(steps)) if steps.size else float(
        getattr(first, "SpacingBetweenSlices", None) or getattr(first, "SliceThickness", None) or in_plane[0])
    return VoxelSize((dz, *in_plane))


def _load_h5(path: Path, key: str | None) -> tuple[np.ndarray, str]:
    from recon.io.specs import DAMAGED_FIX, HDF5_ERRORS

    try:
        file = h5py.File(path, "r")
    except OSError as err:
        raise UserError(f"cannot be opened as HDF5 ({err})", path=path, fix="check the file") from None
    with file:
        names: list[str] = []
        try:
            file.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
            spec = str(file.attrs.get("recon_spec", ""))
        except HDF5_ERRORS as err:
            raise UserError(f"cannot be read ({err})", path=path, fix=DAMAGED_FIX) from None
        if key is None:
            preferred = ("reconstruction", "ground_truth") if spec.startswith("reconstruction") else (
                "ground_truth", "reconstruction")
            key = next((k for k in preferred if k in names), names[0] if len(names) == 1 else None)
            if key is None:
                raise UserError(f"which dataset? it holds {', '.join(names) or 'none'}", path=path,
                                fix="give the dataset with --key NAME or as FILE.h5:NAME")
        if key not in names:
            raise UserError(f"no dataset {key!r} (it holds {', '.join(names) or 'none'})", path=path, key=key,
                            fix="give one of the datasets it holds with --key NAME or as FILE.h5:NAME")
        dataset = file[key]
        if dataset.shape is None:
            raise UserError("has a null dataspace (h5py.Empty): it holds no values", path=path, key=key,
                            fix="give a dataset with values")
        _check_declared(dataset.shape, dataset.dtype, path, key)
        try:
            return dataset[()], key
        except HDF5_ERRORS as err:
            raise UserError(f"cannot be read ({err})", path=path, key=key, fix=DAMAGED_FIX) from None
