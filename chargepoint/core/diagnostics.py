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
`LOG_KIND`) with the request id, whether it was a 1.6 GetDiagnostics (`diagnostics`) and the
job's id.

The running job is kept in `<state_dir>/uploads/job.json` (mode 0600: the location may hold
a password) from the request until its final status is queued. A job a power loss, a crash or
a stop cut off is not uploaded again: at the next start (`LogUploads.start`) it reports
UploadFailure (1.6 GetDiagnostics: UploadFailed), preceded by Uploading if that had not gone
out, and its archive is deleted. What it had queued is looked up in the outbox
(chargepoint.store.outbox_lookup), so each status goes out exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import enum
import io
import json
import logging
import os
import re
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel

from chargepoint.config import SecretRef, StationConfig
from chargepoint.core import csms_password, firmware
from chargepoint.core.security import StationSecurity
from chargepoint.core.station import Station
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transfer import TransferError, TransferRefused, Transfers, safe_url
from chargepoint.store import AsyncStore, utc_now
from chargepoint.store.files import PRIVATE_DIR_MODE, SECRET_MODE, make_directory, open_binary
from chargepoint.store.outbox_lookup import last_queued

log = logging.getLogger("chargepoint.diagnostics")

LOG_KIND: Final = "log_status"
LOGS_DIR: Final = "logs"
UPLOADS_DIR: Final = "uploads"
JOB_FILE: Final = "job.json"
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


FINAL: Final = frozenset(
    {
        LogStatus.UPLOADED,
        LogStatus.UPLOAD_FAILURE,
        LogStatus.BAD_MESSAGE,
        LogStatus.NOT_SUPPORTED,
        LogStatus.PERMISSION_DENIED,
    }
)


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


@dataclass(frozen=True)
class LogJob:
    """A request being carried out: its archive's file name, and the id its outbox messages
    carry."""

    request: LogRequest
    name: str
    job_id: str

    def data(self) -> dict[str, Any]:
        return {"request": asdict(self.request), "name": self.name, "job": self.job_id}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> LogJob:
        raw = dict(data["request"])
        raw["log_type"] = LogType(raw["log_type"])
        return cls(LogRequest(**raw), str(data["name"]), str(data["job"]))


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


def all_secrets(config: StationConfig, state_dir: Path, station_id: str) -> list[str]:
    """The configured secrets, the passwords the CSMS set (files under
    `<state_dir>/secrets/`), and each as it appears in a Basic-auth header (base64 of
    `station id:password`)."""
    found = secrets_of(config)
    secrets_dir = state_dir / csms_password.DIRECTORY
    if secrets_dir.is_dir():
        for path in sorted(secrets_dir.iterdir()):
            try:
                value = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                continue
            if len(value) >= 4:
                found.append(value)
    headers = [base64.b64encode(f"{station_id}:{s}".encode()).decode() for s in found]
    return found + headers


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
        self._job_lock = threading.Lock()  # the job file: written and forgotten in threads

    @property
    def job_file(self) -> Path:
        return self.state_dir / UPLOADS_DIR / JOB_FILE

    async def start(self) -> None:
        """End the job a power loss, a crash or a stop cut off: it reports the final status
        (UploadFailure) the CSMS still waits for, once; its archive is deleted."""
        job = await asyncio.to_thread(self._read_job)
        if job is None:
            return
        data = await last_queued(self.store, LOG_KIND)
        queued = (
            str(data.get("status")) if data is not None and data.get("job") == job.job_id else ""
        )
        log.warning(
            "log upload %s was cut off by a restart (last status queued: %s)",
            job.request.request_id,
            queued or "none",
        )
        if queued not in FINAL:
            if not queued:
                await self._report(job, LogStatus.UPLOADING)
            await self._report(job, LogStatus.UPLOAD_FAILURE, "cut off by a restart")
        await asyncio.to_thread(self._forget, job)
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
        job = LogJob(req, name, uuid.uuid4().hex)
        await asyncio.to_thread(self._write_job, job)
        self.current = req
        self._task = asyncio.create_task(self._run(job), name="log upload")
        return cancelled, name

    # ---- the job file --------------------------------------------------------------------

    def _write_job(self, job: LogJob) -> None:
        with self._job_lock:
            make_directory(self.job_file.parent, PRIVATE_DIR_MODE)
            firmware.write_atomic(self.job_file, json.dumps(job.data()), SECRET_MODE)

    def _read_job(self) -> LogJob | None:
        try:
            return LogJob.from_data(json.loads(self.job_file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.error("log upload job file unreadable, ignored: %s", exc)
            self.job_file.unlink(missing_ok=True)
            return None

    def _forget(self, job: LogJob) -> None:
        """The job's final status is queued: its file and archive go (the file only while it
        names this job: a new request may have replaced it)."""
        _remove(self.state_dir / UPLOADS_DIR / job.name)
        with self._job_lock:
            current = self._read_job()
            if current is not None and current.job_id == job.job_id:
                self.job_file.unlink(missing_ok=True)

    # ---- the job -------------------------------------------------------------------------

    async def _report(self, job: LogJob, status: LogStatus, info: str = "") -> None:
        req = job.request
        self.last_status = status
        log.info("log upload %s: %s%s", req.request_id, status.value, f" ({info})" if info else "")
        await self.store.enqueue(
            LOG_KIND,
            {
                "status": status.value,
                "request_id": req.request_id,
                "diagnostics": req.diagnostics,
                "job": job.job_id,
            },
        )
        self.station.outbox_changed()

    async def _run(self, job: LogJob) -> None:
        req = job.request
        archive = self.state_dir / UPLOADS_DIR / job.name
        finished = False
        try:
            await self._report(job, LogStatus.UPLOADING)
            try:
                await self._build(req, archive)
            except (OSError, SecretLeak) as exc:
                log.error("diagnostics archive not built: %s", exc)
                await self._report(job, LogStatus.UPLOAD_FAILURE, str(exc))
                finished = True
                return
            await self._upload(job, archive)
            finished = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the CSMS without an answer
            log.exception("log upload failed")
            await self._report(job, LogStatus.UPLOAD_FAILURE, f"internal error: {exc}")
            finished = True
        finally:
            # cancelled (a stop, a new request): the file stays for the next start to end it
            if finished:
                await asyncio.to_thread(self._forget, job)
            else:
                await asyncio.to_thread(_remove, archive)
            self.current = None

    async def _upload(self, job: LogJob, archive: Path) -> None:
        req, name = job.request, job.name
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
                    await self._report(job, status, text)
                    return
                await asyncio.sleep(interval)
                continue
            await self._report(job, LogStatus.UPLOADED, name)
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
        secrets = await asyncio.to_thread(
            all_secrets, self.config, self.state_dir, self.config.station.id
        )
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
        make_directory(archive.parent, PRIVATE_DIR_MODE)
        part = archive.with_name(archive.name + ".part")
        check = _leak_check(secrets)
        try:
            with (
                open_binary(part, SECRET_MODE) as raw,
                tarfile.open(fileobj=raw, mode="w:gz") as tar,
            ):
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
    "LogJob",
    "LogRequest",
    "LogStatus",
    "LogType",
    "LogUploads",
    "SecretLeak",
    "all_secrets",
    "archive_name",
    "redact_config",
    "secrets_of",
]
