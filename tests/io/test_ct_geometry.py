"""Units and geometry of ct-parallel files, and the checks that catch silently wrong CT images."""

import math
import re
import warnings

import numpy as np
import pytest
import torch
from make_files import write_valid_file
from skimage.data import camera, moon

from recon.errors import ReconWarning, UserError
from recon.io.ct_geometry import (
    ct_problems,
    line_integral_scale,
    reach_warning,
    scale_warning,
    sinogram_like,
    voxel_size,
)
from recon.io.layouts import inspect_file
from recon.phantoms import shepp_logan_3d
from recon.physics.ct import ParallelBeamCT
from recon.pipeline import Request, compute


def test_line_integrals_in_a_length_unit_are_divided_by_the_pixel_size_in_it():
    assert line_integral_scale({"path_length_unit": "pixel"}) == 1
    lodopab = {"path_length_unit": "m", "pixel_size": 0.26 / 362, "unit": "m"}
    assert line_integral_scale(lodopab) == pytest.approx(0.26 / 362)
    assert line_integral_scale({"path_length_unit": "mm", "pixel_size": 0.5, "unit": "um"}) == pytest.approx(5e-4)
    assert voxel_size({"pixel_size": 0.7, "unit": "mm", "slice_spacing": 5.0}, 3) == ((5.0, 0.7, 0.7), "mm")
    assert voxel_size({"pixel_size": 0.7, "unit": "mm"}, 3) == ((0.7, 0.7, 0.7), "mm")
    assert voxel_size({}, 2) == (None, None)


@pytest.mark.parametrize("attrs, angles, message", [
    ({}, np.arange(180.0), "angles span 179 radians, more than a full turn \\(2 pi\\): they look like degrees; fix: "
                           "store the angles in radians"),
    ({}, np.linspace(0, 3 * math.pi, 10), "more than a full turn \\(2 pi\\); fix: keep one turn"),
    ({"pixel_size": 0.5}, np.zeros(3), "pixel_size given without a unit"),
    ({"path_length_unit": "m"}, np.zeros(3), "line integrals in m need the pixel size"),
])
def test_problems_that_would_give_a_wrong_image(attrs, angles, message):
    problems = ct_problems(attrs, angles)
    assert len(problems) == 1 and re.search(message, str(problems[0]))


def test_a_full_turn_with_both_end_points_passes():
    assert ct_problems({}, np.linspace(0, 2 * math.pi, 361)) == []


def test_degrees_fail_the_run_and_recon_info(tmp_path):
    path = write_valid_file("ct-parallel", tmp_path / "deg.h5", angles=np.linspace(0, 180, 12, endpoint=False))
    with pytest.raises(UserError, match="deg.h5: angles: angles span 165 radians.*they look like degrees"):
        compute(Request(path, "fbp"))
    text, problems = inspect_file(path, {})
    assert "layout: recon" in text and problems[0].startswith("angles: angles span 165 radians")


def test_scale_and_geometry_mismatch_with_the_ground_truth_are_named():
    image = shepp_logan_3d(32)[16]
    physics = ParallelBeamCT((32, 32), np.linspace(0, np.pi, 30, endpoint=False))
    projected = physics.A(torch.from_numpy(image)[None, None])[0, 0].numpy()
    assert scale_warning(projected * 1.05, projected) is None
    assert "1392 times smaller" in scale_warning(projected / 1392, projected)
    turned = physics.A(torch.from_numpy(np.rot90(image).copy())[None, None])[0, 0].numpy()
    assert "does not match the projections of ground_truth" in scale_warning(turned, projected)


def test_signal_beyond_the_image_reach_is_named():
    physics = ParallelBeamCT((32, 32), np.linspace(0, np.pi, 30, endpoint=False), n_det=46)
    sinogram = physics.A(torch.from_numpy(shepp_logan_3d(32)[16])[None, None])[0, 0].numpy()
    assert reach_warning(sinogram, (32, 32), 1.0, 0.0) is None
    message = reach_warning(sinogram, (16, 16), 1.0, 0.0)
    assert "no ray through the 16x16 image reaches" in message


def test_a_mismatched_ground_truth_warns_through_the_pipeline(tmp_path):
    rng = np.random.default_rng(0)
    path = write_valid_file("ct-parallel", tmp_path / "m.h5", n_slices=None, ground_truth=rng.random((16, 16)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = compute(Request(path, "fbp"))
    assert any(issubclass(w.category, ReconWarning) for w in caught)
    assert "does not match the projections of ground_truth" in outcome.attrs["provenance"]["warnings"][0]


def test_sinograms_are_told_from_images():
    physics = ParallelBeamCT((64, 64), np.linspace(0, np.pi, 60, endpoint=False))
    volume = shepp_logan_3d(64)
    stack = physics.A(torch.from_numpy(volume)[:, None])[:, 0].numpy()
    assert "its rows" in sinogram_like(stack[32])
    assert "stack of sinograms" in sinogram_like(stack)
    assert "stack of projections" in sinogram_like(stack.transpose(1, 0, 2))
    for image in (camera(), moon(), volume, volume[32], np.ones((64, 64))):
        assert sinogram_like(image) is None
