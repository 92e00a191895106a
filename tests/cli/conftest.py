"""Running the real ``recon`` console script as a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

RECON = str(Path(sys.executable).with_name("recon"))


def run_cli(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([RECON, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=env, stdin=subprocess.DEVNULL)

