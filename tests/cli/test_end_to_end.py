"""The CLI end to end: simulate, info, reconstruct (tv beats fbp), slices, config, interrupts."""

import json
import signal
import subprocess

import h5py
import numpy as np
import pytest

from recon.io.specs import validate_file
from tests.cli.conftest import RECON, run_cli


def reconstruct(path, method, out, *extra):
    result = run_cli("reconstruct", path, "--method", method, "--out", out, *extra)
    assert result.returncode == 0, result.stderr
    return result


def test_tv_beats_fbp_and_writes_a_valid_reconstruction(tmp_path):
    measurement = tmp_path / "m.h5"
    result = run_cli("simulate", "ct-parallel", "--phantom", "shepp-logan-3d", "--size", "64", "--views", "30",
                     "--noise-std", "0.01", "--out", measurement)
    assert result.returncode == 0, result.stderr
    reconstruct(measurement, "tv", tmp_path / "r.h5")
    reconstruct(measurement, "fbp", tmp_path / "f.h5")
    assert validate_file(tmp_path / "r.h5").ok
    with h5py.File(tmp_path / "r.h5") as r, h5py.File(tmp_path / "f.h5") as f:
        assert r["reconstruction"].shape == (64, 64, 64)
        assert r["reconstruction"].chunks == (1, 64, 64)
        assert r.attrs["method"] == "tv" and json.loads(r.attrs["params"])["iterations"] > 0
        assert r.attrs["psnr"] > f.attrs["psnr"] + 3, (r.attrs["psnr"], f.attrs["psnr"])
        assert r.attrs["ssim"] > f.attrs["ssim"]
        objective = r["history/objective"][:]
        assert objective[-1] < objective[0]


def test_info_describes_a_valid_file(ct_file):
    result = run_cli("info", ct_file)
    assert result.returncode == 0, result.stderr
    assert "ct-parallel/1" in result.stdout and "sinogram" in result.stdout


def test_slices_config_and_seed_are_recorded(ct_file, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("method: cgls\nparams:\n  iterations: 5\nseed: 7\n")
    out = tmp_path / "part.h5"
    result = run_cli("reconstruct", ct_file, "--config", config, "--slices", "14:16", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "cgls" in result.stdout and "PSNR" in result.stdout
    with h5py.File(out) as f:
        assert f["reconstruction"].shape == (2, 32, 32)
        assert f.attrs["seed"] == 7 and json.loads(f.attrs["params"]) == {"iterations": 5}
        assert "--slices 14:16" in f.attrs["command"]


@pytest.mark.slow
def test_runs_are_deterministic(ct_file, tmp_path):
    for name in ("a.h5", "b.h5"):
        reconstruct(ct_file, "tv", tmp_path / name, "--set", "iterations=20", "--seed", "3")
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        assert np.array_equal(a["reconstruction"][:], b["reconstruction"][:])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
@pytest.mark.slow
def test_interrupted_run_leaves_no_output(ct_file, tmp_path, sig):
    out = tmp_path / "interrupted.h5"
    process = subprocess.Popen([RECON, "reconstruct", str(ct_file), "--method", "tv", "--set", "iterations=50000",
                                "--out", str(out)], stderr=subprocess.PIPE, text=True)
    while not process.stderr.readline().startswith("tv: "):  # wait until the solver is iterating
        assert process.poll() is None
    process.send_signal(sig)
    process.wait(timeout=60)
    assert process.returncode != 0
    assert not out.exists()
    if sig == signal.SIGINT:
        assert process.returncode == 130
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".interrupted")]


def simulate(tmp_path, *args):
    path = tmp_path / "m.h5"
    result = run_cli("simulate", *args, "--out", path)
    assert result.returncode == 0, result.stderr
    return path


def psnr_of(path):
    with h5py.File(path) as f:
        return float(f.attrs["psnr"])


@pytest.mark.slow
def test_mri_with_estimated_coil_maps_tv_beats_zero_filled(tmp_path):
    measurement = simulate(tmp_path, "mri-cartesian", "--phantom", "shepp-logan-3d", "--size", "48", "--coils", "4",
                           "--acceleration", "3", "--noise-std", "0.01")
    with h5py.File(measurement) as f:
        assert "coil_maps" not in f and f["kspace"].dtype == np.complex64
    for method in ("adjoint", "tv"):
        reconstruct(measurement, method, tmp_path / f"{method}.h5", "--slices", "16:32")
    assert psnr_of(tmp_path / "tv.h5") > psnr_of(tmp_path / "adjoint.h5") + 3
    with h5py.File(tmp_path / "tv.h5") as f:
        assert f["complex"].dtype == np.complex64
        assert np.allclose(np.abs(f["complex"][:]), f["reconstruction"][:], atol=1e-5)


@pytest.mark.slow
def test_sparse_linear_ista_beats_least_squares(tmp_path):
    measurement = simulate(tmp_path, "sparse-linear", "--samples", "20")
    for method in ("cgls", "ista"):
        reconstruct(measurement, method, tmp_path / f"{method}.h5")
    with h5py.File(tmp_path / "ista.h5") as ista, h5py.File(tmp_path / "cgls.h5") as cgls:
        assert ista["reconstruction"].shape == (20, 150)
        assert ista.attrs["nmse"] < 0.5 * cgls.attrs["nmse"]


def test_simulate_rejects_options_of_another_spec(tmp_path):
    result = run_cli("simulate", "sparse-linear", "--views", "10", "--out", tmp_path / "x.h5")
    assert result.returncode == 2 and "--views does not apply to sparse-linear" in result.stderr
    assert not (tmp_path / "x.h5").exists()
