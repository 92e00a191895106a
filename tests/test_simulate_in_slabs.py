"""recon simulate projects a CT volume in slabs of slices and adds its noise in chunks, so that a volume's
sinogram needs no float64 copy of itself: the file must hold the values one whole-volume call would give."""

import numpy as np
import pytest
import torch

import recon.simulate as simulate
from recon.physics.ct import ParallelBeamCT


@pytest.mark.parametrize("noise", [{"noise_std": 0.01}, {"photons": 1e4}])
def test_slabs_and_noise_chunks_give_the_whole_volume_values(monkeypatch, noise):
    volume = (np.random.default_rng(1).random((7, 24, 24)) * 0.02).astype(np.float32)
    whole, _ = simulate.simulate_ct_parallel(volume, 20, rng=np.random.default_rng(3), **noise)
    monkeypatch.setattr(simulate, "SIMULATE_SLAB", 3)
    monkeypatch.setattr(simulate, "NOISE_CHUNK", 1000)
    sliced, _ = simulate.simulate_ct_parallel(volume, 20, rng=np.random.default_rng(3), **noise)
    assert sliced["sinogram"].dtype == np.float32
    np.testing.assert_array_equal(sliced["sinogram"], whole["sinogram"])
    clean = ParallelBeamCT((24, 24), sliced["angles"]).A(torch.from_numpy(volume)).numpy()
    assert 0 < np.abs(sliced["sinogram"] - clean).max() < 0.2 * np.abs(clean).max()  # noise was added, once
