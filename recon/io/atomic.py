"""Output files that appear whole or not at all, and never in place of something recon must not destroy.

An output is written under a temporary name in its folder, then given its final name in one atomic step.
Rules, whatever ``--overwrite`` says:

- an output that is the input, or any file the run reads (same device and inode: hard links, symbolic links,
  ``dir/../name``), is refused, and so is one that exists and is not a regular file (a folder, a device, a
  FIFO, a socket);
- without ``overwrite``, "the name is free" and "take the name" are one step: ``renameat2(RENAME_NOREPLACE)``
  on Linux, else a hard link (``link`` fails if the name exists), else an exclusively created placeholder
  replaced at once (file systems without hard links); two runs finishing together cannot both succeed;
- with ``overwrite``, ``os.replace`` swaps the old file for the new one atomically;
- temporary names are ``.NAME.XXXXXXXX.tmp``, shortened to ``.PREFIX~HASH.XXXXXXXX.tmp`` (a hash of NAME) when
  NAME is too long to leave room, so any legal output name works. A writer holds a shared ``flock`` on its
  temporary file, so temporary files of NAME's pattern that nobody holds are stale (left by a killed run):
  they are reported, and removed with ``overwrite``;
- SIGINT/SIGTERM arriving during the final rename are held until it is done, and :func:`was_written` tells the
  CLI that an interrupt came after the output was complete (it then exits 0, not 130).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import re
import secrets
import signal
import stat
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from recon.errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, stale files are reported by name only
    fcntl = None

_RANDOM_HEX = 8
_SUFFIX = ".tmp"
_written: set[Path] = set()


class StaleTempWarning(UserWarning):
    """Temporary files of an output name left by a run that was killed."""


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _temp_prefix(path: Path) -> str:
    """``.NAME.``, or ``.PREFIX~HASH.`` when NAME leaves no room for the random part and suffix."""
    name_max = _name_max(path.parent)
    room = name_max - len(f"..{'0' * _RANDOM_HEX}{_SUFFIX}")
    if len(os.fsencode(path.name)) <= room:
        return f".{path.name}."
    digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:8]
    head = os.fsencode(path.name)[:room - len(digest) - 1].decode("utf-8", errors="ignore")
    return f".{head}~{digest}."


def _temp_pattern(path: Path) -> re.Pattern:
    return re.compile(re.escape(_temp_prefix(path)) + f"[0-9a-f]{{{_RANDOM_HEX}}}" + re.escape(_SUFFIX))


def _held_by_a_writer(path: Path) -> bool:
    """Whether a live writer holds ``path`` (its shared flock); False without flock support."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def stale_temp_files(path: str | Path) -> list[Path]:
    """Temporary files of output ``path``'s pattern in its folder that no running writer holds."""
    path = Path(path)
    pattern = _temp_pattern(path)
    try:
        names = sorted(entry.name for entry in os.scandir(path.parent) if pattern.fullmatch(entry.name))
    except OSError:
        return []
    return [path.parent / name for name in names if not _held_by_a_writer(path.parent / name)]


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` both exist and are the same file (device and inode)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(path: str | Path, overwrite: bool = False, protect: Iterable[str | Path] = ()) -> Path:
    """Fail early (UserError) when ``path`` cannot or must not be written; call before computing anything.

    Refused whatever ``overwrite`` says: a name too long for its folder, a folder, an existing file that is
    not a regular file, and any of the files in ``protect`` (the files the run reads). Refused without
    ``overwrite``: an existing file (a dangling symbolic link counts). Also refused: a missing or unwritable
    folder. Stale temporary files of this output (see :func:`stale_temp_files`) are reported as a
    StaleTempWarning, and removed with ``overwrite``.
    """
    path = _check_writable(Path(path), overwrite, protect)
    _handle_stale(path, overwrite)
    return path


def _check_writable(path: Path, overwrite: bool, protect: Iterable[str | Path]) -> Path:
    """:func:`check_output_path` without the stale files."""
    folder = path.parent
    name_bytes, name_max = len(os.fsencode(path.name)), _name_max(folder)
    if name_bytes > name_max:
        raise UserError(f"the file name is {name_bytes} bytes long, the folder allows {name_max}",
                        path=f"{folder / path.name[:40]}...", fix="choose a shorter output name")
    _refuse_target(path, protect)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise UserError("exists already", path=path, fix="pass --overwrite or choose another output name")
    if not folder.is_dir():
        raise UserError(f"the output folder {folder} does not exist", path=path,
                        fix="create the folder first or choose another output")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"the output folder {folder} is not writable", path=path,
                        fix="choose a folder you can write to")
    return path


def _refuse_target(path: Path, protect: Iterable[str | Path]) -> None:
    """UserError when ``path`` is a folder, a file in ``protect`` or an existing file that is not a regular one."""
    if path.is_dir():
        raise UserError("is a folder", path=path, fix="give a file name such as OUT.h5")
    for source in protect:
        if same_file(path, source):
            raise UserError(f"is the file {source} that this run reads (or a link to it); recon never writes over "
                            "its input", path=path, fix="choose another output name")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise UserError("exists and is not a regular file (a device, FIFO or socket)", path=path,
                        fix="choose an output name of a regular file")


def _handle_stale(path: Path, overwrite: bool) -> None:
    stale = stale_temp_files(path)
    if not stale:
        return
    if overwrite:
        for tmp in stale:
            with suppress(FileNotFoundError):
                tmp.unlink()
    names = ", ".join(p.name for p in stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
    action = "removed (--overwrite)" if overwrite else "left in place; --overwrite removes them"
    warnings.warn(StaleTempWarning(f"{path.parent}: {names}: temporary file(s) of {path.name} left by an "
                                   f"interrupted run, {action}"), stacklevel=3)


def was_written(path: str | Path) -> bool:
    """Whether this process gave ``path`` its final content (an interrupt after that finds the work done)."""
    return Path(os.path.abspath(path)) in _written


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block (in the main thread) and raise KeyboardInterrupt after it if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
    if received:
        raise KeyboardInterrupt


def _renameat2_noreplace(source: Path, target: Path) -> bool:
    """Rename unless ``target`` exists (FileExistsError), in one system call; False where the platform or the
    file system lacks it."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_noreplace = -100, 1
    if renameat2(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), rename_noreplace) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(target))


def _rename_noreplace(source: Path, target: Path) -> None:
    """Give ``source`` the name ``target`` unless that exists (FileExistsError), atomically."""
    if _renameat2_noreplace(source, target):
        return
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))  # claims the name, or fails
        os.replace(source, target)
        return
    os.unlink(source)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = False, protect: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``path``; when the block ends without error, it is synced and
    takes the name ``path`` (see the module's rules; an output that appeared meanwhile raises UserError unless
    ``overwrite``). On any exception, KeyboardInterrupt included, it is removed and ``path`` is left as it was.
    Stale temporary files are not looked at here: callers check the output with :func:`check_output_path`
    before they compute.
    """
    protect = list(protect)
    path = _check_writable(Path(path), overwrite, protect)
    prefix = _temp_prefix(path)
    while True:
        tmp = path.parent / f"{prefix}{secrets.token_hex(_RANDOM_HEX // 2)}{_SUFFIX}"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666)
            break
        except FileExistsError:
            continue
    try:
        if fcntl is not None:
            with suppress(OSError):  # file systems without flock: the file is only reported by name when stale
                fcntl.flock(fd, fcntl.LOCK_SH)
        yield tmp
        _fsync(tmp)
        _refuse_target(path, protect)  # again: the target may have changed while this run computed
        with _interrupts_held():
            try:
                os.replace(tmp, path) if overwrite else _rename_noreplace(tmp, path)
            except FileExistsError:
                raise UserError("appeared while this run was writing it", path=path,
                                fix="pass --overwrite or choose another output name") from None
            _written.add(Path(os.path.abspath(path)))
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        os.close(fd)
    if os.name == "posix":
        _fsync(path.parent)
