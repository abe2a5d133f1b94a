"""Firmware updates end to end against the schema-validating test CSMS, both OCPP versions:
signed updates over https (server certificate checked) and FTP, the plain 1.6 UpdateFirmware
(refused unless allowed), every failure path (404, a stalling server, a wrong signature, a
certificate from another root, a failing or slow installer), a session in progress that the
installation waits for, and a new request while one runs."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from chargepoint.core.certificates import CertificateType
from chargepoint.core.firmware import Step
from chargepoint.testcsms import CallErrorReply, generate_test_pki
from tests.file_servers import file_server, ftp_server
from tests.pki import Ca, make_ca, name, pem
from tests.station_env import Env, running_env
from tests.station_harness import STATION_ID, InProcessStation, wait_until

VERSIONS = ["1.6", "2.0.1"]
FIRMWARE = b"\x7fFIRMWARE" + bytes(range(256)) * 4000  # ~1 MB
FILE = "chargepoint-9.9.9.bin"


def now_text(seconds: float = 0) -> str:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.fixture(params=VERSIONS)
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env(request.param, tmp_path) as e:
        yield e


@pytest.fixture
async def env16(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env("1.6", tmp_path) as e:
        yield e


def station_config(env: Env, **sections: Any) -> Path:
    path = env.config()
    doc = yaml.safe_load(path.read_text())
    firmware = {
        "install_command": "simulated",
        "transfer_timeout": 2.0,
        "default_retry_interval": 0.1,
        **sections.pop("firmware", {}),
    }
    doc.update({"firmware": firmware, **sections})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def start(env: Env, **sections: Any) -> None:
    env.station = InProcessStation(station_config(env, **sections))
    await env.station.start()
    await env.booted()


class Signer:
    """A manufacturer root and a firmware signing certificate issued by it."""

    def __init__(self, rsa_key: bool = False) -> None:
        self.root: Ca = make_ca("manufacturer root")
        self.key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        self.cert_pem = pem(self.root.issue(name("firmware signer"), self.key.public_key()))

    def sign(self, data: bytes, pss: bool = False) -> str:
        if isinstance(self.key, rsa.RSAPrivateKey):
            pad: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                if pss
                else padding.PKCS1v15()
            )
            return base64.b64encode(self.key.sign(data, pad, hashes.SHA256())).decode()
        return base64.b64encode(self.key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def trust(env: Env, signer: Signer) -> None:
    outcome = env.daemon.security.certificates.install_root(  # type: ignore[union-attr]
        CertificateType.MANUFACTURER_ROOT, signer.root.pem
    )
    assert outcome.accepted, outcome


async def statuses_until(env: Env, final: set[str], timeout: float = 20) -> list[str]:
    def seen() -> list[str]:
        return env.csms.firmware_statuses(STATION_ID)

    await wait_until(lambda: bool(final & set(seen())), timeout, f"a firmware status in {final}")
    await asyncio.sleep(0.1)
    return seen()


def security_log(env: Env) -> list[str]:
    assert env.daemon.security is not None
    return [e.event_type for e in env.daemon.security.events.entries()]


SIGNED_PATH = [
    "Downloading",
    "Downloaded",
    "SignatureVerified",
    "Installing",
    "InstallRebooting",
    "Installed",
]


async def test_signed_update_over_https_installs_and_reboots(env: Env, tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path / "pki")
    signer = Signer()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
    with file_server(tmp_path / "www", pki.server_context()) as server:
        await start(env, firmware={"ca_file": str(pki.ca_cert)})
        trust(env, signer)
        boots = len(env.csms.messages("BootNotification"))
        answer = await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            request_id=42,
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
        )
        assert answer["status"] == "Accepted"
        seen = await statuses_until(env, {"Installed", "InstallationFailed", "DownloadFailed"})
        assert seen == SIGNED_PATH
    requests = [
        r.payload["requestId"]
        for r in env.csms.received
        if r.action.endswith("FirmwareStatusNotification")
    ]
    assert requests == [42] * len(SIGNED_PATH)
    boots_after = env.csms.messages("BootNotification")[boots:]
    assert boots_after, "the station did not boot again after the installation"
    boot = boots_after[-1].payload
    if env.version == "2.0.1":
        assert boot["reason"] == "FirmwareUpdate"
        assert boot["chargingStation"]["firmwareVersion"] == "chargepoint-9.9.9"
    else:
        assert boot["firmwareVersion"] == "chargepoint-9.9.9"
        assert env.csms.messages("SignedFirmwareStatusNotification")
    # the installed file is kept under the state dir; nothing half-downloaded stays
    state = tmp_path / "state" / "firmware"
    assert (state / "installed" / FILE).read_bytes() == FIRMWARE
    assert not list((state / "download").glob("*"))
    events = await env.csms.wait_for(
        "SecurityEventNotification", lambda r: r.payload["type"] == "FirmwareUpdated"
    )
    assert events.payload["type"] == "FirmwareUpdated"
    # the installed boot came after InstallRebooting, and Installed after the new boot
    actions = [r.action for r in env.csms.received]
    last_boot = max(i for i, a in enumerate(actions) if a == "BootNotification")
    installed = max(
        i
        for i, r in enumerate(env.csms.received)
        if r.action.endswith("FirmwareStatusNotification") and r.payload["status"] == "Installed"
    )
    assert installed > last_boot


@pytest.mark.parametrize("pss", [False, True])
async def test_rsa_signature_over_ftp(env16: Env, tmp_path: Path, pss: bool) -> None:
    env = env16
    signer = Signer(rsa_key=True)
    with ftp_server(tmp_path / "ftp") as ftp:
        (ftp.root / FILE).write_bytes(FIRMWARE)
        await start(env)
        trust(env, signer)
        answer = await env.csms.update_firmware(
            STATION_ID,
            f"{ftp.url}/{FILE}",
            now_text(),
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE, pss=pss),
        )
        assert answer["status"] == "Accepted"
        seen = await statuses_until(env, {"Installed", "InvalidSignature", "DownloadFailed"})
    assert seen == SIGNED_PATH


async def test_wrong_signature_is_invalid_signature_and_a_security_event(
    env: Env, tmp_path: Path
) -> None:
    signer = Signer()
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        await start(env)
        trust(env, signer)
        answer = await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE + b"tampered"),
        )
        assert answer["status"] == "Accepted"
        seen = await statuses_until(env, {"InvalidSignature", "Installed"})
    assert seen == ["Downloading", "Downloaded", "InvalidSignature"]
    assert "InvalidFirmwareSignature" in security_log(env)
    assert not (tmp_path / "state" / "firmware" / "installed").exists()
    assert not list((tmp_path / "state" / "firmware" / "download").glob("*"))


async def test_certificate_from_another_root_is_invalid_certificate(
    env: Env, tmp_path: Path
) -> None:
    trusted, other = Signer(), Signer()
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        await start(env)
        trust(env, trusted)
        answer = await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            certificate=other.cert_pem,
            signature=other.sign(FIRMWARE),
        )
        assert answer["status"] == "InvalidCertificate"
        await asyncio.sleep(0.3)
        assert server.gets() == []  # nothing downloaded
    assert env.csms.firmware_statuses(STATION_ID) == []
    assert "InvalidFirmwareSigningCertificate" in security_log(env)


async def test_404_is_download_failed_after_the_retries(env: Env, tmp_path: Path) -> None:
    signer = Signer()
    with file_server(tmp_path / "www") as server:
        await start(env)
        trust(env, signer)
        await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/missing.bin",
            now_text(),
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
            retries=2,
            retry_interval=0,
        )
        seen = await statuses_until(env, {"DownloadFailed", "Installed"})
        assert len(server.gets()) == 3  # the first try and two retries
    assert seen == ["Downloading"] * 3 + ["DownloadFailed"]


async def test_stalled_server_is_retried_and_the_download_resumes(env: Env, tmp_path: Path) -> None:
    signer = Signer()
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        server.behaviour.stall_after = 300_000
        await start(env, firmware={"transfer_timeout": 0.5})
        trust(env, signer)
        await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
            retries=1,
            retry_interval=0,
        )
        seen = await statuses_until(env, {"Installed", "DownloadFailed", "InvalidSignature"})
        gets = server.gets()
    assert seen == ["Downloading", *SIGNED_PATH]
    assert gets[0][1] is None and gets[1][1] == "bytes=300000-"  # resumed, not restarted
    installed = tmp_path / "state" / "firmware" / "installed" / FILE
    assert installed.read_bytes() == FIRMWARE


async def test_a_server_that_always_stalls_is_download_failed(env: Env, tmp_path: Path) -> None:
    signer = Signer()
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        server.behaviour.stall_after = 1000
        server.behaviour.stall_always = True
        await start(env, firmware={"transfer_timeout": 0.3})
        trust(env, signer)
        await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
            retries=1,
            retry_interval=0,
        )
        seen = await statuses_until(env, {"DownloadFailed", "Installed"})
    assert seen == ["Downloading", "Downloading", "DownloadFailed"]


async def test_too_large_is_download_failed_without_retries(env: Env, tmp_path: Path) -> None:
    signer = Signer()
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        await start(env, firmware={"max_download_bytes": 100_000})
        trust(env, signer)
        await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
            retries=3,
        )
        seen = await statuses_until(env, {"DownloadFailed", "Installed"})
    assert seen == ["Downloading", "DownloadFailed"]


async def test_plain_update_16_is_refused_unless_allowed(env16: Env, tmp_path: Path) -> None:
    env = env16
    with ftp_server(tmp_path / "ftp") as ftp:
        (ftp.root / FILE).write_bytes(FIRMWARE)
        await start(env, firmware={"allow_unsigned_update": False})
        with pytest.raises(CallErrorReply) as refused:
            await env.csms.update_firmware(STATION_ID, f"{ftp.url}/{FILE}", now_text())
        assert refused.value.code == "NotSupported"
        await asyncio.sleep(0.3)
        assert env.csms.firmware_statuses(STATION_ID) == []
        assert env.daemon.firmware is not None and env.daemon.firmware.job is None
        await env.station.stop()  # type: ignore[union-attr]
        await start(env, firmware={"allow_unsigned_update": True})
        answer = await env.csms.update_firmware(STATION_ID, f"{ftp.url}/{FILE}", now_text())
        assert answer == {}
        seen = await statuses_until(env, {"Installed", "InstallationFailed", "DownloadFailed"})
    assert seen == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert all(
        "requestId" not in r.payload for r in env.csms.messages("FirmwareStatusNotification")
    )


async def test_unsigned_201_update_is_rejected_unless_allowed(tmp_path: Path) -> None:
    async with running_env("2.0.1", tmp_path) as env:
        with file_server(tmp_path / "www") as server:
            (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
            await start(env, firmware={"allow_unsigned_update": False})
            answer = await env.csms.update_firmware(STATION_ID, f"{server.url}/{FILE}", now_text())
            assert answer["status"] == "Rejected"
            await env.station.stop()  # type: ignore[union-attr]
            await start(env, firmware={"allow_unsigned_update": True})
            answer = await env.csms.update_firmware(STATION_ID, f"{server.url}/{FILE}", now_text())
            assert answer["status"] == "Accepted"
            seen = await statuses_until(env, {"Installed", "DownloadFailed"})
    assert seen == ["Downloading", "Downloaded", "Installing", "InstallRebooting", "Installed"]


@pytest.mark.parametrize("exit_code", [3, "timeout"])
async def test_failing_installer_is_installation_failed(
    env: Env, tmp_path: Path, exit_code: int | str
) -> None:
    signer = Signer()
    script = tmp_path / "install.sh"
    body = "sleep 5" if exit_code == "timeout" else f"echo broken; exit {exit_code}"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        await start(env, firmware={"install_command": str(script), "install_timeout": 0.5})
        trust(env, signer)
        await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
        )
        seen = await statuses_until(env, {"InstallationFailed", "Installed"})
    assert seen == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "InstallationFailed",
    ]
    # the connectors are back for new sessions
    await wait_until(
        lambda: all(
            c.operative and c.status.value == "Available"
            for c in env.daemon.station.connectors.values()  # type: ignore[union-attr]
        ),
        5,
        "the connectors available again",
    )


async def test_installation_waits_for_the_session_in_progress(env: Env, tmp_path: Path) -> None:
    signer = Signer()
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        await start(env)
        trust(env, signer)
        assert await env.view.remote_start(1, "TAG-1") == "Accepted"
        started = await env.view.wait_started(1)
        mark = len(env.csms.received)
        await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
        )
        await statuses_until(env, {"InstallScheduled"})
        await env.view.wait_status(2, "Unavailable", after=mark)  # free: no new sessions
        station = env.daemon.station
        assert station is not None and station.connectors[1].tx is not None  # not cut
        assert await env.view.remote_start(2, "TAG-2") == "Rejected"
        await asyncio.sleep(0.5)
        assert "Installing" not in env.csms.firmware_statuses(STATION_ID)
        assert await env.view.remote_stop(started.tx_id) == "Accepted"
        await env.view.wait_ended(1)
        seen = await statuses_until(env, {"Installed", "InstallationFailed"})
    assert seen == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "InstallScheduled",
        "Installing",
        "InstallRebooting",
        "Installed",
    ]
    end = env.view.sessions()[0]
    assert set(end.signed) == {"Transaction.Begin", "Transaction.End"}  # ended normally


async def test_new_request_cancels_a_scheduled_one(env: Env, tmp_path: Path) -> None:
    signer = Signer()
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        await start(env)
        trust(env, signer)
        first = await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(3600),
            request_id=1,
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
        )
        assert first["status"] == "Accepted"
        await statuses_until(env, {"DownloadScheduled"})
        second = await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            request_id=2,
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
        )
        assert second["status"] == "AcceptedCanceled"
        await statuses_until(env, {"Installed"})
    ids = [
        (r.payload["requestId"], r.payload["status"])
        for r in env.csms.received
        if r.action.endswith("FirmwareStatusNotification")
    ]
    assert ids[0] == (1, "DownloadScheduled")
    assert [i for i, _ in ids[1:]] == [2] * (len(ids) - 1)


async def test_request_while_installing_is_rejected(env: Env, tmp_path: Path) -> None:
    signer = Signer()
    script = tmp_path / "install.sh"
    script.write_text("#!/bin/sh\nsleep 1\nexit 0\n")
    script.chmod(0o755)
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        await start(env, firmware={"install_command": str(script)})
        trust(env, signer)
        kwargs: dict[str, Any] = {
            "certificate": signer.cert_pem,
            "signature": signer.sign(FIRMWARE),
        }
        await env.csms.update_firmware(
            STATION_ID, f"{server.url}/{FILE}", now_text(), request_id=1, **kwargs
        )
        await statuses_until(env, {"Installing"})
        again = await env.csms.update_firmware(
            STATION_ID, f"{server.url}/{FILE}", now_text(), request_id=2, **kwargs
        )
        assert again["status"] == "Rejected"
        firmware = env.daemon.firmware
        assert firmware is not None and firmware.job is not None
        assert firmware.job.request.request_id == 1
        # a real installer ends with the daemon asking systemd for a restart
        await wait_until(lambda: env.daemon.restart_requested, 10, "the restart request")
        assert firmware.job.step is Step.REBOOTING
        # the restarted daemon (systemd's part) reports Installed; 2.0.1 boots for it
        assert env.station is not None
        await env.station.stop()
        boots = len(env.csms.messages("BootNotification"))
        await env.station.start()
        await env.booted()
        seen = await statuses_until(env, {"Installed"})
    assert seen[-1] == "Installed"
    assert seen.index("Installing") < seen.index("InstallRebooting") < len(seen) - 1
    boot = env.csms.messages("BootNotification")[boots].payload
    if env.version == "2.0.1":
        assert boot["reason"] == "FirmwareUpdate"
    assert "FirmwareUpdated" in security_log(env)


async def test_trigger_reports_idle_or_the_running_status(env: Env, tmp_path: Path) -> None:
    signer = Signer()
    with file_server(tmp_path / "www") as server:
        await start(env)
        trust(env, signer)
        assert await env.view.trigger("FirmwareStatusNotification") == "Accepted"
        await wait_until(lambda: env.csms.firmware_statuses(STATION_ID) == ["Idle"], 5, "Idle")
        await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(3600),
            request_id=11,
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
        )
        await statuses_until(env, {"DownloadScheduled"})
        assert await env.view.trigger("FirmwareStatusNotification") == "Accepted"
        await wait_until(
            lambda: env.csms.firmware_statuses(STATION_ID).count("DownloadScheduled") == 2,
            5,
            "the triggered status",
        )
    last = [r for r in env.csms.received if r.action.endswith("FirmwareStatusNotification")][-1]
    assert last.payload == {"status": "DownloadScheduled", "requestId": 11}


async def test_untrusted_https_server_is_download_failed(env: Env, tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path / "pki")  # its CA is not given to the station
    signer = Signer()
    with file_server(tmp_path / "www", pki.server_context()) as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        await start(env)
        trust(env, signer)
        await env.csms.update_firmware(
            STATION_ID,
            f"{server.url}/{FILE}",
            now_text(),
            certificate=signer.cert_pem,
            signature=signer.sign(FIRMWARE),
            retries=0,
        )
        seen = await statuses_until(env, {"DownloadFailed", "Installed"})
        assert server.gets() == []  # the TLS handshake failed before any request
    assert seen == ["Downloading", "DownloadFailed"]
