"""Near-field MIMO radar: the matrix-free Born operator against its formula and its dense matrix, scenes,
simulation and the direct methods end to end through the CLI."""

import math

import h5py
import numpy as np
import pytest
import torch

from recon.physics.mimo import SPEED_OF_LIGHT, NearFieldMIMO, RadarGeometry, diagonal_array
from recon.scenes import SCENES, make_scene
from recon.simulate import radar_geometry
from tests.cli.conftest import run_cli


def small_geometry(grid=(7, 5, 4), n_freq=4) -> RadarGeometry:
    tx, rx = diagonal_array(4, 5)
    return RadarGeometry(np.linspace(4e9, 16e9, n_freq), tx, rx, (-0.15, -0.15, 0.35), (0.15, 0.15, 0.65), grid)


def as_real(a: np.ndarray) -> torch.Tensor:
    return torch.view_as_real(torch.as_tensor(a)).movedim(-1, 0)[None]


def as_complex(t: torch.Tensor) -> np.ndarray:
    return torch.view_as_complex(t[0].movedim(0, -1).contiguous()).numpy()


def test_a_point_scatterer_gives_the_born_formula():
    geometry = small_geometry()
    physics = NearFieldMIMO(geometry, dtype=torch.float64)
    x = np.zeros(geometry.grid_shape, np.complex128)
    x[3, 2, 1] = 2 - 1j
    voxel = geometry.voxel_centres()[np.ravel_multi_index((3, 2, 1), geometry.grid_shape)]
    r_t = np.linalg.norm(geometry.tx_positions - voxel, axis=1)[None, :, None]
    r_r = np.linalg.norm(geometry.rx_positions - voxel, axis=1)[None, None, :]
    k = 2 * math.pi * geometry.frequencies[:, None, None] / SPEED_OF_LIGHT
    expected = (2 - 1j) * np.exp(-1j * k * (r_t + r_r)) / (4 * math.pi * r_t * r_r)
    np.testing.assert_allclose(as_complex(physics.A(as_real(x))), expected, rtol=1e-10)


@pytest.mark.parametrize("budget", [2**10, 2**14, 2**30])
def test_chunks_match_the_dense_matrix_to_1e5(budget):
    geometry = small_geometry(grid=(9, 6, 5), n_freq=6)
    physics = NearFieldMIMO(geometry, max_chunk_bytes=budget)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, *geometry.grid_shape)) + 1j * rng.standard_normal((2, *geometry.grid_shape)))
    x_t = torch.view_as_real(torch.as_tensor(x, dtype=torch.complex64)).movedim(-1, 1)
    dense = physics.dense_matrix()
    y = torch.view_as_complex(physics.A(x_t).movedim(1, -1).contiguous()).reshape(2, -1)
    reference = torch.as_tensor(x, dtype=torch.complex64).reshape(2, -1) @ dense.T
    assert float((y - reference).norm() / reference.norm()) < 1e-5
    back = torch.view_as_complex(physics.A_adjoint(physics.A(x_t)).movedim(1, -1).contiguous()).reshape(2, -1)
    assert float((back - reference @ dense.conj()).norm() / back.norm()) < 1e-5


@pytest.mark.parametrize("budget", [2**12, 2**16, 2**20])
def test_the_tensors_of_a_chunk_stay_within_its_byte_budget(budget):
    """The kernel tables and the product G_t diag(x) a chunk really allocates, for A and A^H, take at most half
    the budget (the other half is for temporaries)."""
    geometry = small_geometry(grid=(20, 10, 10), n_freq=8)
    physics = NearFieldMIMO(geometry, max_chunk_bytes=budget)
    held = []
    make_tables = physics._tables

    def recording_tables(chunk, migration="adjoint"):
        g_t, g_r = make_tables(chunk, migration)
        product = g_t.nbytes * 2  # G_t diag(x) for a batch of 2 (A), or (y G_r^*) (A^H): as large as 2 G_t
        held.append(g_t.nbytes + g_r.nbytes + product)
        return g_t, g_r

    physics._tables = recording_tables
    x = torch.randn(2, 2, *geometry.grid_shape)
    physics.A_adjoint(physics.A(x))
    smallest_chunk = 2 * 8 * 8 * (4 + 5 + 2 * 4)  # one voxel: the budget cannot go below it
    assert max(held) <= max(budget, smallest_chunk) / 2
    assert len(held) > 2  # A and A^H each went over the grid in several chunks


@pytest.mark.parametrize("kind", SCENES)
def test_scenes_are_complex_with_magnitude_in_range(kind):
    scene = make_scene(kind, (12, 16, 16), np.random.default_rng(1))
    assert scene.dtype == np.complex64 and scene.shape == (12, 16, 16)
    magnitude = np.abs(scene)
    assert 0 < magnitude.max() <= 1 + 1e-6 and (magnitude > 0).mean() < 0.5
    assert np.std(np.angle(scene[magnitude > 0])) > 1  # random phase


@pytest.mark.slow
def test_direct_methods_find_point_scatterers_and_write_complex_volumes_in_metres(tmp_path):
    measurement = tmp_path / "s.h5"
    assert run_cli("simulate", "mimo-nearfield", "--out", measurement, "--grid", "15,15,25", "--frequencies", "12",
                   "--scene", "points", "--seed", "3").returncode == 0
    with h5py.File(measurement) as file:
        points = np.argwhere(np.abs(file["ground_truth"][()]) > 0)
    for name in ("backprojection", "kirchhoff"):
        out = tmp_path / f"{name}.h5"
        assert run_cli("reconstruct", measurement, "--method", name, "--out", out).returncode == 0
        with h5py.File(out) as file:
            image = file["reconstruction"][()]
            assert image.dtype == np.complex64 and image.shape == (25, 15, 15)
            assert file.attrs["unit"] == "m" and file.attrs["axes"] == "z,y,x" and "psnr" in file.attrs
            np.testing.assert_allclose(file.attrs["voxel_size"], [0.3 / 24, 0.3 / 14, 0.3 / 14])
        brightest = np.array(np.unravel_index(np.abs(image).argmax(), image.shape))
        assert np.abs(points - brightest).max(axis=1).min() <= 1, (name, brightest, points)


@pytest.mark.parametrize("args, fragment", [
    (["--grid", "25,25"], "--grid"), (["--array", "ring-12"], "unknown array 'ring-12'"),
    (["--scene", "cats"], "unknown scene 'cats'"), (["--views", "3"], "--views does not apply"),
])
def test_bad_simulation_options_exit_2(tmp_path, args, fragment):
    result = run_cli("simulate", "mimo-nearfield", "--out", tmp_path / "s.h5", *args)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr
    assert not (tmp_path / "s.h5").exists()


def test_array_file_and_slices_refused(tmp_path):
    bad = tmp_path / "array.h5"
    with h5py.File(bad, "w") as file:
        file["tx_positions"] = np.zeros((4, 2))
        file["rx_positions"] = np.zeros((4, 3))
    with pytest.raises(Exception, match=r"expected \(n, 3\)"):
        radar_geometry("diagonal-12x13", bad, 4, 4e9, 16e9, "5,5,5")
    measurement = tmp_path / "s.h5"
    run_cli("simulate", "mimo-nearfield", "--out", measurement, "--grid", "5,5,5", "--frequencies", "3")
    result = run_cli("reconstruct", measurement, "--method", "kirchhoff", "--slices", "0:1", "--out", tmp_path / "o.h5")
    assert result.returncode == 2 and "--slices does not apply" in result.stderr, result.stderr


def test_cached_tables_give_the_same_results_and_respect_their_budget():
    geometry = small_geometry(grid=(9, 6, 5), n_freq=6)
    physics = NearFieldMIMO(geometry, max_chunk_bytes=2**12)
    x = torch.randn(1, 2, *geometry.grid_shape)
    y, back = physics.A(x), physics.A_adjoint(physics.A(x))
    assert not physics.cache_tables(physics.table_bytes() - 1)  # too small a budget: nothing kept
    assert physics.cache_tables(physics.table_bytes())
    for _ in range(2):  # the second pass reads the cache
        torch.testing.assert_close(physics.A(x), y, rtol=0, atol=0)
        torch.testing.assert_close(physics.A_adjoint(physics.A(x)), back, rtol=0, atol=0)
    assert sum(g.nbytes for tables in physics._cache.values() for g in tables) == physics.table_bytes()
    physics.A(torch.randn(3, 2, *geometry.grid_shape))  # another batch size, other chunks: the old ones go
    assert sum(g.nbytes for tables in physics._cache.values() for g in tables) <= physics.table_bytes()
    assert physics.migrate(y, "matched").shape == x.shape and not physics.cache_tables(0)
