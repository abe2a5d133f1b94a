"""The systemd notification protocol (sd_notify(3)), without libsystemd.

A service of Type=notify tells systemd that it is ready (`READY=1`), what it is doing
(`STATUS=...`), that it is stopping (`STOPPING=1`) and, with WatchdogSec=, that it is still alive
(`WATCHDOG=1`): one datagram per message to the Unix socket named by $NOTIFY_SOCKET (an abstract
socket when the name starts with `@`). Outside systemd (no $NOTIFY_SOCKET) every call does
nothing. A notification that cannot be sent is logged, never raised: the daemon's work does not
depend on it.

`Watchdog` pings only while a probe says the daemon makes progress, so that systemd restarts a
daemon whose event loop, store or OCPP loop is stuck.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger("chargepoint.service.sd_notify")

MAX_STATUS = 200  # characters of STATUS=; `systemctl status` shows one line


class SdNotifier:
    """Sends notifications to systemd's socket; does nothing when there is none."""

    def __init__(self, address: str | None) -> None:
        self.address: str | bytes | None = None
        if address:
            if address.startswith("@"):
                self.address = b"\0" + address[1:].encode()
            elif address.startswith("/"):
                self.address = address
            else:  # e.g. vsock:CID:PORT (systemd 253+ in VMs): not for a station controller
                log.warning("NOTIFY_SOCKET %r is not a Unix socket; not notifying", address)
        self._failed = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SdNotifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send `KEY=value` lines in one datagram; True when it was sent."""
        if self.address is None:
            return False
        data = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)  # never wait on the event loop; a full queue drops
                sock.sendto(data, self.address)
        except OSError as exc:
            if not self._failed:  # once: a broken socket would otherwise flood the log
                log.warning("cannot notify systemd (%s): %s", self.address, exc)
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *_status(status))

    def status(self, status: str) -> bool:
        return self.notify(*_status(status))

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *_status(status))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


def _status(text: str) -> list[str]:
    if not text:
        return []
    line = " ".join(text.split())  # one line
    return [f"STATUS={line[:MAX_STATUS]}"]


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds within which systemd expects a WATCHDOG=1 ($WATCHDOG_USEC), or None when the
    watchdog is off or meant for another process ($WATCHDOG_PID)."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


# A probe answers None while the daemon makes progress, else why it does not.
Probe = Callable[[], Awaitable[str | None]]
# What the daemon is doing, for STATUS= (None: nothing to say).
Describe = Callable[[], Awaitable[str | None]]


class Watchdog:
    """Pings WATCHDOG=1 twice per watchdog interval while `probe` answers None in time, and
    keeps STATUS= up to date with `describe` (`ping=False`: the status only).

    A probe that fails, raises or takes longer than half the interval stops the pings; systemd
    then kills and restarts the service after the interval (WatchdogSec=). Every reason is
    logged once when it starts and once when it clears. A blocked event loop stops the pings by
    itself: this task does not run.
    """

    def __init__(
        self,
        notifier: SdNotifier,
        interval_s: float,
        probe: Probe,
        describe: Describe | None = None,
        ping: bool = True,
    ) -> None:
        self.notifier = notifier
        self.period = interval_s / 2
        self.ping = ping
        self.probe = probe
        self.describe = describe
        self.pings = 0
        self.problem: str | None = None
        self._status = ""

    async def run(self) -> None:
        while True:
            problem = await self._check()
            if problem is None:
                if self.ping:
                    self.notifier.watchdog()
                    self.pings += 1
                if self.problem is not None:
                    log.warning("watchdog: progress again (%s cleared)", self.problem)
            elif problem != self.problem:
                log.error("watchdog: no progress (%s); not pinging systemd", problem)
            self.problem = problem
            await self._update_status(problem)
            await asyncio.sleep(self.period)

    async def _check(self) -> str | None:
        try:
            async with asyncio.timeout(self.period):
                return await self.probe()
        except TimeoutError:
            return f"the progress check took longer than {self.period:.1f} s"
        except Exception as exc:
            return f"the progress check failed: {type(exc).__name__}: {exc}"

    async def _update_status(self, problem: str | None) -> None:
        text = f"stuck: {problem}" if problem is not None else ""
        if not text and self.describe is not None:
            try:
                async with asyncio.timeout(self.period):
                    text = await self.describe() or ""
            except Exception:  # a status line is nice to have
                text = ""
        if text and text != self._status:
            self.notifier.status(text)
            self._status = text
