"""Hostile files: sizes a file declares are checked before anything is read (memory refusals name the slices
that fit, value checks read only what is stored), and a file that makes HDF5 loop or crash is refused."""

import os
import signal
import time

import h5py
import numpy as np
import pytest
from make_files import write_valid_file

from recon import memory
from recon.errors import UserError
from recon.io import load_volume, specs
from recon.io.measurement import MeasurementFile
from recon.io.specs import stored_blocks, validate_file


def _huge_sparse_linear(path, rows=10**12):
    write_valid_file("sparse-linear", path, ground_truth=None)
    with h5py.File(path, "r+") as f:
        del f["y"]
        f.create_dataset("y", shape=(rows, 8), dtype="f4", chunks=(1024, 8))
    return path


def test_memory_check_names_the_slices_that_fit(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000)
    path = write_valid_file("sparse-linear", tmp_path / "s.h5", n_slices=1000)
    with MeasurementFile(path) as measurement:
        # A: 8 x 16 float32 = 512 B; per sample: y 8 + ground truth 16 + image 16 floats = 160 B
        with pytest.raises(UserError, match=r"reading 1000 slice\(s\) needs at least 156.8 KiB .* select at most 59 "
                                            r"slices at a time with --slices a:b \(each needs 160 B\)"):
            measurement.check_memory(None)
        measurement.check_memory(slice(0, 59))


def test_a_file_declaring_terabytes_is_checked_through_its_fill_value(tmp_path):
    path = _huge_sparse_linear(tmp_path / "s.h5")
    with h5py.File(path, "r") as f:
        assert [(i, b.shape) for i, b in stored_blocks(f["y"])] == [(None, (1, 1))]
    assert validate_file(path).ok
    with h5py.File(path, "r+") as f:
        f["y"][2048 + 3] = np.inf  # writes one chunk: rows 2048..3071
    with h5py.File(path, "r") as f:
        assert [(i, b.shape) for i, b in stored_blocks(f["y"])] == [(None, (1, 1)), (2048, (1024, 8))]
    assert validate_file(path).problems == [
        "y: contains NaN/Inf values (first at index 2051 along axis 0); measurements must be finite"]
    with h5py.File(path, "r+") as f:  # the fill value itself may break the rules
        del f["A"]
        f.create_dataset("A", shape=(8, 16), dtype="f4", fillvalue=np.nan)
    assert "A: contains NaN/Inf values (the fill value of its unwritten part)" in validate_file(path).problems[0]


def test_load_volume_refuses_a_declared_size_that_cannot_fit(tmp_path):
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("volume", shape=(10**6, 10**6, 10**3), dtype="f4", chunks=(1, 64, 64))
        f["empty"] = h5py.Empty("f4")
    with pytest.raises(UserError, match="loading a volume of shape .* of memory"):
        load_volume(path, key="volume")
    with pytest.raises(UserError, match="null dataspace"):
        load_volume(path, key="empty")


@pytest.mark.parametrize("failure, message", [
    (lambda: time.sleep(60), "does not finish reading its structure within 0.5 s"),
    (lambda: os.kill(os.getpid(), signal.SIGSEGV), "crashes the HDF5 library (SIGSEGV)"),
], ids=["loops", "crashes"])
def test_a_file_that_hangs_or_crashes_hdf5_is_refused_not_waited_on(tmp_path, monkeypatch, failure, message):
    """HDF5 loops forever on some damaged files (a corrupt global heap behind a string attribute) or crashes:
    the structure is read first in a forked child, here made to loop or crash the way the library does."""
    monkeypatch.setattr(specs, "PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(specs, "_check_file", lambda *args, **kwargs: failure())
    path = write_valid_file("sparse-linear", tmp_path / "s.h5")
    started = time.monotonic()
    assert message in validate_file(path).problems[0]
    assert time.monotonic() - started < 30
