"""Firmware updates, version-free: one persisted job with its state machine.

    scheduled -> downloading (retries, interval, resume) -> downloaded -> signature verified
      -> waiting for idle connectors -> installing -> rebooting -> installed
    (any step) -> failed (DownloadFailed, InvalidSignature, InstallationFailed, ...)

The job lives in `<state_dir>/firmware/job.json` (written atomically at every step), so a power
loss or kill -9 at any step is picked up at the next start: a download resumes (from its
`.part` file where the server allows), a verified file goes on to the installation, an
installer that was running when the station died is reported InstallationFailed, and a job
that was rebooting is reported Installed. The CSMS always hears how a job ended.

Sessions are never cut: before installing, connectors that are free become Unavailable, busy
ones become Unavailable when their session ends (in memory only: the CSMS's own
ChangeAvailability settings stay as they are), and the installation waits (`idle_timeout`)
until no session is open. The installer is `firmware.install_command` with the file's path as
its last argument (time-limited; exit code 0 is Installed) or `simulated`, which keeps the file
under the state dir and records its name as the new firmware version (`reported_version`).
Then the station "reboots": the hook `restart` (the daemon: end the CSMS session as a reboot
would, or exit for systemd to restart it).

Statuses use OCPP 2.0.1's names (`FirmwareStatus`); they go to the CSMS through the durable
outbox (kind `FIRMWARE_KIND`) carrying the request id and the job's id, and into
`firmware/history.jsonl`. Each status is reported exactly once across a power loss: a status
that ends a step is queued before the step is saved, and a resumed job looks up the last
status it queued (chargepoint.store.outbox_lookup): a step whose status went out is taken
without doing its work again (no second download after Downloaded), and a status already
queued is not queued again (but Downloading is: a resumed download is a new attempt).
A plain (unsigned, 1.6 UpdateFirmware) job reports only the statuses 1.6 has.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import enum
import json
import logging
import os
import shlex
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from chargepoint import __version__
from chargepoint.config import StationConfig
from chargepoint.config.firmware import SIMULATED_INSTALLER
from chargepoint.core.certificates import CertificateType, ChainResult
from chargepoint.core.context import idle_status
from chargepoint.core.security import StationSecurity
from chargepoint.core.security_events import SecurityEventType
from chargepoint.core.station import Station
from chargepoint.core.status import ConnectorStatus
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transfer import (
    TooLarge,
    TransferError,
    Transfers,
    safe_url,
    sha256_of,
)
from chargepoint.store import AsyncStore, utc_now
from chargepoint.store.files import FILE_MODE, make_directory, open_text
from chargepoint.store.outbox_lookup import last_queued

log = logging.getLogger("chargepoint.firmware")

FIRMWARE_DIR: Final = "firmware"
JOB_FILE: Final = "job.json"
HISTORY_FILE: Final = "history.jsonl"
VERSION_FILE: Final = "version"
FIRMWARE_KIND: Final = "firmware_status"
IDLE_POLL_S: Final = 0.2
VERSION_MAX: Final = 50


class FirmwareStatus(enum.StrEnum):
    """OCPP 2.0.1 FirmwareStatusEnumType (the 1.6 security extension's is the same)."""

    DOWNLOADED = "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed"
    DOWNLOADING = "Downloading"
    DOWNLOAD_SCHEDULED = "DownloadScheduled"
    DOWNLOAD_PAUSED = "DownloadPaused"
    IDLE = "Idle"
    INSTALLATION_FAILED = "InstallationFailed"
    INSTALLING = "Installing"
    INSTALLED = "Installed"
    INSTALL_REBOOTING = "InstallRebooting"
    INSTALL_SCHEDULED = "InstallScheduled"
    INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"
    INVALID_SIGNATURE = "InvalidSignature"
    SIGNATURE_VERIFIED = "SignatureVerified"


S = FirmwareStatus
# OCPP 1.6 FirmwareStatusNotification (the plain UpdateFirmware's job reports only these)
PLAIN_STATUSES: Final = frozenset(
    {
        S.DOWNLOADED,
        S.DOWNLOAD_FAILED,
        S.DOWNLOADING,
        S.IDLE,
        S.INSTALLATION_FAILED,
        S.INSTALLING,
        S.INSTALLED,
    }
)


class Step(enum.StrEnum):
    SCHEDULED = "scheduled"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    VERIFIED = "verified"
    WAITING_IDLE = "waiting_idle"
    INSTALLING = "installing"
    REBOOTING = "rebooting"
    INSTALLED = "installed"
    FAILED = "failed"


FINISHED: Final = frozenset({Step.INSTALLED, Step.FAILED})
# the step a job enters with each status that ends a step: the status is queued first, the
# step saved just after, so a job found at the step before with this status already queued
# had done the work and is moved on at the next start (without a second status)
REACHED_WITH: Final[dict[FirmwareStatus, Step]] = {
    S.DOWNLOADED: Step.DOWNLOADED,
    S.SIGNATURE_VERIFIED: Step.VERIFIED,
    S.INSTALLING: Step.INSTALLING,
    S.INSTALL_REBOOTING: Step.REBOOTING,
    S.INSTALLED: Step.INSTALLED,
    S.DOWNLOAD_FAILED: Step.FAILED,
    S.INVALID_SIGNATURE: Step.FAILED,
    S.INSTALLATION_FAILED: Step.FAILED,
    S.INSTALL_VERIFICATION_FAILED: Step.FAILED,
}
STEP_ORDER: Final = tuple(Step)
# a new request cancels the running job until it installs (AcceptedCanceled), not after
CANCELLABLE: Final = frozenset(
    {Step.SCHEDULED, Step.DOWNLOADING, Step.DOWNLOADED, Step.VERIFIED, Step.WAITING_IDLE}
)


class Answer(enum.StrEnum):
    """UpdateFirmwareStatusEnumType (2.0.1; 1.6 SignedUpdateFirmware)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    ACCEPTED_CANCELED = "AcceptedCanceled"
    INVALID_CERTIFICATE = "InvalidCertificate"
    REVOKED_CERTIFICATE = "RevokedCertificate"


@dataclass(frozen=True)
class FirmwareRequest:
    """What the CSMS asked for. `signed`: the file's signature is checked (SignedUpdateFirmware,
    2.0.1 UpdateFirmware with one); `legacy`: 1.6 UpdateFirmware, reported with 1.6's
    statuses only."""

    location: str
    retrieve_at: str
    request_id: int | None = None
    install_at: str | None = None
    retries: int | None = None
    retry_interval: float | None = None
    signing_certificate: str | None = None
    signature: str | None = None
    signed: bool = False
    legacy: bool = False  # 1.6 UpdateFirmware: FirmwareStatusNotification without requestId


@dataclass
class FirmwareJob:
    request: FirmwareRequest
    step: Step = Step.SCHEDULED
    attempts: int = 0
    file: str = ""
    sha256: str = ""
    size: int = 0
    last_status: str = ""
    error: str = ""
    created_at: str = field(default_factory=utc_now)
    # names the job in its outbox messages (a resumed job finds what it had queued)
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> FirmwareJob:
        raw = dict(data)
        request = FirmwareRequest(**raw.pop("request"))
        raw["step"] = Step(raw["step"])
        return cls(request=request, **raw)


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    reason: str = ""


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def seconds_until(text: str | None) -> float:
    at = parse_time(text)
    if at is None:
        return 0.0
    return max(0.0, (at - dt.datetime.now(dt.UTC)).total_seconds())


def verify_signature(path: Path, certificate_pem: str, signature_b64: str) -> SignatureCheck:
    """The firmware file's signature: SHA-256 with the signing certificate's key (ECDSA, or
    RSA with PKCS#1 v1.5 or PSS). Blocks on the file: run it in a thread."""
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        return SignatureCheck(False, f"signing certificate unreadable: {exc}")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return SignatureCheck(False, "signature is not base64")
    digest = bytes.fromhex(sha256_of(path))
    prehashed = utils.Prehashed(hashes.SHA256())
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
            return SignatureCheck(True)
        if isinstance(key, rsa.RSAPublicKey):
            for pad in (
                padding.PKCS1v15(),
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            ):
                with contextlib.suppress(InvalidSignature):
                    key.verify(signature, digest, pad, prehashed)
                    return SignatureCheck(True)
            return SignatureCheck(False, "RSA signature does not match the file")
    except InvalidSignature:
        return SignatureCheck(False, "ECDSA signature does not match the file")
    return SignatureCheck(False, f"unsupported key type {type(key).__name__}")


def firmware_dir(state_dir: Path) -> Path:
    return state_dir / FIRMWARE_DIR


def reported_version(state_dir: Path) -> str:
    """The firmware version for BootNotification: the one the simulated installer recorded,
    else the daemon's own. Reads a small file (called at boot)."""
    try:
        text = (firmware_dir(state_dir) / VERSION_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    return (text or __version__)[:VERSION_MAX]


def history(state_dir: Path) -> list[dict[str, Any]]:
    """The statuses of every firmware job, oldest first. Blocks on the file."""
    try:
        lines = (firmware_dir(state_dir) / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    found = []
    for line in lines:
        with contextlib.suppress(ValueError):
            found.append(json.loads(line))
    return found


def write_atomic(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """`path` holds `text` (file mode `mode`), or its old content after a power loss.
    Blocks on the disk."""
    tmp = path.with_name(path.name + ".tmp")
    with open_text(tmp, mode) as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_name(location: str) -> str:
    name = unquote(urlsplit(location).path.rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if ch.isalnum() or ch in "._-+")
    return name.lstrip(".") or "firmware.bin"


class FirmwareUpdates:
    """The station's one firmware job (a new request replaces a job not yet installing)."""

    def __init__(
        self,
        config: StationConfig,
        station: Station,
        store: AsyncStore,
        security: StationSecurity,
        transfers: Transfers,
    ) -> None:
        self.config = config
        self.settings = config.firmware
        self.state_dir = Path(config.store.state_dir)
        self.dir = firmware_dir(self.state_dir)
        self.station = station
        self.store = store
        self.security = security
        self.transfers = transfers
        # set by the daemon: the station restarts as a reboot would (returns when it has)
        self.restart: Callable[[bool], Awaitable[None]] = _no_restart
        self.job: FirmwareJob | None = None
        self.rebooted = False  # the last boot follows an installation (2.0.1 boot reason)
        self._task: asyncio.Task[None] | None = None
        self._held: list[int] = []  # connectors made Unavailable for the installation
        # a resumed job's last status queued before the restart: not queued a second time
        self._queued_before: str | None = None
        self._load()

    # ---- persistence ---------------------------------------------------------------------

    @property
    def job_file(self) -> Path:
        return self.dir / JOB_FILE

    def _load(self) -> None:
        """Read the job at construction (a small file, before the event loop runs the daemon)."""
        try:
            data = json.loads(self.job_file.read_text(encoding="utf-8"))
            self.job = FirmwareJob.from_data(data)
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.error("firmware job file unreadable, ignored: %s", exc)
            return
        if self.job.step is Step.REBOOTING:
            self.rebooted = True

    async def _save(self, job: FirmwareJob) -> None:
        text = json.dumps(job.data())
        await asyncio.to_thread(self._save_blocking, text)

    def _save_blocking(self, text: str) -> None:
        make_directory(self.dir)
        write_atomic(self.job_file, text)

    @staticmethod
    def _sent(job: FirmwareJob, status: FirmwareStatus) -> bool:
        """The status goes to the CSMS (a plain job's only where 1.6 has it)."""
        return not (job.request.legacy and status not in PLAIN_STATUSES)

    async def _report(self, job: FirmwareJob, status: FirmwareStatus, info: str = "") -> None:
        sent = self._sent(job, status)
        if sent and self._queued_before is not None:
            # Downloading is said again: it starts a new attempt (the resumed download)
            again = status.value == self._queued_before and status is not S.DOWNLOADING
            self._queued_before = None
            if again:
                log.info(
                    "firmware job %s: %s was queued before the restart",
                    job.request.request_id,
                    status.value,
                )
                job.last_status = status.value
                return
        job.last_status = status.value
        entry = {
            "at": utc_now(),
            "status": status.value,
            "request_id": job.request.request_id,
            "location": safe_url(job.request.location),
            **({"info": info[:200]} if info else {}),
        }
        await asyncio.to_thread(self._append_history, json.dumps(entry))
        log.info(
            "firmware job %s: %s%s",
            job.request.request_id,
            status.value,
            f" ({info})" if info else "",
        )
        if not sent:
            return
        await self.store.enqueue(
            FIRMWARE_KIND,
            {
                "status": status.value,
                "request_id": job.request.request_id,
                "legacy": job.request.legacy,
                "job": job.job_id,
            },
        )
        self.station.outbox_changed()

    def _append_history(self, line: str) -> None:
        make_directory(self.dir)
        with open_text(self.dir / HISTORY_FILE, FILE_MODE, append=True) as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Pick up the job a stop, a crash or a power loss interrupted."""
        job = self.job
        if job is None or job.step in FINISHED:
            return
        log.warning("firmware job %s found at step %s: resuming", job.request.request_id, job.step)
        await self._catch_up(job)
        if job.step in FINISHED:
            return
        self._task = asyncio.create_task(self._run(job), name="firmware job")

    async def _catch_up(self, job: FirmwareJob) -> None:
        """A status queued just before the power loss whose step was not saved yet: the job
        takes that step now (the work was done) and the status is not queued again."""
        data = await last_queued(self.store, FIRMWARE_KIND)
        if data is None or data.get("job") != job.job_id:
            return
        try:
            status = FirmwareStatus(data["status"])
        except (KeyError, ValueError):
            return
        self._queued_before = status.value
        job.last_status = status.value
        reached = REACHED_WITH.get(status)
        if reached is None or STEP_ORDER.index(reached) <= STEP_ORDER.index(job.step):
            return
        log.warning(
            "firmware job %s: %s was queued before the restart: now at step %s",
            job.request.request_id,
            status.value,
            reached,
        )
        job.step = reached
        if reached is Step.FAILED:
            job.error = job.error or f"{status.value} (reported before a restart)"
        await self._save(job)
        if reached is Step.FAILED:
            await asyncio.to_thread(self._remove_files, job)
        elif reached is Step.REBOOTING:
            self.rebooted = True

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])

    def busy(self) -> bool:
        return self.job is not None and self.job.step not in FINISHED

    def current_status(self) -> FirmwareStatus:
        """For TriggerMessage: the job's last status while it runs, else Idle."""
        if self.job is None or not self.busy():
            return S.IDLE
        try:
            return FirmwareStatus(self.job.last_status)
        except ValueError:
            return S.IDLE

    # ---- requests ------------------------------------------------------------------------

    async def check_certificate(self, pem: str) -> ChainResult:
        return await asyncio.to_thread(
            self.security.certificates.verify_chain, pem, CertificateType.MANUFACTURER_ROOT
        )

    async def request(self, req: FirmwareRequest) -> Answer:
        """Start a job. A signed request's certificate is checked first (InvalidCertificate and
        the security event InvalidFirmwareSigningCertificate); a job not yet installing is
        cancelled (AcceptedCanceled), one installing refuses the new one (Rejected)."""
        if req.signed:
            if not req.signing_certificate or not req.signature:
                return Answer.REJECTED
            chain = await self.check_certificate(req.signing_certificate)
            if not chain.valid:
                log.warning("firmware signing certificate refused: %s", chain.reason)
                await self.security.events.record(
                    SecurityEventType.INVALID_FIRMWARE_SIGNING_CERTIFICATE, chain.reason[:200]
                )
                return Answer.INVALID_CERTIFICATE
        answer = Answer.ACCEPTED
        old = self.job
        if old is not None and old.step not in FINISHED:
            if old.step not in CANCELLABLE:
                log.warning(
                    "firmware request refused: job %s is %s", old.request.request_id, old.step
                )
                return Answer.REJECTED
            if self._task is not None:
                await cancel_and_wait([self._task])
            self._release_connectors()
            old.step = Step.FAILED
            old.error = "cancelled by a new request"
            await self._save(old)
            answer = Answer.ACCEPTED_CANCELED
        job = FirmwareJob(request=req)
        self.job = job
        self.rebooted = False
        self._queued_before = None
        await self._save(job)
        self._task = asyncio.create_task(self._run(job), name="firmware job")
        return answer

    # ---- the state machine ---------------------------------------------------------------

    async def _run(self, job: FirmwareJob) -> None:
        try:
            await self._steps(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the CSMS without an answer
            log.exception("firmware job failed")
            failed = S.DOWNLOAD_FAILED if job.step in CANCELLABLE else S.INSTALLATION_FAILED
            await self._fail(job, failed, f"internal error: {exc}")

    async def _steps(self, job: FirmwareJob) -> None:
        if job.step is Step.SCHEDULED:
            wait = seconds_until(job.request.retrieve_at)
            if wait > 0:
                await self._report(job, S.DOWNLOAD_SCHEDULED)
                await asyncio.sleep(wait)
            await self._advance(job, Step.DOWNLOADING)
        if job.step is Step.DOWNLOADING:
            if not await self._download(job):
                return
            await self._advance(
                job, Step.DOWNLOADED, S.DOWNLOADED, f"{job.size} bytes, sha256 {job.sha256}"
            )
        if job.step is Step.DOWNLOADED:
            if job.request.signed:
                if not await self._verify(job):
                    return
                await self._advance(job, Step.VERIFIED, S.SIGNATURE_VERIFIED)
            else:
                await self._advance(job, Step.VERIFIED)
        if job.step is Step.VERIFIED:
            wait = seconds_until(job.request.install_at)
            if wait > 0:
                await self._report(job, S.INSTALL_SCHEDULED)
                await asyncio.sleep(wait)
            await self._advance(job, Step.WAITING_IDLE)
        if job.step is Step.WAITING_IDLE:
            if not await self._wait_idle(job):
                return
            await self._advance(job, Step.INSTALLING, S.INSTALLING)
            if not await self._install(job):
                return
            await self._advance(job, Step.REBOOTING, S.INSTALL_REBOOTING)
            self.rebooted = True
            await self.restart(self.settings.install_command == SIMULATED_INSTALLER)
            self._release_connectors()
        if job.step is Step.INSTALLING:
            # the station died while the installer ran: nobody knows what it did
            await self._fail(job, S.INSTALLATION_FAILED, "installation interrupted by a restart")
            return
        if job.step is Step.REBOOTING:
            # before the step: recorded again rather than lost if the power fails in between
            await self.security.events.record(
                SecurityEventType.FIRMWARE_UPDATED, f"firmware {reported_version(self.state_dir)}"
            )
            await self._advance(job, Step.INSTALLED, S.INSTALLED)

    async def _advance(
        self, job: FirmwareJob, step: Step, status: FirmwareStatus | None = None, info: str = ""
    ) -> None:
        """The job takes `step`, reporting `status`. A status for the CSMS is queued before
        the step is saved: a power loss in between leaves the job at the step before with
        its status queued, which the next start sees in the outbox (`_catch_up`); the other
        way round it would be lost."""
        if status is not None and self._sent(job, status):
            await self._report(job, status, info)
            job.step = step
            await self._save(job)
            return
        job.step = step
        await self._save(job)
        if status is not None:
            await self._report(job, status, info)

    async def _fail(self, job: FirmwareJob, status: FirmwareStatus, why: str) -> None:
        log.error("firmware job %s: %s: %s", job.request.request_id, status.value, why)
        job.error = why
        await self._advance(job, Step.FAILED, status, why)
        self._release_connectors()
        await asyncio.to_thread(self._remove_files, job)

    def _remove_files(self, job: FirmwareJob) -> None:
        if job.file:
            for path in (Path(job.file), Path(job.file + ".part")):
                path.unlink(missing_ok=True)

    # ---- download ------------------------------------------------------------------------

    async def _download(self, job: FirmwareJob) -> bool:
        req = job.request
        retries = self.settings.default_retries if req.retries is None else max(0, req.retries)
        interval = (
            self.settings.default_retry_interval
            if req.retry_interval is None
            else max(0.0, req.retry_interval)
        )
        if not job.file:
            job.file = str(self.dir / "download" / _file_name(req.location))
            await self._save(job)
        dest = Path(job.file)
        await asyncio.to_thread(make_directory, dest.parent)
        while True:
            job.attempts += 1
            await self._save(job)
            await self._report(job, S.DOWNLOADING)
            try:
                got = await self.transfers.download(
                    req.location, dest, max_bytes=self.settings.max_download_bytes
                )
            except TooLarge as exc:
                await self._fail(job, S.DOWNLOAD_FAILED, str(exc))
                return False
            except TransferError as exc:
                log.warning(
                    "firmware download attempt %d of %d failed: %s",
                    job.attempts,
                    retries + 1,
                    exc,
                )
                if job.attempts > retries:
                    await self._fail(job, S.DOWNLOAD_FAILED, str(exc))
                    return False
                await asyncio.sleep(interval)
                continue
            job.sha256, job.size = got.sha256, got.size
            return True

    async def _verify(self, job: FirmwareJob) -> bool:
        req = job.request
        assert req.signing_certificate is not None and req.signature is not None
        chain = await self.check_certificate(req.signing_certificate)
        if not chain.valid:  # checked at the request; the root may have gone since
            await self.security.events.record(
                SecurityEventType.INVALID_FIRMWARE_SIGNING_CERTIFICATE, chain.reason[:200]
            )
            await self._fail(job, S.INVALID_SIGNATURE, f"signing certificate: {chain.reason}")
            return False
        check = await asyncio.to_thread(
            verify_signature, Path(job.file), req.signing_certificate, req.signature
        )
        if not check.ok:
            await self.security.events.record(
                SecurityEventType.INVALID_FIRMWARE_SIGNATURE, check.reason[:200]
            )
            await self._fail(job, S.INVALID_SIGNATURE, check.reason)
            return False
        return True

    # ---- installation --------------------------------------------------------------------

    def _hold_connectors(self) -> None:
        """Unavailable for new sessions; a session in progress goes on and its connector
        becomes Unavailable when it ends."""
        for c in self.station.connectors.values():
            if not c.operative or c.id in self._held:
                continue
            self._held.append(c.id)
            c.operative = False
            if c.tx is not None or c.pending_id_tag is not None:
                c.inoperative_scheduled = True
            else:
                c.sm.go(ConnectorStatus.UNAVAILABLE)

    def _release_connectors(self) -> None:
        for cid in self._held:
            c = self.station.connectors.get(cid)
            if c is None:
                continue
            c.operative = True
            c.inoperative_scheduled = False
            if c.status is ConnectorStatus.UNAVAILABLE:
                c.sm.go(idle_status(c))
        self._held.clear()

    async def _wait_idle(self, job: FirmwareJob) -> bool:
        self._hold_connectors()
        if self.station.busy():
            log.warning("firmware installation waits for the open sessions to end")
            await self._report(job, S.INSTALL_SCHEDULED, "waiting for sessions to end")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.settings.idle_timeout
            while self.station.busy():
                if loop.time() > deadline:
                    await self._fail(job, S.INSTALLATION_FAILED, "sessions did not end in time")
                    return False
                await asyncio.sleep(IDLE_POLL_S)
        return True

    async def _install(self, job: FirmwareJob) -> bool:
        command = self.settings.install_command.strip()
        path = Path(job.file)
        if not command:
            await self._fail(job, S.INSTALLATION_FAILED, "no firmware.install_command configured")
            return False
        if command == SIMULATED_INSTALLER:
            await asyncio.to_thread(self._simulated_install, path)
            return True
        argv = [*shlex.split(command), str(path)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            await self._fail(job, S.INSTALLATION_FAILED, f"installer did not start: {exc}")
            return False
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.settings.install_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            await self._fail(
                job,
                S.INSTALLATION_FAILED,
                f"installer ran longer than {self.settings.install_timeout:g} s",
            )
            return False
        text = out.decode("utf-8", "replace").strip()[-500:]
        if proc.returncode != 0:
            await self._fail(
                job, S.INSTALLATION_FAILED, f"installer exit code {proc.returncode}: {text}"
            )
            return False
        log.info("firmware installer succeeded: %s", text)
        return True

    def _simulated_install(self, path: Path) -> None:
        installed = self.dir / "installed"
        make_directory(installed)
        shutil.move(str(path), installed / path.name)
        version = path.name.split(".bin")[0][:VERSION_MAX] or __version__
        write_atomic(self.dir / VERSION_FILE, version + "\n")
        log.warning("simulated installer: firmware %s installed", version)


async def _no_restart(simulated: bool) -> None:
    return None


__all__ = [
    "FIRMWARE_KIND",
    "PLAIN_STATUSES",
    "Answer",
    "FirmwareJob",
    "FirmwareRequest",
    "FirmwareStatus",
    "FirmwareUpdates",
    "Step",
    "history",
    "reported_version",
    "verify_signature",
    "write_atomic",
]
