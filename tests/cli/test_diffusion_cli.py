"""``recon train diffusion`` and the diffusion methods end to end as subprocesses: weights and card, fine-tuning,
posterior samples with their uncertainty in the output file, and bad input (exit code 2, one line)."""

import json

import h5py
import numpy as np
import pytest

from tests.cli.conftest import run_cli

TINY = ("--size", "16", "--steps", "3", "--batch", "2", "--mult", "1,2", "--device", "cpu")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffusion") / "w.safetensors"
    result = run_cli("train", "diffusion", "--data", "phantom:foam", "--out", out, *TINY)
    assert result.returncode == 0, result.stderr
    assert "Tweedie x0 PSNR" in result.stdout and not out.with_suffix(".ckpt").exists()
    return out


def test_train_diffusion_writes_weights_and_card_and_fine_tunes(weights, tmp_path):
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["kind"] == "diffusion" and card["steps"] == 3 and card["data"]["size"] == 16
    assert card["config"]["mult"] == [1, 2] and "psnr_x0_t200" in card["validation"]
    tuned = tmp_path / "tuned.safetensors"
    result = run_cli("train", "diffusion", "--data", "phantom:ellipses", "--init", weights, "--out", tuned, *TINY)
    assert result.returncode == 0, result.stderr
    assert json.loads(tuned.with_suffix(".json").read_text())["init"] == str(weights)


def test_dds_writes_the_mean_and_the_uncertainty_of_posterior_samples(weights, ct_file, tmp_path):
    out = tmp_path / "dds.h5"
    result = run_cli("reconstruct", ct_file, "--method", "dds", "--slices", "10:14", "--set", f"weights={weights}",
                     "--set", "nfe=3", "--set", "samples=2", "--out", out)
    assert result.returncode == 0, result.stderr
    with h5py.File(out) as f:
        image, spread = f["reconstruction"][()], f["uncertainty"][()]
        assert image.shape == spread.shape == (4, 32, 32)
        assert np.all(spread >= 0) and spread.mean() > 0
        assert json.loads(f.attrs["params"])["samples"] == 2


def test_bad_input_exits_2_with_one_line(weights, ct_file, tmp_path):
    runs = [
        ("train", "diffusion", "--data", "phantom:foam", "--width", "48", "--out", tmp_path / "a.safetensors", *TINY),
        ("train", "diffusion", "--data", "phantom:foam", "--patch", "64", "--out", tmp_path / "b.safetensors", *TINY),
        ("train", "diffusion", "--data", "phantom:foam", "--init", tmp_path / "none.safetensors",
         "--out", tmp_path / "c.safetensors", *TINY),
        ("reconstruct", ct_file, "--method", "dds", "--prior", "drunet", "--out", tmp_path / "d.h5"),
        ("reconstruct", ct_file, "--method", "diffusion-mbir", "--set", f"weights={tmp_path / 'none.safetensors'}",
         "--out", tmp_path / "e.h5"),
    ]
    for args in runs:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
