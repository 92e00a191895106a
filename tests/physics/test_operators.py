"""Every registered operator: adjoint test, norm estimate, shapes, float64 and device moves."""

import pytest
import torch

import recon.physics.ct  # noqa: F401  (registers its examples)
import recon.physics.dynamic  # noqa: F401
import recon.physics.mimo  # noqa: F401
import recon.physics.mri  # noqa: F401
import recon.physics.sparse  # noqa: F401
from recon.physics.registry import OPERATOR_EXAMPLES

NAMES = sorted(OPERATOR_EXAMPLES)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def adjoint_error(physics, x_shape, dtype, device, samples=3) -> float:
    """max over samples of |<A u, v> - <u, A^T v>| / (|A u| |v|)."""
    generator = torch.Generator(device=device).manual_seed(0)
    worst = 0.0
    for _ in range(samples):
        u = torch.randn(x_shape, dtype=dtype, device=device, generator=generator)
        au = physics.A(u)
        v = torch.randn(au.shape, dtype=dtype, device=device, generator=generator)
        lhs, rhs = (au * v).sum(), (u * physics.A_adjoint(v)).sum()
        worst = max(worst, float((lhs - rhs).abs() / (au.norm() * v.norm())))
    return worst


def test_the_registry_covers_every_operator_family():
    assert {"ct-parallel-2d", "ct-parallel-3d", "ct-parallel-matrix-free", "ct-dynamic", "mri-singlecoil",
            "mri-multicoil", "sparse-linear",
            "mimo-nearfield"} <= set(NAMES)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-4), (torch.float64, 1e-5)])
@pytest.mark.parametrize("name", NAMES)
def test_adjoint(name, dtype, tolerance, device):
    physics, x_shape = OPERATOR_EXAMPLES[name](torch.device(device), dtype)
    assert adjoint_error(physics, x_shape, dtype, device) < tolerance


@pytest.mark.parametrize("name", NAMES)
def test_output_keeps_batch_dtype_and_device(name):
    physics, x_shape = OPERATOR_EXAMPLES[name](torch.device("cpu"), torch.float64)
    x = torch.randn(x_shape, dtype=torch.float64)
    y = physics.A(x)
    assert y.shape[0] == x_shape[0] and y.dtype == torch.float64
    assert physics.A_adjoint(y).shape == x.shape


@pytest.mark.parametrize("name", NAMES)
def test_norm_estimate_bounds_the_operator(name):
    physics, x_shape = OPERATOR_EXAMPLES[name](torch.device("cpu"), torch.float64)
    torch.manual_seed(0)
    sqnorm = float(physics.compute_sqnorm(torch.zeros(x_shape, dtype=torch.float64), max_iter=200, tol=1e-7,
                                          verbose=False))
    for _ in range(5):  # no vector is stretched more than the estimate allows (up to power-method accuracy)
        x = torch.randn(x_shape, dtype=torch.float64)
        assert float(physics.A(x).norm() ** 2 / x.norm() ** 2) <= sqnorm * (1 + 1e-3)
    # and the estimate is reached: A^T A applied to its top eigenvector scales it by ||A||^2
    x = torch.randn(x_shape, dtype=torch.float64)
    for _ in range(200):
        x = physics.A_adjoint(physics.A(x))
        x = x / x.norm()
    assert float(physics.A(x).norm() ** 2) == pytest.approx(sqnorm, rel=1e-3)


@pytest.mark.cuda
@pytest.mark.parametrize("name", NAMES)
def test_cpu_and_cuda_agree(name):
    physics, x_shape = OPERATOR_EXAMPLES[name](torch.device("cpu"), torch.float64)
    x = torch.randn(x_shape, dtype=torch.float64)
    expected = physics.A(x)
    moved = physics.to("cuda")
    assert torch.allclose(moved.A(x.to("cuda")).cpu(), expected, atol=1e-10)
