"""Writing the certificate store's files: whole or not at all, secrets with mode 0600."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def ensure_directory(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """`path` holds `data` (mode `mode`) once this returns, or keeps its old content: the
    bytes go to a new file created with `mode` (never wider, whatever the umask), which is
    synced and renamed over `path`; the directory is synced too."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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


def sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    sync_directory(path.parent)
