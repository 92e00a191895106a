"""`recon train unfolded` end to end: sparse-linear (supervised) and MRI (unsupervised, from measurements
alone), then `recon reconstruct --method unfolded-*`; bad input exits 2 with one line; no silent overwrite."""

import json

import h5py
import numpy as np
import pytest

from recon.io.measurement import write_measurement
from recon.phantoms import shepp_logan_3d
from recon.simulate import simulate_mri_cartesian, simulate_sparse_linear
from tests.cli.conftest import run_cli


def ok(*args):
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return result


def attr(path, name):
    with h5py.File(path) as f:
        return float(f.attrs[name])


def sparse_file(path, samples, seed, truth=True):
    """A sparse-linear file of the default setup (what `recon simulate sparse-linear --seed SEED` writes)."""
    datasets, attrs = simulate_sparse_linear(75, 150, 12, 10.0, samples, rng=np.random.default_rng(seed))
    if not truth:
        del datasets["ground_truth"]
    return write_measurement(path, "sparse-linear/1", datasets, attrs)


@pytest.fixture(scope="module")
def sparse_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sparse")
    sparse_file(folder / "train.h5", 300, 1)
    sparse_file(folder / "test.h5", 60, 2)
    return folder


def test_train_writes_weights_and_card_and_shipped_unfolded_ista_beats_ista(sparse_files, tmp_path):
    weights = tmp_path / "W.safetensors"
    result = ok("train", "unfolded", "--algo", "ista", "--loss", "supervised", "--layers", "10", "--steps", "150",
                "--lr", "0.05", "--data", sparse_files / "train.h5", "--out", weights)
    assert "validation" in result.stdout
    card = json.loads((tmp_path / "W.json").read_text())
    assert card["algo"] == "ista" and card["loss"] == "supervised" and card["layers"] == 10 and card["steps"] == 150
    assert card["command"].startswith("recon train unfolded") and card["data"]["held_out_batches"] >= 1
    assert card["validation"]["trained"]["nmse"] < card["validation"]["init"]["nmse"]

    test = sparse_files / "test.h5"
    ok("reconstruct", test, "--method", "unfolded-ista", "--out", tmp_path / "shipped.h5")  # shipped: 20 layers
    ok("reconstruct", test, "--method", "ista", "--set", "iterations=20", "--set", "lam=0.1", "--out",
       tmp_path / "ista.h5")
    assert attr(tmp_path / "shipped.h5", "nmse") < 0.5 * attr(tmp_path / "ista.h5", "nmse")
    with h5py.File(tmp_path / "shipped.h5") as f:
        assert len(f["history/objective"]) == 20
        assert json.loads(f.attrs["params"])["weights"].endswith("unfolded-ista-sparse-linear.safetensors")

    again = run_cli("train", "unfolded", "--algo", "ista", "--loss", "supervised", "--data", test, "--out", weights)
    assert again.returncode == 2 and "exists already" in again.stderr and "--overwrite" in again.stderr


@pytest.mark.slow
def test_mri_trained_unsupervised_from_measurements_beats_adjoint_and_cgls(tmp_path):
    mri = ("mri-cartesian", "--phantom", "shepp-logan-3d", "--size", "32", "--coils", "4", "--acceleration", "3",
           "--mask", "poisson2d", "--noise-std", "0.01", "--with-coil-maps")
    ok("simulate", *mri, "--seed", "1", "--out", tmp_path / "meas_train.h5")
    datasets, attrs = simulate_mri_cartesian(shepp_logan_3d(32), 4, 3.0, "poisson2d", noise_std=0.01,
                                             with_coil_maps=True, rng=np.random.default_rng(2))
    write_measurement(tmp_path / "eval.h5", "mri-cartesian/1", datasets, attrs)  # as `recon simulate ... --seed 2`
    with h5py.File(tmp_path / "meas_train.h5", "r+") as f:
        del f["ground_truth"]  # measurements only
    weights = tmp_path / "mri.safetensors"
    ok("train", "unfolded", "--algo", "ista", "--loss", "unsupervised", "--spec", "mri-cartesian", "--layers", "8",
       "--steps", "150", "--lr", "0.1", "--lam", "3e-3", "--learn-thresholds", "--batch", "8",
       "--data", str(tmp_path / "meas_*.h5"), "--out", weights)
    eval_file, scores = tmp_path / "eval.h5", {}
    for method, extra in (("adjoint", ()), ("cgls", ()), ("unfolded-ista", ("--set", f"weights={weights}"))):
        out = tmp_path / f"{method}.h5"
        ok("reconstruct", eval_file, "--method", method, *extra, "--slices", "10:22", "--out", out)
        scores[method] = attr(out, "psnr")
    assert scores["unfolded-ista"] > max(scores["adjoint"], scores["cgls"]) + 2, scores


@pytest.mark.parametrize("args, fragments", [
    (("--algo", "fista"), ("--algo", "'fista' is not allowed", "ista, iht")),
    (("--spec", "radar"), ("--spec", "sparse-linear, mri-cartesian, ct-parallel")),
    (("--layers", "0"), ("--layers", ">= 1")),
    (("--data", "nowhere/*.h5"), ("nowhere/*.h5", "no file matches")),
    (("--out", "W.pt"), ("W.pt", "must end in .safetensors")),
])
def test_bad_options_exit_2_with_one_line(sparse_files, tmp_path, args, fragments):
    options = {"--algo": "ista", "--loss": "unsupervised", "--data": str(sparse_files / "test.h5"),
               "--out": str(tmp_path / "W.safetensors")}
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = run_cli("train", "unfolded", *[item for pair in options.items() for item in pair])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
    assert not list(tmp_path.iterdir())


def test_bad_data_exit_2_naming_the_file(tmp_path):
    no_truth = sparse_file(tmp_path / "no_truth.h5", 10, 0, truth=False)
    cases = [(("--algo", "ista", "--loss", "supervised", "--data", no_truth), ("no_truth.h5", "ground_truth")),
             (("--algo", "iht", "--loss", "unsupervised", "--data", tmp_path / "missing.h5"),
              ("missing.h5", "file not found"))]
    for args, fragments in cases:
        result = run_cli("train", "unfolded", *args, "--out", tmp_path / "W.safetensors")
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert all(fragment in result.stderr for fragment in fragments), result.stderr
    assert not (tmp_path / "W.safetensors").exists()
