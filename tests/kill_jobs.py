"""The firmware, log and certificate jobs the kill harness's CSMS starts while sessions run, the
step each job was in when a power loss came, and the audit of how every job ended.

- firmware: 1.6 SignedUpdateFirmware / 2.0.1 UpdateFirmware of a signed file served (throttled,
  so that kills land in the download) by a loopback HTTP server; the manufacturer root is
  installed before the first start; `firmware.install_command` is a short script (exit 0), after
  which the daemon exits with EXIT_RESTART and the harness starts it again as systemd would;
- log: 2.0.1 GetLog, 1.6 GetLog or GetDiagnostics (seeded), uploaded to the same server by PUT
  into a directory of its own per request;
- certificate: 1.6 ExtendedTriggerMessage SignChargePointCertificate / 2.0.1 TriggerMessage
  SignChargingStationCertificate; the CSMS answers SignCertificate Accepted and, after a seeded
  delay (a CA takes its time), sends CertificateSigned with the CSR signed by its CA (the CSMS
  root is installed before the first start). A round a kill interrupted is asked again: a new
  CSR after the restart.

The audit (`JobAudit`), per job: it reached a final status the specification allows (a log
upload a kill cut off too: UploadFailure after the restart), every status notification
arrived once (a repeat only where a restart lay between, as a resend after a lost answer)
and in an order the job's state machine allows, without a step back (a file reported
Downloaded is not fetched again); an uploaded log that reported Uploaded is on the server
whole (the tar opens and every member reads); the station certificate on disk is the last
one the CSMS got Accepted for, with its own key in the same file (never half a pair), a
pending key is a whole key, and no temporary file of an interrupted write is left in the
certificate store after the last restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chargepoint.core.certificates import CertificateStore, CertificateType
from chargepoint.testcsms import (
    CallErrorReply,
    Received,
    StationNotConnected,
    TestCsms,
    TestPki,
    generate_test_pki,
)
from chargepoint.testcsms.security import sign_csr
from tests.file_servers import FileServer
from tests.station_harness import STATION_ID
from tests.test_firmware import Signer, now_text

FIRMWARE_FILE: Final = "chargepoint-kill-1.0.1.bin"
FIRMWARE: Final = b"\x7fFIRMWARE" + bytes(range(256)) * 800  # ~200 kB
DOWNLOAD_BYTES_PER_S: Final = 400_000.0  # about half a second per download
INSTALL_SECONDS: Final = 0.4
CERTIFICATE_DELAY_S: Final = (0.0, 0.8)  # the CA's seeded signing time
CALL_TIMEOUT_S: Final = 5.0

FIRMWARE_FINAL: Final = frozenset(
    {
        "Installed",
        "InstallationFailed",
        "DownloadFailed",
        "InvalidSignature",
        "InstallVerificationFailed",
    }
)
# the statuses a signed firmware job may report next (OCPP 2.0.1 L01/L02, 1.6 security
# extension); the first one is Downloading (DownloadScheduled only for a later retrieve time)
FIRMWARE_NEXT: Final[dict[str, frozenset[str]]] = {
    "": frozenset({"Downloading", "DownloadScheduled"}),
    "DownloadScheduled": frozenset({"Downloading", "DownloadFailed"}),
    "Downloading": frozenset({"Downloading", "Downloaded", "DownloadFailed"}),
    "Downloaded": frozenset({"SignatureVerified", "InvalidSignature", "InstallationFailed"}),
    "SignatureVerified": frozenset({"InstallScheduled", "Installing", "InstallationFailed"}),
    "InstallScheduled": frozenset({"Installing", "InstallationFailed"}),
    "Installing": frozenset({"InstallRebooting", "Installed", "InstallationFailed"}),
    "InstallRebooting": frozenset({"Installed", "InstallationFailed"}),
}
LOG_FINAL: Final = frozenset(
    {"Uploaded", "UploadFailure", "UploadFailed", "PermissionDenied", "BadMessage"}
)
LOG_NEXT: Final[dict[str, frozenset[str]]] = {
    "": frozenset({"Uploading"}),
    "Uploading": frozenset(LOG_FINAL),
}

FIRMWARE_STEPS: Final = (
    "requested",
    "Downloading",
    "Downloaded",
    "SignatureVerified",
    "Installing",
    "InstallRebooting",
)
# every status of a signed firmware update that installs, in order
INSTALLED: Final = [*FIRMWARE_STEPS[1:], "Installed"]
LOG_STEPS: Final = ("requested", "Uploading")
CERTIFICATE_STEPS: Final = ("requested", "CSR received", "CertificateSigned sent")
JOB_KINDS: Final = ("firmware", "log", "certificate")
JOB_STEPS: Final = (
    *(f"firmware: {s}" for s in FIRMWARE_STEPS),
    *(f"log: {s}" for s in LOG_STEPS),
    *(f"certificate: {s}" for s in CERTIFICATE_STEPS),
)


@dataclass
class Job:
    kind: str  # firmware | log | certificate
    request_id: int
    at: int  # index in csms.received when it was requested
    answer: str = ""
    action: str = ""  # the request's action (1.6 GetLog or GetDiagnostics)
    file_name: str = ""  # log: the archive's name as the station answered it
    statuses: list[tuple[int, str]] = field(default_factory=list)  # (index, status)
    # certificate
    csrs: list[str] = field(default_factory=list)
    signed_chain: str = ""
    signed_answer: str = ""  # CertificateSigned's status, or the error that stopped it
    signing: bool = False  # CertificateSigned on its way
    interrupted: bool = False  # a kill came before the job finished

    @property
    def last_status(self) -> str:
        return self.statuses[-1][1] if self.statuses else ""

    def waiting(self) -> bool:
        """The CSMS still waits for this job (a log upload a kill cut off too: the station
        reports its UploadFailure after the restart)."""
        return not self.finished() and not self.interrupted

    def finished(self) -> bool:
        if self.kind == "firmware":
            return self.last_status in FIRMWARE_FINAL or self.answer != "Accepted"
        if self.kind == "log":
            return self.last_status in LOG_FINAL or self.answer != "Accepted"
        return self.signed_answer == "Accepted" or self.answer != "Accepted" or self.interrupted

    def step(self) -> str | None:
        """The step the CSMS last saw, None when the job is over."""
        if not self.waiting():
            return None
        if self.kind == "certificate":
            if self.signing:
                return "CertificateSigned sent"
            return "CSR received" if self.csrs else "requested"
        status = self.last_status
        if self.kind == "firmware" and status == "InstallScheduled":
            status = "SignatureVerified"  # waiting for the sessions to end: still before Installing
        return status or "requested"


@dataclass
class JobAudit:
    jobs: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> final -> count
    status_messages: int = 0
    duplicates: int = 0  # a status again after a restart (its answer was lost): allowed
    problems: list[str] = field(default_factory=list)
    certificates_installed: int = 0
    stale_temp_files: list[str] = field(default_factory=list)

    def count(self, kind: str, final: str) -> None:
        by_final = self.jobs.setdefault(kind, {})
        by_final[final] = by_final.get(final, 0) + 1


class Jobs:
    """The CSMS's side of the jobs in one kill run."""

    def __init__(
        self, csms: TestCsms, version: str, rng: random.Random, tmp: Path, server: FileServer
    ) -> None:
        self.csms = csms
        self.version = version
        self.rng = rng
        self.tmp = tmp
        self.server = server
        self.signer = Signer()
        self.pki: TestPki = generate_test_pki(tmp / "pki", STATION_ID)
        self.jobs: list[Job] = []
        self.last_jobs: list[Job] = []  # the undisturbed ones after the last kill
        self.boots: list[int] = []  # indices of BootNotification in csms.received
        self._ids = 0
        self._tasks: set[asyncio.Task[None]] = set()
        (server.root / FIRMWARE_FILE).write_bytes(FIRMWARE)
        server.behaviour.bytes_per_s = DOWNLOAD_BYTES_PER_S
        # a killed station's connection reset is expected here, not a traceback on stderr
        server.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        csms.add_listener(self._on_received)
        csms.respond_with("SignCertificate", self._sign_certificate)

    # ---- set-up --------------------------------------------------------------------------

    def configure(self, config_path: Path, state_dir: Path) -> None:
        """The station's firmware, diagnostics and security sections; the roots installed."""
        script = self.tmp / "install-firmware.sh"
        script.write_text(f"#!/bin/sh\nsleep {INSTALL_SECONDS}\nexit 0\n")
        script.chmod(0o755)
        doc = yaml.safe_load(config_path.read_text())
        doc["firmware"] = {
            "install_command": str(script),
            "install_timeout": 10.0,
            "transfer_timeout": 2.0,
            "default_retries": 3,
            "default_retry_interval": 0.2,
            "idle_timeout": 30.0,
        }
        doc["diagnostics"] = {
            "log_file_bytes": 10_000,
            "log_files": 2,
            "retries": 1,
            "retry_interval": 0.2,
            "transfer_timeout": 2.0,
        }
        # the CSMS asks again itself after a kill; the station's own repeat would race it
        doc["security"] = {"cert_signing_wait_minimum": 3600, "cert_signing_repeat_times": 0}
        config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
        store = CertificateStore(state_dir / "certificates")
        for kind, pem in (
            (CertificateType.MANUFACTURER_ROOT, self.signer.root.pem),
            (CertificateType.CSMS_ROOT, self.pki.ca_cert.read_text()),
        ):
            outcome = store.install_root(kind, pem)
            assert outcome.accepted, outcome

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- what the station sends ------------------------------------------------------------

    def _on_received(self, rec: Received) -> None:
        index = len(self.csms.received) - 1
        if rec.action == "BootNotification":
            self.boots.append(index)
            return
        if rec.action in ("FirmwareStatusNotification", "SignedFirmwareStatusNotification"):
            job = self._job("firmware", rec.payload.get("requestId"))
        elif rec.action == "LogStatusNotification":
            job = self._job("log", rec.payload.get("requestId"))
        elif rec.action == "DiagnosticsStatusNotification":
            job = self._last("log", "GetDiagnostics")  # 1.6 GetDiagnostics has no request id
        else:
            return
        if job is not None and rec.payload.get("status") != "Idle":
            job.statuses.append((index, str(rec.payload["status"])))

    def _job(self, kind: str, request_id: Any) -> Job | None:
        for job in reversed(self.jobs):
            if job.kind == kind and job.request_id == request_id:
                return job
        return None

    def _last(self, kind: str, action: str | None = None) -> Job | None:
        for job in reversed(self.jobs):
            if job.kind == kind:
                return job if action is None or job.action == action else None
        return None

    def _sign_certificate(self, rec: Received) -> dict[str, Any]:
        job = self._last("certificate")
        if job is None or not job.waiting():
            return {"status": "Rejected"}  # nobody asked: not this CSMS's request
        job.csrs.append(str(rec.payload["csr"]))
        task = asyncio.get_running_loop().create_task(self._send_signed(job, job.csrs[-1]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"status": "Accepted"}

    async def _send_signed(self, job: Job, csr: str) -> None:
        await asyncio.sleep(self.rng.uniform(*CERTIFICATE_DELAY_S))
        if not job.waiting():
            return
        chain = await asyncio.to_thread(sign_csr, self.pki, csr)
        payload: dict[str, Any] = {"certificateChain": chain}
        if self.version == "2.0.1":
            payload["certificateType"] = "ChargingStationCertificate"
        job.signing = True
        try:
            answer = await self.csms.call(STATION_ID, "CertificateSigned", payload, CALL_TIMEOUT_S)
            job.signed_chain = chain
            job.signed_answer = str(answer["status"])
        except (StationNotConnected, TimeoutError, CallErrorReply, ConnectionError) as exc:
            job.signed_answer = type(exc).__name__
            job.interrupted = True
        finally:
            job.signing = False

    # ---- what the CSMS asks ------------------------------------------------------------------

    def open_jobs(self) -> list[Job]:
        return [j for j in self.jobs if j.waiting()]

    def steps(self) -> list[str]:
        """The job steps a kill now lands in."""
        return [f"{j.kind}: {s}" for j in self.jobs if (s := j.step()) is not None]

    def killed(self) -> None:
        """A power loss: certificate rounds not finished are asked again later (a log upload
        reports its end after the restart, a firmware job resumes)."""
        for job in self.jobs:
            if job.kind == "certificate" and job.waiting():
                job.interrupted = True

    async def maybe_start(self, chance: float) -> list[Job]:
        """Start, with probability `chance` each, a job of each kind not running."""
        started = []
        for kind in JOB_KINDS:
            busy = any(j.kind == kind for j in self.open_jobs())
            if not busy and self.rng.random() < chance:
                await self._start(kind)
                started.append(self.jobs[-1])
        return started

    def _start(self, kind: str) -> Awaitable[None]:
        starts = {
            "firmware": self.start_firmware,
            "log": self.start_log,
            "certificate": self.start_certificate,
        }
        return starts[kind]()

    async def ensure_open(self, kind: str) -> list[Job]:
        """A job of `kind` is open: one already running, or one started now (an empty list
        when the station did not accept it)."""
        if any(j.kind == kind for j in self.open_jobs()):
            return []
        await self._start(kind)
        return [self.jobs[-1]] if self.jobs[-1].waiting() else []

    async def _request(self, job: Job, call: Callable[[], Any]) -> dict[str, Any]:
        self.jobs.append(job)
        try:
            answer: dict[str, Any] = await call()
        except (StationNotConnected, TimeoutError, CallErrorReply, ConnectionError) as exc:
            job.answer = type(exc).__name__
            return {}
        job.answer = str(answer.get("status", ""))
        return answer

    def _new(self, kind: str, action: str = "") -> Job:
        self._ids += 1
        return Job(kind, self._ids, len(self.csms.received), action=action)

    async def start_firmware(self) -> None:
        job = self._new("firmware")
        await self._request(
            job,
            lambda: self.csms.update_firmware(
                STATION_ID,
                f"{self.server.url}/{FIRMWARE_FILE}",
                now_text(),
                request_id=job.request_id,
                certificate=self.signer.cert_pem,
                signature=self.signer.sign(FIRMWARE),
            ),
        )

    async def start_log(self) -> None:
        diagnostics = self.version == "1.6" and self.rng.random() < 0.5
        job = self._new("log", "GetDiagnostics" if diagnostics else "GetLog")
        location = f"{self.server.url}/logs/{job.request_id}/"
        if diagnostics:
            answer = await self._request(
                job, lambda: self.csms.get_diagnostics(STATION_ID, location)
            )
            if answer:  # GetDiagnostics has no status: a file name says it will come
                job.answer = "Accepted" if answer.get("fileName") else "no fileName"
            job.file_name = str(answer.get("fileName", ""))
        else:
            answer = await self._request(
                job,
                lambda: self.csms.get_log(STATION_ID, location, request_id=job.request_id),
            )
            job.file_name = str(answer.get("filename", ""))

    async def start_certificate(self) -> None:
        job = self._new("certificate")

        async def trigger() -> dict[str, Any]:
            if self.version == "1.6":
                return await self.csms.call(
                    STATION_ID,
                    "ExtendedTriggerMessage",
                    {"requestedMessage": "SignChargePointCertificate"},
                    CALL_TIMEOUT_S,
                )
            return await self.csms.call(
                STATION_ID,
                "TriggerMessage",
                {"requestedMessage": "SignChargingStationCertificate"},
                CALL_TIMEOUT_S,
            )

        await self._request(job, trigger)

    async def finish(self, timeout: float) -> None:
        """After the last kill: every job ends; then one more of each kind runs undisturbed
        and must end well (Installed, Uploaded, Accepted): the kills left the jobs working.
        What has not ended within `timeout` is left for the audit to name."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.open_jobs() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for start in (self.start_firmware, self.start_log, self.start_certificate):
            await start()  # one after the other: the installation restarts the station
            self.last_jobs.append(self.jobs[-1])
            while self.open_jobs() and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)

    # ---- the audit ---------------------------------------------------------------------------

    def audit(self, state_dir: Path, seed: int) -> JobAudit:
        result = JobAudit()
        for job in self.jobs:
            what = f"{job.kind} job {job.request_id} (seed {seed})"
            if job.answer != "Accepted":
                result.count(job.kind, f"not started ({job.answer})")
                continue
            if job.kind == "certificate":
                self._audit_certificate(job, what, result)
                continue
            final_set = FIRMWARE_FINAL if job.kind == "firmware" else LOG_FINAL
            result.status_messages += len(job.statuses)
            order = check_order(job.kind, job.statuses, self.boots, job.at)
            result.duplicates += order.duplicates
            if order.problem:
                result.problems.append(f"{what}: {order.problem}")
                continue
            final = order.delivered[-1] if order.delivered else ""
            if final not in final_set:
                result.count(job.kind, "no final status")
                seen = [s for _, s in job.statuses]
                result.problems.append(f"{what}: no final status, reported {seen}")
                continue
            result.count(job.kind, final)
            if job.kind == "log" and final == "Uploaded":
                problem = tar_problem(self.server.root / "uploads" / "logs" / str(job.request_id))
                if problem:
                    result.problems.append(f"{what}: Uploaded, but {problem}")
        wanted = {"firmware": "Installed", "log": "Uploaded"}
        for job in self.last_jobs:
            outcome = job.signed_answer if job.kind == "certificate" else job.last_status
            if outcome != wanted.get(job.kind, "Accepted"):
                result.problems.append(
                    f"{job.kind} job {job.request_id} (seed {seed}), after the last kill: "
                    f"answered {job.answer!r}, ended {outcome!r}"
                )
        self._audit_certificate_files(state_dir, seed, result)
        return result

    def _audit_certificate(self, job: Job, what: str, result: JobAudit) -> None:
        if job.signed_answer == "Accepted":
            result.count("certificate", "Accepted")
            result.certificates_installed += 1
        elif job.interrupted:
            later = [j for j in self.jobs if j.kind == "certificate" and j.at > job.at]
            result.count("certificate", "interrupted, asked again")
            if not later:
                result.problems.append(f"{what}: interrupted and never asked again")
        elif not job.csrs:
            result.count("certificate", "no CSR")
            result.problems.append(f"{what}: the trigger was accepted but no CSR came")
        else:
            result.count("certificate", f"CertificateSigned {job.signed_answer or 'not sent'}")
            result.problems.append(f"{what}: CertificateSigned answered {job.signed_answer!r}")

    def _audit_certificate_files(self, state_dir: Path, seed: int, result: JobAudit) -> None:
        station = state_dir / "certificates" / "station"
        what = f"certificate files (seed {seed})"
        # a write a kill cut off leaves `.<name>.<pid>.tmp` (a pending key's holds a private
        # key): the daemon's start deletes them
        result.stale_temp_files = sorted(
            str(p.relative_to(state_dir / "certificates"))
            for p in (state_dir / "certificates").rglob(".*.tmp")
        )
        if result.stale_temp_files:
            result.problems.append(
                f"{what}: temporary files left after the last restart: {result.stale_temp_files}"
            )
        accepted = [
            j for j in self.jobs if j.kind == "certificate" and j.signed_answer == "Accepted"
        ]
        credentials = station / "credentials.pem"
        if not accepted:
            return
        if not credentials.exists():
            result.problems.append(f"{what}: CertificateSigned was accepted, no credentials.pem")
            return
        problem = pair_problem(credentials.read_bytes(), accepted[-1].signed_chain)
        if problem:
            result.problems.append(f"{what}: {problem}")
        in_use = CertificateStore(state_dir / "certificates").station_certificate()
        wanted = x509.load_pem_x509_certificate(accepted[-1].signed_chain.encode())
        if in_use is None or in_use.certificate != wanted:
            result.problems.append(f"{what}: the station does not use the last accepted one")
        pending = station / "pending-key.pem"
        if pending.exists():
            try:
                serialization.load_pem_private_key(pending.read_bytes(), password=None)
            except ValueError as exc:
                result.problems.append(f"{what}: pending-key.pem is not a whole key: {exc}")


@dataclass
class OrderCheck:
    delivered: list[str]  # each status once, in the order the job went through them
    duplicates: int  # said again after a restart
    problem: str | None


def check_order(
    kind: str, statuses: list[tuple[int, str]], boots: list[int], since: int
) -> OrderCheck:
    """A job's status notifications (index in the CSMS's log, status) as delivered once: after
    a restart (a boot at an index in `boots`) the station may send again the last ones whose
    acknowledgement the kill took (the same statuses in the same order), then what was queued
    before the kill, and the resumed job may say once again where it is; then it goes on.
    Each new status must follow the previous one as the job's state machine allows (no step
    back: a status queued before the kill is not followed by the step before it again), and
    nothing follows a final status."""
    following = FIRMWARE_NEXT if kind == "firmware" else LOG_NEXT
    final_set = FIRMWARE_FINAL if kind == "firmware" else LOG_FINAL
    segments: list[list[str]] = [[]]
    previous_at = since
    for index, status in statuses:
        if segments[-1] and any(previous_at < boot < index for boot in boots):
            segments.append([])
        segments[-1].append(status)
        previous_at = index
    result = OrderCheck([], 0, None)
    delivered = result.delivered
    seen = " | ".join(" ".join(segment) for segment in segments)  # | a restart
    for number, segment in enumerate(segments):
        replay = 0
        if number:
            replay = max(
                (
                    k
                    for k in range(1, min(len(segment), len(delivered)) + 1)
                    if segment[:k] == delivered[-k:]
                ),
                default=0,
            )
        result.duplicates += replay
        resumed = number == 0  # each restart allows the resumed job one repeat
        for status in segment[replay:]:
            previous = delivered[-1] if delivered else ""
            if previous in final_set:
                result.problem = f"{status} after the final {previous} in {seen} (| a restart)"
                return result
            if status in following.get(previous, frozenset()):
                delivered.append(status)
                continue
            if not resumed and status == previous:
                resumed = True
                result.duplicates += 1  # the resumed job says again where it is
                continue
            result.problem = f"{previous or 'start'} -> {status} in {seen} (| a restart)"
            return result
    return result


def pair_problem(data: bytes, chain_pem: str) -> str | None:
    """credentials.pem must hold the accepted certificate and the private key of its public
    key, both whole."""
    text = data.decode("ascii", "replace")
    certs, marker, key_text = text.partition("-----BEGIN PRIVATE KEY-----")
    if not marker:
        return "credentials.pem has no private key"
    try:
        leaf = x509.load_pem_x509_certificates(certs.encode())[0]
        key = serialization.load_pem_private_key((marker + key_text).encode(), password=None)
    except ValueError as exc:
        return f"credentials.pem is not whole: {exc}"
    if leaf != x509.load_pem_x509_certificate(chain_pem.encode()):
        return "credentials.pem holds another certificate than the last one accepted"
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != leaf.public_key().public_bytes(*raw):
        return "credentials.pem: the key is not the certificate's"
    return None


def tar_problem(directory: Path) -> str | None:
    files = sorted(directory.glob("*")) if directory.is_dir() else []
    if len(files) != 1:
        return f"{len(files)} files uploaded to {directory.name}/"
    try:
        with tarfile.open(fileobj=io.BytesIO(files[0].read_bytes()), mode="r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                f = tar.extractfile(member)
                if f is not None:
                    f.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        return f"the archive does not open: {exc}"
    if not members:
        return "the archive is empty"
    return None
