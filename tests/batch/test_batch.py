"""`recon batch` end to end: the real CLI, a real process pool and a real Dask LocalCluster on loopback."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from recon.io.reconstruction import read_reconstruction
from tests.cli.conftest import RECON, run_cli

from .conftest import write_ct


def summary(out_dir) -> dict:
    return json.loads((out_dir / "summary.json").read_text())


def test_corrupt_file_is_recorded_and_the_others_finish_on_a_local_cluster(six_files, tmp_path):
    out = tmp_path / "out"
    result = run_cli("batch", six_files, "--method", "fbp", "--out-dir", out, "--scheduler", "local:2")
    assert result.returncode == 1, result.stderr
    assert "dask dashboard: http://127.0.0.1:" in result.stderr
    assert sorted(p.name for p in out.glob("*.h5")) == [f"scan{i}.fbp.h5" for i in range(5)]
    units = {u["unit"]: u for u in summary(out)["units"]}
    assert [name for name, u in units.items() if u["status"] == "failed"] == ["scan5.h5"]
    assert "scan5.h5" in units["scan5.h5"]["error"]
    assert all(units[f"scan{i}.h5"]["psnr"] > 15 for i in range(5))
    csv_lines = (out / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("unit,input,output,status") and len(csv_lines) == 7


def test_a_killed_worker_does_not_lose_units(tmp_path):
    from distributed import Client, LocalCluster

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        write_ct(folder / f"scan{i}.h5", seed=i)
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        batch = subprocess.Popen([RECON, "batch", str(folder), "--method", "tv", "--set", "iterations=150",
                                  "--out-dir", str(out), "--scheduler", cluster.scheduler_address],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        busy = []
        while not busy and time.time() < deadline:
            busy = [worker for worker, tasks in client.processing().items() if tasks]
            time.sleep(0.2)
        assert busy, "no unit started"
        time.sleep(1.0)  # let it get into the unit
        pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)  # the nanny starts a new worker; the scheduler reschedules the unit
        _, stderr = batch.communicate(timeout=300)
    assert batch.returncode == 0, stderr
    units = summary(out)["units"]
    assert len(units) == 6 and all(u["status"] == "ok" for u in units)
    assert len(list(out.glob("*.tv.h5"))) == 6


@pytest.mark.slow
def test_sigint_then_resume_runs_only_the_missing_units(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        write_ct(folder / f"scan{i}.h5", seed=i)
    # units long enough (about 1.5 s each) that a loaded machine still sends SIGINT before all six are done
    args = [str(folder), "--method", "tv", "--set", "iterations=2000", "--workers", "1"]
    out = tmp_path / "out"
    # a suite started in the background (`cmd &`) inherits SIGINT ignored, and so would recon: restore the default
    batch = subprocess.Popen([RECON, "batch", *args, "--out-dir", str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while not list(out.glob("*.tv.h5")) and time.time() < deadline:
        time.sleep(0.1)
    batch.send_signal(signal.SIGINT)
    _, stderr = batch.communicate(timeout=180)
    assert batch.returncode == 130, stderr
    first = {u["unit"]: u["status"] for u in summary(out)["units"]}
    done = sorted(name for name, status in first.items() if status == "ok")
    assert 1 <= len(done) < 6 and "not run" in first.values()
    assert not list(out.glob(".*.tmp"))

    result = run_cli("batch", *args, "--out-dir", out, "--resume")
    assert result.returncode == 0, result.stderr
    second = {u["unit"]: u["status"] for u in summary(out)["units"]}
    assert sorted(name for name, status in second.items() if status == "skipped") == done
    assert sorted(name for name, status in second.items() if status == "ok") == sorted(set(first) - set(done))

    clean = tmp_path / "clean"
    assert run_cli("batch", *args, "--out-dir", clean).returncode == 0
    for i in range(6):
        resumed, _ = read_reconstruction(out / f"scan{i}.tv.h5")
        reference, _ = read_reconstruction(clean / f"scan{i}.tv.h5")
        np.testing.assert_allclose(resumed, reference, rtol=1e-5, atol=1e-6)


def test_slabs_merge_into_the_same_volume_as_a_whole_run(tmp_path):
    measurement = write_ct(tmp_path / "vol.h5", seed=3, n_slices=12)
    slabbed, whole = tmp_path / "slabbed", tmp_path / "whole"
    result = run_cli("batch", measurement, "--method", "cgls", "--slab", "5", "--out-dir", slabbed, "--workers", "2")
    assert result.returncode == 0, result.stderr
    units = [u["unit"] for u in summary(slabbed)["units"]]
    assert units == ["vol.h5[0:5]", "vol.h5[5:10]", "vol.h5[10:12]", "vol.h5 (merged)"]
    assert run_cli("batch", measurement, "--method", "cgls", "--out-dir", whole, "--workers", "2").returncode == 0
    merged, attrs = read_reconstruction(slabbed / "vol.cgls.h5")
    reference, reference_attrs = read_reconstruction(whole / "vol.cgls.h5")
    # bit for bit: a slice projects alike whatever slices share the call (recon.physics.ct.STORED_COLUMN_GROUP);
    # before, rounding moved slice 5's discrepancy stop from iteration 17 to 18 and the slabs differed by up to 7e-3
    np.testing.assert_array_equal(merged, reference)
    assert attrs["psnr"] == pytest.approx(reference_attrs["psnr"], abs=0.05)
    assert attrs["nmse"] == pytest.approx(reference_attrs["nmse"], rel=0.02)  # the whole volume's, not a slab's
    assert attrs["ssim"] == pytest.approx(reference_attrs["ssim"], abs=1e-3)
    assert not (slabbed / ".slabs").exists()


@pytest.mark.parametrize("args, message", [
    (["--method", "tv", "--slab", "4"], "couples slices"),
    (["--method", "fbp", "--resume", "--overwrite"], "contradict"),
    (["--method", "fbp", "--scheduler", "local:x"], "local:N"),
    (["--method", "nope"], "unknown method"),
    (["--method", "fbp", "--threads", "0"], "--threads 0 is not positive"),
])
def test_bad_usage_exits_2(six_files, tmp_path, args, message):
    result = run_cli("batch", six_files, "--out-dir", tmp_path / "out", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_slabs_are_refused_where_a_default_couples_the_slices(tmp_path):
    """pnp-admm with planes 1 is slice-separable on CT, but on MRI its sigma defaults to auto, one value for the
    whole volume: slabs of an MRI file are refused before any work, naming the file and the fix."""
    mri = tmp_path / "in" / "mri.h5"
    mri.parent.mkdir()
    assert run_cli("simulate", "mri-cartesian", "--phantom", "shepp-logan-3d", "--size", "16", "--coils", "2",
                   "--out", mri).returncode == 0
    out = tmp_path / "out"
    result = run_cli("batch", mri, "--method", "pnp-admm", "--set", "planes=1", "--slab", "4", "--out-dir", out)
    assert result.returncode == 2, result.stderr
    assert "mri.h5" in result.stderr and "couples the slices of mri-cartesian/1" in result.stderr
    assert not out.exists() or not list(out.glob("*.h5"))


def test_inputs_globs_lists_and_existing_outputs(six_files, tmp_path):
    listing = tmp_path / "inputs.txt"
    listing.write_text("# two scans\nin/scan0.h5\nin/scan1.h5\n")
    out = tmp_path / "out"
    assert run_cli("batch", listing, str(six_files / "scan2*.h5"), "--method", "fbp", "--out-dir", out,
                   "--workers", "1").returncode == 0
    assert sorted(p.name for p in out.glob("*.h5")) == ["scan0.fbp.h5", "scan1.fbp.h5", "scan2.fbp.h5"]
    again = run_cli("batch", listing, "--method", "fbp", "--out-dir", out)
    assert again.returncode == 2 and "--resume" in again.stderr
    nothing = run_cli("batch", str(tmp_path / "none*.h5"), "--method", "fbp", "--out-dir", out)
    assert nothing.returncode == 2 and "matches no .h5 file" in nothing.stderr
