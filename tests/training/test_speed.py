"""The accelerator options of the training loop (a wall-clock budget, bf16 autocast, channels-last) and the patch
bank, on the CPU: what they change, and that with them off the loop and its checkpoints are as before."""

import types

import numpy as np
import pytest
import torch

from recon.errors import UserError
from recon.training import loop
from recon.training.data import PatchBank, PatchDataset
from recon.training.loop import FitConfig, Speed, cosine_lr, fit


def _fit(config, step_s=0.0, seen=None, monkeypatch=None):
    """Fit a tiny model; ``step_s``: each batch advances a fake clock by that much (the loop's clock, so that a
    budget run is deterministic whatever the machine's load)."""
    torch.manual_seed(0)
    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    lrs, clock = [], [0.0]
    if monkeypatch is not None:
        monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def sample(generator):
        clock[0] += step_s
        return torch.rand(2, 1, 8, 8, generator=generator)

    def loss_fn(net, batch, position):
        out = net(batch)
        if seen is not None:
            seen.append((position, out.dtype, batch.is_contiguous(memory_format=torch.channels_last)))
        lrs.append(config.lr(position - 1))
        return (out.float() ** 2).mean()

    result = fit(model, loss_fn, sample, config, device=torch.device("cpu"),
                 validate=lambda net: {"weight": float(net.weight.sum())})
    return model, result, lrs


def test_a_budget_ends_the_schedule_at_the_deadline_by_skipping_positions(monkeypatch):
    steps = 6000  # a slow "device": 1/64 s a step, 60 steps in the budget (binary fractions: exact clock arithmetic)
    config = FitConfig(steps=steps, lr=cosine_lr(0.1, steps), budget_s=60 / 64, validate_every=1500)
    _, result, lrs = _fit(config, step_s=1 / 64, monkeypatch=monkeypatch)
    assert result.optimiser_steps == 60 and result.positions == [1, *range(100, 6000, 100)]  # advanced by the clock
    assert lrs[-1] < 0.1 * lrs[0]  # and so did the cosine learning rate
    assert [v["step"] for v in result.validation] == [1500, 3000, 4500, 5900]  # and where the budget stopped it


def test_without_a_budget_positions_are_the_steps_and_a_fast_budget_run_stops_at_steps():
    _, plain, _ = _fit(FitConfig(steps=6, lr=cosine_lr(0.1, 6), validate_every=3))
    _, budget, _ = _fit(FitConfig(steps=6, lr=cosine_lr(0.1, 6), validate_every=3, budget_s=60.0))
    assert plain.positions == budget.positions == [1, 2, 3, 4, 5, 6]
    assert plain.losses == budget.losses and [v["step"] for v in plain.validation] == [3, 6]


def test_bf16_autocasts_the_loss_and_keeps_float32_weights_channels_last_reaches_the_batch():
    seen = []
    model, result, _ = _fit(FitConfig(steps=3, lr=cosine_lr(0.1, 3), precision="bf16", channels_last=True), seen=seen)
    assert [dtype for _, dtype, _ in seen] == [torch.bfloat16] * 3
    assert all(channels_last for _, _, channels_last in seen)
    assert model.weight.dtype == torch.float32 and np.isfinite(result.losses).all()
    assert not torch.is_autocast_enabled("cpu")  # restored after the run


def test_accelerator_options_are_checked_and_left_out_of_old_signatures(tmp_path):
    assert set(FitConfig(steps=3).signature()) == {"steps", "lr", "seed", "validate_every", "checkpoint_every",
                                                    "clip"}  # checkpoints written before these options resume
    assert FitConfig(steps=3, precision="bf16").signature()["precision"] == "bf16"
    with pytest.raises(UserError, match="precision"):
        FitConfig(steps=3, precision="fp8")
    with pytest.raises(UserError, match="cannot be resumed"):
        fit(torch.nn.Linear(1, 1), None, None, FitConfig(steps=3, budget_s=1.0), device=torch.device("cpu"),
            checkpoint=tmp_path / "run.ckpt", resume=True)
    assert Speed().card(None) == {}


def test_the_bank_draws_every_symmetry_of_its_patches_on_its_device_and_follows_the_seed():
    asymmetric = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    dataset = PatchDataset([asymmetric], 4, augment=False, signed=True)
    bank = PatchBank.draw(dataset, 1, torch.Generator().manual_seed(0), torch.device("cpu"))
    draws = bank.sample(400, torch.Generator().manual_seed(1))
    assert draws.shape == (400, 1, 4, 4) and draws.device == bank.patches.device
    variants = {tuple(d.abs().flatten().tolist()) for d in draws}
    assert len(variants) == 8  # the 8 symmetries of the square, nothing else
    assert (draws.sum(dim=(1, 2, 3)) < 0).any() and (draws.sum(dim=(1, 2, 3)) > 0).any()  # signed: both signs
    assert torch.equal(draws, bank.sample(400, torch.Generator().manual_seed(1)))
    with pytest.raises(UserError, match="--bank"):
        PatchBank.draw(PatchDataset([np.zeros((4, 4, 4), np.float32)], 4, dim=3), 2, torch.Generator(),
                       torch.device("cpu"))
