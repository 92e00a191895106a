"""`recon batch` over datasets as the field ships them: fastMRI files and LoDoPaB pairs in one folder, through the
real CLI. Ground-truth files are paired, not counted; what is not reconstructed is listed with the reason."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from recon.batch.datasets import Measurement, sort_inputs
from recon.batch.inputs import expand_inputs
from recon.batch.runner import BatchRequest, check_read_options, plan_units
from recon.errors import UserError
from tests.cli.conftest import run_cli
from tests.io.layout_files import write_lodopab_pair
from tests.io.layouts.mri_layout_files import column_mask, simulate, write_fastmri, write_ismrmrd


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> Path:
    """4 fastMRI files (2 multi-coil and 1 single-coil training files, 1 test file with its 1D mask), 2 LoDoPaB
    pairs of one sample each, a text file and an HDF5 file no layout recognises."""
    folder = tmp_path_factory.mktemp("datasets")
    for i in range(4):
        write_fastmri(folder / f"file{i}.h5", simulate(seed=i), mask=column_mask(seed=i) if i == 3 else None,
                      single_coil=i == 2)
    for index in range(2):
        write_lodopab_pair(folder, n=1, index=index)
    (folder / "README.txt").write_text("how these files were acquired\n")
    with h5py.File(folder / "other.h5", "w") as file:
        file["x"] = np.zeros(3)
    return folder


def test_a_folder_of_fastmri_and_lodopab_files(datasets, tmp_path):
    out = tmp_path / "out"
    result = run_cli("batch", datasets, "--method", "cgls", "--set", "iterations=20", "--read", "angle_step=20",
                     "--out-dir", out, "--workers", "2")  # batch over layouts under test, not cgls' stopping rule
    assert result.returncode == 0, result.stderr
    assert "6 unit(s) from 6 measurement file(s) (2 ground-truth file(s) paired, 2 input(s) skipped)" in result.stderr
    assert "README.txt: not an HDF5 file" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    units = {u["unit"]: u for u in summary["units"]}
    assert summary["counts"]["ok"] == 6 and len(units) == 6  # the ground-truth files are not units
    assert {name: u["layout"] for name, u in units.items()} == {
        **{f"file{i}.h5": "fastmri" for i in range(4)},
        "observation_test_000.hdf5": "lodopab", "observation_test_001.hdf5": "lodopab"}
    for index in range(2):  # the PSNR comes from the paired ground truth (sparse-view cgls: well above 0 dB)
        unit = units[f"observation_test_{index:03d}.hdf5"]
        assert unit["ground_truth"] == str(datasets / f"ground_truth_test_{index:03d}.hdf5")
        assert unit["psnr"] > 18, unit
    assert all(units[f"file{i}.h5"]["psnr"] > 30 for i in range(3))  # fully sampled training files
    assert units["file3.h5"]["psnr"] is None  # a test file has no ground truth
    assert sorted(Path(p["ground_truth"]).name for p in summary["paired_ground_truths"]) == [
        "ground_truth_test_000.hdf5", "ground_truth_test_001.hdf5"]
    skipped = {Path(s["input"]).name: s["reason"] for s in summary["skipped_inputs"]}
    assert skipped.keys() == {"README.txt", "other.h5"} and "no layout" in skipped["other.h5"]
    assert "layout" in (out / "summary.csv").read_text().splitlines()[0]


def test_ground_truth_without_its_measurement_is_skipped_and_read_options_are_checked(datasets):
    truth = datasets / "ground_truth_test_000.hdf5"
    sorted_inputs = sort_inputs(expand_inputs([str(truth), str(datasets / "file0.h5")]).files)
    assert [m.path.name for m in sorted_inputs.measurements] == ["file0.h5"] and not sorted_inputs.paired
    assert "measurement is not among the inputs" in sorted_inputs.skipped[0].reason
    with pytest.raises(UserError, match="--read angle_step is an option of none of the inputs' layouts"):
        check_read_options({"angle_step": "20"}, sorted_inputs)  # only LoDoPaB's reader takes it


def test_slabs_of_a_layout_file_follow_its_reader(datasets, tmp_path):
    request = BatchRequest(inputs=[], method="cgls", out_dir=tmp_path, slab=1)
    units = plan_units(request, [Measurement(datasets / "file0.h5", "fastmri")], threads=1)
    assert [u.name for u in units] == ["file0.h5[0:1]", "file0.h5[1:2]"]  # 2 slices in the fastMRI file
    assert {u.final for u in units} == {tmp_path / "file0.cgls.h5"} and {u.layout for u in units} == {"fastmri"}


def test_every_option_an_ismrmrd_reader_takes_passes_the_batch_check(tmp_path):
    path = write_ismrmrd(tmp_path / "raw.h5", simulate(), column_mask())
    inputs = sort_inputs(expand_inputs([str(path)]).files)
    assert [m.layout for m in inputs.measurements] == ["ismrmrd"]
    check_read_options({"repetition": "0", "dataset": "dataset", "coils": "2"}, inputs)  # the encoding counters too
    with pytest.raises(UserError, match="--read bogus is an option of none"):
        check_read_options({"bogus": "1"}, inputs)
