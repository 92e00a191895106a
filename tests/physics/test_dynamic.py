"""Dynamic parallel-beam CT: view orders, per-frame projection and locality, frame-wise and pooled FBP."""

import math

import numpy as np
import pytest
import torch

from recon.errors import UserError
from recon.physics.ct import ParallelBeamCT, angular_weights
from recon.physics.dynamic import (
    GOLDEN_ANGLE,
    DynamicParallelCT,
    bit_reversal_permutation,
    dynamic_system_matrices,
    view_angles,
)
from tests.physics.test_ct import disk, psnr


def test_bit_reversal_order_of_8_frames():
    np.testing.assert_allclose(view_angles(8, 1)[:, 0], np.pi * np.array([0, 4, 2, 6, 1, 5, 3, 7]) / 8)


def test_bit_reversal_of_a_non_power_of_two_skips_the_indices_past_the_end():
    np.testing.assert_array_equal(bit_reversal_permutation(6), [0, 4, 2, 1, 5, 3])
    for n in (1, 5, 12, 100):
        assert sorted(bit_reversal_permutation(n)) == list(range(n))


def test_frames_with_several_views_take_consecutive_views_of_the_order():
    angles = view_angles(4, 2)  # views 0..7 in bit-reversed order, two per frame
    np.testing.assert_allclose(angles, np.pi * np.array([[0, 4], [2, 6], [1, 5], [3, 7]]) / 8)


def test_golden_angle_and_linear_orders():
    golden = view_angles(20, 1, "golden-angle")[:, 0]
    assert GOLDEN_ANGLE == pytest.approx(np.radians(111.246), abs=1e-5)
    np.testing.assert_allclose(np.mod(np.diff(golden), np.pi), GOLDEN_ANGLE)
    assert golden.min() >= 0 and golden.max() < np.pi
    assert len(np.unique(np.round(golden, 9))) == 20
    np.testing.assert_allclose(view_angles(3, 2, "linear", angle_range=2 * np.pi),
                               np.arange(6).reshape(3, 2) * np.pi / 3)


def test_pi_symmetry_folds_a_full_circle_onto_the_half_circle():
    folded = view_angles(8, 1, "linear", angle_range=2 * np.pi, pi_symmetry=True)[:, 0]
    np.testing.assert_allclose(folded, np.tile(np.arange(4) * np.pi / 4, 2))


@pytest.mark.parametrize("args, key", [((8, 1, "random"), "--order"), ((0, 1), "--frames"),
                                       ((4, 1, "linear", -1.0), "--angle-range")])
def test_bad_view_settings_are_user_errors(args, key):
    with pytest.raises(UserError, match=key):
        view_angles(*args)


@pytest.fixture(scope="module")
def small():
    angles = view_angles(6, 2, "golden-angle")
    return DynamicParallelCT((20, 24), angles, dtype=torch.float64), angles


def test_each_frame_is_projected_at_its_own_angles_only(small):
    physics, angles = small
    x = torch.randn(6, 1, 20, 24, dtype=torch.float64)
    y = physics.A(x)
    assert y.shape == (6, 1, 2, physics.n_det)
    for t in range(6):
        static = ParallelBeamCT((20, 24), angles[t], dtype=torch.float64)
        torch.testing.assert_close(y[t], static.A(x[t]))
        torch.testing.assert_close(physics.A_adjoint(y)[t], static.A_adjoint(y[t]))


def test_changing_one_frame_changes_only_its_measurements(small):
    physics, _ = small
    x = torch.rand(6, 1, 20, 24, dtype=torch.float64)
    bumped = x.clone()
    bumped[3] += torch.rand(1, 20, 24, dtype=torch.float64)
    change = (physics.A(bumped) - physics.A(x)).abs().flatten(1).amax(dim=1)
    assert change[3] > 0.1 and float(change[torch.arange(6) != 3].max()) == 0.0


def test_channels_are_independent(small):
    physics, _ = small
    x = torch.randn(6, 3, 20, 24, dtype=torch.float64)
    y = physics.A(x)
    for c in range(3):
        torch.testing.assert_close(y[:, c:c + 1], physics.A(x[:, c:c + 1].contiguous()))
    torch.testing.assert_close(physics.A_adjoint(y)[:, 1:2], physics.A_adjoint(y[:, 1:2].contiguous()))


def test_the_matrix_is_block_diagonal_and_within_the_memory_bound(small):
    physics, _ = small
    matrix, _ = dynamic_system_matrices(physics.geometry, physics.n_frames)
    rows = torch.repeat_interleave(torch.arange(matrix.shape[0]), matrix.crow_indices().diff())
    rows_per_frame, pixels = 2 * physics.n_det, 20 * 24
    assert torch.equal(rows // rows_per_frame, matrix.col_indices().long() // pixels)
    assert matrix._nnz() <= 2 * 6 * 2 * physics.n_det * 24


def test_a_batch_that_is_not_the_frames_is_rejected(small):
    physics, _ = small
    with pytest.raises(ValueError, match=r"\(6, C, 20, 24\)"):
        physics.A(torch.zeros(5, 1, 20, 24, dtype=torch.float64))


def test_framewise_fbp_is_each_frames_own_fbp(small):
    physics, angles = small
    y = physics.A(torch.rand(6, 1, 20, 24, dtype=torch.float64))
    images = physics.fbp(y, filter="hann")
    for t in (0, 5):
        expected = ParallelBeamCT((20, 24), angles[t], dtype=torch.float64).fbp(y[t], filter="hann")
        torch.testing.assert_close(images[t], expected)


def test_a_single_view_gets_the_weight_pi():
    angles = view_angles(4, 1)
    physics = DynamicParallelCT((16, 16), angles, dtype=torch.float64)
    y = physics.A(torch.rand(4, 1, 16, 16, dtype=torch.float64))
    expected = ParallelBeamCT((16, 16), angles[2], dtype=torch.float64).fbp(y[2])
    torch.testing.assert_close(physics.fbp(y)[2], expected)
    np.testing.assert_allclose(angular_weights(angles), np.pi)


@pytest.fixture(scope="module")
def static_object():
    """A static object seen by 32 frames of one view each (bit-reversal order over [0, pi))."""
    image = disk((48, 48), (-6, 4), 12) + 0.5 * disk((48, 48), (9, -8), 6)
    angles = view_angles(32, 1)
    physics = DynamicParallelCT((48, 48), angles, dtype=torch.float64)
    frames = torch.from_numpy(np.broadcast_to(image, (32, 1, 48, 48)).copy())
    return physics, angles, image, physics.A(frames)


def test_pooled_fbp_beats_framewise_fbp_on_a_static_object(static_object):
    physics, _, image, y = static_object
    pooled, framewise = physics.fbp(y, static=True), physics.fbp(y)
    assert torch.equal(pooled[0], pooled[17])
    assert psnr(image, pooled[5, 0].numpy()) > psnr(image, framewise[5, 0].numpy()) + 10


def test_static_fbp_equals_ct_parallel_fbp_with_the_same_angles(static_object):
    physics, angles, _, y = static_object
    parallel = ParallelBeamCT((48, 48), angles.ravel(), dtype=torch.float64)
    expected = parallel.fbp(y[:, 0].reshape(1, 32, -1))
    torch.testing.assert_close(physics.fbp(y, static=True)[9], expected, rtol=1e-10, atol=1e-10)


def test_float32_and_autograd():
    physics = DynamicParallelCT((16, 16), view_angles(4, 1))
    x = torch.rand(4, 1, 16, 16, requires_grad=True)
    physics.A(x).square().sum().backward()
    expected = 2 * physics.A_adjoint(physics.A(x.detach()))
    torch.testing.assert_close(x.grad, expected, rtol=1e-4, atol=1e-4)
    assert math.isclose(float(physics.angles[1, 0]), np.pi / 2)
