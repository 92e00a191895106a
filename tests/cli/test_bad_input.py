"""Every kind of bad input ends with exit code 2, one line on stderr, no traceback, nothing written."""

import shutil

import h5py
import numpy as np
import pytest
import torch

from recon.device import resolve_device
from recon.errors import UserError
from tests.cli.conftest import run_cli


def assert_user_error(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def copy_with(ct_file, tmp_path, edit):
    path = tmp_path / "bad.h5"
    shutil.copy(ct_file, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_missing_file(tmp_path):
    result = run_cli("reconstruct", tmp_path / "nope.h5", "--method", "fbp")
    assert_user_error(result, "nope.h5", "not found")


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("hello")
    assert_user_error(run_cli("reconstruct", path, "--method", "fbp"), "text.h5", "HDF5")


def test_no_recon_spec(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    assert_user_error(run_cli("reconstruct", path, "--method", "fbp"), "plain.h5", "recon_spec")


def test_unknown_spec(ct_file, tmp_path):
    path = copy_with(ct_file, tmp_path, lambda f: f.attrs.__setitem__("recon_spec", "pet-listmode/1"))
    assert_user_error(run_cli("reconstruct", path, "--method", "fbp"), "pet-listmode/1", "ct-parallel")


def test_missing_dataset(ct_file, tmp_path):
    path = copy_with(ct_file, tmp_path, lambda f: f.__delitem__("angles"))
    assert_user_error(run_cli("reconstruct", path, "--method", "fbp"), "angles: missing")


def test_misshaped_dataset(ct_file, tmp_path):
    def edit(f):
        del f["angles"]
        f["angles"] = np.linspace(0, np.pi, 7, endpoint=False)

    path = copy_with(ct_file, tmp_path, edit)
    assert_user_error(run_cli("reconstruct", path, "--method", "fbp"), "angles: shape (7,) gives n_views=7")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_measurements(ct_file, tmp_path, bad):
    def edit(f):
        f["sinogram"][1, 3, 4] = bad

    path = copy_with(ct_file, tmp_path, edit)
    out = tmp_path / "out.h5"
    assert_user_error(run_cli("reconstruct", path, "--method", "fbp", "--out", out), "sinogram")
    assert not out.exists()


def test_unknown_method(ct_file, tmp_path):
    assert_user_error(run_cli("reconstruct", ct_file, "--method", "magic", "--out", tmp_path / "o.h5"),
                      "unknown method 'magic'", "fbp")


def test_unknown_option_is_a_usage_error_not_an_internal_one(ct_file, tmp_path):
    """typer raises its own copy of click's exceptions: they must still be usage errors (exit 2)."""
    result = run_cli("reconstruct", ct_file, "--bogus", "1", "--out", tmp_path / "o.h5")
    assert result.returncode == 2, result.stderr
    assert "No such option: --bogus" in result.stderr and "internal error" not in result.stderr


def test_method_that_does_not_accept_the_spec(ct_file, tmp_path):
    assert_user_error(run_cli("reconstruct", ct_file, "--method", "ista", "--out", tmp_path / "o.h5"),
                      "ista", "ct-parallel/1")


@pytest.mark.parametrize("setting, fragment", [("lamda=1", "unknown parameter 'lamda'"),
                                               ("iterations=many", "not a valid int")])
def test_bad_set(ct_file, tmp_path, setting, fragment):
    out = tmp_path / "o.h5"
    assert_user_error(run_cli("reconstruct", ct_file, "--method", "tv", "--set", setting, "--out", out), fragment)
    assert not out.exists()


def test_existing_output_is_not_overwritten(ct_file, tmp_path):
    out = tmp_path / "keep.h5"
    out.write_bytes(b"precious")
    assert_user_error(run_cli("reconstruct", ct_file, "--method", "fbp", "--out", out), "keep.h5", "--overwrite")
    assert out.read_bytes() == b"precious"


def test_slice_range_out_of_bounds(ct_file, tmp_path):
    out = tmp_path / "o.h5"
    assert_user_error(run_cli("reconstruct", ct_file, "--method", "fbp", "--slices", "5:99", "--out", out),
                      "--slices", "out of bounds")
    assert not out.exists()


def test_unknown_device(ct_file, tmp_path):
    out = tmp_path / "o.h5"
    assert_user_error(run_cli("reconstruct", ct_file, "--method", "fbp", "--device", "gpu", "--out", out),
                      "unknown device 'gpu'")
    assert not out.exists()


@pytest.mark.parametrize("name", ["cuda:1", "cuda:x", "cuda:-1"])
def test_cuda_index_that_the_machine_lacks(monkeypatch, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(UserError, match=f"--device {name} names no CUDA device of this machine"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(ct_file, tmp_path):
    out = tmp_path / "o.h5"
    assert_user_error(run_cli("reconstruct", ct_file, "--method", "fbp", "--device", "cuda", "--out", out),
                      "CUDA")
    assert not out.exists()


def test_info_reports_every_problem_and_exits_2(ct_file, tmp_path):
    def edit(f):
        del f["angles"]
        f.attrs["image_shape"] = [1, 2]

    path = copy_with(ct_file, tmp_path, edit)
    result = run_cli("info", path)
    assert result.returncode == 2
    assert "angles" in result.stderr and "image_shape" in result.stderr


@pytest.mark.parametrize("text, fragment", [("seed: abc\n", "seed: 'abc' is not an integer"),
                                            ("method: [\n", "not valid YAML"),
                                            ("methd: tv\n", "expected a mapping with keys among")])
def test_bad_config(ct_file, tmp_path, text, fragment):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    out = tmp_path / "o.h5"
    assert_user_error(run_cli("reconstruct", ct_file, "--method", "fbp", "--config", config, "--out", out),
                      "c.yaml", fragment)
    assert not out.exists()


def test_a_volume_prior_in_a_slice_method(ct_file, tmp_path):
    out = tmp_path / "o.h5"
    assert_user_error(run_cli("reconstruct", ct_file, "--method", "pnp-admm", "--prior", "drunet-radar",
                              "--out", out), "--prior", "drunet-radar", "3D volumes")
    assert not out.exists()
