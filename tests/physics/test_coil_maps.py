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
pytestmark = pytest.mark.usefixtures("one_thread")


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


def _kspace(image: np.ndarray, maps: np.ndarray, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Fully sampled complex k-space (C, H, W) of ``image`` through ``maps``, plus complex Gaussian noise."""
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(maps * image, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    rng = np.random.default_rng(seed)
    return (k + noise * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))).astype(np.complex64)


def test_espirit_matches_sigpy_on_the_same_data():
    """recon's ESPIRiT against sigpy's EspiritCalib (the reference deepinv wraps), birdcage maps, 24 x 24 block."""
    sigpy_mri = pytest.importorskip("sigpy.mri")
    from sigpy.mri.app import EspiritCalib

    from recon.physics.espirit import EspiritSettings, espirit_maps

    image = resize(shepp_logan_phantom(), (64, 64), anti_aliasing=True)
    kspace = _kspace(image, sigpy_mri.birdcage_maps((6, 64, 64), r=1.2), noise=0.002)
    reference, ref_values = EspiritCalib(kspace, calib_width=24, max_iter=300, show_pbar=False,
                                         output_eigenvalue=True).run()
    maps, values = espirit_maps(torch.from_numpy(kspace)[None], (24, 24), EspiritSettings(max_calibration=24))
    maps = maps[0].numpy()
    np.testing.assert_allclose(values[0].numpy(), np.asarray(ref_values).reshape(64, 64), atol=1e-4)
    support = np.abs(maps).sum(0) > 0
    assert (support == (np.abs(reference).sum(0) > 0)).mean() > 0.995
    agreement = np.abs((np.conj(reference) * maps).sum(0))[support]  # 1 when equal up to a phase per pixel
    assert np.quantile(agreement, 0.01) > 0.999
    np.testing.assert_allclose((np.abs(maps) ** 2).sum(0)[support], 1, atol=1e-4)


def test_espirit_maps_serve_cg_sense_as_well_as_true_maps(sense_problem):
    from recon.physics.espirit import espirit_maps

    image, support, maps, mask, y = sense_problem
    k = torch.view_as_complex(y.movedim(1, -1).contiguous())
    estimated, _ = espirit_maps(k, calibration_size(mask > 0))
    x = cg_sense(mask, estimated, y)
    assert psnr_inside(x, image, support) > psnr_inside(cg_sense(mask, maps, y), image, support) - 2
    phase = torch.atan2(x[0, 1], x[0, 0]).numpy()[support & (np.abs(image) > 0.1)]
    assert np.abs(phase).mean() < 0.3  # the maps carry the object's phase: the SENSE image is nearly real


@pytest.mark.parametrize(("acs", "chosen"), [(8, "espirit"), (24, "ratio")])
def test_calibrate_chooses_by_calibration_size_and_says_so(acs, chosen):
    from recon.physics.coil_maps import calibrate

    image = resize(shepp_logan_phantom(), (64, 64), anti_aliasing=True)
    mask = make_mask("uniform1d", (64, 64), 2, acs=acs, rng=np.random.default_rng(0))
    kspace = torch.from_numpy(_kspace(image, synthetic_coil_maps(4, (64, 64))) * mask)[None]
    maps, record = calibrate(kspace, torch.from_numpy(mask))
    assert record["estimator"] == chosen and record["chosen_by"] == "auto" and record["calibration"][1] >= acs
    assert maps.shape == (1, 4, 64, 64)
    other = "ratio" if chosen == "espirit" else "espirit"
    assert calibrate(kspace, torch.from_numpy(mask), other)[1]["estimator"] == other


def test_espirit_needs_a_calibration_block_of_six():
    from recon.physics.coil_maps import calibrate

    mask = make_mask("uniform1d", (32, 32), 2, acs=4, rng=np.random.default_rng(0))
    kspace = torch.from_numpy(_kspace(np.ones((32, 32)), synthetic_coil_maps(2, (32, 32))) * mask)[None]
    assert calibrate(kspace, torch.from_numpy(mask))[1]["estimator"] == "ratio"
    with pytest.raises(UserError, match="too small for ESPIRiT"):
        calibrate(kspace, torch.from_numpy(mask), "espirit")


def test_coil_compression_keeps_the_signal_and_white_noise():
    from recon.physics.coil_compression import auto_virtual_coils, compress_coils

    rng = np.random.default_rng(0)
    image = resize(shepp_logan_phantom(), (48, 48), anti_aliasing=True)
    signal = _kspace(image, synthetic_coil_maps(3, (48, 48)))
    mixing = rng.standard_normal((20, 3)) + 1j * rng.standard_normal((20, 3))
    kspace = np.einsum("vc,chw->vhw", mixing, signal)[None].astype(np.complex64)  # 20 coils spanning 3
    sampled = np.ones((48, 48), bool)
    compressed, kept = compress_coils(kspace, sampled, 3)
    assert compressed.shape == (1, 3, 48, 48) and kept[0] > 0.9999
    assert auto_virtual_coils(kspace[0], sampled) == 8  # 3 hold 99 %; at least 8 are kept
    noise = (rng.standard_normal((1, 20, 48, 48)) + 1j * rng.standard_normal((1, 20, 48, 48))) / np.sqrt(2)
    virtual, _ = compress_coils(noise.astype(np.complex64), sampled, 5)
    # a unitary projection: white noise keeps its std, up to the choice of its 5 strongest directions of 20
    assert abs(np.std(virtual) / np.std(noise) - 1) < 0.1
    assert compress_coils(kspace, sampled, 1)[1][0] < kept[0]
