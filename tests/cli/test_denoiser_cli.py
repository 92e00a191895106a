"""``recon train denoiser`` end to end as a subprocess (from scratch and fine-tuning given weights), and its
bad-input exit code."""

import json

from tests.cli.conftest import run_cli

TINY = ("--steps", "2", "--patch", "16", "--batch", "2", "--width", "4", "--device", "cpu")


def test_train_denoiser_writes_weights_and_card(tmp_path):
    out = tmp_path / "w.safetensors"
    result = run_cli("train", "denoiser", "--data", "phantom:foam", "--data", "skimage:camera", "--out", out, *TINY)
    assert result.returncode == 0, result.stderr
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["steps"] == 2 and card["data"]["sources"] == ["phantom:foam", "skimage:camera"]
    assert "recon train denoiser" in card["command"] and "psnr_denoised" in card["validation"]
    assert "validation PSNR" in result.stdout and not out.with_suffix(".ckpt").exists()

    tuned = tmp_path / "tuned.safetensors"
    result = run_cli("train", "denoiser", "--data", "phantom:foam", "--init", out, "--out", tuned, *TINY)
    assert result.returncode == 0, result.stderr
    card = json.loads(tuned.with_suffix(".json").read_text())
    assert card["init"] == str(out) and "psnr_init" in card["validation"]
    wider = run_cli("train", "denoiser", "--data", "phantom:foam", "--init", out, "--out", tmp_path / "x.safetensors",
                    *TINY, "--width", "8")
    assert wider.returncode == 2 and "--init" in wider.stderr and "--width" in wider.stderr, wider.stderr


def test_bad_input_exits_2_with_one_line(tmp_path):
    for args in (("--data", "phantom:foam", "--dim", "4"), ("--data", str(tmp_path / "none.nii")),
                 ("--data", "phantom:cube"), ("--data", "phantom:foam", "--init", str(tmp_path / "none.safetensors"))):
        result = run_cli("train", "denoiser", *args, "--out", tmp_path / "w.safetensors", *TINY)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_reconstruct_with_pnp_admm_and_the_shipped_prior(ct_file, tmp_path):
    out = tmp_path / "pnp.h5"
    result = run_cli("reconstruct", ct_file, "--method", "pnp-admm", "--slices", "14:16", "--set", "iterations=3",
                     "--out", out)
    assert result.returncode == 0, result.stderr
    assert out.exists()
