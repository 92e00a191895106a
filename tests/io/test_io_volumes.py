"""Volume import from npy, NIfTI, DICOM (file and folder) and HDF5, with real files."""

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest
from make_files import write_valid_file
from pydicom.data import get_testdata_file

from recon.errors import UserError
from recon.io import load_volume, write_reconstruction

VOLUME = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # (z, y, x)


@pytest.mark.parametrize("array", [VOLUME, VOLUME[0], VOLUME.astype(np.int16), VOLUME[None, :, :, :, None]])
def test_npy(tmp_path, array):
    np.save(tmp_path / "v.npy", array)
    volume = load_volume(tmp_path / "v.npy")
    assert volume.dtype == np.float32 and np.array_equal(volume, np.squeeze(array) if array.ndim > 3 else array)


@pytest.mark.parametrize("array, reason", [
    (np.ones((2, 3, 4, 5)), "has 4 dimensions"), (np.ones(5), "has 1 dimensions"),
    (np.ones((3, 3), np.complex64), "holds complex data"), (np.array([[1.0, np.nan]]), "contains NaN/Inf"),
    (np.array([["a", "b"]]), "holds <U1 data, not numbers"),
])
def test_npy_errors(tmp_path, array, reason):
    np.save(tmp_path / "v.npy", array)
    with pytest.raises(UserError, match=reason) as err:
        load_volume(tmp_path / "v.npy")
    assert str(err.value).startswith(str(tmp_path / "v.npy")) and "fix:" in str(err.value)


def test_missing_file_unknown_format_and_misplaced_key(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_volume(tmp_path / "nothing.npy")
    (tmp_path / "v.png").write_bytes(b"\x89PNG")
    with pytest.raises(UserError, match=r"unknown volume format '.png'; fix: give one of .npy, .nii"):
        load_volume(tmp_path / "v.png")
    (tmp_path / "v.tif").write_bytes(b"II*\0")
    with pytest.raises(UserError, match="cannot be read as TIFF"):
        load_volume(tmp_path / "v.tif")
    np.save(tmp_path / "v.npy", VOLUME)
    with pytest.raises(UserError, match="only applies to HDF5 files"):
        load_volume(tmp_path / "v.npy", key="x")
    (tmp_path / "bad.npy").write_text("not numpy")
    with pytest.raises(UserError, match="cannot be read as .npy"):
        load_volume(tmp_path / "bad.npy")


def test_nifti_axes_and_scaling(tmp_path):
    xyz = VOLUME.T.astype(np.int16)  # NIfTI order (x, y, z)
    image = nib.Nifti1Image(xyz, np.eye(4))
    image.header.set_slope_inter(2.0, -1.0)
    nib.save(image, tmp_path / "v.nii.gz")
    assert np.array_equal(load_volume(tmp_path / "v.nii.gz"), VOLUME * 2 - 1)
    nib.save(nib.Nifti1Image(VOLUME.T[..., None], np.eye(4)), tmp_path / "t1.nii")
    assert np.array_equal(load_volume(tmp_path / "t1.nii"), VOLUME)
    nib.save(nib.Nifti1Image(np.ones((3, 4, 5, 2), np.float32), np.eye(4)), tmp_path / "t2.nii")
    with pytest.raises(UserError, match="is a 4D NIfTI image"):
        load_volume(tmp_path / "t2.nii")


def test_nibabel_bundled_anatomical(tmp_path):
    path = Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii"
    if not path.exists():
        pytest.skip("nibabel was installed without its test data")
    volume = load_volume(path)
    assert volume.shape == nib.load(path).shape[::-1] and volume.dtype == np.float32
    assert np.array_equal(volume, np.asarray(nib.load(path).get_fdata()).T.astype(np.float32))


def test_dicom_file_applies_rescale():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    volume = load_volume(path)
    assert volume.shape == (128, 128) and volume.dtype == np.float32
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.array_equal(volume, expected)


def write_dicom_series(folder: Path, volume: np.ndarray, *, positions: bool = True) -> None:
    """Write (z, y, x) int16 slices as coronal DICOM files whose names are NOT in slice order."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    folder.mkdir()
    for z in range(volume.shape[0]):
        ds = template.copy()
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.PixelData = volume[z].astype(np.int16).tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = 2, -100
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # coronal: slice normal along +y
        ds.ImagePositionPatient = [0.0, 5.0 * z - 7.0, 0.0]
        ds.InstanceNumber = volume.shape[0] - z  # disagrees with the position: position wins
        if not positions:
            del ds.ImagePositionPatient
            ds.InstanceNumber = z + 1
        ds.save_as(folder / f"slice{(7 * z) % volume.shape[0]}.dcm")


def test_dicom_folder_sorted_along_the_normal(tmp_path):
    volume = np.random.default_rng(0).integers(0, 1000, (5, 6, 7))
    write_dicom_series(tmp_path / "series", volume)
    (tmp_path / "series" / "notes.txt").write_text("not a slice")
    assert np.array_equal(load_volume(tmp_path / "series"), volume * 2 - 100)
    write_dicom_series(tmp_path / "numbered", volume, positions=False)
    assert np.array_equal(load_volume(tmp_path / "numbered"), volume * 2 - 100)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no DICOM images"):
        load_volume(tmp_path / "empty")


def test_h5_keys_and_defaults(tmp_path):
    path = write_valid_file("ct-parallel", tmp_path / "m.h5")
    with h5py.File(path, "r") as f:
        truth, sinogram = f["ground_truth"][()], f["sinogram"][()]
    assert np.array_equal(load_volume(path), truth)  # measurement file: ground_truth
    assert np.array_equal(load_volume(path, key="sinogram"), sinogram)
    assert np.array_equal(load_volume(f"{path}:sinogram"), sinogram)
    with pytest.raises(UserError, match=r"m.h5: volume: no dataset 'volume' \(it holds angles, ground_truth, "
                                        r"sinogram\); fix: give one of"):
        load_volume(path, key="volume")
    out = write_reconstruction(tmp_path / "r.h5", VOLUME, attrs={
        "method": "fbp", "params": {}, "source": "m.h5", "command": "recon", "device": "cpu",
        "elapsed_s": 0.1, "seed": 0}, datasets={"ground_truth": VOLUME + 1})
    assert np.array_equal(load_volume(out), VOLUME)  # reconstruction file: reconstruction
    with h5py.File(tmp_path / "plain.hdf5", "w") as f:
        f["group/only"] = VOLUME
    assert np.array_equal(load_volume(tmp_path / "plain.hdf5"), VOLUME)
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"], f["b"] = VOLUME, VOLUME
    with pytest.raises(UserError, match="which dataset.*a, b; fix: give the dataset with --key NAME"):
        load_volume(tmp_path / "two.h5")
    (tmp_path / "fake.h5").write_text("text")
    with pytest.raises(UserError, match="cannot be opened as HDF5"):
        load_volume(tmp_path / "fake.h5")
