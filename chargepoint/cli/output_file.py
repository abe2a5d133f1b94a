"""The file a command writes (`-o PATH`): a complete file or none, put in place by a rename.

- `-o -` (or no `-o`) is standard output.
- A new file is written beside its final name and renamed into place once it is complete and
  on disk (fsync): an interrupted export leaves the previous file, never half of one.
- An existing file is kept unless `--force` or the user says yes on a terminal; without a
  terminal on standard input nobody is asked and the command refuses.
- A symbolic link is not written through, and a FIFO, a device or a socket is not replaced,
  unless `--force`: then the link's target is written (as above), and a FIFO or a device is
  written into (it cannot be renamed over without destroying it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from chargepoint.store.files import FILE_MODE, fsync_directory

STDOUT = "-"

Ask = Callable[[str], bool]


class OutputRefused(Exception):
    """The target is not written; the message says why and what to do instead."""


@dataclass(frozen=True)
class Target:
    path: Path
    in_place: bool  # a FIFO or device written into (--force), not replaced by a rename
    replaces: os.stat_result | None  # the regular file that will be replaced, if any


def is_stdout(path: Path | str | None) -> bool:
    return path is None or str(path) == STDOUT


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def plan(path: Path, force: bool, ask: Ask | None) -> Target:
    """Where and how `path` may be written, or OutputRefused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Target(path, in_place=False, replaces=None)
    if stat.S_ISLNK(st.st_mode):
        if not force:
            raise OutputRefused(
                f"{path} is a symbolic link (to {os.readlink(path)}): not written through it; "
                "give --force to write the file it points to, or name another file"
            )
        return plan(path.resolve(), force, ask)
    if stat.S_ISDIR(st.st_mode):
        raise OutputRefused(f"{path} is a directory: name a file")
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISSOCK(st.st_mode):
            raise OutputRefused(f"{path} is a socket: name a file")
        if not force:
            raise OutputRefused(
                f"{path} is {_kind(st.st_mode)}: not replaced; give --force to write into it"
            )
        return Target(path, in_place=True, replaces=None)
    if not force:
        if ask is None:
            raise OutputRefused(
                f"{path} exists: give --force to replace it (nobody asked: standard input is "
                "not a terminal)"
            )
        if not ask(f"{path} exists; replace it? [y/N] "):
            raise OutputRefused(f"{path} exists and was kept")
    return Target(path, in_place=False, replaces=st)


def ask_on_terminal() -> Ask | None:
    """A yes/no question on the terminal, or None when standard input is not one."""
    try:
        if not sys.stdin.isatty():
            return None
    except (AttributeError, ValueError):
        return None

    def ask(question: str) -> bool:
        print(question, end="", file=sys.stderr, flush=True)
        try:
            answer = sys.stdin.readline()
        except (OSError, KeyboardInterrupt):
            return False
        return answer.strip().lower() in ("y", "yes")

    return ask


def _temporary(directory: Path, name: str) -> tuple[int, Path]:
    """A new file beside the target, of mode FILE_MODE whatever the umask."""
    for _ in range(100):
        tmp = directory / f".{name}.{secrets.token_hex(4)}.partial"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, FILE_MODE)
        except BaseException:
            os.close(fd)
            tmp.unlink()
            raise
        return fd, tmp
    raise OSError(errno.EEXIST, f"no free temporary name in {directory}")


@contextlib.contextmanager
def open_output(
    path: Path | None, force: bool = False, ask: Ask | None = None
) -> Iterator[IO[str]]:
    """A text stream for `path` (UTF-8, newlines as written); standard output for None or `-`.

    The file appears under its name only when the block completes without an exception."""
    if path is None or is_stdout(path):
        yield sys.stdout
        return
    target = plan(path, force, ask)
    if target.in_place:
        with target.path.open("w", encoding="utf-8", newline="") as out:
            yield out
        return
    directory = target.path.parent
    fd, tmp = _temporary(directory, target.path.name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if target.replaces is not None:
            os.chmod(tmp, stat.S_IMODE(target.replaces.st_mode))
            os.replace(tmp, target.path)
        else:
            _place_new(tmp, target.path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(directory)


def _place_new(tmp: Path, path: Path) -> None:
    """Give the finished file its name, unless a file of that name appeared meanwhile."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputRefused(
            f"{path} appeared while it was written: kept, nothing written"
        ) from None
    except OSError:
        os.replace(tmp, path)  # a file system without hard links
        return
    tmp.unlink()
