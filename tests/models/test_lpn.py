"""The LPN is an exact prox: psi is convex along segments, f = grad psi is monotone and matches finite
differences of psi on any image size; the inversion recovers the preimage and gives R; weights round-trip;
the shipped weights give a lower R to clean than to noisy images."""

import numpy as np
import pytest
import torch

from recon.errors import UserError
from recon.models.lpn import LPN, LPNConfig, invert, load_lpn, regulariser_map, regulariser_value, weight_tensors
from recon.phantoms import shepp_logan_3d
from recon.priors import get_prior
from recon.training.weights_files import write_weights_and_card


def random_lpn(channels=1, seed=0) -> LPN:
    """A small LPN in float64 with perturbed weights (then clamped), far from its initialisation."""
    torch.manual_seed(seed)
    model = LPN(LPNConfig(channels=channels, hidden=8, layers=3, beta=10.0, alpha=1e-3)).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    model.clamp_weights()
    return model


def images(n, channels, shape, seed):
    return torch.randn(n, channels, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels, shape", [(1, (12, 12)), (2, (9, 14))])
def test_psi_is_convex_along_random_segments(channels, shape):
    model = random_lpn(channels)
    a, b = images(16, channels, shape, 1), images(16, channels, shape, 2)
    for t in (0.25, 0.5, 0.75):
        mixed = model.psi(t * a + (1 - t) * b)
        assert torch.all(mixed <= t * model.psi(a) + (1 - t) * model.psi(b) + 1e-10)


@pytest.mark.parametrize("channels, shape", [(1, (12, 12)), (2, (9, 14))])
def test_f_is_monotone(channels, shape):
    model = random_lpn(channels)
    a, b = images(16, channels, shape, 3), 0.3 * images(16, channels, shape, 4)
    inner = ((model(a) - model(b)) * (a - b)).flatten(1).sum(dim=1)
    assert torch.all(inner >= -1e-12)


@pytest.mark.parametrize("shape", [(8, 8), (13, 21)])
def test_f_is_the_gradient_of_psi_on_any_size(shape):
    model = random_lpn(2)
    x, direction = images(3, 2, shape, 5), images(3, 2, shape, 6)
    eps = 1e-5
    finite = (model.psi(x + eps * direction) - model.psi(x - eps * direction)) / (2 * eps)
    f = model(x)
    assert f.shape == x.shape
    assert torch.allclose(finite, (f * direction).flatten(1).sum(dim=1), rtol=1e-6, atol=1e-8)


def test_inversion_recovers_the_preimage_and_the_regulariser():
    model = random_lpn(1)
    preimage = images(2, 1, (10, 10), 7)
    x = model(preimage)
    found = invert(model, x, iterations=500, tol=1e-9)
    assert float(found.residual.max()) < 1e-4
    exact = regulariser_value(model, x, type(found)(preimage, torch.zeros(2)))
    assert torch.allclose(regulariser_value(model, x, found), exact, rtol=1e-5, atol=1e-6)
    assert torch.allclose(regulariser_map(model, x, found).flatten(1).sum(1), exact, rtol=1e-5, atol=1e-6)


def test_clamp_keeps_the_constrained_weights_nonnegative():
    model = random_lpn(1)
    with torch.no_grad():
        for weight in model.nonnegative():
            weight.sub_(1.0)
    model.clamp_weights()
    assert all(float(w.detach().min()) >= 0 for w in model.nonnegative())


def test_weights_round_trip_and_bad_files_fail_clearly(tmp_path):
    model = random_lpn(2).float()
    path = tmp_path / "w.safetensors"
    write_weights_and_card(*weight_tensors(model), path, {"note": "test"})
    loaded = load_lpn(path)
    x = torch.randn(1, 2, 8, 8)
    assert loaded.config == model.config and torch.allclose(loaded(x), model(x), atol=1e-6)
    with pytest.raises(UserError, match="not found"):
        load_lpn(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="not a safetensors"):
        load_lpn(tmp_path / "bad.safetensors")


def test_shipped_regulariser_is_lower_on_clean_than_on_noisy_images():
    clean = torch.from_numpy(shepp_logan_3d(48, 5)[1:4, None].copy())  # three slices, never trained on
    clean = clean / float(torch.quantile(clean, 0.99))
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    prior = get_prior("lpn-ct", "prox")
    values = {name: prior.value(image) for name, image in (("clean", clean), ("noisy", noisy))}
    assert torch.all(values["clean"] < values["noisy"]), values
    complex_clean = torch.cat([clean, torch.zeros_like(clean)], dim=1)
    complex_noisy = complex_clean + 0.1 * torch.randn(complex_clean.shape, generator=torch.Generator().manual_seed(1))
    mri = get_prior("lpn-mri", "prox")
    assert torch.all(mri.value(complex_clean) < mri.value(complex_noisy))
    assert np.isfinite(values["clean"].numpy()).all()
