"""Security events: the station's security log and the notifications for the CSMS.

`SecurityEvents.record(event_type, tech_info)` writes one line to the security log
(`<state_dir>/security.log`, JSON lines, synced before it returns) and, for the events the
specifications mark critical, one message to the durable outbox, from which the OCPP adapter
sends a SecurityEventNotification: in order with the other stored messages, after outages and
restarts, exactly once. Non-critical events are only logged (OCPP 2.0.1 A04.FR.02, 1.6
security whitepaper: critical events must be pushed), except those in `ALSO_PUSHED`: a CSMS
server the station refused to trust (certificate, host name, TLS version) is what its operator
must hear of, once a trusted connection is there. `GetLog(SecurityLog)` uploads the log
(`entries_between`).

Event names are OCPP 2.0.1's; `name_16` gives the 1.6 whitepaper's name where it differs.
While the state dir is full (`space`, chargepoint.core.disk_space) the log line and the
outbox message wait in memory, in order, and are written once space returns.
Never put a secret into `tech_info`: it is stored and sent as it is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import errno
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from chargepoint.core.tasks import cancel_and_wait
from chargepoint.store import utc_now
from chargepoint.store.files import FILE_MODE, make_directory, open_fd

if TYPE_CHECKING:
    from chargepoint.core.disk_space import DiskSpace

log = logging.getLogger("chargepoint.security")

OUTBOX_KIND: Final = "security_event"
LOG_FILE: Final = "security.log"
MAX_LOG_BYTES: Final = 1_000_000  # then the log is rotated once (security.log.1)
TYPE_MAX: Final = 50  # SecurityEventNotification.type maxLength
TECH_INFO_MAX: Final = 255  # SecurityEventNotification.techInfo maxLength


class SecurityEventType(enum.StrEnum):
    """The events of OCPP 2.0.1 Part 2 Appendix 1 (1.6 security whitepaper, section 8)."""

    FIRMWARE_UPDATED = "FirmwareUpdated"
    FAILED_TO_AUTHENTICATE_AT_CSMS = "FailedToAuthenticateAtCsms"
    CSMS_FAILED_TO_AUTHENTICATE = "CsmsFailedToAuthenticate"
    SETTING_SYSTEM_TIME = "SettingSystemTime"
    STARTUP_OF_THE_DEVICE = "StartupOfTheDevice"
    RESET_OR_REBOOT = "ResetOrReboot"
    SECURITY_LOG_WAS_CLEARED = "SecurityLogWasCleared"
    RECONFIGURATION_OF_SECURITY_PARAMETERS = "ReconfigurationOfSecurityParameters"
    MEMORY_EXHAUSTION = "MemoryExhaustion"
    INVALID_MESSAGES = "InvalidMessages"
    ATTEMPTED_REPLAY_ATTACKS = "AttemptedReplayAttacks"
    TAMPER_DETECTION_ACTIVATED = "TamperDetectionActivated"
    INVALID_FIRMWARE_SIGNATURE = "InvalidFirmwareSignature"
    INVALID_FIRMWARE_SIGNING_CERTIFICATE = "InvalidFirmwareSigningCertificate"
    INVALID_CSMS_CERTIFICATE = "InvalidCsmsCertificate"
    INVALID_CHARGING_STATION_CERTIFICATE = "InvalidChargingStationCertificate"
    INVALID_TLS_VERSION = "InvalidTLSVersion"
    INVALID_TLS_CIPHER_SUITE = "InvalidTLSCipherSuite"


CRITICAL: Final = frozenset(
    {
        SecurityEventType.FIRMWARE_UPDATED,
        SecurityEventType.SETTING_SYSTEM_TIME,
        SecurityEventType.STARTUP_OF_THE_DEVICE,
        SecurityEventType.RESET_OR_REBOOT,
        SecurityEventType.SECURITY_LOG_WAS_CLEARED,
        SecurityEventType.MEMORY_EXHAUSTION,
        SecurityEventType.TAMPER_DETECTION_ACTIVATED,
    }
)

# not critical in the specifications, pushed all the same (the specifications only demand that
# critical ones are): the station refused the CSMS's TLS server (an attack, or a broken setup)
ALSO_PUSHED: Final = frozenset(
    {SecurityEventType.INVALID_CSMS_CERTIFICATE, SecurityEventType.INVALID_TLS_VERSION}
)

_NAMES_16: Final[dict[str, str]] = {
    SecurityEventType.FAILED_TO_AUTHENTICATE_AT_CSMS: "FailedToAuthenticateAtCentralSystem",
    SecurityEventType.CSMS_FAILED_TO_AUTHENTICATE: "CentralSystemFailedToAuthenticate",
    SecurityEventType.INVALID_CSMS_CERTIFICATE: "InvalidCentralSystemCertificate",
    SecurityEventType.INVALID_CHARGING_STATION_CERTIFICATE: "InvalidChargePointCertificate",
}


def name_16(event_type: str) -> str:
    """The OCPP 1.6 security whitepaper's name of an event."""
    return _NAMES_16.get(event_type, event_type)


def is_pushed(event_type: str) -> bool:
    """Whether the event goes to the CSMS (SecurityEventNotification), not only to the log."""
    return is_critical(event_type) or event_type in ALSO_PUSHED


def is_critical(event_type: str) -> bool:
    """Critical per the specifications; an event type they do not list (a meter-specific
    one) counts as critical, so that the CSMS hears of it."""
    try:
        return SecurityEventType(event_type) in CRITICAL
    except ValueError:
        return True


@dataclass(frozen=True)
class SecurityEvent:
    """One entry of the security log."""

    event_type: str
    timestamp: str  # ISO 8601 UTC with milliseconds and Z
    tech_info: str | None
    critical: bool

    def payload(self, version: str) -> dict[str, Any]:
        """SecurityEventNotification.req for OCPP `version` ("1.6" or "2.0.1")."""
        payload: dict[str, Any] = {
            "type": (name_16(self.event_type) if version == "1.6" else self.event_type)[:TYPE_MAX],
            "timestamp": self.timestamp,
        }
        if self.tech_info:
            payload["techInfo"] = self.tech_info[:TECH_INFO_MAX]
        return payload

    def data(self) -> dict[str, Any]:
        return {
            "type": self.event_type,
            "timestamp": self.timestamp,
            "tech_info": self.tech_info,
            "critical": self.critical,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SecurityEvent:
        tech = data.get("tech_info")
        return cls(
            str(data["type"]),
            str(data["timestamp"]),
            str(tech) if tech is not None else None,
            bool(data.get("critical", True)),
        )

    def line(self) -> str:
        """The security log line (GetLog uploads these)."""
        tech = f" {self.tech_info}" if self.tech_info else ""
        return f"{self.timestamp} {self.event_type}{' (critical)' if self.critical else ''}{tech}"

    @property
    def at(self) -> dt.datetime:
        return parse_time(self.timestamp)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class Outbox(Protocol):
    async def enqueue(
        self, kind: str, data: dict[str, Any], local_tx_id: int | None = None
    ) -> int: ...


def outbox_event(data: dict[str, Any]) -> SecurityEvent:
    """The event of an outbox message of kind OUTBOX_KIND."""
    return SecurityEvent.from_data(data)


class SecurityEvents:
    """The security log of one station (see the module docstring).

    `outbox_changed` is called after a critical event was queued (the adapter wakes its
    sender); set it once the adapter exists.
    """

    def __init__(
        self, state_dir: Path, outbox: Outbox, *, max_log_bytes: int = MAX_LOG_BYTES
    ) -> None:
        self.path = state_dir / LOG_FILE
        self._outbox = outbox
        self._max_bytes = max_log_bytes
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[SecurityEvent]] = set()
        self.outbox_changed: Callable[[], None] = lambda: None
        # the station's full-disk watch: writes wait in memory while the disk is full
        self.space: DiskSpace | None = None

    async def record(
        self, event_type: SecurityEventType | str, tech_info: str | None = None
    ) -> SecurityEvent:
        """Log the event (and queue it for the CSMS when critical or in ALSO_PUSHED); returns
        the entry.
        Safe to call from any task; events keep the order of the calls."""
        kind = str(event_type)[:TYPE_MAX]
        tech = tech_info[:TECH_INFO_MAX] if tech_info else None
        event = SecurityEvent(kind, utc_now(), tech, is_critical(kind))
        async with self._lock:
            try:
                await self._write(
                    f"security log line {kind}", lambda: asyncio.to_thread(self._append, event)
                )
            except OSError as exc:
                log.error("security log %s not written: %s", self.path, exc)
            if is_pushed(kind):
                await self._write(f"security event {kind}", lambda: self._queue(event))
        log.info("security event %s%s", kind, f": {tech}" if tech else "")
        return event

    async def _write(self, what: str, write: Callable[[], Awaitable[Any]]) -> None:
        """`write` now, or held in memory while the state dir is full."""
        if self.space is not None:
            await self.space.store_or_hold(what, write)
        else:
            await write()

    async def _queue(self, event: SecurityEvent) -> None:
        await self._outbox.enqueue(OUTBOX_KIND, event.data())
        self.outbox_changed()

    def record_soon(
        self, event_type: SecurityEventType | str, tech_info: str | None = None
    ) -> asyncio.Task[SecurityEvent]:
        """`record` from synchronous code: a task that the caller may await (or not; errors
        are logged)."""
        task = asyncio.get_running_loop().create_task(
            self.record(event_type, tech_info), name=f"security event {event_type}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    async def close(self, timeout: float = 2.0) -> None:
        """Let the events being recorded finish (then cancel what is left): before the store
        closes."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        await cancel_and_wait(list(self._tasks))

    def _append(self, event: SecurityEvent) -> None:
        line = json.dumps(event.data(), ensure_ascii=False, separators=(",", ":")) + "\n"
        make_directory(self.path.parent)
        try:
            if self.path.stat().st_size + len(line) > self._max_bytes:
                os.replace(self.path, self._rotated)
        except FileNotFoundError:
            pass
        data = line.encode("utf-8")
        fd = open_fd(self.path, FILE_MODE, append=True)
        try:
            size = os.fstat(fd).st_size
            written = os.write(fd, data)
            if written != len(data):  # a nearly full disk: no half line, the line is held
                os.ftruncate(fd, size)
                raise OSError(errno.ENOSPC, "security log line written in part", str(self.path))
            os.fsync(fd)
        finally:
            os.close(fd)

    @property
    def _rotated(self) -> Path:
        return self.path.with_name(self.path.name + ".1")

    def entries(
        self, start: dt.datetime | None = None, stop: dt.datetime | None = None
    ) -> list[SecurityEvent]:
        """The logged events with start <= timestamp <= stop (either bound may be None), oldest
        first. Blocks on the file: use `entries_between` from the event loop."""
        found: list[SecurityEvent] = []
        for path in (self._rotated, self.path):
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                continue
            for text in lines:
                try:
                    event = SecurityEvent.from_data(json.loads(text))
                    at = event.at
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a power loss
                if (start is None or at >= start) and (stop is None or at <= stop):
                    found.append(event)
        return found

    async def entries_between(
        self, start: dt.datetime | None = None, stop: dt.datetime | None = None
    ) -> list[SecurityEvent]:
        return await asyncio.to_thread(self.entries, start, stop)


def _log_failure(task: asyncio.Task[SecurityEvent]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("recording a security event failed: %s", task.exception())
