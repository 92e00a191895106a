"""Atomic, chunked, compressed reconstruction files that validate against reconstruction/1."""

import json
import os

import h5py
import numpy as np
import pytest
from make_files import write_valid_file

import recon.io.reconstruction as writer
from recon.errors import UserError
from recon.io import check_output_path, read_reconstruction, validate_file, write_reconstruction
from recon.io.reconstruction import display_range

ATTRS = {"method": "tv", "params": {"lam": 0.1, "n_iter": 50, "prior": None}, "source": "m.h5[0:3]",
         "command": "recon reconstruct m.h5 --method tv", "device": "cpu", "elapsed_s": 1.25, "seed": 7,
         "psnr": 31.5, "ssim": None}


def test_round_trip_3d_with_datasets_and_history(tmp_path):
    image = np.random.default_rng(0).random((3, 16, 20)).astype(np.float64)
    out = write_reconstruction(tmp_path / "r.h5", image, attrs=ATTRS,
                               datasets={"uncertainty": image / 10, "ground_truth": image},
                               history={"objective": np.linspace(1, 0, 50), "snapshots": image[None]})
    assert out == tmp_path / "r.h5" and sorted(os.listdir(tmp_path)) == ["r.h5"]
    report = validate_file(out)
    assert report.ok, report.problems
    assert report.spec.id == "reconstruction/1" and report.dims == {"nz": 3, "ny": 16, "nx": 20}
    data, attrs = read_reconstruction(out)
    assert data.dtype == np.float32 and np.allclose(data, image)
    assert attrs["params"] == {"lam": 0.1, "n_iter": 50, "prior": None}
    assert attrs["seed"] == 7 and attrs["elapsed_s"] == 1.25 and attrs["psnr"] == 31.5 and "ssim" not in attrs
    assert attrs["recon_version"] and attrs["display_min"] < attrs["display_max"]
    with h5py.File(out, "r") as f:
        assert f.attrs["recon_spec"] == "reconstruction/1"
        assert json.loads(f.attrs["params"]) == ATTRS["params"] and isinstance(f.attrs["params"], str)
        assert isinstance(f.attrs["seed"], np.integer) and isinstance(f.attrs["elapsed_s"], np.floating)
        for key in ("reconstruction", "uncertainty", "ground_truth"):
            ds = f[key]
            assert ds.chunks == (1, 16, 20) and ds.compression == "gzip" and ds.shuffle
        assert f["history/snapshots"].chunks == (1, 1, 16, 20)
        assert f["history/objective"].shape == (50,)


def test_2d_and_complex(tmp_path):
    image = np.exp(1j * np.linspace(0, 3, 16 * 12)).reshape(16, 12) * 2
    out = write_reconstruction(tmp_path / "r.h5", image, attrs=ATTRS, datasets={"complex": image})
    with h5py.File(out, "r") as f:
        ds = f["reconstruction"]
        assert ds.dtype == np.complex64 and ds.chunks == (16, 12) and ds.compression == "gzip"
        assert np.isclose(f.attrs["display_min"], 2) and f.attrs["display_max"] > 2
    assert validate_file(out).ok


def test_display_range_uses_a_bounded_subsample():
    huge = np.broadcast_to(np.linspace(0, 1, 1000, dtype=np.float32), (1000, 1000, 1000))  # 1e9 values, no memory
    lo, hi = display_range(huge)
    assert abs(lo - 0.005) < 0.02 and abs(hi - 0.995) < 0.02
    assert display_range(np.full((4, 4), 3.0)) == (3.0, 6.0)
    assert display_range(np.full((4, 4), np.nan)) == (0.0, 1.0)
    assert display_range(np.array([[-1.0, 1.0]]))[0] < 0  # real data: values, not magnitude


def test_never_overwrites_without_overwrite(tmp_path):
    out = write_reconstruction(tmp_path / "r.h5", np.ones((4, 4)), attrs=ATTRS)
    with pytest.raises(UserError, match="r.h5: exists already; fix: pass --overwrite"):
        write_reconstruction(out, np.zeros((4, 4)), attrs=ATTRS)
    assert read_reconstruction(out)[0][0, 0] == 1
    write_reconstruction(out, np.zeros((4, 4)), attrs=ATTRS, overwrite=True)
    assert read_reconstruction(out)[0][0, 0] == 0
    assert os.listdir(tmp_path) == ["r.h5"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch, error):
    old = write_reconstruction(tmp_path / "old.h5", np.ones((4, 4)), attrs=ATTRS)
    before = old.read_bytes()

    def fail(group, key, array, dtype=None):
        group.create_dataset(key, data=array)
        raise error("interrupted")

    monkeypatch.setattr(writer, "write_array", fail)
    with pytest.raises(error):
        write_reconstruction(tmp_path / "new.h5", np.ones((2, 4, 4)), attrs=ATTRS)
    with pytest.raises(error):
        write_reconstruction(old, np.zeros((4, 4)), attrs=ATTRS, overwrite=True)
    assert os.listdir(tmp_path) == ["old.h5"] and old.read_bytes() == before


def test_an_output_that_breaks_the_spec_is_not_written(tmp_path):
    with pytest.raises(ValueError, match="method: root attribute missing"):
        write_reconstruction(tmp_path / "r.h5", np.ones((4, 4)), attrs={**ATTRS, "method": None})
    with pytest.raises(ValueError, match=r"uncertainty: expected \(ny, nx\) or \(nz, ny, nx\), found shape \(3,\)"):
        write_reconstruction(tmp_path / "r.h5", np.ones((4, 4)), attrs=ATTRS, datasets={"uncertainty": np.ones(3)})
    assert os.listdir(tmp_path) == []


def test_check_output_path(tmp_path):
    assert check_output_path(tmp_path / "a.h5") == tmp_path / "a.h5"
    with pytest.raises(UserError, match="the output folder .*nowhere does not exist"):
        check_output_path(tmp_path / "nowhere" / "a.h5")
    with pytest.raises(UserError, match="is a folder"):
        check_output_path(tmp_path, overwrite=True)
    (tmp_path / "a.h5").write_bytes(b"")
    with pytest.raises(UserError, match="exists already"):
        check_output_path(tmp_path / "a.h5")
    assert check_output_path(tmp_path / "a.h5", overwrite=True)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_check_output_path_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UserError, match="is not writable"):
        check_output_path(locked / "a.h5")


def test_read_reconstruction_rejects_measurement_files(tmp_path):
    with pytest.raises(UserError, match="is a ct-parallel/1 file, not a reconstruction"):
        read_reconstruction(write_valid_file("ct-parallel", tmp_path / "m.h5"))
