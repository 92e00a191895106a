"""Training from datasets as the field ships them: fastMRI files (ground truth or the RSS of fully sampled k-space),
LoDoPaB ground-truth files, DICOM series folders and NIfTI; `recon train denoiser|diffusion|lpn --data FOLDER` end to
end, the weights then used by pnp-admm, dds and lpn."""

import json
import shutil
from pathlib import Path

import h5py
import nibabel
import numpy as np
import pydicom.data
import pytest

from recon.errors import UserError
from recon.training.cli import expand_sources
from recon.training.layout_images import describe_source, drop_paired_measurements, layout_images
from tests.cli.conftest import run_cli
from tests.io.layout_files import write_lodopab_pair
from tests.io.layouts.mri_layout_files import Acquisition, column_mask, simulate, write_fastmri

EXAMPLE4D = Path(nibabel.__file__).parent / "tests" / "data" / "example4d.nii.gz"


def six_slices(seed: int) -> Acquisition:
    """Three simulated 2-slice acquisitions stacked: a 6-slice volume (so that 20% of it is held out along z)."""
    parts = [simulate(seed=3 * seed + i) for i in range(3)]
    return Acquisition(np.concatenate([p.kspace for p in parts]), parts[0].acquired)


@pytest.fixture(scope="module")
def fastmri_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fastmri")
    for i in range(2):
        write_fastmri(folder / f"file{i}.h5", six_slices(i))
    (folder / "README.txt").write_text("knee scans\n")
    return folder


def test_fastmri_images_are_its_ground_truth_or_the_rss_of_its_kspace(fastmri_folder, tmp_path):
    path = fastmri_folder / "file0.h5"
    with h5py.File(path) as file:
        truth = file["reconstruction_rss"][()]
    np.testing.assert_array_equal(layout_images(path), truth)
    assert "reconstruction_rss" in describe_source(path)
    no_truth = shutil.copy(path, tmp_path / "no_truth.h5")
    with h5py.File(no_truth, "a") as file:
        del file["reconstruction_rss"]
    # from the k-space: readout oversampling removed, cropped to reconSpace, same orientation as fastMRI's RSS
    np.testing.assert_allclose(layout_images(no_truth), truth, rtol=1e-4, atol=1e-4 * truth.max())
    assert "root-sum-of-squares" in describe_source(no_truth)
    test_file = write_fastmri(tmp_path / "test.h5", simulate(), mask=column_mask())
    with pytest.raises(UserError, match="no clean images to train on .*undersampled"):
        layout_images(test_file)


def test_lodopab_ground_truth_in_recon_axes_and_pairs_counted_once(tmp_path):
    observation, truth = write_lodopab_pair(tmp_path, n=1, noise=False)
    with h5py.File(truth) as file:
        expected = np.rot90(file["data"][()], axes=(1, 2))  # odl's [x, y] -> recon's [row, column]
    np.testing.assert_array_equal(layout_images(truth), expected)
    np.testing.assert_array_equal(layout_images(observation), expected)  # its paired ground truth, not sinograms
    assert drop_paired_measurements([observation, truth]) == [truth]
    assert expand_sources([str(tmp_path)]) == [str(truth)]


def test_dicom_series_and_nifti_folders(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), series / "slice1.dcm")
    assert expand_sources([str(series)]) == [str(series)]  # a DICOM series folder is one source
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    shutil.copy(EXAMPLE4D, volumes / "a.nii.gz")
    (volumes / "notes.txt").write_text("x")
    assert expand_sources([str(volumes)]) == [str(volumes / "a.nii.gz")]


def test_train_denoiser_on_a_folder_of_fastmri_files_then_pnp_admm_uses_it(fastmri_folder, tmp_path):
    weights = tmp_path / "knee.safetensors"
    result = run_cli("train", "denoiser", "--data", fastmri_folder, "--out", weights, "--steps", "3", "--patch", "16",
                     "--batch", "2", "--width", "4", "--signed", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 file(s) that are not volumes (README.txt)" in result.stderr
    card = json.loads(weights.with_suffix(".json").read_text())
    files = [str(fastmri_folder / f"file{i}.h5") for i in range(2)]
    assert card["data"]["sources"] == files
    assert all("reconstruction_rss" in card["data"]["layouts"][f] for f in files)
    out = tmp_path / "pnp.h5"
    result = run_cli("reconstruct", files[0], "--read", "acceleration=4", "--slices", "0:1", "--method", "pnp-admm",
                     "--set", f"weights={weights}", "--set", "iterations=2", "--out", out)
    assert result.returncode == 0, result.stderr
    with h5py.File(out) as file:
        assert str(weights) in json.dumps({k: str(v) for k, v in file.attrs.items()})


def test_train_diffusion_on_fastmri_files_then_dds_samples_with_it(fastmri_folder, tmp_path):
    weights = tmp_path / "knee-diffusion.safetensors"
    result = run_cli("train", "diffusion", "--data", fastmri_folder, "--out", weights, "--steps", "2", "--size", "32",
                     "--patch", "16", "--batch", "2", "--width", "32", "--mult", "1,2", "--blocks", "1",
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["data"]["sources"] == [str(fastmri_folder / f"file{i}.h5") for i in range(2)]
    out = tmp_path / "dds.h5"
    result = run_cli("reconstruct", fastmri_folder / "file0.h5", "--read", "acceleration=4", "--slices", "0:1",
                     "--method", "dds", "--set", f"weights={weights}", "--set", "nfe=3", "--out", out)
    assert result.returncode == 0, result.stderr
    with h5py.File(out) as file:
        assert str(weights) in json.dumps({k: str(v) for k, v in file.attrs.items()})
        assert np.isfinite(file["reconstruction"][()]).all()


def test_train_lpn_on_a_dicom_series_folder_then_lpn_uses_it(ct_file, tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), series / "slice1.dcm")
    weights = tmp_path / "ct-lpn.safetensors"
    result = run_cli("train", "lpn", "--data", series, "--out", weights, "--channels", "1", "--hidden", "4",
                     "--layers", "2", "--patch", "16", "--batch", "2", "--steps", "3", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert json.loads(weights.with_suffix(".json").read_text())["data"]["sources"] == [str(series)]
    out = tmp_path / "lpn.h5"
    result = run_cli("reconstruct", ct_file, "--slices", "16:17", "--method", "lpn", "--set", f"weights={weights}",
                     "--set", "iterations=2", "--out", out)
    assert result.returncode == 0, result.stderr
    with h5py.File(out) as file:
        assert str(weights) in json.dumps({k: str(v) for k, v in file.attrs.items()})
        assert np.isfinite(file["reconstruction"][()]).all()
