"""`make test` on a machine without a display: GUI tests are skipped with the reason, never a crash; with Xvfb
they run. Each case is a real pytest run in a child process on one GUI test of this folder."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUI_TEST = "tests/viewer/test_viewer.py::test_manifest_contributions_are_found"


def display_free_env(**overrides: str) -> dict[str, str]:
    """This process's environment without a display and without CI's ``RECON_REQUIRE_GUI`` (``.ci/run`` sets it
    for the whole suite), plus ``overrides``."""
    dropped = ("DISPLAY", "WAYLAND_DISPLAY", "RECON_REQUIRE_GUI")
    return {name: value for name, value in os.environ.items() if name not in dropped} | overrides


def run_pytest(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", GUI_TEST],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_without_xvfb_or_display_gui_tests_are_skipped_with_the_package_to_install(tmp_path):
    result = run_pytest(display_free_env(PATH=str(tmp_path)))  # an empty PATH folder: no Xvfb for pytest-xvfb
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 skipped" in result.stdout and "passed" not in result.stdout
    assert "apt-get install xvfb" in result.stdout


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb on PATH (Debian: apt-get install xvfb)")
@pytest.mark.slow
def test_with_xvfb_on_path_gui_tests_run():
    result = run_pytest(display_free_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout and "skipped" not in result.stdout


@pytest.mark.slow
def test_ci_can_require_the_gui_tests(tmp_path):
    result = run_pytest(display_free_env(PATH=str(tmp_path), RECON_REQUIRE_GUI="1"))
    assert result.returncode != 0 and "RECON_REQUIRE_GUI=1, but GUI test: no display" in result.stderr
