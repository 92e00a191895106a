"""`recon view` as a subprocess: a real viewer window (Xvfb) rendered to PNG, and its error paths."""

import os

import numpy as np
import pytest
from make_files import write_valid_file

from .conftest import run_cli


@pytest.mark.gui
def test_view_renders_a_screenshot(ct_file, tmp_path):
    shot = tmp_path / "view.png"
    result = run_cli("view", ct_file, "--screenshot", shot, timeout=180)
    assert result.returncode == 0, result.stderr
    from skimage.io import imread

    image = imread(shot)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 600
    assert np.asarray(image[..., :3], dtype=float).std() > 10  # a drawn window, not a blank frame


def test_view_rejects_bad_files_before_opening_a_window(tmp_path):
    broken = write_valid_file("ct-parallel/1", tmp_path / "broken.h5", angles=None)
    result = run_cli("view", broken)
    assert result.returncode == 2
    assert "broken.h5" in result.stderr and "angles" in result.stderr and len(result.stderr.splitlines()) == 1
    result = run_cli("view", tmp_path / "missing.h5")
    assert result.returncode == 2 and "missing.h5" in result.stderr


def test_view_without_a_display_says_how_to_run_headless(ct_file, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "DISPLAY" not in os.environ
    result = run_cli("view", ct_file)
    assert result.returncode == 2
    assert "no display" in result.stderr and "xvfb-run" in result.stderr
