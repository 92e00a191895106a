"""The slice diffusion model: its schedule, padding, the deepinv denoiser view, and training (loss falls, EMA
resumes exactly, weights round-trip through the file)."""

import math
import threading

import pytest
import torch

from recon.errors import UserError
from recon.models.diffusion import DiffusionConfig, DiffusionDenoiser, build_diffusion, load_diffusion
from recon.progress import Cancelled, callback_progress
from recon.training.diffusion import DiffusionTraining, train_diffusion, write_diffusion

TINY = DiffusionConfig(width=32, mult=(1, 2), blocks=1)


def test_schedule_is_the_ddpm_linear_one_and_timestep_inverts_the_noise_ratio():
    net = build_diffusion(TINY)
    abar = net.alphas_cumprod
    assert abar.shape == (1000,) and bool((abar[1:] < abar[:-1]).all())
    assert math.isclose(float(abar[0]), 1 - 1e-4) and float(abar[-1]) < 1e-4
    for t in (0.0, 3.5, 250.0, 999.0):
        ratio = torch.sqrt((1 - net.abar(t)) / net.abar(t))
        assert float(net.timestep(ratio)) == pytest.approx(t, abs=0.02)


def test_the_unet_takes_sides_that_are_not_a_multiple_of_its_scales():
    net = build_diffusion(DiffusionConfig(width=32, mult=(1, 2, 2)))
    out = net(torch.randn(3, 1, 21, 30), torch.tensor(10.0))
    assert out.shape == (3, 1, 21, 30) and bool(torch.isfinite(out).all())


def test_the_denoiser_view_is_the_identity_at_zero_noise_and_a_deepinv_denoiser():
    import deepinv

    net = build_diffusion(TINY).eval()
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        # the least noise the schedule knows is sqrt(beta_0) = 0.01 (model unit): x0 = x - 0.005 eps at most
        denoiser = DiffusionDenoiser(net)
        assert torch.allclose(denoiser(x, 1e-5), x, atol=0.02)
        assert isinstance(denoiser, deepinv.models.Denoiser)
        assert denoiser(x, 0.3).shape == x.shape


def test_training_lowers_the_loss():
    training = DiffusionTraining(("phantom:ellipses",), TINY, size=16, batch=4, steps=40, lr=2e-3, ema=0.9)
    _, card = train_diffusion(training, device=torch.device("cpu"))
    history = card["validation"]["history"]
    assert history[-1]["loss"] < 0.7 * history[0]["loss"], history


def test_an_interrupted_run_resumes_to_the_same_ema_weights(tmp_path):
    """Checkpoints (every 100 steps) hold the EMA too: stopped at step 130 and resumed, the written (EMA) network
    equals an uninterrupted run's."""
    training = DiffusionTraining(("phantom:ellipses",), TINY, size=8, batch=2, steps=200, lr=1e-3, ema=0.95)
    cpu = torch.device("cpu")
    straight, _ = train_diffusion(training, device=cpu)
    checkpoint, cancel = tmp_path / "run.ckpt", threading.Event()

    def report(description, done, total, fields):
        if done == 130:
            cancel.set()

    with pytest.raises(Cancelled):
        train_diffusion(training, device=cpu, checkpoint=checkpoint, progress=callback_progress(report, cancel))
    resumed, card = train_diffusion(training, device=cpu, checkpoint=checkpoint, resume=True)
    assert card["resumed_from"] == 100
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_weights_round_trip_through_the_file_and_foreign_files_are_refused(tmp_path):
    training = DiffusionTraining(("phantom:foam",), TINY, size=16, batch=2, steps=2)
    net, card = train_diffusion(training, device=torch.device("cpu"))
    path = tmp_path / "w.safetensors"
    write_diffusion(net, TINY, path, card)
    loaded, config = load_diffusion(path)
    assert config == TINY
    x, t = torch.randn(1, 1, 16, 16), torch.tensor(100.0)
    with torch.no_grad():
        assert torch.allclose(loaded(x, t), net(x, t), atol=2e-2)  # stored in float16
    (tmp_path / "bad.safetensors").write_bytes(b"not weights")
    with pytest.raises(UserError, match="safetensors"):
        load_diffusion(tmp_path / "bad.safetensors")
