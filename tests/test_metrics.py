"""recon.metrics: the slice-mean SSIM does not depend on how many slices go to deepinv per call."""

import numpy as np
import pytest

from recon import metrics


def test_ssim_is_the_mean_over_slices_whatever_the_chunk(monkeypatch):
    rng = np.random.default_rng(0)
    truth = rng.random((5, 32, 32)).astype(np.float32)
    truth[:, 0, :2] = 0, 1  # every slice has the whole range, so the per-slice SSIMs share its constants
    estimate = truth + 0.1 * rng.standard_normal(truth.shape).astype(np.float32)
    per_slice = [metrics.quality(estimate[z], truth[z])["ssim"] for z in range(5)]
    whole = metrics.quality(estimate, truth)  # default chunk: all 5 slices in one call
    monkeypatch.setattr(metrics, "SSIM_CHUNK_PIXELS", 2 * 32 * 32)  # calls of 2, 2 and 1 slices
    chunked = metrics.quality(estimate, truth)
    monkeypatch.setattr(metrics, "SSIM_CHUNK_PIXELS", 1)  # fewer pixels than a slice: one slice per call
    single = metrics.quality(estimate, truth)
    assert per_slice[0] != pytest.approx(per_slice[1], abs=1e-4)  # the slices differ, so a lost slice would show
    for result in (whole, chunked, single):
        assert result["ssim"] == pytest.approx(np.mean(per_slice), abs=1e-6)
