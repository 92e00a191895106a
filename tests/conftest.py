"""Shared test set-up: skip CUDA tests without a GPU, and GUI tests without a display they can open a window on.

GUI tests carry the ``gui`` marker (tests using Qt's application, through the ``qapp``, ``qtbot`` or
``make_napari_viewer`` fixtures, get it automatically). They run under Xvfb, which pytest-xvfb starts when
``Xvfb`` is on PATH (Debian: ``apt-get install xvfb``; ``.ci/run`` installs it), or on the display in
``DISPLAY``. Without one they are skipped with the reason, because Qt aborts the whole process (not just the
test) when it cannot connect to a display. ``RECON_REQUIRE_GUI=1`` (set by ``.ci/run``) makes a missing display
an error instead, so that CI cannot pass with the GUI tests skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache

import pytest

QT_FIXTURES = {"qapp", "qtbot", "make_napari_viewer"}

INSTALL_XVFB = "install Xvfb (Debian/Ubuntu: apt-get install xvfb; pytest-xvfb then starts it) or set DISPLAY"

_PROBE = "from qtpy.QtWidgets import QApplication; app = QApplication([]); print(app.platformName())"


@cache
def no_display_reason() -> str | None:
    """Why Qt cannot open a window in this session (None: it can). A child process tries, so that Qt's abort
    on a missing display or missing xcb libraries cannot take pytest down."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return f"GUI test: no display; {INSTALL_XVFB}"
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120,
                               stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "GUI test: Qt did not start within 120 s"
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        if "No module named" in last:
            return f"GUI test: the gui extra is not installed ({last}); pip install -e '.[gui]'"
        return (f"GUI test: Qt cannot open a window on DISPLAY={os.environ.get('DISPLAY')} ({last}); "
                ".ci/run lists the system packages Qt needs")
    return None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if QT_FIXTURES & set(getattr(item, "fixturenames", ())) and "gui" not in item.keywords:
            item.add_marker(pytest.mark.gui)
    if any("gui" in item.keywords for item in items) and (reason := no_display_reason()):
        if os.environ.get("RECON_REQUIRE_GUI") == "1":
            raise pytest.UsageError(f"RECON_REQUIRE_GUI=1, but {reason}")
        for item in items:
            if "gui" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))
    if any("cuda" in item.keywords for item in items) and not cuda_available():
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture
def one_thread():
    """Small FFTs run faster on one thread, and far faster when other processes load the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ct_file(tmp_path_factory):
    """A small 3D sparse-view CT measurement written by ``recon simulate`` (32 slices of 32^2, 20 views), for any
    test directory."""
    from tests.cli.conftest import run_cli

    path = tmp_path_factory.mktemp("ct") / "ct.h5"
    result = run_cli("simulate", "ct-parallel", "--phantom", "shepp-logan-3d", "--size", "32", "--views", "20",
                     "--noise-std", "0.01", "--out", path)
    assert result.returncode == 0, result.stderr
    return path
