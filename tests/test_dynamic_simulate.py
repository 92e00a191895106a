"""Dynamic phantoms, ct-dynamic / mri-dynamic simulation, and the problems built from the files."""

import numpy as np
import pytest
import torch

from recon.dynamic_phantoms import DYNAMIC_PHANTOMS, cardiac, make_dynamic_phantom, walnut
from recon.errors import UserError
from recon.io.measurement import MeasurementFile, write_measurement
from recon.physics.coil_maps import estimate_coil_maps
from recon.physics.dynamic import DynamicParallelCT, view_angles
from recon.physics.mri import CartesianMRI, kspace_to_tensor
from recon.problems import build_problem
from recon.simulate import simulate_ct_dynamic, simulate_mri_dynamic
from recon.solvers.least_squares import cgls


def psnr(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((reference - estimate) ** 2)))


@pytest.mark.parametrize("name", DYNAMIC_PHANTOMS)
def test_phantoms_are_seeded_moving_sequences_in_the_unit_range(name):
    frames = make_dynamic_phantom(name, 8, 32, seed=1)
    assert frames.shape == (8, 32, 32) and frames.dtype == np.float32
    assert frames.min() >= 0 and frames.max() <= 1 and frames.max() > 0.5
    assert np.array_equal(frames, make_dynamic_phantom(name, 8, 32, seed=1))
    assert not np.array_equal(frames, make_dynamic_phantom(name, 8, 32, seed=2))
    assert np.abs(frames[3] - frames[0]).max() > 0.2  # it moves


def test_unknown_phantom_is_a_user_error():
    with pytest.raises(UserError, match="--phantom.*walnut, ellipses, cardiac"):
        make_dynamic_phantom("shepp-logan-3d", 8, 32)


def test_time_is_normalised_so_more_frames_sample_the_same_motion():
    np.testing.assert_array_equal(walnut(5, 32)[2], walnut(9, 32)[4])  # both at tau = 0.5


def test_walnut_moves_too_much_for_a_static_image_but_is_nearly_low_rank():
    sequence = walnut(32, 64).astype(np.float64).reshape(32, -1)
    u, s, vt = np.linalg.svd(sequence, full_matrices=False)
    assert psnr(sequence, sequence.mean(axis=0, keepdims=True)) < 21  # about 19 dB
    assert psnr(sequence, (u[:, :11] * s[:11]) @ vt[:11]) > 32  # about 34 dB


def test_cardiac_left_ventricle_beats():
    blood_pool = (cardiac(16, 32) >= 0.88).sum(axis=(1, 2))  # only the LV blood pool is that bright
    assert blood_pool.min() < 0.5 * blood_pool.max()
    assert blood_pool[0] == blood_pool.max()  # end-diastole at the start


@pytest.fixture(scope="module")
def ct_dynamic():
    frames = walnut(12, 32)
    datasets, attrs = simulate_ct_dynamic(frames, views_per_frame=2, order="golden-angle", noise_std=0.01,
                                          rng=np.random.default_rng(3))
    return frames, datasets, attrs


def test_ct_dynamic_simulation_layout_and_noise_relative_to_the_maximum(ct_dynamic):
    frames, datasets, attrs = ct_dynamic
    angles = view_angles(12, 2, "golden-angle")
    np.testing.assert_array_equal(datasets["angles"], angles)
    assert datasets["sinogram"].shape == (12, 2, 46) and datasets["sinogram"].dtype == np.float32
    np.testing.assert_array_equal(datasets["ground_truth"], frames)
    assert attrs["image_shape"] == [32, 32] and attrs["view_order"] == "golden-angle"
    clean = DynamicParallelCT((32, 32), angles).A(torch.from_numpy(frames)[:, None])[:, 0].numpy()
    assert attrs["noise_std"] == pytest.approx(0.01 * clean.max(), rel=1e-5)
    assert np.std(datasets["sinogram"] - clean) == pytest.approx(attrs["noise_std"], rel=0.1)


def test_a_dynamic_volume_must_be_a_sequence():
    with pytest.raises(UserError, match=r"--volume.*\(t, y, x\)"):
        simulate_ct_dynamic(np.zeros((32, 32), np.float32))


@pytest.fixture(scope="module")
def mri_dynamic():
    frames = cardiac(16, 64)
    datasets, attrs = simulate_mri_dynamic(frames, coils=8, acceleration=4, mask_kind="gaussian1d", noise_std=0.05,
                                           with_coil_maps=True, rng=np.random.default_rng(0))
    return frames, datasets, attrs


def test_mri_dynamic_masks_change_per_frame_around_a_shared_calibration_region(mri_dynamic):
    frames, datasets, attrs = mri_dynamic
    kspace, mask = datasets["kspace"], datasets["mask"]
    assert kspace.shape == (16, 8, 64, 64) and mask.shape == (16, 64, 64)
    assert datasets["coil_maps"].shape == (8, 64, 64)
    np.testing.assert_array_equal(datasets["ground_truth"], frames)
    assert len({m.tobytes() for m in mask}) == 16
    assert mask[:, :, 32 - 4:32 + 4].all()  # the ACS columns, in every frame
    assert np.all(kspace[np.broadcast_to(mask[:, None] == 0, kspace.shape)] == 0)
    assert attrs["noise_std"] > 0


def write(tmp_path, spec, measurement):
    _, datasets, attrs = measurement
    return write_measurement(tmp_path / "m.h5", spec, datasets, attrs)


def test_ct_dynamic_problem(tmp_path, ct_dynamic):
    with MeasurementFile(write(tmp_path, "ct-dynamic/1", ct_dynamic)) as measurement:
        problem = build_problem(measurement, None, torch.device("cpu"))
        with pytest.raises(UserError, match="--slices"):
            build_problem(measurement, slice(0, 1), torch.device("cpu"))
    assert problem.x_shape == (12, 1, 32, 32) and problem.output_shape == (12, 32, 32)
    assert problem.norm_shape is None and problem.axes == ("t", "y", "x")
    assert problem.y.shape == (12, 1, 2, 46)
    torch.testing.assert_close(problem.initial(), problem.physics.fbp(problem.y))
    np.testing.assert_array_equal(problem.ground_truth, ct_dynamic[0])


def test_mri_dynamic_problem_shares_maps_estimated_from_all_frames(tmp_path, mri_dynamic):
    frames, datasets, attrs = mri_dynamic
    without_maps = (frames, {k: v for k, v in datasets.items() if k != "coil_maps"}, attrs)
    with MeasurementFile(write(tmp_path, "mri-dynamic/1", without_maps)) as measurement:
        problem = build_problem(measurement, None, torch.device("cpu"))
    assert problem.x_shape == (16, 2, 64, 64) and problem.complex_image and problem.axes == ("t", "y", "x")
    assert problem.physics.coil_maps.shape == (1, 8, 64, 64)
    y, mask = kspace_to_tensor(datasets["kspace"]), torch.as_tensor(datasets["mask"])
    per_frame = CartesianMRI(mask, estimate_coil_maps(y, mask=mask))  # the mri-cartesian way, frame by frame

    def score(physics):
        x, _ = cgls(physics, y, torch.zeros(16, 2, 64, 64), 10)
        return psnr(frames, torch.linalg.vector_norm(x, dim=1).numpy())

    assert score(problem.physics) > score(per_frame) + 0.5  # measured +1.2 dB


def test_mri_dynamic_problem_uses_stored_maps(tmp_path, mri_dynamic):
    with MeasurementFile(write(tmp_path, "mri-dynamic/1", mri_dynamic)) as measurement:
        problem = build_problem(measurement, None, torch.device("cpu"))
    np.testing.assert_allclose(problem.physics.coil_maps[0].numpy(), mri_dynamic[1]["coil_maps"])
