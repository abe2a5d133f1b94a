"""One full life of the daemon as a real process (`chargepoint run`, as systemd starts it), for
the file-mode and secret tests: security profile 2 (Basic auth over TLS) against the test CSMS
on loopback, debug logging, file logs; a station certificate through a CSR, a charging
session, a new Basic-auth password set through OCPP, a signed firmware update over HTTPS, a
diagnostics and a security log upload, `chargepoint status`, and a CSV export."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.testcsms import TestCsms
from chargepoint.testcsms.pki import generate_test_pki
from tests.file_servers import file_server
from tests.ocpp_views import VIEWS
from tests.pki import make_ca, name, pem
from tests.real_vectors import REPO_ROOT
from tests.station_harness import (
    STATION_ID,
    StationProcess,
    change_password,
    station_yaml,
    wait_until,
)

PASSWORD = "first-Pa55word-of-the-csms"
NEW_PASSWORD = "second-Pa55word-set-by-ocpp"
WEB_PASSWORD = "web-operator-Pa55word-0"
FIRMWARE = b"\x7fFIRMWARE" + bytes(range(256)) * 64
FIRMWARE_FILE = "chargepoint-9.9.9.bin"


@dataclass
class FullSession:
    tmp: Path
    state: Path
    config: Path
    journal: str  # what the daemon wrote to stdout/stderr (the journal under systemd)
    status_output: str  # `chargepoint status` and `chargepoint status --json`
    uploads: dict[str, bytes] = field(default_factory=dict)  # uploaded archive -> bytes
    export: Path | None = None  # `transactions export -o`
    secret_files: set[Path] = field(default_factory=set)  # files that hold a secret, by design
    live: dict[Path, int] = field(default_factory=dict)  # every path's st_mode while running

    @property
    def passwords(self) -> list[str]:
        return [PASSWORD, NEW_PASSWORD, WEB_PASSWORD]

    def secret_forms(self) -> list[str]:
        """Each password as it is and as a Basic-auth header carries it."""
        forms = list(self.passwords)
        for secret in (PASSWORD, NEW_PASSWORD):
            forms.append(base64.b64encode(f"{STATION_ID}:{secret}".encode()).decode())
        return forms


@contextlib.contextmanager
def umask(mask: int | None) -> Iterator[None]:
    if mask is None:
        yield
        return
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)


async def _cli(mask: int | None, *args: str) -> tuple[int, str]:
    with umask(mask):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chargepoint",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(errors="replace")


def _uploaded(csms: TestCsms, request_id: int) -> Callable[[], bool]:
    def done() -> bool:
        return any(
            r.payload.get("requestId") == request_id and r.payload["status"] == "Uploaded"
            for r in csms.messages("LogStatusNotification")
        )

    return done


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def run_full_session(tmp: Path, version: str, mask: int | None = None) -> FullSession:
    """The whole session (see the module docstring), the daemon and CLI started with umask
    `mask`; returns what it left behind."""
    pki = generate_test_pki(tmp / "pki", STATION_ID)
    csms = TestCsms(ssl_context=pki.server_context(), basic_auth={STATION_ID: PASSWORD})
    port = await csms.start()
    secrets_dir = tmp / "secrets"
    secrets_dir.mkdir()
    password_file = secrets_dir / "csms-password"
    password_file.write_text(PASSWORD + "\n")
    web_password = secrets_dir / "web-password"
    web_password.write_text(WEB_PASSWORD + "\n")
    for f in (password_file, web_password):
        f.chmod(0o600)
    state = tmp / "state"
    config = station_yaml(
        tmp / "station.yaml",
        f"wss://localhost:{port}/ocpp",
        state,
        csms={
            "ocpp_version": version,
            "security_profile": 2,
            "password": {"file": str(password_file)},
            "ca_file": str(pki.ca_cert),
        },
        sections={
            "logging": {"level": "debug", "journal": "never"},
            "diagnostics": {"retry_interval": 0.1, "transfer_timeout": 5.0},
            "firmware": {
                "install_command": "simulated",
                "transfer_timeout": 5.0,
                "default_retry_interval": 0.1,
                "ca_file": str(pki.ca_cert),
            },
            "web": {"operator_password_file": str(web_password)},
        },
    )
    proc = StationProcess(config, tmp / "daemon.log")
    view = VIEWS[version](csms)
    uploads: dict[str, bytes] = {}
    live: dict[Path, int] = {}
    try:
        with umask(mask):
            proc.start()
        await csms.wait_for("StatusNotification", timeout=60)
        # a station certificate through a CSR (its key lands in the certificate store)
        root = pki.ca_cert.read_text()
        answer = await csms.install_certificate(STATION_ID, "CSMSRootCertificate", root)
        assert answer["status"] == "Accepted", answer
        csms.sign_station_csrs(pki)
        await csms.request_station_certificate(STATION_ID)
        await wait_until(lambda: bool(csms.csr_answers), 20, "CertificateSigned")
        assert csms.csr_answers == [{"status": "Accepted"}]
        # a charging session
        assert await view.remote_start(1, "TAG-FULL-1") == "Accepted"
        started = await view.wait_started(1, timeout=30)
        await asyncio.sleep(0.5)
        assert await view.remote_stop(started.tx_id) == "Accepted"
        await view.wait_ended(1, timeout=30)
        # a new password, set through OCPP, used from the next connection
        await change_password(csms, version, NEW_PASSWORD)
        (tmp / "www").mkdir()
        (tmp / "www" / FIRMWARE_FILE).write_bytes(FIRMWARE)
        with file_server(tmp / "www", pki.server_context()) as server:
            # a signed firmware update over HTTPS (job file, history, download, install)
            signer_root = make_ca("manufacturer root")
            signer_key = ec.generate_private_key(ec.SECP256R1())
            signer_cert = pem(signer_root.issue(name("firmware signer"), signer_key.public_key()))
            answer = await csms.install_certificate(
                STATION_ID, "ManufacturerRootCertificate", signer_root.pem
            )
            assert answer["status"] == "Accepted", answer
            signature = signer_key.sign(FIRMWARE, ec.ECDSA(hashes.SHA256()))
            boots = len(csms.messages("BootNotification"))
            answer = await csms.update_firmware(
                STATION_ID,
                f"{server.url}/{FIRMWARE_FILE}",
                _now_text(),
                request_id=42,
                certificate=signer_cert,
                signature=base64.b64encode(signature).decode(),
            )
            assert answer["status"] == "Accepted", answer
            final = {"Installed", "InstallationFailed", "DownloadFailed", "InvalidSignature"}
            await wait_until(
                lambda: bool(final & set(csms.firmware_statuses(STATION_ID))), 60, "firmware"
            )
            assert "Installed" in csms.firmware_statuses(STATION_ID)
            await wait_until(
                lambda: (
                    len(csms.messages("BootNotification")) > boots and csms.is_connected(STATION_ID)
                ),
                30,
                "the boot after the installation",
            )
            # a diagnostics and a security log upload
            for request_id, log_type in ((5, "DiagnosticsLog"), (6, "SecurityLog")):
                answer = await csms.get_log(
                    STATION_ID, f"{server.url}/logs/", log_type=log_type, request_id=request_id
                )
                assert answer["status"] == "Accepted", answer
                await wait_until(_uploaded(csms, request_id), 30, f"the {log_type} upload")
            uploaded = tmp / "www" / "uploads" / "logs"
            uploads = {p.name: p.read_bytes() for p in sorted(uploaded.iterdir())}
        assert len(uploads) == 2, uploads
        code, status_output = await _cli(mask, "status", "--config", str(config))
        assert code == 0, status_output
        code, status_json = await _cli(mask, "status", "--json", "--config", str(config))
        assert code == 0 and '"station"' in status_json, status_json
        status_output += status_json
        live = {p: p.lstat().st_mode for p in state.rglob("*")}
    finally:
        # off the event loop: the CSMS answers the station's closing handshake meanwhile
        code = await asyncio.to_thread(proc.terminate)
        await csms.stop()
    assert code == 0, proc.log_text()[-3000:]
    export = tmp / "exports" / "sessions.csv"
    export.parent.mkdir()
    code, out = await _cli(
        mask,
        "transactions",
        "export",
        "--config",
        str(config),
        "--format",
        "csv",
        "-o",
        str(export),
        "--quiet",
    )
    assert code == 0 and export.is_file(), out
    return FullSession(
        tmp,
        state,
        config,
        proc.log_text(),
        status_output,
        uploads,
        export,
        secret_files={
            state / "secrets" / "csms-password",
            state / "certificates" / "station" / "credentials.pem",
        },
        live=live,
    )
