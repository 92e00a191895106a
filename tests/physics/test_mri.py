"""CartesianMRI: adjointness, orthonormal centred FFT, per-slice masks and maps, dtypes, layout helpers."""

import warnings

import numpy as np
import pytest
import torch

from recon.errors import UserError
from recon.physics.coil_maps import synthetic_coil_maps
from recon.physics.masks import make_mask
from recon.physics.mri import (
    CartesianMRI,
    image_to_tensor,
    kspace_to_tensor,
    tensor_to_complex_image,
    tensor_to_kspace,
)
from recon.physics.registry import OPERATOR_EXAMPLES

TOL = {torch.float32: 1e-4, torch.float64: 1e-5}


def adjoint_error(physics: CartesianMRI, x_shape: tuple[int, ...], dtype: torch.dtype) -> float:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(x_shape, dtype=dtype, generator=gen)
    y = torch.randn(physics.A(x).shape, dtype=dtype, generator=gen)
    lhs, rhs = torch.sum(physics.A(x) * y), torch.sum(x * physics.A_adjoint(y))
    return float(abs(lhs - rhs) / abs(lhs))


@pytest.mark.parametrize("name", ["mri-singlecoil", "mri-multicoil"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_registered_examples_are_adjoint(name, dtype):
    physics, x_shape = OPERATOR_EXAMPLES[name](torch.device("cpu"), dtype)
    assert physics.coil_maps.dtype == (torch.complex64 if dtype == torch.float32 else torch.complex128)
    assert physics.A(torch.zeros(x_shape, dtype=dtype)).dtype == dtype
    assert adjoint_error(physics, x_shape, dtype) < TOL[dtype]


def test_to_float64_keeps_complex_maps():
    physics, x_shape = OPERATOR_EXAMPLES["mri-multicoil"](torch.device("cpu"), torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nn.Module.to would warn that it discards the imaginary part
        physics.to(torch.float64)
    assert physics.coil_maps.dtype == torch.complex128 and physics.mask.dtype == torch.float64
    assert adjoint_error(physics, x_shape, torch.float64) < 1e-5


def test_full_mask_normal_operator_is_identity():
    maps = synthetic_coil_maps(6, (24, 20), rng=np.random.default_rng(1))
    physics = CartesianMRI(np.ones((24, 20)), maps, dtype=torch.float64)
    x = torch.randn(3, 2, 24, 20, dtype=torch.float64)
    assert torch.allclose(physics.A_adjoint(physics.A(x)), x, atol=1e-5)


def test_forward_is_centred_orthonormal_fft_per_slice():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((2, 16, 12)) + 1j * rng.standard_normal((2, 16, 12))
    y = CartesianMRI(np.ones((16, 12)), dtype=torch.float64).A(image_to_tensor(image))
    axes = (-2, -1)
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes=axes), norm="ortho"), axes=axes)
    np.testing.assert_allclose(tensor_to_kspace(y)[:, 0], expected, atol=1e-12)


def test_per_slice_masks_and_maps_act_slice_by_slice():
    rng = np.random.default_rng(2)
    masks = np.stack([make_mask("gaussian1d", (16, 16), 2, acs=4, rng=rng) for _ in range(2)])
    maps = np.stack([synthetic_coil_maps(3, (16, 16), rng=rng) for _ in range(2)])
    x = torch.randn(2, 2, 16, 16)
    stacked = CartesianMRI(masks, maps).A(x)
    for s in range(2):
        torch.testing.assert_close(stacked[s:s + 1], CartesianMRI(masks[s], maps[s]).A(x[s:s + 1]))
    with pytest.raises(ValueError, match="batch"):
        CartesianMRI(masks, maps).A(x[:1])


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError, match="0 or 1"):
        CartesianMRI(np.full((8, 8), 0.5))
    with pytest.raises(UserError, match="coil_maps"):
        CartesianMRI(np.ones((8, 8)), synthetic_coil_maps(2, (8, 6)))
    with pytest.raises(UserError, match="mask"):
        CartesianMRI(np.ones((1, 1, 1, 8, 8)))


def test_layout_helpers_round_trip():
    rng = np.random.default_rng(3)
    kspace = (rng.standard_normal((2, 3, 8, 6)) + 1j * rng.standard_normal((2, 3, 8, 6))).astype(np.complex64)
    tensor = kspace_to_tensor(kspace)
    assert tensor.shape == (2, 2, 3, 8, 6) and tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor_to_kspace(tensor), kspace)
    assert kspace_to_tensor(kspace, dtype=torch.float64).dtype == torch.float64

    real = rng.standard_normal((2, 8, 6)).astype(np.float32)
    image = image_to_tensor(real)
    assert image.shape == (2, 2, 8, 6) and not image[:, 1].any()
    np.testing.assert_array_equal(tensor_to_complex_image(image), real.astype(np.complex64))


@pytest.mark.cuda
def test_moves_to_cuda():
    physics, x_shape = OPERATOR_EXAMPLES["mri-multicoil"](torch.device("cpu"), torch.float32)
    physics.to("cuda")
    assert physics.coil_maps.is_cuda and physics.mask.is_cuda
    x = torch.randn(x_shape, device="cuda")
    assert physics.A_adjoint(physics.A(x)).is_cuda
