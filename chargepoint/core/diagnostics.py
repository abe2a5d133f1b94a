"""Diagnostics and log uploads, version-free: one log job at a time.

A job builds a tar.gz archive in `<state_dir>/uploads/` (written as `.part`, renamed when
complete) and uploads it with retries; whatever happens, the archive is deleted afterwards:
nothing half-written stays behind. The archive holds

- `logs/`: the daemon's rotating log files (`<state_dir>/logs/`, see
  chargepoint/service/logsetup.py);
- `config.json`: the configuration with every secret removed (passwords, keys, tokens, the
  password of a URL);
- `status.json`: what `chargepoint status` shows, with `store.json` (store statistics),
  `meter_errors.json` (the connectors' recent meter errors) and `firmware_history.json`;
- for a SecurityLog request only `security.log` (the security events between the requested
  timestamps).

Never a password, private key or token: the state dir's key and certificate files are not
read, the configuration is redacted, and the archive is checked for the configured secrets
before it leaves (`SecretLeak`).

Statuses (version-free, `LogStatus`) go to the CSMS through the durable outbox (kind
`LOG_KIND`) with the request id and whether it was a 1.6 GetDiagnostics (`diagnostics`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import io
import json
import logging
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel

from chargepoint.config import SecretRef, StationConfig
from chargepoint.core import firmware
from chargepoint.core.security import StationSecurity
from chargepoint.core.station import Station
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transfer import TransferError, TransferRefused, Transfers, safe_url
from chargepoint.store import AsyncStore, utc_now

log = logging.getLogger("chargepoint.diagnostics")

LOG_KIND: Final = "log_status"
LOGS_DIR: Final = "logs"
UPLOADS_DIR: Final = "uploads"
REDACTED: Final = "***"
_SECRET_KEY = re.compile(r"password|secret|token|private|passphrase|credential|auth", re.I)


class LogType(enum.StrEnum):
    DIAGNOSTICS = "DiagnosticsLog"
    SECURITY = "SecurityLog"


class LogStatus(enum.StrEnum):
    """2.0.1 UploadLogStatusEnumType (1.6 GetDiagnostics maps to Uploading/Uploaded/
    UploadFailed)."""

    UPLOADING = "Uploading"
    UPLOADED = "Uploaded"
    UPLOAD_FAILURE = "UploadFailure"
    BAD_MESSAGE = "BadMessage"
    NOT_SUPPORTED = "NotSupportedOperation"
    PERMISSION_DENIED = "PermissionDenied"
    IDLE = "Idle"


class SecretLeak(Exception):
    """The archive would contain a configured secret: it is not uploaded."""


@dataclass(frozen=True)
class LogRequest:
    location: str
    log_type: LogType = LogType.DIAGNOSTICS
    request_id: int | None = None
    oldest: str | None = None
    latest: str | None = None
    retries: int | None = None
    retry_interval: float | None = None
    diagnostics: bool = False  # 1.6 GetDiagnostics (DiagnosticsStatusNotification)


def redact_config(data: Any) -> Any:
    """The configuration's data without secrets: values of secret-looking keys, SecretRef
    sections and URL passwords are replaced."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            if _SECRET_KEY.search(str(key)) and value is not None:
                out[key] = REDACTED
            else:
                out[key] = redact_config(value)
        return out
    if isinstance(data, list):
        return [redact_config(v) for v in data]
    if isinstance(data, str) and "://" in data:
        return safe_url(data)
    return data


def secrets_of(config: StationConfig) -> list[str]:
    """The secrets the configuration names (resolved), to check the archive against."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretRef):
            try:
                secret = value.resolve()
            except Exception:  # an unresolvable secret cannot leak
                return
            if isinstance(secret, str) and len(secret) >= 4:
                found.append(secret)
            return
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(config)
    password = urlsplit(config.csms.url).password
    if password:
        found.append(password)
    return found


def archive_name(station_id: str, log_type: LogType, now: dt.datetime | None = None) -> str:
    at = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe_id = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in station_id)
    kind = "security" if log_type is LogType.SECURITY else "diagnostics"
    return f"{safe_id}-{kind}-{at}.tar.gz"


def _in_range(path: Path, oldest: dt.datetime | None, latest: dt.datetime | None) -> bool:
    """A log file may hold lines of the wanted period (its last write is after `oldest`)."""
    if oldest is None:
        return True
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC) >= oldest
    except OSError:
        return False


class LogUploads:
    """The station's log job (a new request cancels the running one)."""

    def __init__(
        self,
        config: StationConfig,
        station: Station,
        store: AsyncStore,
        security: StationSecurity,
        transfers: Transfers,
    ) -> None:
        self.config = config
        self.settings = config.diagnostics
        self.state_dir = Path(config.store.state_dir)
        self.station = station
        self.store = store
        self.security = security
        self.transfers = transfers
        self._task: asyncio.Task[None] | None = None
        self.current: LogRequest | None = None
        self.last_status = LogStatus.IDLE

    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])

    async def request(self, req: LogRequest) -> tuple[bool, str]:
        """Start a job; returns (a running job was cancelled, the archive's file name)."""
        cancelled = self.busy()
        if self._task is not None:
            await cancel_and_wait([self._task])
        name = archive_name(self.config.station.id, req.log_type)
        self.current = req
        self._task = asyncio.create_task(self._run(req, name), name="log upload")
        return cancelled, name

    async def _report(self, req: LogRequest, status: LogStatus, info: str = "") -> None:
        self.last_status = status
        log.info("log upload %s: %s%s", req.request_id, status.value, f" ({info})" if info else "")
        await self.store.enqueue(
            LOG_KIND,
            {
                "status": status.value,
                "request_id": req.request_id,
                "diagnostics": req.diagnostics,
            },
        )
        self.station.outbox_changed()

    async def _run(self, req: LogRequest, name: str) -> None:
        uploads = self.state_dir / UPLOADS_DIR
        archive = uploads / name
        try:
            await self._report(req, LogStatus.UPLOADING)
            try:
                await self._build(req, archive)
            except (OSError, SecretLeak) as exc:
                log.error("diagnostics archive not built: %s", exc)
                await self._report(req, LogStatus.UPLOAD_FAILURE, str(exc))
                return
            await self._upload(req, archive, name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the CSMS without an answer
            log.exception("log upload failed")
            await self._report(req, LogStatus.UPLOAD_FAILURE, f"internal error: {exc}")
        finally:
            await asyncio.to_thread(_remove, archive)
            self.current = None

    async def _upload(self, req: LogRequest, archive: Path, name: str) -> None:
        retries = self.settings.retries if req.retries is None else max(0, req.retries)
        interval = (
            self.settings.retry_interval
            if req.retry_interval is None
            else max(0.0, req.retry_interval)
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.transfers.upload(req.location, archive, name)
            except TransferError as exc:
                log.warning(
                    "log upload attempt %d of %d to %s failed: %s",
                    attempt,
                    retries + 1,
                    safe_url(req.location),
                    exc,
                )
                if attempt > retries:
                    status = LogStatus.UPLOAD_FAILURE
                    text = str(exc)
                    if isinstance(exc, TransferRefused) and any(
                        code in text for code in ("401", "403", "530", "550")
                    ):
                        status = LogStatus.PERMISSION_DENIED
                    await self._report(req, status, text)
                    return
                await asyncio.sleep(interval)
                continue
            await self._report(req, LogStatus.UPLOADED, name)
            return

    # ---- the archive ---------------------------------------------------------------------

    async def _build(self, req: LogRequest, archive: Path) -> None:
        oldest = firmware.parse_time(req.oldest)
        latest = firmware.parse_time(req.latest)
        members: dict[str, bytes] = {}
        if req.log_type is LogType.SECURITY:
            entries = await self.security.events.entries_between(oldest, latest)
            members["security.log"] = "".join(e.line() + "\n" for e in entries).encode()
        else:
            members.update(await self._diagnostics_members())
        secrets = secrets_of(self.config)
        await asyncio.to_thread(self._write, archive, members, oldest, latest, secrets, req)

    async def _diagnostics_members(self) -> dict[str, bytes]:
        status = await self.station.status()
        cfg = redact_config(self.config.model_dump(mode="json"))
        store_file = self.state_dir / "chargepoint.sqlite"
        store_stats = {
            "file_bytes": store_file.stat().st_size if store_file.exists() else None,
            "outbox": status.get("outbox"),
            "failed_messages": status.get("failed_messages"),
            "open_transactions": len(await self.store.open_transactions()),
        }
        meter_errors = [
            {
                "connector": c["id"],
                "meter_fault": c.get("meter_fault"),
                "last_meter_error": c.get("last_meter_error"),
            }
            for c in status.get("connectors", [])
        ]
        history = await asyncio.to_thread(firmware.history, self.state_dir)

        def dump(value: Any) -> bytes:
            return json.dumps(value, indent=2, default=str).encode()

        return {
            "config.json": dump(cfg),
            "status.json": dump(status),
            "store.json": dump(store_stats),
            "meter_errors.json": dump(meter_errors),
            "firmware_history.json": dump(history),
            "about.json": dump({"created": utc_now(), "station": self.config.station.id}),
        }

    def _log_files(self, oldest: dt.datetime | None, latest: dt.datetime | None) -> Iterator[Path]:
        logs = self.state_dir / LOGS_DIR
        if not logs.is_dir():
            return
        for path in sorted(logs.iterdir()):
            name_fits = path.name.startswith("chargepoint.log")
            if path.is_file() and name_fits and _in_range(path, oldest, latest):
                yield path

    def _write(
        self,
        archive: Path,
        members: dict[str, bytes],
        oldest: dt.datetime | None,
        latest: dt.datetime | None,
        secrets: list[str],
        req: LogRequest,
    ) -> None:
        archive.parent.mkdir(parents=True, exist_ok=True)
        part = archive.with_name(archive.name + ".part")
        check = _leak_check(secrets)
        try:
            with tarfile.open(part, "w:gz") as tar:
                for name, content in members.items():
                    check(name, content)
                    _add(tar, name, content)
                if req.log_type is LogType.DIAGNOSTICS:
                    for path in self._log_files(oldest, latest):
                        content = _scrub(path.read_bytes(), secrets)
                        _add(tar, f"logs/{path.name}", content)
            os.replace(part, archive)
        finally:
            part.unlink(missing_ok=True)


def _leak_check(secrets: list[str]) -> Callable[[str, bytes], None]:
    encoded = [s.encode() for s in secrets if s]

    def check(name: str, content: bytes) -> None:
        for secret in encoded:
            if secret in content:
                raise SecretLeak(f"{name} contains a configured secret; archive not uploaded")

    return check


def _scrub(content: bytes, secrets: list[str]) -> bytes:
    """A log file with any configured secret replaced (the daemon never logs one; this is
    the second line of defence)."""
    for secret in secrets:
        if secret:
            content = content.replace(secret.encode(), REDACTED.encode())
    return content


def _add(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(content))


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".part").unlink(missing_ok=True)


__all__ = [
    "LOG_KIND",
    "LogRequest",
    "LogStatus",
    "LogType",
    "LogUploads",
    "SecretLeak",
    "archive_name",
    "redact_config",
    "secrets_of",
]
