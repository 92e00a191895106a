"""A dead batch worker costs only the unit it ran one attempt: the real CLI, real worker processes, SIGKILL.

The test finds the process running a unit from the unit's attempt log (one line "host:pid time name" per
start, in OUT/.attempts while the batch runs) and kills it; the unit must fail alone after --retries + 1
starts, with the signal in the summary, and every other unit must succeed at its first attempt.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from recon.batch.units import attempt_log
from tests.cli.conftest import RECON

from .conftest import write_ct

TARGET = "scan0.h5"


def _inputs(folder: Path) -> Path:
    """scan0.h5 takes seconds (64^2 x 12 slices); five small files take a fraction of a second each."""
    folder.mkdir()
    write_ct(folder / TARGET, seed=0, size=64, n_slices=12, views=40)
    for i in range(1, 6):
        write_ct(folder / f"scan{i}.h5", seed=i, size=16, n_slices=2, views=10)
    return folder


def _wait_for_start(log: Path, count: int, batch: subprocess.Popen, timeout: float = 240) -> int:
    """The pid of the process that started the unit for the ``count``-th time."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= count:
            return int(lines[count - 1].split()[0].rpartition(":")[2])
        assert batch.poll() is None, batch.communicate()[1]
        time.sleep(0.05)
    raise AssertionError(f"the unit did not start {count} time(s)")


def _kill_target_twice(args: list[str], out: Path) -> tuple[int, str, dict]:
    batch = subprocess.Popen([RECON, "batch", *args, "--out-dir", str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    log = attempt_log(out / ".attempts", TARGET)
    killed = []
    for count in (1, 2):
        pid = _wait_for_start(log, count, batch)
        assert pid not in killed, "the second attempt must run in a fresh worker"
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    _, stderr = batch.communicate(timeout=300)
    units = {u["unit"]: u for u in json.loads((out / "summary.json").read_text())["units"]}
    return batch.returncode, stderr, units


def _assert_only_the_target_failed(code: int, stderr: str, units: dict, out: Path, cause: str) -> None:
    assert code == 1, stderr
    target = units.pop(TARGET)
    assert target["status"] == "failed" and target["attempts"] == 2, target
    assert "died 2 time(s)" in target["error"] and cause in target["error"], target["error"]
    assert len(units) == 5
    assert all(u["status"] == "ok" and u["attempts"] == 1 for u in units.values()), units
    assert sorted(p.name for p in out.glob("*.h5")) == [f"scan{i}.tv.h5" for i in range(1, 6)]
    assert not (out / ".attempts").exists()


@pytest.mark.parametrize("executor, cause", [
    (["--workers", "2"], "killed by SIGKILL"),
    pytest.param(["--scheduler", "local:2"], "KilledWorker", marks=pytest.mark.slow, id="dask-local-cluster"),
], ids=["local-pool", "dask-local-cluster"])
def test_a_unit_that_kills_its_worker_twice_fails_alone(tmp_path, executor, cause):
    folder = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    args = [str(folder), "--method", "tv", "--set", "iterations=3000", *executor, "--retries", "1"]
    code, stderr, units = _kill_target_twice(args, out)
    _assert_only_the_target_failed(code, stderr, units, out, cause)
