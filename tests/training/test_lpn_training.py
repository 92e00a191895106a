"""Training an LPN: the schedule (L1 then proximal matching with gamma halving), weights non-negative after
every step, deterministic runs, fine-tuning from given weights (at their noise level or another); `recon train
lpn` end to end as a subprocess, and bad input exits 2."""

import json

import numpy as np
import pytest
import torch

from recon.errors import UserError
from recon.models.lpn import LPN, LPNConfig, load_lpn
from recon.training.lpn import LPNSchedule, LPNTraining, lpn_loss, train_lpn, write_lpn
from tests.cli.conftest import run_cli
from tests.cli.test_bad_input import assert_user_error

TINY = LPNConfig(hidden=6, layers=2, sigma=0.1)


def volumes():
    rng = np.random.default_rng(0)
    return [rng.random((6, 24, 24)).astype(np.float32)]


def test_schedule_is_l1_then_gamma_halving_over_four_stages():
    schedule = LPNSchedule(steps=80, gamma_min=0.1)
    assert schedule.gamma(40, 100) is None and schedule.lr()(39) == 1e-3 and schedule.lr()(40) == 1e-4
    assert [schedule.gamma(step, 100) for step in (41, 51, 61, 71, 80)] == pytest.approx([8, 4, 2, 1, 1])


def test_proximal_matching_loss_saturates_for_large_errors():
    clean = torch.zeros(2, 1, 4, 4)
    far = torch.stack([torch.zeros(1, 4, 4), torch.full((1, 4, 4), 10.0)])
    assert float(lpn_loss(far, clean, 1.0)) == pytest.approx(0.5)
    assert float(lpn_loss(far, clean, None)) == pytest.approx(5.0)


def test_training_keeps_weights_nonnegative_and_is_deterministic():
    schedule = LPNSchedule(steps=6, batch=2, patch=12)
    first = train_lpn(volumes(), TINY, schedule)
    assert all(float(w.detach().min()) >= 0 for w in first.model.nonnegative())
    second = train_lpn(volumes(), TINY, schedule)
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert first.card["validation"]["psnr_noisy"] > 0


def test_fine_tuning_starts_from_the_init_weights_and_refuses_another_architecture(tmp_path):
    schedule = LPNSchedule(steps=2, batch=2, patch=12)
    base = tmp_path / "base.safetensors"
    torch.manual_seed(7)  # not the training seed: the base weights differ from a fresh initialisation
    write_lpn(LPNTraining(LPN(TINY), {"kind": "lpn"}), base)
    tuned = train_lpn(volumes(), TINY, schedule, init=str(base))
    fresh = train_lpn(volumes(), TINY, schedule)

    def distance(model) -> float:
        return sum(float((a - b).abs().sum()) for a, b in zip(model.parameters(), load_lpn(base).parameters(),
                                                              strict=True))

    assert distance(tuned.model) < 0.1 * distance(fresh.model)
    assert tuned.card["init"] == str(base) and fresh.card["init"] is None
    with pytest.raises(UserError, match="not the LPN to train"):
        train_lpn(volumes(), LPNConfig(hidden=8, layers=2, sigma=0.1), schedule, init=str(base))


def test_fine_tuning_to_another_noise_level_keeps_the_weights_and_records_the_new_level(tmp_path):
    """sigma is what the prox is trained for, not the architecture: the shipped LPN (0.05) can be retrained at 0.1."""
    base = tmp_path / "base.safetensors"
    write_lpn(LPNTraining(LPN(TINY), {"kind": "lpn"}), base)
    louder = LPNConfig(hidden=6, layers=2, sigma=0.2)
    tuned = train_lpn(volumes(), louder, LPNSchedule(steps=2, batch=2, patch=12), init=str(base))
    assert tuned.model.config.sigma == 0.2 and tuned.card["config"]["sigma"] == 0.2
    assert tuned.card["validation"]["sigma"] == 0.2
    path = tmp_path / "tuned.safetensors"
    write_lpn(tuned, path)
    assert load_lpn(path).config == louder


def test_cli_trains_and_writes_loadable_weights_and_card(tmp_path):
    out = tmp_path / "W.safetensors"
    result = run_cli("train", "lpn", "--data", "phantom:ellipses", "--channels", "2", "--hidden", "6", "--layers", "2",
                     "--steps", "4", "--batch", "2", "--patch", "16", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "held-out PSNR" in result.stdout
    card = json.loads((tmp_path / "W.json").read_text())
    assert card["kind"] == "lpn" and card["command"].startswith("recon train lpn") and card["schedule"]["steps"] == 4
    assert load_lpn(out).config.channels == 2
    assert not (tmp_path / "W.ckpt").exists()


@pytest.mark.parametrize("args, fragment", [
    (("--channels", "3"), "--channels"),
    (("--data", "missing.nii"), "missing.nii"),
    (("--out", "W.pt"), ".safetensors"),
    (("--init", "none.safetensors"), "--init: file not found"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, fragment):
    options = {"--data": "phantom:ellipses", "--out": "W.safetensors", **dict([args])}
    result = run_cli("train", "lpn", *(item for pair in options.items() for item in pair), cwd=tmp_path)
    assert_user_error(result, fragment)
