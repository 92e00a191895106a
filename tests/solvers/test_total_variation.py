"""TV building blocks: the divergence is minus the adjoint of the gradient, in 2D and 3D."""

import pytest
import torch

from recon.solvers.total_variation import divergence, gradient, tv_norm


@pytest.mark.parametrize("dims", [2, 3])
def test_divergence_is_minus_the_adjoint_of_gradient(dims):
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(5, 2, 7, 9, dtype=torch.float64, generator=generator)
    q = torch.randn(dims, 5, 2, 7, 9, dtype=torch.float64, generator=generator)
    assert torch.allclose((gradient(u, dims) * q).sum(), -(u * divergence(q)).sum(), rtol=1e-12)


def test_tv_of_a_step_edge_is_its_length_times_its_height():
    u = torch.zeros(1, 1, 10, 10, dtype=torch.float64)
    u[..., 5:] = 2.0  # a vertical edge of height 2 across 10 rows
    assert float(tv_norm(u, 2)) == pytest.approx(20.0)
    stack = torch.zeros(4, 1, 3, 3, dtype=torch.float64)
    stack[2:] = 1.0  # a jump along z over a 3 x 3 face
    assert float(tv_norm(stack, 3)) == pytest.approx(9.0)
    assert float(tv_norm(stack, 2)) == 0.0
