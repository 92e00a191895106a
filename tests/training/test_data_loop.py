"""Training data (shapes, seeds, real files, held-out split, noise) and the fit loop (checkpoint + resume)."""

from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from recon.errors import UserError
from recon.phantoms import foam, random_ellipses
from recon.training.data import PatchDataset, hold_out, load_source, load_sources, noisy_pair
from recon.training.loop import FitConfig, cosine_lr, fit

ANATOMICAL = str(Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii")


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("make", [random_ellipses, foam])
@pytest.mark.parametrize("shape", [(40, 48), (16, 20, 24)])
def test_phantoms_are_seeded_and_in_unit_range(make, shape):
    a, b = make(shape, np.random.default_rng(3)), make(shape, np.random.default_rng(3))
    assert a.shape == shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.05
    assert not np.array_equal(a, make(shape, np.random.default_rng(4)))


def test_real_files_load_normalised():
    ct = load_source(get_testdata_file("CT_small.dcm"), hu=True)
    mr = load_source(get_testdata_file("MR_small.dcm"))
    head = load_source(ANATOMICAL)
    assert ct.shape == (1, 128, 128) and mr.shape == (1, 64, 64) and head.ndim == 3
    for volume in (ct, mr, head):
        assert volume.min() >= -0.1 and np.quantile(volume, 0.99) == pytest.approx(1, rel=0.05)


@pytest.mark.parametrize("dim, channels, shape", [(2, 1, (5, 1, 24, 24)), (2, 2, (5, 2, 24, 24)),
                                                  (3, 1, (5, 1, 24, 24, 24))])
def test_patches_have_their_shape_and_follow_the_seed(dim, channels, shape):
    sources = ["phantom:ellipses", "skimage:camera"] if dim == 2 else ["phantom:foam"]
    data = PatchDataset(load_sources(sources, dim=dim), 24, dim, channels)
    first = data.sample(5, generator())
    assert first.shape == shape and first.dtype == torch.float32
    assert torch.equal(first, data.sample(5, generator()))
    assert not torch.equal(first, data.sample(5, generator(1)))
    if channels == 2:  # a pure phase on a real image: the magnitude is the image
        assert (first**2).sum(1).sqrt().max() <= 1.5


def test_hold_out_takes_the_last_slices_or_columns():
    volume, image = np.zeros((10, 8, 8)), np.zeros((1, 30, 50))
    (train_v, train_i), (held_v, held_i) = hold_out([volume, image], 0.2)
    assert train_v.shape == (8, 8, 8) and held_v.shape == (2, 8, 8)
    assert train_i.shape == (1, 30, 40) and held_i.shape == (1, 30, 10)


def test_bad_sources_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown phantom"):
        load_source("phantom:cube")
    with pytest.raises(UserError, match="file not found"):
        load_source(str(tmp_path / "missing.nii"))
    with pytest.raises(UserError, match="--patch"):
        PatchDataset([np.zeros((1, 16, 16), np.float32)], 32)


def test_noisy_pair_draws_sigma_in_range():
    clean = torch.zeros(200, 1, 8, 8)
    noisy, sigma = noisy_pair(clean, (0.05, 0.1), generator())
    assert sigma.shape == (200,) and sigma.min() >= 0.05 and sigma.max() <= 0.1
    assert noisy.std(dim=(1, 2, 3)).mean() == pytest.approx(float(sigma.mean()), rel=0.1)


def _train(steps, checkpoint=None, resume=False, stop_at=None):
    torch.manual_seed(0)
    model = torch.nn.Conv2d(1, 1, 3, padding=1)
    calls = []

    def sample(gen):
        calls.append(1)
        if stop_at is not None and len(calls) == stop_at:
            raise KeyboardInterrupt
        clean = torch.rand(4, 1, 8, 8, generator=gen)
        return noisy_pair(clean, (0.1, 0.1), gen)[0], clean

    def loss_fn(net, batch, step):
        return ((net(batch[0]) - batch[1]) ** 2).mean()

    config = FitConfig(steps=steps, lr=cosine_lr(0.05, steps), seed=3, checkpoint_every=3, validate_every=4)
    result = fit(model, loss_fn, sample, config, device=torch.device("cpu"), checkpoint=checkpoint, resume=resume,
                 validate=lambda net: {"weight": float(net.weight.sum())})
    return model, result


def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path):
    whole, whole_result = _train(8)
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        _train(8, checkpoint, stop_at=5)  # interrupted in step 5: the checkpoint holds step 3
    resumed, result = _train(8, checkpoint, resume=True)
    assert result.resumed_from == 3 and len(result.losses) == 8
    assert torch.equal(whole.weight, resumed.weight) and result.losses == whole_result.losses
    assert [v["step"] for v in result.validation] == [4, 8] and result.validation == whole_result.validation
    assert whole_result.losses[-1] < whole_result.losses[0]


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    _train(3, checkpoint)
    with pytest.raises(UserError, match="other training settings"):
        _train(6, checkpoint, resume=True)
