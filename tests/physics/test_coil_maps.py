"""Coil maps: synthetic maps, ACS detection, and CG-SENSE with estimated maps close to true maps."""

import numpy as np
import pytest
import torch
from deepinv.optim.utils import conjugate_gradient
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from recon.errors import UserError
from recon.physics.coil_maps import calibration_size, estimate_coil_maps, synthetic_coil_maps
from recon.physics.masks import make_mask
from recon.physics.mri import CartesianMRI, image_to_tensor

N, COILS, ACS = 128, 8, 24


def test_synthetic_maps_are_normalised_smooth_and_seeded():
    maps = synthetic_coil_maps(COILS, (48, 40), rng=np.random.default_rng(0))
    assert maps.shape == (COILS, 48, 40) and maps.dtype == np.complex64
    np.testing.assert_allclose((np.abs(maps) ** 2).sum(0), 1, atol=1e-5)
    assert np.abs(np.diff(maps, axis=-1)).max() < 0.2 and np.abs(np.diff(maps, axis=-2)).max() < 0.2
    np.testing.assert_array_equal(maps, synthetic_coil_maps(COILS, (48, 40), rng=np.random.default_rng(0)))
    assert np.abs(synthetic_coil_maps(1, (8, 8))).min() == pytest.approx(1)


def test_calibration_size_is_detected():
    rng = np.random.default_rng(0)
    assert calibration_size(make_mask("uniform1d", (64, 80), 4, acs=10, rng=rng) > 0) == (64, 10)
    hy, hx = calibration_size(make_mask("poisson2d", (64, 64), 4, acs=12, rng=rng) > 0)
    assert hy >= 12 and hx >= 12
    assert calibration_size(np.zeros((8, 8), bool)) == (0, 0)


@pytest.fixture(autouse=True)
def one_thread():
    """Small FFTs run faster on one thread, and far faster when other processes load the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sense_problem():
    """Noise-free 8-coil k-space of a Shepp-Logan phantom with a smooth phase, 4x uniform1d, ACS 24."""
    phantom = resize(shepp_logan_phantom(), (N, N), anti_aliasing=True)
    yy, xx = np.mgrid[:N, :N] / N
    image = phantom * np.exp(1j * np.pi * (0.6 * xx - 0.4 * yy + 0.3 * np.sin(2 * np.pi * yy)))
    maps = synthetic_coil_maps(COILS, (N, N), rng=np.random.default_rng(0))
    mask = make_mask("uniform1d", (N, N), 4, acs=ACS, rng=np.random.default_rng(0))
    y = CartesianMRI(mask, maps).A(image_to_tensor(image[None], dtype=torch.float32))
    return image, phantom > 1e-3, maps, mask, y


def psnr_inside(x: torch.Tensor, image: np.ndarray, support: np.ndarray) -> float:
    """PSNR (dB) of the magnitude of x (1, 2, H, W) or (1, 1, H, W) against |image| on the object support."""
    magnitude = x[0].pow(2).sum(0).sqrt().numpy()
    ref = np.abs(image)
    return float(10 * np.log10(ref.max() ** 2 / ((magnitude - ref)[support] ** 2).mean()))


def cg_sense(mask, maps, y) -> torch.Tensor:
    physics = CartesianMRI(mask, maps)
    return conjugate_gradient(lambda v: physics.A_adjoint(physics.A(v)), physics.A_adjoint(y), max_iter=40,
                              tol=1e-8)


def test_estimated_maps_match_true_maps_in_cg_sense(sense_problem):
    image, support, maps, mask, y = sense_problem
    estimated = estimate_coil_maps(y, mask=torch.as_tensor(mask))
    assert estimated.shape == (1, COILS, N, N) and estimated.dtype == torch.complex64
    np.testing.assert_allclose((estimated.abs() ** 2).sum(1)[0].numpy()[support], 1, atol=1e-4)

    inside = estimated.abs().sum(1, keepdim=True) > 0  # the estimate's object region
    psnr_est = psnr_inside(cg_sense(mask, estimated, y), image, support)
    psnr_true = psnr_inside(cg_sense(mask, maps, y), image, support)
    psnr_true_inside = psnr_inside(cg_sense(mask, torch.as_tensor(maps) * inside, y), image, support)
    psnr_zero_filled = psnr_inside(CartesianMRI(mask, maps).A_adjoint(y, rss=True), image, support)
    assert psnr_est > psnr_true - 2 and psnr_est > psnr_true_inside - 2
    assert psnr_est > psnr_zero_filled + 5


def test_estimate_is_batched_and_takes_either_layout(sense_problem):
    _, _, _, mask, y = sense_problem
    two = torch.cat([y, 2 * y])
    complex_two = torch.view_as_complex(two.movedim(1, -1).contiguous())
    from_real, from_complex = estimate_coil_maps(two), estimate_coil_maps(complex_two)  # ACS from k-space
    torch.testing.assert_close(from_real, from_complex)
    torch.testing.assert_close(from_real[0], from_real[1])
    torch.testing.assert_close(from_real[:1], estimate_coil_maps(y, mask=torch.as_tensor(mask)))
    assert estimate_coil_maps(y.double(), acs=ACS).dtype == torch.complex128


def test_missing_calibration_region_is_a_user_error(sense_problem):
    _, _, _, mask, y = sense_problem
    with pytest.raises(UserError, match="calibration"):
        estimate_coil_maps(y, acs=ACS + 2)
    with pytest.raises(UserError, match="calibration"):
        estimate_coil_maps(torch.zeros_like(y))
