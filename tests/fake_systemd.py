"""systemd's side of a Type=notify service, for tests: the $NOTIFY_SOCKET it listens on, and
`chargepoint run` started the way systemd starts it (notify socket, watchdog, journal stream)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.real_vectors import REPO_ROOT


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET; keeps every datagram it got."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)
        self.received: list[str] = []

    def messages(self) -> list[str]:
        """The datagrams that arrived since the last call (all are kept in `received`)."""
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                self.received += out
                return out

    def fields(self) -> list[str]:
        """Every KEY=value line received so far, in order."""
        self.messages()
        return [line for message in self.received for line in message.splitlines()]

    async def wait_for(
        self, predicate: Callable[[list[str]], bool], timeout: float, what: str
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self.fields()):
            if loop.time() > deadline:
                raise TimeoutError(f"systemd never got {what}; got {self.fields()}")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.sock.close()


class ServiceProcess:
    """`chargepoint run --config FILE` under a fake systemd: READY/STATUS/WATCHDOG/STOPPING go
    to `systemd`, stderr is "the journal" (JOURNAL_STREAM names it)."""

    def __init__(self, config: Path, tmp: Path, watchdog_s: float | None = 2.0) -> None:
        self.config = config
        self.log_path = tmp / "journal.log"
        self.systemd = FakeSystemd(str(tmp / "notify.sock"))
        self.watchdog_s = watchdog_s
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.systemd.received.clear()
        with self.log_path.open("ab") as log:
            st = os.fstat(log.fileno())
            env = dict(
                os.environ,
                PYTHONUNBUFFERED="1",
                NOTIFY_SOCKET=str(self.systemd.sock.getsockname()),
                JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
            )
            if self.watchdog_s is not None:
                env["WATCHDOG_USEC"] = str(int(self.watchdog_s * 1_000_000))
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chargepoint", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                cwd=REPO_ROOT,
                env=env,
            )

    async def ready(self, timeout: float = 30) -> str:
        """Wait for READY=1; the STATUS= sent with it."""
        await self.systemd.wait_for(lambda f: "READY=1" in f, timeout, "READY=1")
        for message in self.systemd.received:
            lines = message.splitlines()
            if "READY=1" in lines:
                return next((x[7:] for x in lines if x.startswith("STATUS=")), "")
        raise AssertionError("READY=1 vanished")

    async def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as `systemctl stop` sends; the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.proc.poll() is None:
            if loop.time() > deadline:
                self.proc.kill()
                raise TimeoutError(f"no exit {timeout} s after SIGTERM\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        self.kill()
        self.systemd.close()
