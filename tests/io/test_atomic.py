"""recon.io.atomic: the no-replace commit and its fallbacks, temp names for long output names, stale temp
files (a live writer's are left alone), and an interrupt inside the commit window."""

import errno
import fcntl
import os
import signal
import warnings

import h5py
import numpy as np
import pytest
from make_files import write_valid_file

from recon.errors import UserError
from recon.io import atomic
from recon.io.atomic import StaleTempWarning, atomic_output, check_output_path, stale_temp_files, was_written
from recon.io.reconstruction import atomic_h5


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("platform", ["renameat2", "hard-link", "placeholder"])
def test_the_second_of_two_commits_to_one_name_fails_and_the_first_stays(tmp_path, monkeypatch, platform):
    if platform != "renameat2":
        monkeypatch.setattr(atomic, "_renameat2_noreplace", lambda source, target: False)
    if platform == "placeholder":
        def no_hard_links(source, target):
            raise OSError(errno.EPERM, "hard links not supported")

        monkeypatch.setattr(os, "link", no_hard_links)
    target = tmp_path / "out.h5"
    first, second = _write(tmp_path / "a.tmp", "first"), _write(tmp_path / "b.tmp", "second")
    atomic._rename_noreplace(first, target)
    with pytest.raises(FileExistsError):
        atomic._rename_noreplace(second, target)
    assert target.read_text() == "first"
    assert not first.exists() and second.read_text() == "second"


def test_an_output_that_appears_while_writing_is_kept_and_the_temp_file_removed(tmp_path):
    out = tmp_path / "out.txt"
    with pytest.raises(UserError, match="appeared while this run was writing it"):
        with atomic_output(out) as tmp:
            tmp.write_text("mine")
            out.write_text("theirs")
    assert out.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_temp_names_fit_for_the_longest_legal_output_name(tmp_path):
    out = tmp_path / ("x" * 255)
    with atomic_output(out) as tmp:
        assert len(tmp.name.encode()) <= 255 and tmp.name.endswith(".tmp")
        tmp.write_text("done")
    assert out.read_text() == "done"
    _write(tmp_path / tmp.name, "stale")  # as a killed run would have left it
    assert stale_temp_files(out) == [tmp_path / tmp.name]


def test_a_live_writers_temp_file_is_not_stale_but_a_dead_ones_is(tmp_path):
    out = tmp_path / "out.h5"
    with atomic_output(out) as live:
        assert stale_temp_files(out) == []  # our own, locked
        dead = _write(tmp_path / ".out.h5.00000000.tmp", "left")
        assert stale_temp_files(out) == [dead]
        fd = os.open(dead, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_SH)  # now another writer holds it
        assert stale_temp_files(out) == []
        os.close(fd)
        assert live.exists()


def test_stale_files_warn_and_overwrite_removes_only_this_outputs(tmp_path):
    out = tmp_path / "out.h5"
    stale = _write(tmp_path / ".out.h5.0123abcd.tmp", "x")
    other = _write(tmp_path / ".out.h5.not-ours.tmp", "y")
    with pytest.warns(StaleTempWarning, match="left in place"):
        check_output_path(out)
    with pytest.warns(StaleTempWarning, match="removed"):
        check_output_path(out, overwrite=True)
    assert not stale.exists() and other.exists()


def test_an_interrupt_during_the_commit_lands_after_it(tmp_path, monkeypatch):
    """SIGINT arriving while the file takes its name is held: the file is complete and was_written says so."""
    original = atomic._rename_noreplace

    def rename_then_interrupt(source, target):
        original(source, target)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(atomic, "_rename_noreplace", rename_then_interrupt)
    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        with atomic_h5(out, "sparse-linear/1") as f:
            source = write_valid_file("sparse-linear", tmp_path / "src.h5")
            with h5py.File(source) as s:
                for key in s:
                    f[key] = s[key][()]
    assert was_written(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "src.h5"]


def test_the_cli_exits_0_when_the_interrupt_comes_after_the_output(tmp_path, monkeypatch, capsys):
    from recon import cli
    from recon.pipeline import Summary

    monkeypatch.setattr(Summary, "line", lambda self: signal.raise_signal(signal.SIGINT))
    source = write_valid_file("sparse-linear", tmp_path / "in.h5")
    out = tmp_path / "out.h5"
    # Ctrl-C's usual handler, also where pytest was started in the background (`cmd &` ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert cli.main(["reconstruct", str(source), "--method", "cgls", "--out", str(out)]) == 0
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "interrupted after" in capsys.readouterr().err
    assert out.exists()


def test_the_input_and_links_to_it_are_refused(tmp_path):
    source = _write(tmp_path / "in.h5", "input")
    os.link(source, tmp_path / "hard.h5")
    os.symlink(source, tmp_path / "soft.h5")
    for out in (source, tmp_path / "hard.h5", tmp_path / "soft.h5", tmp_path / "x" / ".." / "in.h5"):
        (tmp_path / "x").mkdir(exist_ok=True)
        with pytest.raises(UserError, match="recon never writes over its input"):
            check_output_path(out, overwrite=True, protect=[source])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_output_path(tmp_path / "new.h5", protect=[source]) == tmp_path / "new.h5"
    assert np.array_equal(np.frombuffer(source.read_bytes(), np.uint8), np.frombuffer(b"input", np.uint8))
