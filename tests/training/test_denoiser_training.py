"""Denoisers: any image size, weights round-trip with clear errors, a tiny training run writes a card, and the
shipped denoisers raise the PSNR of noisy images they never saw in training."""

from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch

from recon.errors import UserError
from recon.models.denoisers import DenoiserConfig, apply_denoiser, build_denoiser, load_denoiser
from recon.phantoms import shepp_logan_3d
from recon.priors import get_prior
from recon.training.data import normalise
from recon.training.denoiser import DenoiserTraining, psnr, train_denoiser, write_denoiser
from recon.weights import WEIGHTS_DIR

TINY = DenoiserConfig(nc=(4, 8, 8, 8), sigma_max=0.1)
GAIN = {0.03: 3.0, 0.1: 6.0}  # dB, measured with room: see the report
EXAMPLE4D = Path(nibabel.__file__).parent / "tests" / "data" / "example4d.nii.gz"


@pytest.mark.parametrize("dim, shape", [(2, (2, 1, 37, 45)), (3, (1, 1, 12, 20, 17))])
def test_denoiser_keeps_any_shape(dim, shape):
    torch.manual_seed(0)
    model = build_denoiser(DenoiserConfig(dim=dim, nc=(4, 8, 8, 8)))
    assert apply_denoiser(model, torch.rand(shape), 0.1).shape == shape


def test_tiny_training_writes_weights_that_load_back(tmp_path):
    training = DenoiserTraining(("phantom:foam", "skimage:camera"), TINY, patch=16, batch=2, steps=3)
    model, card = train_denoiser(training, device=torch.device("cpu"), command="test")
    assert card["steps"] == 3 and card["validation"]["patches"] == 32 and card["command"] == "test"
    assert np.isfinite(card["validation"]["psnr_denoised"])
    write_denoiser(model, TINY, tmp_path / "w.safetensors", card)
    loaded, config = load_denoiser(tmp_path / "w.safetensors")
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        for parameter in model.parameters():  # the file stores float16: the round trip is exact up to that
            parameter.copy_(parameter.half())
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert config == TINY and torch.equal(loaded(x, 0.05), model.eval()(x, 0.05))


def test_bad_weights_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="weights file not found"):
        load_denoiser(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="not a safetensors file"):
        load_denoiser(tmp_path / "bad.safetensors")
    unfolded = WEIGHTS_DIR / "unfolded-ista-sparse-linear.safetensors"
    with pytest.raises(UserError, match="not denoiser weights"):
        load_denoiser(unfolded)


def held_out_images(channels):
    """Images no shipped denoiser was trained on: Shepp-Logan slices (CT), example4d slices with a phase (MRI)."""
    if channels == 1:
        return torch.from_numpy(normalise(shepp_logan_3d(96, 8)[2:6]))[:, None]
    volume = nibabel.load(EXAMPLE4D).get_fdata(dtype=np.float32)[..., 0].T  # (z, y, x)
    images = torch.from_numpy(normalise(volume[::4]))
    phase = torch.linspace(-1.5, 1.5, images.shape[-1])
    return torch.stack((images * torch.cos(phase), images * torch.sin(phase)), dim=1)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sigma", [0.03, 0.1])
def test_shipped_denoiser_raises_psnr_on_held_out_images(channels, sigma):
    prior = get_prior("drunet", "denoise")
    clean = held_out_images(channels)
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    gain = float((psnr(prior.denoise(noisy, sigma), clean) - psnr(noisy, clean)).mean())
    assert gain > GAIN[sigma], gain
