"""Parallel-beam CT: exact adjoint, agreement with skimage's radon, FBP accuracy, batching, geometry, detector offset,
and the matrix-free projector against the stored one."""

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import radon, resize

from recon.errors import UserError
from recon.physics.ct import (
    FBP_FILTERS,
    STORED_MATRIX_MAX_BYTES,
    STORED_PRODUCT_COLUMNS,
    ParallelBeamCT,
    angular_weights,
    system_matrices,
)


def uniform_angles(n_views: int) -> np.ndarray:
    return np.linspace(0, np.pi, n_views, endpoint=False)


def psnr(reference: np.ndarray, estimate: np.ndarray) -> float:
    mse = np.mean((reference - estimate) ** 2)
    return 10 * np.log10((reference.max() - reference.min()) ** 2 / mse)


def disk(shape: tuple[int, int], centre: tuple[float, float], radius: float,
         supersample: int = 8) -> np.ndarray:
    """Pixel-area coverage (ny, nx) of a disk; centre (x, y) in the module's pixel coordinates (y up)."""
    ny, nx = shape
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    ys = ((ny - 1) / 2 - np.arange(ny))[:, None] + offsets[None, :]
    xs = (np.arange(nx) - (nx - 1) / 2)[:, None] + offsets[None, :]
    inside = ((xs[None, None, :, :] - centre[0]) ** 2 + (ys[:, :, None, None] - centre[1]) ** 2) <= radius**2
    return inside.mean(axis=(1, 3))


@pytest.mark.parametrize("projector", ["stored", "matrix-free"])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
@pytest.mark.parametrize("image_shape, x_shape, det_spacing", [
    ((32, 32), (2, 1, 32, 32), 1.0),
    ((24, 40), (1, 1, 3, 24, 40), 0.7),
])
def test_adjoint_is_exact(dtype, tol, image_shape, x_shape, det_spacing, projector):
    torch.manual_seed(0)
    physics = ParallelBeamCT(image_shape, np.random.default_rng(0).uniform(0, 2 * np.pi, 17),
                             det_spacing=det_spacing, projector=projector, dtype=dtype)
    u = torch.zeros(x_shape, dtype=dtype)
    assert physics.adjointness_test(u, num_samples=3).item() < tol


def test_matches_skimage_radon():
    n = 127  # odd: skimage rotates about the image centre, so both detector grids share their bins
    yy, xx = np.mgrid[:n, :n]
    image = (np.exp(-((xx - 40) ** 2 + (yy - 80) ** 2) / 200.0)
             + 0.5 * np.exp(-((xx - 90) ** 2 + (yy - 30) ** 2) / 100.0))
    angles = np.concatenate([uniform_angles(24), [0.3, 2.0, 4.0]])
    theirs = radon(image, theta=np.degrees(angles), circle=False).T  # (n_views, P), bin m at s = m - P // 2
    physics = ParallelBeamCT((n, n), angles, n_det=181, dtype=torch.float64)
    ours = physics.A(torch.from_numpy(image)).numpy()  # bin k at s = k - 90
    m = np.arange(theirs.shape[1])
    k = m - theirs.shape[1] // 2 + 90
    shared = (k >= 0) & (k < 181)
    error = np.linalg.norm(ours[:, k[shared]] - theirs[:, m[shared]]) / np.linalg.norm(theirs)
    assert error < 1e-3


@pytest.fixture(scope="module")
def shepp_logan_sinogram():
    phantom = resize(shepp_logan_phantom(), (128, 128))
    physics = ParallelBeamCT((128, 128), uniform_angles(180), dtype=torch.float64)
    return physics, phantom, physics.A(torch.from_numpy(phantom)[None, None])


def test_fbp_reproduces_phantom(shepp_logan_sinogram):
    physics, phantom, y = shepp_logan_sinogram
    reconstruction = physics.fbp(y)[0, 0].numpy()
    assert psnr(phantom, reconstruction) > 28
    assert abs(reconstruction.mean() / phantom.mean() - 1) < 0.02


def test_fbp_of_skimage_sinogram_reproduces_phantom():
    n = 129  # skimage's padded detector then has 183 bins centred like ours (no inverse crime here)
    phantom = resize(shepp_logan_phantom(), (n, n))
    angles = uniform_angles(180)
    sinogram = radon(phantom, theta=np.degrees(angles), circle=False).T
    physics = ParallelBeamCT((n, n), angles, n_det=sinogram.shape[1], dtype=torch.float64)
    reconstruction = physics.fbp(torch.from_numpy(np.ascontiguousarray(sinogram))).numpy()
    assert psnr(phantom, reconstruction) > 28
    assert abs(reconstruction.mean() / phantom.mean() - 1) < 0.02


def test_fbp_filters_work_and_differ(shepp_logan_sinogram):
    physics, phantom, y = shepp_logan_sinogram
    results = {name: physics.fbp(y, filter=name)[0, 0].numpy() for name in FBP_FILTERS}
    for name, reconstruction in results.items():
        assert psnr(phantom, reconstruction) > 24, name
    names = list(results)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.linalg.norm(results[a] - results[b]) > 1e-3 * np.linalg.norm(results[a]), (a, b)


def test_unknown_filter_is_a_user_error():
    physics = ParallelBeamCT((16, 16), uniform_angles(8))
    with pytest.raises(UserError, match="ramp, shepp-logan, hann"):
        physics.fbp(torch.zeros(1, 1, 8, physics.n_det), filter="cosine")


@pytest.mark.parametrize("n_slices", [3, STORED_PRODUCT_COLUMNS + 3])  # one sparse product, several
def test_volume_in_one_call_equals_slice_by_slice(n_slices):
    physics = ParallelBeamCT((32, 24), uniform_angles(20))
    x = torch.randn(2, 1, n_slices, 32, 24)
    y = physics.A(x)
    assert y.shape == (2, 1, n_slices, 20, physics.n_det)
    v = torch.randn_like(y)
    back = physics.A_adjoint(v)
    for b in range(2):
        for z in range(n_slices):
            torch.testing.assert_close(y[b, 0, z], physics.A(x[b, 0, z]))
            torch.testing.assert_close(back[b, 0, z], physics.A_adjoint(v[b, 0, z]))


@pytest.mark.parametrize("projector, parts", [("stored", (5, 5, 2)), ("stored", (1, 1, 10)),
                                               ("matrix-free", (5, 5, 2)), ("matrix-free", (3, 9))])
def test_a_slice_projects_bit_for_bit_alike_whatever_slices_share_the_call(projector, parts):
    """A streamed slab must give the whole run's slices exactly (cgls' per-slice discrepancy stop turns rounding into
    a different stop). The matrix-free one-slice kernel is a different loop, so one-slice parts are stored-only."""
    physics = ParallelBeamCT((64, 64), uniform_angles(30), projector=projector)
    x = torch.randn(sum(parts), 1, 64, 64)
    y = physics.A(x)
    slabs = [slice(a, a + n) for a, n in zip(np.cumsum((0, *parts))[:-1], parts, strict=True)]
    forward = torch.cat([physics.A(x[s]) for s in slabs])
    back = torch.cat([physics.A_adjoint(y[s]) for s in slabs])
    filtered = torch.cat([physics.fbp(y[s]) for s in slabs])
    assert torch.equal(forward, y)
    assert torch.equal(back, physics.A_adjoint(y))
    assert torch.equal(filtered, physics.fbp(y))


def test_chord_lengths_of_a_disk_non_square_spacing_non_uniform_angles():
    shape, centre, radius, spacing = (48, 64), (6.0, -4.0), 15.0, 0.7
    angles = np.sort(np.random.default_rng(1).uniform(0, np.pi, 90))
    physics = ParallelBeamCT(shape, angles, det_spacing=spacing, dtype=torch.float64)
    image = disk(shape, centre, radius)
    sinogram = physics.A(torch.from_numpy(image)).numpy()
    s = (np.arange(physics.n_det) - (physics.n_det - 1) / 2) * spacing
    offset = s[None, :] - (centre[0] * np.cos(angles) + centre[1] * np.sin(angles))[:, None]
    chords = 2 * np.sqrt(np.clip(radius**2 - offset**2, 0, None))
    inner = np.abs(offset) < 0.9 * radius
    assert np.linalg.norm((sinogram - chords)[inner]) / np.linalg.norm(chords[inner]) < 0.02
    assert np.abs(sinogram[np.abs(offset) > radius + 2]).max() < 1e-9
    reconstruction = physics.fbp(torch.from_numpy(sinogram)).numpy()
    interior = disk(shape, centre, 0.8 * radius) == 1
    assert abs(reconstruction[interior].mean() - 1) < 0.02


def test_angular_weights():
    np.testing.assert_allclose(angular_weights(uniform_angles(12)), np.pi / 12)
    np.testing.assert_allclose(angular_weights(np.linspace(0, 2 * np.pi, 24, endpoint=False)), np.pi / 24)
    weights = angular_weights(np.array([0.0, 0.1, 1.0]))
    np.testing.assert_allclose(weights, [(np.pi - 1.0 + 0.1) / 2, 1.0 / 2, (0.9 + np.pi - 1.0) / 2])
    assert weights.sum() == pytest.approx(np.pi)


def test_norm_estimate_matches_dense_svd():
    physics = ParallelBeamCT((12, 10), uniform_angles(8), dtype=torch.float64)
    basis = torch.eye(120, dtype=torch.float64).reshape(120, 12, 10)
    dense = physics.A(basis).reshape(120, -1).T
    sqnorm = torch.linalg.matrix_norm(dense, ord=2) ** 2
    estimate = physics.compute_sqnorm(torch.zeros(1, 1, 12, 10, dtype=torch.float64), max_iter=500, tol=1e-7,
                                      verbose=False)
    assert estimate.item() == pytest.approx(sqnorm.item(), rel=1e-3)


def test_autograd_uses_the_adjoint():
    physics = ParallelBeamCT((16, 16), uniform_angles(10), dtype=torch.float64)
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 1, 10, physics.n_det, dtype=torch.float64)
    (physics.A(x) * v).sum().backward()
    torch.testing.assert_close(x.grad, physics.A_adjoint(v))


def test_geometry_cache_dtype_conversion_and_clone():
    angles = uniform_angles(9)
    first = ParallelBeamCT((20, 20), angles)
    hits = system_matrices.cache_info().hits
    second = ParallelBeamCT((20, 20), torch.tensor(angles)).to("cpu")
    assert system_matrices.cache_info().hits == hits + 1
    x = torch.randn(1, 1, 20, 20, dtype=torch.float64)
    torch.testing.assert_close(second.A(x), first.A(x.float()).double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(second.clone().A(x), second.A(x))


def test_bad_shape_is_rejected():
    physics = ParallelBeamCT((16, 16), uniform_angles(4))
    with pytest.raises(ValueError, match="16, 16"):
        physics.A(torch.zeros(1, 1, 16, 15))


@pytest.mark.cuda
def test_cuda_matches_cpu():
    physics = ParallelBeamCT((32, 32), uniform_angles(20))
    x = torch.randn(2, 1, 32, 32)
    y = physics.A(x)
    physics.to("cuda")
    torch.testing.assert_close(physics.A(x.cuda()).cpu(), y, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(physics.A_adjoint(y.cuda()).cpu(), physics.A_adjoint(y), rtol=1e-4, atol=1e-4)
    assert physics.adjointness_test(x.cuda()).item() < 1e-4


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "grid_sample"])
@pytest.mark.parametrize("image_shape, n_views, det_spacing, det_offset, n_det", [
    ((32, 32), 17, 1.0, 0.0, None),
    ((24, 40), 23, 0.7, 0.0, None),
    ((45, 30), 31, 1.3, 2.5, 50),
    ((33, 33), 9, 1.0, -3.2, 21),  # a detector narrower than the image
])
def test_matrix_free_gives_the_stored_values(image_shape, n_views, det_spacing, det_offset, n_det, compiled):
    angles = np.random.default_rng(1).uniform(0, 2 * np.pi, n_views)  # both view groups, all quadrants
    angles[:5] = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4, np.pi]  # positions on exact pixel edges, both groups
    options = dict(det_spacing=det_spacing, det_offset=det_offset, n_det=n_det, dtype=torch.float64)
    stored = ParallelBeamCT(image_shape, angles, projector="stored", **options)
    matrix_free = ParallelBeamCT(image_shape, angles, projector="matrix-free", **options)
    matrix_free.plan.compiled = compiled
    for x in (torch.rand(2, 1, *image_shape, dtype=torch.float64), torch.rand(*image_shape, dtype=torch.float64)):
        # the stored weights are float32: agreement to float32 rounding
        torch.testing.assert_close(matrix_free.A(x), stored.A(x), rtol=1e-6,
                                   atol=1e-6 * stored.A(x).abs().max().item())
    for y in (torch.rand(2, 1, n_views, stored.n_det, dtype=torch.float64),
              torch.rand(n_views, stored.n_det, dtype=torch.float64)):  # several slices, one
        back = stored.A_adjoint(y)
        torch.testing.assert_close(matrix_free.A_adjoint(y), back, rtol=1e-6, atol=1e-6 * back.abs().max().item())


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-4), (torch.float64, 1e-6)])
def test_compiled_kernels_give_the_stored_values_for_any_slice_count(dtype, rtol):
    # the kernels add a pixel's slices in vectors of 32, 16, 8 and 4 bytes: 3 and 13 slices take every width;
    # 70 slices go forward in three calls (FORWARD_SLICES)
    angles = np.random.default_rng(2).uniform(0, 2 * np.pi, 19)
    stored = ParallelBeamCT((30, 26), angles, det_offset=0.7, projector="stored", dtype=dtype)
    matrix_free = ParallelBeamCT((30, 26), angles, det_offset=0.7, projector="matrix-free", dtype=dtype)
    for n_slices in (3, 13, 70):
        x = torch.rand(n_slices, 1, 30, 26, dtype=dtype)
        y = torch.rand(n_slices, 1, 19, stored.n_det, dtype=dtype)
        for mine, reference in ((matrix_free.A(x), stored.A(x)), (matrix_free.A_adjoint(y), stored.A_adjoint(y))):
            torch.testing.assert_close(mine, reference, rtol=rtol, atol=rtol * reference.abs().max().item())


def test_compiled_kernels_refuse_arrays_they_would_misread():
    from recon.physics import joseph_cpu

    plan = ParallelBeamCT((8, 8), uniform_angles(4), projector="matrix-free").plan
    group = plan._kernel_arguments(plan._groups[0])
    rows, sinograms = np.zeros((8, 11, 3), np.float32), np.zeros((4, 12, 3), np.float32)
    for bad_rows, bad_sinograms in ((rows[:, :, ::2], sinograms[:, :, ::2]), (rows, sinograms.astype(np.float64))):
        with pytest.raises(ValueError, match="C-contiguous rows and sinograms of one dtype"):
            joseph_cpu.forward_group(bad_rows, group, bad_sinograms)
        with pytest.raises(ValueError, match="C-contiguous rows and sinograms of one dtype"):
            joseph_cpu.adjoint_group(bad_sinograms, group, bad_rows)


def test_compiled_projector_is_the_same_on_any_thread_count_and_from_concurrent_threads():
    physics = ParallelBeamCT((48, 40), uniform_angles(33), det_offset=0.4, projector="matrix-free")
    x = torch.rand(3, 1, 48, 40)
    y = torch.rand(3, 1, 33, physics.n_det)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = physics.A(x), physics.A_adjoint(y)
        torch.set_num_threads(2)
        two = physics.A(x), physics.A_adjoint(y)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])  # disjoint writes: bit for bit
    with ThreadPoolExecutor(4) as pool:  # as a Dask worker's threads would call it
        results = list(pool.map(lambda _: (physics.A(x), physics.A_adjoint(y)), range(8)))
    assert all(torch.equal(a, one[0]) and torch.equal(b, one[1]) for a, b in results)


def test_matrix_free_in_float32_and_tiny_chunks():
    angles = uniform_angles(37)
    stored = ParallelBeamCT((40, 40), angles, projector="stored")
    matrix_free = ParallelBeamCT((40, 40), angles, projector="matrix-free")
    matrix_free.plan.compiled = False  # grid_sample, the CUDA path, here on CPU
    matrix_free.plan.chunk_bytes = 1  # one (view, bin) pair per chunk
    x = torch.rand(3, 1, 40, 40)
    y = stored.A(x)
    torch.testing.assert_close(matrix_free.A(x), y, rtol=1e-4, atol=1e-4 * y.abs().max().item())
    torch.testing.assert_close(matrix_free.A_adjoint(y), stored.A_adjoint(y), rtol=1e-4, atol=1e-2)


def test_matrix_free_autograd_uses_the_adjoint():
    physics = ParallelBeamCT((16, 20), uniform_angles(10), projector="matrix-free", dtype=torch.float64)
    x = torch.randn(2, 1, 16, 20, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 1, 10, physics.n_det, dtype=torch.float64)
    (physics.A(x) * v).sum().backward()
    torch.testing.assert_close(x.grad, physics.A_adjoint(v))
    y = v.clone().requires_grad_()
    (physics.A_adjoint(y) * x.detach()).sum().backward()
    torch.testing.assert_close(y.grad, physics.A(x.detach()))


def test_auto_stores_small_geometries_and_goes_matrix_free_for_large_ones():
    assert ParallelBeamCT((32, 32), uniform_angles(20)).projector == "stored"
    large = ParallelBeamCT((1024, 1024), uniform_angles(1200))  # a 36 GB pair: nothing is built
    assert large.projector == "matrix-free"
    assert STORED_MATRIX_MAX_BYTES < 36e9
    with pytest.raises(ValueError, match="auto, stored, matrix-free"):
        ParallelBeamCT((16, 16), uniform_angles(4), projector="sparse")


def test_a_large_stored_build_says_so(caplog):
    system_matrices.cache_clear()
    with caplog.at_level(logging.INFO, logger="recon.physics.ct"):
        ParallelBeamCT((96, 96), uniform_angles(240), projector="stored")  # estimated 0.1 GB
    assert "building the stored CT matrix (240 views of 96x96" in caplog.text
    assert "built the stored CT matrix in" in caplog.text
    system_matrices.cache_clear()


@pytest.mark.parametrize("projector", ["stored", "matrix-free"])
def test_positive_offset_moves_the_rotation_axis_to_higher_bins(projector):
    point = torch.zeros(1, 1, 31, 31, dtype=torch.float64)
    point[..., 15, 15] = 1  # the pixel on the rotation axis
    physics = ParallelBeamCT((31, 31), uniform_angles(8), n_det=45, det_offset=3, projector=projector,
                             dtype=torch.float64)
    sinogram = physics.A(point)[0, 0]
    assert (sinogram.argmax(dim=-1) == 22 + 3).all()
    shifted = ParallelBeamCT((31, 31), uniform_angles(8), n_det=45, projector=projector, dtype=torch.float64)
    torch.testing.assert_close(sinogram[:, 3:], shifted.A(point)[0, 0, :, :-3])


@pytest.mark.parametrize("projector", ["stored", "matrix-free"])
def test_reconstructing_with_the_scan_offset_recovers_the_image(projector):
    n, angles = 96, uniform_angles(120)
    phantom = resize(shepp_logan_phantom(), (n, n))
    psnrs = {}
    for offset in (0.0, 4.0, 4.3):
        physics = ParallelBeamCT((n, n), angles, n_det=150, det_offset=offset, projector=projector,
                                 dtype=torch.float64)
        y = physics.A(torch.from_numpy(phantom)[None, None])
        psnrs[offset] = psnr(phantom, physics.fbp(y)[0, 0].numpy())
    centred = ParallelBeamCT((n, n), angles, n_det=150, projector=projector, dtype=torch.float64)
    wrong = psnr(phantom, centred.fbp(y)[0, 0].numpy())  # the 4.3-bin scan reconstructed as if centred
    assert abs(psnrs[4.0] - psnrs[0.0]) < 0.01  # a whole-bin offset only shifts the sinogram
    assert abs(psnrs[4.3] - psnrs[0.0]) < 0.5  # measured 0.35 dB: the detector samples another phase
    assert wrong < psnrs[0.0] - 10  # measured 12.7 dB against 29.7 dB


@pytest.mark.cuda
def test_matrix_free_cuda_matches_cpu():
    physics = ParallelBeamCT((32, 40), uniform_angles(20), det_offset=1.5, projector="matrix-free")
    x = torch.randn(2, 1, 32, 40)
    y = physics.A(x)
    torch.testing.assert_close(physics.A(x.cuda()).cpu(), y, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(physics.A_adjoint(y.cuda()).cpu(), physics.A_adjoint(y), rtol=1e-4, atol=1e-4)
