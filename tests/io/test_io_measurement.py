"""Lazy reading by slice range, --slices parsing, value checks on what is read."""

import os
import re

import h5py
import numpy as np
import pytest
from make_files import BUILDERS, write_valid_file

from recon.errors import UserError
from recon.io import MeasurementFile, parse_slice_range, specs, validate_file
from recon.io.measurement import write_measurement
from recon.io.specs import describe_file


@pytest.mark.parametrize("text, expected", [
    ("1:3", slice(1, 3)), ("-2:", slice(3, 5)), (":", slice(0, 5)), (":-1", slice(0, 4)), ("2:", slice(2, 5)),
    (" 0:5 ", slice(0, 5)), ("2", slice(2, 3)), ("-1", slice(4, 5)), ("-5:-4", slice(0, 1)),
])
def test_parse_slice_range(text, expected):
    assert parse_slice_range(text, 5) == expected


@pytest.mark.parametrize("text, reason", [
    ("3:3", "selects no slice"), ("4:2", "selects no slice"), ("0:6", "out of bounds"), ("-6:", "out of bounds"),
    ("5", "out of bounds"), ("a:b", "not a range of integers"), ("1:2:1", "not of the form a:b"),
    ("", "not of the form a:b"), ("1.5:2", "not a range of integers"),
])
def test_parse_slice_range_errors(text, reason):
    with pytest.raises(UserError, match=reason) as err:
        parse_slice_range(text, 5, path="m.h5")
    assert str(err.value).startswith("m.h5: --slices")
    assert "fix: give --slices a:b with 0 <= a < b <= 5" in str(err.value)


def test_reads_only_the_requested_slices(tmp_path, monkeypatch):
    monkeypatch.setattr(specs, "BLOCK_ELEMENTS", 12 * 24)  # one slice per read
    sinogram = np.arange(5 * 12 * 24, dtype=np.float32).reshape(5, 12, 24)
    sinogram[0] = np.nan  # outside the range read below: never checked, never read
    path = write_valid_file("ct-parallel", tmp_path / "m.h5", n_slices=5, sinogram=sinogram,
                            ground_truth=None, det_spacing=None)
    with MeasurementFile(path) as m:
        assert m.spec.id == "ct-parallel/1" and m.n_slices == 5
        assert m.dims == {"nz": 5, "n_views": 12, "n_det": 24, "ny": 16, "nx": 16}
        assert m.attrs["det_spacing"] == 1.0 and m.attrs["image_shape"] == [5, 16, 16]
        assert m.attrs["noise_std"] == 0.01 and m.attrs["recon_spec"] == "ct-parallel/1"
        assert m.has("sinogram") and not m.has("ground_truth") and m.shape("sinogram") == (5, 12, 24)
        part = m.read("sinogram", m.check_slice_range("2:5"))
        assert part.dtype == np.float32 and np.array_equal(part, sinogram[2:5])
        angles = m.read("angles", slice(2, 4))  # no slice axis: read whole
        assert angles.dtype == np.float64 and angles.shape == (12,)
        with pytest.raises(UserError, match=r"m.h5: sinogram: contains NaN/Inf values \(first at index 0"):
            m.read("sinogram", slice(0, 2))
        with pytest.raises(UserError, match="m.h5: sinogram: contains NaN/Inf"):
            m.read("sinogram")
        with pytest.raises(UserError, match="ground_truth: no dataset 'ground_truth'.*fix: read one of "
                                            "sinogram, angles"):
            m.read("ground_truth")
        for bad in (slice(4, 6), slice(3, 3), slice(0, 4, 2), slice(-1, None)):
            with pytest.raises(UserError, match="is empty, stepped or outside 0:5"):
                m.read("sinogram", bad)
    assert not m._file  # closed on exit


def test_a_2d_file_is_one_slice(tmp_path):
    path = write_valid_file("ct-parallel", tmp_path / "m.h5", n_slices=None)
    with MeasurementFile(path) as m:
        assert m.n_slices == 1
        assert m.check_slice_range(":") == m.check_slice_range("0:1") == slice(0, 1)
        with pytest.raises(UserError, match="out of bounds for 1 slices"):
            m.check_slice_range("1:2")
        with h5py.File(path, "r") as f:
            expected = f["sinogram"][()]
        assert np.array_equal(m.read("sinogram", slice(0, 1)), expected)
        assert m.read("ground_truth").shape == (16, 16)
        with pytest.raises(UserError):
            m.read("sinogram", slice(1, 2))


def test_mri_mask_shared_or_per_slice(tmp_path):
    path = write_valid_file("mri-cartesian", tmp_path / "m.h5", n_slices=4)
    with MeasurementFile(path) as m:
        assert m.attrs["fft_norm"] == "ortho" and m.attrs["fft_centered"] is True
        kspace, mask = m.read("kspace", slice(1, 3)), m.read("mask", slice(1, 3))
        assert kspace.dtype == np.complex64 and kspace.shape == (2, 2, 16, 16)
        assert mask.dtype == np.bool_ and mask.shape == (16, 16)  # shared mask: read whole
    mask = np.zeros((4, 16, 16), np.float32)
    mask[:, 8] = 1
    mask[3, 0, 0] = 0.5
    path = write_valid_file("mri-cartesian", tmp_path / "n.h5", n_slices=4, mask=mask)
    with MeasurementFile(path) as m:
        assert np.array_equal(m.read("mask", slice(1, 3)), mask[1:3].astype(bool))
        with pytest.raises(UserError, match=r"mask: must hold only 0 and 1, found 0.5 \(first at index 3"):
            m.read("mask", slice(2, 4))


def test_ground_truth_kind_follows_the_data(tmp_path):
    with MeasurementFile(write_valid_file("mimo-nearfield", tmp_path / "a.h5")) as m:
        assert m.n_slices == 1 and m.read("ground_truth").dtype == np.complex64
    real = np.ones((4, 8, 8), np.float64)
    with MeasurementFile(write_valid_file("mimo-nearfield", tmp_path / "b.h5", ground_truth=real)) as m:
        assert m.read("ground_truth").dtype == np.float32


def test_sparse_linear_slices_samples(tmp_path):
    with MeasurementFile(write_valid_file("sparse-linear", tmp_path / "s.h5", n_slices=6)) as m:
        assert m.n_slices == 6
        assert m.read("y", slice(2, 5)).shape == (3, 8) and m.read("A", slice(2, 5)).shape == (8, 16)


def test_opening_an_invalid_file_raises_one_user_error(tmp_path):
    path = write_valid_file("ct-parallel", tmp_path / "m.h5", angles=None)
    with pytest.raises(UserError, match="m.h5: angles: missing"):
        MeasurementFile(path)
    with pytest.raises(UserError, match="file not found"):
        MeasurementFile(tmp_path / "none.h5")


@pytest.mark.parametrize("name", sorted(BUILDERS.keys() - {"reconstruction"}))
def test_write_measurement_round_trips_every_spec(tmp_path, name):
    datasets, attrs = BUILDERS[name](np.random.default_rng(1), 3)
    datasets = {key: value.astype(bool) if key == "mask" else value for key, value in datasets.items()}
    out = write_measurement(tmp_path / "m.h5", name, datasets, {**attrs, "command": "recon simulate"})
    assert os.listdir(tmp_path) == ["m.h5"] and validate_file(out).ok
    with MeasurementFile(out) as m, h5py.File(out, "r") as f:
        assert m.spec.id == f"{name}/1" and m.attrs["command"] == "recon simulate"
        for key, value in datasets.items():
            assert np.array_equal(m.read(key), value), key
            ds = f[key]
            assert ds.compression == "gzip" and ds.shuffle
            if ds.ndim >= 3:
                assert ds.chunks == (1,) * (ds.ndim - 2) + ds.shape[-2:]
        if "mask" in datasets:
            assert f["mask"].dtype == np.uint8


def test_write_measurement_refuses_bad_data_and_existing_files(tmp_path):
    datasets, attrs = BUILDERS["ct-parallel"](np.random.default_rng(1), 3)
    with pytest.raises(ValueError, match="sinogram: expected real floating-point data"):
        write_measurement(tmp_path / "m.h5", "ct-parallel/1", {**datasets, "sinogram": datasets["sinogram"] * 1j},
                          attrs)
    with pytest.raises(ValueError, match="sinogram: contains NaN/Inf"):
        write_measurement(tmp_path / "m.h5", "ct-parallel/1", {**datasets, "sinogram": datasets["sinogram"] * np.nan},
                          attrs)
    assert os.listdir(tmp_path) == []
    write_measurement(tmp_path / "m.h5", "ct-parallel", datasets, attrs)
    with pytest.raises(UserError, match="exists already"):
        write_measurement(tmp_path / "m.h5", "ct-parallel/1", datasets, attrs)


def test_describe_file(tmp_path):
    path = write_valid_file("ct-parallel", tmp_path / "m.h5", det_spacing=None)
    text = describe_file(path)
    assert text.startswith(f"{path}: ct-parallel/1: Parallel-beam CT")
    assert "dims: nz=3, n_views=12, n_det=24, ny=16, nx=16" in text
    assert "sinogram      (3, 12, 24) float32" in text and re.search(r"det_spacing +1.0 +\(default\)", text)
    broken = write_valid_file("ct-parallel", tmp_path / "b.h5", recon_spec=None)
    assert describe_file(broken).startswith(f"{broken}: no known spec")
    assert describe_file(tmp_path / "none.h5") == str(tmp_path / "none.h5")
    truncated = tmp_path / "t.h5"
    truncated.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])  # HDF5 signature, cannot be opened
    assert describe_file(truncated) == str(truncated)
