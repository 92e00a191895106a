"""Sampling masks: achieved acceleration, fully sampled ACS, determinism, Poisson-disc spacing, errors."""

import numpy as np
import pytest

from recon.errors import UserError
from recon.physics.masks import MASK_KINDS, _distance_outside_acs, make_mask


@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("shape", [(64, 96), (128, 128), (320, 320)])
@pytest.mark.parametrize("acceleration", [2, 4, 8])
def test_acceleration_and_acs(kind, shape, acceleration):
    acs = 8
    mask = make_mask(kind, shape, acceleration, acs=acs, rng=np.random.default_rng(0))
    assert mask.shape == shape and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert abs(mask.size / mask.sum() / acceleration - 1) < 0.1
    cy, cx = shape[0] // 2, shape[1] // 2
    if kind.endswith("1d"):
        assert mask[:, cx - acs // 2:cx + acs // 2].all()
        assert (mask == mask[:1]).all()  # whole columns
    else:
        assert mask[cy - acs // 2:cy + acs // 2, cx - acs // 2:cx + acs // 2].all()


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_default_acs_and_fractional_acceleration(kind):
    mask = make_mask(kind, (96, 80), 3.5)
    assert abs(mask.size / mask.sum() / 3.5 - 1) < 0.1
    assert mask[48, 40 - 4:40 + 4].all()


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_seeded_determinism(kind):
    def draw(seed):
        return make_mask(kind, (64, 64), 4, acs=8, rng=np.random.default_rng(seed))

    np.testing.assert_array_equal(draw(5), draw(5))
    if kind != "uniform1d":  # uniform1d only varies its offset, which two seeds may share
        assert (draw(5) != draw(6)).any()


def test_poisson_points_keep_their_distance():
    mask = make_mask("poisson2d", (128, 128), 8, acs=16, rng=np.random.default_rng(0)).astype(bool)
    outer = _distance_outside_acs((128, 128), 16) > 0.5
    assert not (mask[:, 1:] & mask[:, :-1] & outer[:, 1:]).any()
    assert not (mask[1:] & mask[:-1] & outer[1:]).any()


def test_full_sampling_at_acceleration_one():
    for kind in MASK_KINDS:
        assert make_mask(kind, (32, 32), 1).all()


@pytest.mark.parametrize(("kind", "acceleration", "acs", "match"), [
    ("spiral", 4, None, "uniform1d, gaussian1d, poisson2d, random2d"),
    ("uniform1d", 0.5, None, ">= 1"),
    ("uniform1d", float("nan"), None, ">= 1"),
    ("uniform1d", 8, 24, "lower the acceleration"),
    ("poisson2d", 8, 24, "lower the acceleration"),
    ("random2d", 1e5, 0, "lower the acceleration"),
])
def test_impossible_requests_are_user_errors(kind, acceleration, acs, match):
    with pytest.raises(UserError, match=match):
        make_mask(kind, (64, 64), acceleration, acs=acs)
