"""Power loss at seeded random points, both OCPP versions, while sessions run and the CSMS
starts firmware updates, log uploads and certificate renewals: the CI sample of the fault
suite (`python benchmarks/faults.py` is the full run, 2 x 500 kills). Nothing lost, nothing
delivered twice with other content, every session ended once, every billable one with signed
values that verify; every job ended as the specification allows, its notifications in order;
the station certificate on disk whole and the last one accepted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chargepoint.testcsms import TestCsms
from tests.kill_harness import run_kills
from tests.kill_jobs import check_order
from tests.station_harness import STATION_ID, StationProcess, station_yaml, wait_until

# a sample in CI: 2 x 16 = 32 kills; CHARGEPOINT_KILLS raises it
KILLS = int(os.environ.get("CHARGEPOINT_KILLS", "16"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("version", "seed"), [("1.6", 1601), ("2.0.1", 2001)])
async def test_random_power_losses_lose_and_duplicate_nothing(
    version: str, seed: int, tmp_path: Path
) -> None:
    run = await run_kills(version, seed, KILLS, tmp_path)
    a = run.audit
    assert run.kills == KILLS
    assert run.problems() == []
    assert a.lost == 0
    assert a.duplicated == 0
    assert a.sessions >= KILLS // 4, f"only {a.sessions} sessions started: the run tested little"
    assert a.ended == a.sessions
    assert a.billable > 0 and a.signed_percent == 100.0
    # the jobs ran, ended (the last of each kind, after the kills, ended well: the audit
    # checks it) and kills landed in them
    finals = run.jobs.jobs
    assert finals.get("firmware", {}).get("Installed", 0) >= 1, finals
    assert finals.get("log", {}).get("Uploaded", 0) >= 1, finals
    assert finals.get("certificate", {}).get("Accepted", 0) >= 1, finals
    steps = run.steps()
    for kind in ("firmware", "log", "certificate"):
        in_jobs = sum(n for step, n in steps.items() if step.startswith(f"{kind}: "))
        assert in_jobs >= 1, f"no kill landed in a {kind} job: {dict(steps)}"


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A loopback HTTP server that takes connections and never answers: an upload to it
    stays at Uploading until the transfer times out."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/logs/"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("version", "action"),
    [("1.6", "GetLog"), ("1.6", "GetDiagnostics"), ("2.0.1", "GetLog")],
)
async def test_a_log_upload_cut_off_by_a_power_loss_reports_a_final_status(
    version: str, action: str, tmp_path: Path
) -> None:
    """Killed while uploading (the server never answers): after the restart the CSMS hears
    the upload failed, once, with the request's id (1.6 GetDiagnostics: UploadFailed), and
    the station neither uploads again nor keeps the job or its archive."""
    async with TestCsms(heartbeat_interval=300) as csms:
        cfg = station_yaml(
            tmp_path / "station.yaml",
            csms.url,
            tmp_path / "state",
            connectors=1,
            csms={"ocpp_version": version},
            sections={"diagnostics": {"retries": 0, "transfer_timeout": 30.0}},
        )
        proc = StationProcess(cfg, tmp_path / "daemon.log")
        try:
            proc.start()
            await csms.wait_for("StatusNotification", timeout=30)
            with silent_server() as location:
                if action == "GetDiagnostics":
                    answer = await csms.get_diagnostics(STATION_ID, location)
                    assert answer["fileName"]
                else:
                    answer = await csms.get_log(STATION_ID, location, request_id=77)
                    assert answer["status"] == "Accepted"
                await wait_until(lambda: csms.log_statuses(STATION_ID) == ["Uploading"], 15)
                proc.kill()
                boots = len(csms.messages("BootNotification"))
                proc.start()
                await wait_until(lambda: len(csms.messages("BootNotification")) > boots, 30)
                final = {"UploadFailure", "UploadFailed"}
                await wait_until(
                    lambda: bool(final & set(csms.log_statuses(STATION_ID))), 10, "a final status"
                )
                await asyncio.sleep(1.0)  # a second final status or upload would show now
                # a second kill and start: nothing more (the final status was queued once)
                proc.kill()
                boots = len(csms.messages("BootNotification"))
                proc.start()
                await wait_until(lambda: len(csms.messages("BootNotification")) > boots, 30)
                await asyncio.sleep(1.0)
        finally:
            proc.terminate()
    # each status delivered once: a message sent again after a kill took its acknowledgement
    # (the outbox's at-least-once, the same message) is a resend, not a second status
    log_actions = ("LogStatusNotification", "DiagnosticsStatusNotification")
    notes = [(i, r) for i, r in enumerate(csms.received) if r.action in log_actions]
    boot_at = [i for i, r in enumerate(csms.received) if r.action == "BootNotification"]
    order = check_order("log", [(i, str(r.payload["status"])) for i, r in notes], boot_at, 0)
    failed = "UploadFailed" if action == "GetDiagnostics" else "UploadFailure"
    assert order.problem is None, order.problem
    assert order.delivered == ["Uploading", failed]
    if action == "GetDiagnostics":
        assert {r.action for _, r in notes} == {"DiagnosticsStatusNotification"}
    else:
        assert {r.payload["requestId"] for _, r in notes} == {77}
    uploads = tmp_path / "state" / "uploads"
    assert not uploads.exists() or sorted(p.name for p in uploads.iterdir()) == []
