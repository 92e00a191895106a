"""Specs load from data_specs, valid files validate clean, each kind of bad input is named with its key."""

import h5py
import numpy as np
import pytest
from make_files import BUILDERS, write_valid_file

from recon.errors import UserError
from recon.io import specs
from recon.io.specs import load_spec, spec_names, validate_file

ALL = ["ct-parallel/1", "mri-cartesian/1", "ct-dynamic/1", "mri-dynamic/1", "mimo-nearfield/1",
       "sparse-linear/1", "reconstruction/1"]


def test_every_spec_of_the_design_is_shipped():
    assert spec_names() == sorted(ALL)
    assert set(BUILDERS) == {name.split("/")[0] for name in ALL}
    for name in ALL:
        spec = load_spec(name)
        assert spec.id == name and spec.description
        assert all(d.description for d in spec.datasets.values())
        assert all(a.description for a in spec.attributes.values())
    assert load_spec("ct-parallel") is load_spec("ct-parallel/1")


def test_unknown_spec_name_lists_the_known_ones():
    with pytest.raises(UserError, match="ct-parallel/1, ct-dynamic/1|ct-dynamic/1, ct-parallel/1") as err:
        load_spec("ct-fan/1")
    assert "ct-fan/1" in str(err.value)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n_slices", [3, None])
def test_valid_files_validate_clean(tmp_path, name, n_slices):
    report = validate_file(write_valid_file(name, tmp_path / "f.h5", n_slices=n_slices))
    assert report.ok, report.problems
    assert report.spec.id == name
    report.raise_if_bad()


def test_dims_bind_across_datasets_and_attributes(tmp_path):
    report = validate_file(write_valid_file("ct-parallel", tmp_path / "f.h5", n_slices=5))
    assert report.dims == {"nz": 5, "n_views": 12, "n_det": 24, "ny": 16, "nx": 16}
    assert report.axes["sinogram"] == ("nz", "n_views", "n_det")
    assert "nz" not in validate_file(write_valid_file("ct-parallel", tmp_path / "g.h5", n_slices=None)).dims


def problems(tmp_path, spec="ct-parallel", check_values=True, **overrides):
    return validate_file(write_valid_file(spec, tmp_path / "f.h5", **overrides), check_values=check_values).problems


@pytest.mark.parametrize("overrides, expected", [
    ({"sinogram": None}, "sinogram: missing (required dataset"),
    ({"sinogram": np.zeros((1, 3, 12, 24), np.float32)}, "sinogram: expected (n_views, n_det) or "
                                                         "(nz, n_views, n_det), found shape (1, 3, 12, 24)"),
    ({"sinogram": np.zeros((3, 12, 24), np.complex64)}, "sinogram: expected real floating-point data"),
    ({"sinogram": np.zeros((3, 12, 24), np.int16)}, "found dtype int16"),
    ({"sinogram": np.zeros((3, 0, 24), np.float32), "angles": np.zeros(0)}, "sinogram: is empty"),
    ({"angles": np.zeros(11)}, "angles: shape (11,) gives n_views=11 but sinogram has n_views=12"),
    ({"image_shape": [4, 16, 16]}, "image_shape: value [4, 16, 16] gives nz=4 but sinogram has nz=3"),
    ({"image_shape": [16, 16]}, "image_shape: value [16, 16] has no nz axis but sinogram has nz=3"),
    ({"ground_truth": np.zeros((3, 16, 15), np.float32)}, "ground_truth: shape (3, 16, 15) gives nx=15 but "
                                                          "image_shape has nx=16"),
    ({"image_shape": None}, "image_shape: root attribute missing (required"),
    ({"image_shape": "16x16"}, "image_shape: expected a list of integers, found '16x16'"),
    ({"image_shape": [3, 0, 16]}, "image_shape: every value must be >= 1"),
    ({"det_spacing": 0.0}, "det_spacing: every value must be > 0"),
    ({"noise_std": "low"}, "noise_std: expected a finite number"),
    ({"recon_spec": "ct-fan/1"}, "recon_spec: unknown spec 'ct-fan/1'"),
    ({"recon_spec": None}, "recon_spec: root attribute missing"),
])
def test_bad_ct_parallel_files_name_the_key(tmp_path, overrides, expected):
    found = problems(tmp_path, **overrides)
    assert any(expected in p for p in found), found


def test_2d_sinogram_with_3d_ground_truth_is_inconsistent(tmp_path):
    found = problems(tmp_path, n_slices=None, ground_truth=np.zeros((2, 16, 16), np.float32))
    assert found == ["ground_truth: shape (2, 16, 16) gives nz=2 but sinogram has no nz axis"]


def test_nan_is_found_slice_by_slice(tmp_path, monkeypatch):
    monkeypatch.setattr(specs, "BLOCK_ELEMENTS", 1)  # one slice per read
    sinogram = np.ones((3, 12, 24), np.float32)
    sinogram[2, 5, 7] = np.nan
    assert problems(tmp_path, sinogram=sinogram) == [
        "sinogram: contains NaN/Inf values (first at index 2 along axis 0); measurements must be finite"]
    assert problems(tmp_path, check_values=False, sinogram=sinogram) == []
    angles = np.linspace(0, 3, 12)
    angles[3] = np.inf
    assert any(p.startswith("angles: contains NaN/Inf") for p in problems(tmp_path, angles=angles))


def test_iter_blocks_reads_whole_slices_within_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(specs, "BLOCK_ELEMENTS", 2 * 12 * 24)
    with h5py.File(write_valid_file("ct-parallel", tmp_path / "f.h5", n_slices=5), "r") as f:
        blocks = list(specs.iter_blocks(f["sinogram"]))
        assert [(i, b.shape[0]) for i, b in blocks] == [(0, 2), (2, 2), (4, 1)]
        assert [(i, b.shape[0]) for i, b in specs.iter_blocks(f["sinogram"], 1, 4)] == [(1, 2), (3, 1)]


def test_mri_mask_rules(tmp_path):
    assert problems(tmp_path, "mri-cartesian", mask=np.ones((3, 16, 16), bool)) == []  # per slice
    assert problems(tmp_path, "mri-cartesian", mask=np.ones((16, 16), np.float32)) == []  # shared
    found = problems(tmp_path, "mri-cartesian", mask=np.ones((2, 16, 16), np.uint8))
    assert found == ["mask: shape (2, 16, 16) gives nz=2 but kspace has nz=3"]
    found = problems(tmp_path, "mri-cartesian", mask=np.ones((16, 8)))
    assert found == ["mask: shape (16, 8) gives nx=8 but kspace has nx=16"]
    mask = np.ones((16, 16), np.uint8)
    mask[4, 4] = 2
    assert problems(tmp_path, "mri-cartesian", mask=mask) == [
        "mask: must hold only 0 and 1, found 2 (first at index 4 along axis 0)"]
    found = problems(tmp_path, "mri-cartesian", kspace=np.ones((3, 2, 16, 16), np.float32))
    assert found == ["kspace: expected complex data (stored as complex64), found dtype float32"]
    assert problems(tmp_path, "mri-cartesian", fft_norm="backward") == [
        "fft_norm: must be one of 'ortho', found 'backward'"]
    assert problems(tmp_path, "mri-cartesian", fft_centered=False)[0].startswith("fft_centered: must be one of")


def test_mimo_rules(tmp_path):
    assert problems(tmp_path, "mimo-nearfield", tx_positions=np.zeros((3, 2))) == [
        "tx_positions: axis 1 of shape (3, 2) must be 3"]
    assert problems(tmp_path, "mimo-nearfield", grid_min=[0.0, -0.05, 0.3]) == [
        "grid_min: must be below grid_max entry by entry, found [0.0, -0.05, 0.3] and "
        "grid_max=[0.05, 0.05, 0.3]"]
    assert problems(tmp_path, "mimo-nearfield", grid_max=[1.0, 1.0]) == ["grid_max: expected 3 entries, found 2"]
    assert problems(tmp_path, "mimo-nearfield", grid_shape=[4, 8, 9]) == [
        "ground_truth: shape (4, 8, 8) gives nx=8 but grid_shape has nx=9"]
    assert problems(tmp_path, "mimo-nearfield", ground_truth=np.ones((4, 8, 8), np.float32)) == []


def test_reconstruction_rules(tmp_path):
    assert problems(tmp_path, "reconstruction", params="{bad json")[0].startswith(
        "params: expected a JSON string, found invalid JSON")
    assert problems(tmp_path, "reconstruction", display_min=2.0) == [
        "display_min: must be below display_max entry by entry, found 2.0 and display_max=1.0"]
    assert problems(tmp_path, "reconstruction", seed=1.5) == ["seed: expected an integer, found 1.5"]
    assert problems(tmp_path, "reconstruction", history=np.zeros(3)) == ["history: expected a group, found a dataset"]
    assert problems(tmp_path, "reconstruction", method=None, psnr=None) == [
        "method: root attribute missing (required: CLI name of the method, e.g. tv or lpn)"]


def test_group_where_a_dataset_belongs(tmp_path):
    path = write_valid_file("sparse-linear", tmp_path / "f.h5", A=None)
    with h5py.File(path, "a") as f:
        f.create_group("A")
    assert validate_file(path).problems == ["A: expected a dataset, found a group"]


def test_all_problems_are_collected_and_raised_as_one_line(tmp_path):
    path = write_valid_file("ct-parallel", tmp_path / "f.h5", angles=None, image_shape=None,
                            sinogram=np.zeros((3, 12, 24), np.int32))
    report = validate_file(path)
    assert [p.split(":")[0] for p in report.problems] == ["sinogram", "angles", "image_shape"]
    with pytest.raises(UserError) as err:
        report.raise_if_bad()
    message = str(err.value)
    assert "\n" not in message and err.value.key == "sinogram"
    assert message.startswith(f"{path}: sinogram: expected real floating-point data")
    assert "; angles: missing" in message and "; image_shape: root attribute missing" in message
    assert message.endswith("fix: make the file follow ct-parallel/1 as described in data_specs/ct-parallel.yaml")


def test_unknown_spec_lists_known_specs(tmp_path):
    report = validate_file(write_valid_file("ct-parallel", tmp_path / "f.h5", recon_spec="ct-fan/1"))
    assert report.spec is None
    with pytest.raises(UserError, match=r"recon_spec: unknown spec 'ct-fan/1'; fix: use one of ct-dynamic/1, "):
        report.raise_if_bad()


def test_file_without_recon_spec(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["sinogram"] = np.zeros((3, 4))
    with pytest.raises(UserError, match="plain.h5: recon_spec: root attribute missing; fix: set the root "
                                        "attribute recon_spec to one of ct-dynamic/1, ct-parallel/1"):
        validate_file(path).raise_if_bad()


def test_not_hdf5_and_missing_file(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    assert validate_file(text).problems == ["not an HDF5 file"]
    assert validate_file(tmp_path).problems == ["not an HDF5 file"]
    with pytest.raises(UserError, match=r"missing.h5: file not found; fix: check the path"):
        validate_file(tmp_path / "missing.h5").raise_if_bad()


def test_foreign_but_equivalent_encodings_are_accepted(tmp_path):
    """Fixed-length byte strings (MATLAB, older writers), integral floats for int lists, 0/1 for booleans."""
    path = write_valid_file("mri-cartesian", tmp_path / "m.h5", recon_spec=np.bytes_(b"mri-cartesian/1"),
                            fft_norm=np.bytes_(b"ortho"), fft_centered=np.int8(1))
    assert validate_file(path).ok
    path = write_valid_file("ct-parallel", tmp_path / "c.h5", image_shape=np.array([3.0, 16.0, 16.0]))
    assert validate_file(path).ok
    with h5py.File(path, "r") as f:
        assert specs.read_attrs(f, load_spec("ct-parallel"))["image_shape"] == [3, 16, 16]
