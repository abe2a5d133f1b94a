"""Writing the certificate store's files: whole or not at all, secrets with mode 0600."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from chargepoint.store.files import make_directory


def ensure_directory(path: Path, mode: int) -> None:
    """`path` as a directory of exactly `mode`; the parents created here get `mode` too."""
    make_directory(path, mode)
    os.chmod(path, mode)


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)\.tmp$")


def temp_path(path: Path, pid: int | None = None) -> Path:
    """The file `write_atomically` writes before renaming it to `path`:
    `.<name>.<pid>.tmp` beside it."""
    return path.with_name(f".{path.name}.{os.getpid() if pid is None else pid}.tmp")


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """`path` holds `data` (mode `mode`) once this returns, or keeps its old content: the
    bytes go to a new file created with `mode` (never wider, whatever the umask), which is
    synced and renamed over `path`; the directory is synced too. A power loss or kill
    before the rename leaves the temporary file (`temp_path`): see `remove_stale_temp_files`."""
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    os.replace(tmp, path)
    sync_directory(path.parent)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temp_files(directory: Path, owns: Callable[[str], bool]) -> list[str]:
    """Delete the temporary files `write_atomically` left in `directory` when the process
    writing them died: `.<name>.<pid>.tmp` for a file name `owns` accepts, written by a
    process that no longer runs (one still writing is left alone). Returns the names."""
    removed: list[str] = []
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not owns(match["name"]) or _running(int(match["pid"])):
            continue
        if not entry.is_file() or entry.is_symlink():
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry.name)
    if removed:
        sync_directory(directory)
    return removed


def sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    sync_directory(path.parent)
