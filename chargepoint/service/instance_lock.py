"""One daemon per station: an OS-level lock on `<state_dir>/chargepoint.lock`.

Two daemons on one state dir would both connect to the CSMS as the same station, drive the
same meters and replace each other's control socket. The first takes an exclusive `flock` on
the lock file and writes its PID into it; a second finds the lock held, reads who holds it
and refuses to start, touching nothing. The kernel releases the lock when the process dies,
however it dies, so a SIGKILL or a power loss never leaves a stale lock behind. The file
itself is never deleted (deleting it would let a third process lock a new inode).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE = "chargepoint.lock"
# sysexits EX_TEMPFAIL: try again once the other daemon has stopped
EXIT_ALREADY_RUNNING = 75


class AlreadyRunning(Exception):
    """Another daemon holds the station's state dir: give up, leave it alone."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"another chargepoint daemon is running on this state dir ({holder}; lock {path}); "
            "stop it first (systemctl stop chargepoint) or use another --state-dir"
        )


class InstanceLock:
    """Held from `acquire()` until `release()` or the process ends."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, describe: str = "") -> None:
        """Take the lock or raise AlreadyRunning naming the holder. Non-blocking."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise AlreadyRunning(self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {describe}".strip().encode() + b"\n")
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it ("pid 1234, control unix:/...")."""
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    pid, _, rest = text.partition(" ")
    if not pid.isdigit():
        return "process unknown"
    return f"pid {pid}" + (f", {rest}" if rest else "")
