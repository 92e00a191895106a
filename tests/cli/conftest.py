"""Running the real ``recon`` console script as a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

RECON = str(Path(sys.executable).with_name("recon"))


def run_cli(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([RECON, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def ct_file(tmp_path_factory) -> Path:
    """A small 3D sparse-view CT measurement written by ``recon simulate`` (32 slices of 32^2, 20 views)."""
    path = tmp_path_factory.mktemp("ct") / "ct.h5"
    result = run_cli("simulate", "ct-parallel", "--phantom", "shepp-logan-3d", "--size", "32", "--views", "20",
                     "--noise-std", "0.01", "--out", path)
    assert result.returncode == 0, result.stderr
    return path
