"""ct-dynamic and mri-dynamic through the CLI: simulate, info, reconstruct, viewer layers, bad options.

The main round trip runs the real console script; the other cases call ``recon.cli.main`` in this process
(the same code from the argument list to the exit code, without a second torch import per case).
"""

import json
import subprocess

import h5py
import numpy as np
import pytest
import torch

from recon import cli
from recon.physics.dynamic import DynamicParallelCT
from tests.cli.conftest import run_cli
from tests.cli.test_bad_input import assert_user_error


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def recon(capsys, monkeypatch):
    """``recon ARGS...`` in this process: a CompletedProcess with the exit code and the captured output."""
    monkeypatch.setattr(cli, "_install_sigterm_handler", lambda: None)

    def run(*args) -> subprocess.CompletedProcess:
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def walnut_file(tmp_path_factory):
    """16 frames of the 32^2 walnut, one view each in bit-reversal order, 0.5 % noise (of the maximum)."""
    path = tmp_path_factory.mktemp("dynamic") / "walnut.h5"
    ok(run_cli("simulate", "ct-dynamic", "--phantom", "walnut", "--frames", "16", "--size", "32", "--noise-std",
               "0.005", "--seed", "2", "--out", path))
    return path


def test_simulated_ct_dynamic_file_validates_with_noise_relative_to_the_maximum(walnut_file):
    assert "ct-dynamic/1" in ok(run_cli("info", walnut_file)).stdout
    with h5py.File(walnut_file) as f:
        sinogram, angles, truth = f["sinogram"][()], f["angles"][()], f["ground_truth"][()]
        noise_std = f.attrs["noise_std"]
    assert sinogram.shape == (16, 1, 46) and angles.shape == (16, 1) and truth.shape == (16, 32, 32)
    np.testing.assert_allclose(angles[:4, 0], np.pi * np.array([0, 8, 4, 12]) / 16)
    clean = DynamicParallelCT((32, 32), angles).A(torch.from_numpy(truth)[:, None])[:, 0].numpy()
    assert noise_std == pytest.approx(0.005 * clean.max(), rel=1e-5)
    assert np.std(sinogram - clean) == pytest.approx(noise_std, rel=0.25)


def test_fbp_writes_a_sequence_that_opens_with_time_axis_labels(walnut_file, tmp_path, recon):
    from recon_napari.layers import read_layers

    framewise, static = tmp_path / "fbp.h5", tmp_path / "static.h5"
    ok(run_cli("reconstruct", walnut_file, "--method", "fbp", "--out", framewise))
    ok(recon("reconstruct", walnut_file, "--method", "fbp", "--set", "static=true", "--out", static))
    assert "reconstruction/1" in ok(recon("info", framewise)).stdout
    with h5py.File(framewise) as f, h5py.File(static) as g:
        assert f["reconstruction"].shape == (16, 32, 32) and f.attrs["axes"] == "t,y,x"
        assert json.loads(g.attrs["params"]) == {"filter": "ramp", "static": True}
        pooled = g["reconstruction"][()]
        assert np.array_equal(pooled[0], pooled[9])
        assert g.attrs["psnr"] > f.attrs["psnr"] + 5  # one view per frame: frame-wise FBP is mostly streaks
    data, kwargs, _ = read_layers(framewise)[0]
    assert kwargs["axis_labels"] == ("t", "y", "x") and data.shape == (16, 32, 32)


def test_a_user_sequence_round_trips(tmp_path, recon):
    frames = np.random.default_rng(0).random((6, 24, 24)).astype(np.float32)
    np.save(tmp_path / "frames.npy", frames)
    out = tmp_path / "user.h5"
    ok(recon("simulate", "ct-dynamic", "--volume", tmp_path / "frames.npy", "--views-per-frame", "3", "--order",
             "golden-angle", "--out", out))
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["ground_truth"][()], frames)
        assert f["sinogram"].shape == (6, 3, 34) and f.attrs["noise_std"] == 0


def test_mri_dynamic_simulate_and_reconstruct(tmp_path, recon):
    measurement = tmp_path / "cine.h5"
    ok(recon("simulate", "mri-dynamic", "--phantom", "cardiac", "--frames", "8", "--size", "32", "--coils", "4",
             "--acceleration", "3", "--noise-std", "0.02", "--out", measurement))
    assert "mri-dynamic/1" in ok(recon("info", measurement)).stdout
    ok(recon("reconstruct", measurement, "--method", "adjoint", "--out", tmp_path / "adjoint.h5"))
    ok(recon("reconstruct", measurement, "--method", "cgls", "--out", tmp_path / "cgls.h5"))
    with h5py.File(tmp_path / "adjoint.h5") as a, h5py.File(tmp_path / "cgls.h5") as c:
        assert c["reconstruction"].shape == (8, 32, 32) and c.attrs["axes"] == "t,y,x"
        assert c.attrs["psnr"] > a.attrs["psnr"] + 1


SMALL = ("--frames", "4", "--size", "16")


@pytest.mark.parametrize("args, fragments", [
    (("ct-dynamic", "--phantom", "walnut", *SMALL, "--order", "random"), ("--order", "golden-angle, linear")),
    (("ct-dynamic", "--phantom", "walnut", *SMALL, "--views", "10"), ("--views does not apply to ct-dynamic",)),
    (("ct-dynamic", "--phantom", "shepp-logan-3d"), ("--phantom", "walnut, ellipses, cardiac")),
    (("ct-dynamic", "--phantom", "walnut", "--frames", "0"), ("--frames",)),
    (("ct-dynamic", "--phantom", "walnut", *SMALL, "--angle-range", "0"), ("--angle-range",)),
    (("mri-dynamic", "--phantom", "cardiac", *SMALL, "--coils", "0"), ("--coils",)),
    (("mri-dynamic",), ("--volume", "exactly one")),
])
def test_bad_simulate_options_exit_2(tmp_path, recon, args, fragments):
    out = tmp_path / "x.h5"
    assert_user_error(recon("simulate", *args, "--out", out), *fragments)
    assert not out.exists()


def test_a_volume_that_is_not_a_sequence_or_frames_with_a_volume_exit_2(tmp_path, recon):
    np.save(tmp_path / "image.npy", np.zeros((24, 24), np.float32))
    np.save(tmp_path / "frames.npy", np.zeros((4, 24, 24), np.float32))
    assert_user_error(recon("simulate", "ct-dynamic", "--volume", tmp_path / "image.npy", "--out", tmp_path / "x.h5"),
                      "(t, y, x)")
    assert_user_error(recon("simulate", "ct-dynamic", "--volume", tmp_path / "frames.npy", "--frames", "4",
                            "--out", tmp_path / "x.h5"), "--frames")


def test_bad_reconstruct_options_on_dynamic_files_exit_2(walnut_file, ct_file, tmp_path, recon):
    out = tmp_path / "o.h5"
    for slices in ("0:1", "2:5"):
        assert_user_error(recon("reconstruct", walnut_file, "--method", "fbp", "--slices", slices, "--out", out),
                          "--slices", "ct-dynamic/1 file is reconstructed whole")
    assert_user_error(recon("reconstruct", ct_file, "--method", "fbp", "--set", "static=true", "--out", out),
                      "static", "ct-dynamic/1")
    assert_user_error(recon("simulate", "ct-dynamic", "--phantom", "walnut", *SMALL, "--out", walnut_file),
                      "--overwrite")
    assert not out.exists()


def test_red_psm_through_the_console_script_records_its_rounds(walnut_file, tmp_path):
    out = tmp_path / "red_psm.h5"
    result = ok(run_cli("reconstruct", walnut_file, "--method", "red-psm", "--set", "rounds=4", "--seed", "1",
                        "--out", out))
    assert "red-psm: 4/4" in result.stderr  # one progress line per round off a terminal
    with h5py.File(out) as f:
        assert f["reconstruction"].shape == (16, 32, 32) and f.attrs["axes"] == "t,y,x"
        assert set(f["history"]) == {"data", "red", "primal_residual", "change"} and len(f["history/data"]) == 4
        assert json.loads(f.attrs["params"])["prior"] == "drunet" and f.attrs["psnr"] > 10
    ok(run_cli("reconstruct", walnut_file, "--method", "red-psm", "--set", "rounds=4", "--seed", "1",
                       "--out", tmp_path / "again.h5"))
    with h5py.File(out) as f, h5py.File(tmp_path / "again.h5") as g:
        np.testing.assert_array_equal(f["reconstruction"][()], g["reconstruction"][()])  # deterministic under --seed


def test_psm_model_that_cannot_hold_its_order_is_refused(walnut_file, tmp_path, recon):
    assert_user_error(recon("reconstruct", walnut_file, "--method", "psm", "--set", "order=20", "--out",
                            tmp_path / "o.h5"), "--set order", "order <= 15")
