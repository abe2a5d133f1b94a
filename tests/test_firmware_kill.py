"""A firmware update survives kill -9 of the daemon (a power loss), on OCPP 1.6J and 2.0.1:
killed while downloading, the restarted daemon resumes the download where it stopped (HTTP
Range) and installs; killed while the installer runs, it reports InstallationFailed. The CSMS
always hears how the job ended."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from chargepoint.core.certificates import CertificateStore, CertificateType
from chargepoint.testcsms import TestCsms
from tests.file_servers import FileServer, file_server
from tests.kill_jobs import check_order
from tests.station_harness import STATION_ID, StationProcess, station_yaml, wait_until
from tests.test_firmware import FILE, FIRMWARE, Signer, now_text


@pytest.fixture(params=["1.6", "2.0.1"])
async def csms(request: pytest.FixtureRequest) -> AsyncIterator[TestCsms]:
    server = TestCsms(heartbeat_interval=300)
    await server.start()
    server.version = request.param  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        await server.stop()


def daemon(csms: TestCsms, tmp: Path, signer: Signer, install_command: str) -> StationProcess:
    version: str = csms.version  # type: ignore[attr-defined]
    path = station_yaml(
        tmp / "station.yaml", csms.url, tmp / "state", connectors=1, csms={"ocpp_version": version}
    )
    doc = yaml.safe_load(path.read_text())
    doc["firmware"] = {
        "install_command": install_command,
        "transfer_timeout": 2.0,
        "default_retry_interval": 0.1,
    }
    path.write_text(yaml.safe_dump(doc))
    store = CertificateStore(tmp / "state" / "certificates")
    assert store.install_root(CertificateType.MANUFACTURER_ROOT, signer.root.pem).accepted
    return StationProcess(path, tmp / "daemon.log")


async def booted(csms: TestCsms, proc: StationProcess) -> None:
    boots = len(csms.messages("BootNotification"))
    proc.start()
    await wait_until(lambda: len(csms.messages("BootNotification")) > boots, 30, "a boot")
    await csms.wait_for("StatusNotification", after=len(csms.received) - 1, timeout=10)


async def request_update(csms: TestCsms, server: FileServer, signer: Signer) -> None:
    answer = await csms.update_firmware(
        STATION_ID,
        f"{server.url}/{FILE}",
        now_text(),
        request_id=7,
        certificate=signer.cert_pem,
        signature=signer.sign(FIRMWARE),
    )
    assert answer["status"] == "Accepted"


async def wait_status(csms: TestCsms, status: str, after: int = 0, timeout: float = 30) -> None:
    await wait_until(
        lambda: status in csms.firmware_statuses(STATION_ID, after), timeout, f"status {status}"
    )


async def test_kill_during_download_resumes_and_installs(csms: TestCsms, tmp_path: Path) -> None:
    signer = Signer()
    proc = daemon(csms, tmp_path, signer, "simulated")
    part = tmp_path / "state" / "firmware" / "download" / (FILE + ".part")
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        server.behaviour.bytes_per_s = 200_000  # ~5 s for the file
        try:
            await booted(csms, proc)
            await request_update(csms, server, signer)
            await wait_until(
                lambda: part.exists() and part.stat().st_size > 200_000, 20, "half a download"
            )
            proc.kill()
            server.behaviour.bytes_per_s = None
            mark = len(csms.received)
            await booted(csms, proc)
            await wait_status(csms, "Installed", mark)
        finally:
            proc.terminate()
        ranges = [r for _, r in server.gets()]
    assert ranges[0] is None
    assert ranges[-1] is not None and int(ranges[-1][6:-1]) > 200_000  # resumed, not restarted
    after = csms.firmware_statuses(STATION_ID, mark)
    assert after == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "InstallRebooting",
        "Installed",
    ]
    installed = tmp_path / "state" / "firmware" / "installed" / FILE
    assert installed.read_bytes() == FIRMWARE


async def test_kill_during_install_reports_installation_failed(
    csms: TestCsms, tmp_path: Path
) -> None:
    signer = Signer()
    script = tmp_path / "install.sh"
    pid_file = tmp_path / "installer.pid"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 30\n")
    script.chmod(0o755)
    proc = daemon(csms, tmp_path, signer, str(script))
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / FILE).write_bytes(FIRMWARE)
        try:
            await booted(csms, proc)
            await request_update(csms, server, signer)
            await wait_status(csms, "Installing")
            await wait_until(pid_file.exists, 10, "the installer")
            proc.kill()
            mark = len(csms.received)
            await booted(csms, proc)
            await wait_status(csms, "InstallationFailed", mark)
            await asyncio.sleep(0.3)
        finally:
            proc.terminate()
            if pid_file.exists():  # the installer outlived the killed daemon (own session)
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    # after the restart only InstallationFailed is new; a status the CSMS had answered may come
    # again first when the kill took its acknowledgement (the outbox's at-least-once, grouped
    # acknowledgements), the same message again: check_order counts it as such
    notes_at = [
        (i, str(r.payload["status"]))
        for i, r in enumerate(csms.received)
        if r.action.endswith("FirmwareStatusNotification")
    ]
    boots = [i for i, r in enumerate(csms.received) if r.action == "BootNotification"]
    order = check_order("firmware", notes_at, boots, 0)
    assert order.problem is None, order.problem
    assert order.delivered[-2:] == ["Installing", "InstallationFailed"]
    assert [s for i, s in notes_at if i >= mark][-1:] == ["InstallationFailed"]
    assert set(csms.firmware_statuses(STATION_ID, mark)) <= {"Installing", "InstallationFailed"}
    notes = [
        r.payload for r in csms.received[mark:] if r.action.endswith("FirmwareStatusNotification")
    ]
    assert notes[0]["requestId"] == 7
