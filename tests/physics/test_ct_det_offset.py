"""The detector offset of ParallelBeamCT (centre of rotation off the detector's middle): convention and adjoint."""

import numpy as np
import torch

from recon.physics.ct import ParallelBeamCT

ANGLES = np.linspace(0, np.pi, 24, endpoint=False)


def test_an_integer_offset_shifts_the_sinogram_by_that_many_bins():
    image = torch.rand(1, 1, 24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    centred = ParallelBeamCT((24, 24), ANGLES, n_det=48, dtype=torch.float64).A(image)[0, 0].numpy()
    shifted = ParallelBeamCT((24, 24), ANGLES, n_det=48, det_offset=3, dtype=torch.float64).A(image)[0, 0].numpy()
    # the rotation axis now projects 3 bins further along: bin k + 3 sees what bin k saw
    np.testing.assert_allclose(shifted[:, 3:], centred[:, :-3], atol=1e-12)
    assert np.abs(shifted[:, :3]).max() < 1e-12  # nothing reaches the first bins (the object is inside)


def test_offset_operator_keeps_an_exact_adjoint_and_fbp_undoes_it():
    physics = ParallelBeamCT((32, 32), ANGLES, det_offset=-2.3, dtype=torch.float64)
    assert physics.adjointness_test(torch.zeros(2, 1, 32, 32, dtype=torch.float64), num_samples=3).item() < 1e-5
    yy, xx = np.mgrid[:32, :32]
    disk = (((xx - 18.0) ** 2 + (yy - 13.0) ** 2) < 36).astype(np.float64)
    many = ParallelBeamCT((32, 32), np.linspace(0, np.pi, 180, endpoint=False), det_offset=-2.3, dtype=torch.float64)
    estimate = many.fbp(many.A(torch.from_numpy(disk)[None, None]))[0, 0].numpy()
    assert np.abs(estimate - disk).mean() < 0.05
