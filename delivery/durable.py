"""Durable renames: fsync a written file and the folder that names it, so a crash keeps the new state;
swap a staged folder in whole, under a lock, so a half-written one is never visible."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a written file's bytes, then its folder's entry."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One writer at a time for ``folder`` (an advisory lock on it), e.g. one exporter per department."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def swap_dirs(stage: Path, final: Path, exchange: Callable[[Path, Path], bool] | None = None) -> None:
    """Make ``stage`` the folder ``final`` in one step; the old ``final``, if any, ends up at ``stage``.

    ``exchange`` swaps two folders atomically or returns False (default: ``renameat2``).
    """
    if not final.exists():
        os.rename(stage, final)
    elif not (exchange or exchange_paths)(stage, final):
        # No atomic exchange on this system: two renames, with the old folder put back on failure.
        old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
        os.rename(final, old)
        try:
            os.rename(stage, final)
        except OSError:
            os.rename(old, final)
            raise
        os.rename(old, stage)
    fsync_dir(final.parent)


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))
