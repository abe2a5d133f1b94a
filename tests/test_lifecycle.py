"""The daemon as a systemd service: READY once started, WATCHDOG while it makes progress, a
journal log, `chargepoint health`, and what SIGTERM does with open sessions."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chargepoint.cli.main import main
from chargepoint.service import lifecycle
from chargepoint.service.control import ControlAddress, request
from chargepoint.testcsms import TestCsms
from tests.fake_systemd import ServiceProcess
from tests.ocpp_views import VIEWS, View
from tests.station_env import check_signed_pair
from tests.station_harness import InProcessStation, station_yaml, wait_until


def config(tmp: Path, csms: TestCsms, version: str = "1.6", **extra: Any) -> Path:
    """A station on the embedded simulator; `extra` adds top-level sections (shutdown)."""
    path = station_yaml(
        tmp / "station.yaml",
        csms.url,
        tmp / "state",
        sign_delay=extra.pop("sign_delay", 0.1),
        csms={"ocpp_version": version},
    )
    doc = yaml.safe_load(path.read_text())
    doc.update(extra)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
async def csms() -> AsyncIterator[TestCsms]:
    server = TestCsms()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """`chargepoint ARGV` (it runs its own event loop: in a thread); exit code and stdout."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    return code, capsys.readouterr().out


async def offline_status(capsys: pytest.CaptureFixture[str], cfg: Path) -> dict[str, Any]:
    code, out = await cli(capsys, "status", "--config", str(cfg), "--json")
    assert code == 0, out
    data: dict[str, Any] = json.loads(out)
    assert data["daemon"] == "not running"
    return data


async def booted(view: View) -> None:
    """The station is connected and its connector 1 reported Available."""
    await view.csms.wait_connected("CP-TEST-001", timeout=10)
    await wait_until(lambda: view.available in view.statuses(1), 10, "connector 1 Available")


async def signing_turn_on(state_dir: Path) -> None:
    """Wait until the EV on connector 1 is plugged in and no session is stored yet: the meter
    is signing the turn-on (for sign_delay seconds)."""
    address = ControlAddress("unix:control.sock", state_dir)
    for _ in range(500):
        _, status = await request(address, "GET", "/status")
        c = status["connectors"][0]
        if c["plugged"] and c["transaction"] is None:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"no turn-on signing seen: {status}")


async def test_systemd_sees_ready_watchdog_status_and_a_clean_stop(
    tmp_path: Path, csms: TestCsms, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, csms)
    service = ServiceProcess(cfg, tmp_path, watchdog_s=1.0)
    try:
        service.start()
        status = await service.ready()
        assert status.startswith("station CP-TEST-001: 2 connector(s), meters answering on 1, 2")
        systemd = service.systemd
        await systemd.wait_for(lambda f: f.count("WATCHDOG=1") >= 3, 10, "three WATCHDOG=1")
        await systemd.wait_for(
            lambda f: any(x.startswith("STATUS=online, 0 session(s) open") for x in f),
            10,
            "STATUS=online",
        )
        code, out = await cli(capsys, "health", "--config", str(cfg))
        assert code == 0, out
        assert out.startswith("healthy: station CP-TEST-001: online, outbox 0, connectors: 1")
        assert await service.stop() == 0
        assert "STOPPING=1" in systemd.fields()
    finally:
        service.close()
    lines = service.log().splitlines()
    assert "<6>chargepoint.service.daemon: station CP-TEST-001 running with 2 connectors" in lines
    assert "<6>chargepoint.service.daemon: stopped" in lines
    assert all(line[:3] in ("<6>", "<4>", "<7>") for line in lines), lines  # nothing went wrong
    code, out = await cli(capsys, "health", "--config", str(cfg))
    assert code == 1 and out.startswith("unhealthy: the daemon does not answer")


async def test_sigterm_lets_the_signing_finish_and_leaves_the_session_open(
    tmp_path: Path, csms: TestCsms, capsys: pytest.CaptureFixture[str]
) -> None:
    """shutdown.end_sessions false (the default): a turn-on being signed when SIGTERM comes is
    finished and stored, the session stays open, and the next start resumes it: the same
    transaction goes on and ends once, with the signed turn-off that pairs with its turn-on."""
    view = VIEWS["1.6"](csms)
    cfg = config(tmp_path, csms, sign_delay=1.5)
    service = ServiceProcess(cfg, tmp_path, watchdog_s=None)
    try:
        service.start()
        await service.ready()
        await booted(view)
        assert await view.remote_start(1, "TAG-1") == "Accepted"
        await signing_turn_on(tmp_path / "state")
        assert await service.stop() == 0
        assert "waiting up to 15 s for the meter(s) of connector(s) 1 to finish" in service.log()
        assert view.ends() == []
        status = await offline_status(capsys, cfg)
        assert [s["connector"] for s in status["open_sessions"]] == [1]
        # the next start resumes it: no end, the EV charges on, then the CSMS stops it
        service.start()
        await service.ready()
        await booted(view)
        await asyncio.sleep(1.0)
        assert view.ends() == [] and len(view.starts()) == 1
        session = await view.wait_started(1)
        assert "continues after the restart" in service.log()
        assert await view.remote_stop(session.tx_id) == "Accepted"
        ended = await view.wait_ended(1, timeout=30)
        assert ended.reason == "Remote"
        check_signed_pair(ended, await view.meter_key(1), "TAG-1")
        assert await service.stop() == 0
    finally:
        service.close()


@pytest.mark.parametrize("version", list(VIEWS))
async def test_sigterm_with_end_sessions_ends_and_delivers_before_exit(
    tmp_path: Path, csms: TestCsms, capsys: pytest.CaptureFixture[str], version: str
) -> None:
    view: View = VIEWS[version](csms)
    cfg = config(tmp_path, csms, version, shutdown={"end_sessions": True, "flush_timeout": 10})
    service = ServiceProcess(cfg, tmp_path, watchdog_s=None)
    try:
        service.start()
        await service.ready()
        await booted(view)
        assert await view.remote_start(1, "TAG-1") == "Accepted"
        await view.wait_started(1)
        key = await view.meter_key(1)
        await asyncio.sleep(0.3)
        assert await service.stop() == 0
    finally:
        service.close()
    ended = view.sessions()[0]  # received before the daemon exited
    assert ended.ends == 1 and ended.reason == "Reboot"
    check_signed_pair(ended, key, "TAG-1")
    assert "every queued message was delivered to the CSMS" in service.log()
    status = await offline_status(capsys, cfg)
    assert status["open_sessions"] == [] and status["outbox"] == 0


async def test_progress_names_what_stopped(tmp_path: Path, csms: TestCsms) -> None:
    station = InProcessStation(config(tmp_path, csms))
    daemon = await station.start()
    try:
        assert await lifecycle.progress(daemon) is None
        loops: list[asyncio.Task[None]] = getattr(daemon.station, "_loops")  # noqa: B009
        loops[0].cancel()
        await asyncio.gather(loops[0], return_exceptions=True)
        assert await lifecycle.progress(daemon) == "station loop(s) ended: meter sampling"
        task = daemon.adapter_task
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert await lifecycle.progress(daemon) == "the OCPP connection loop has ended"
    finally:
        await station.stop()


async def test_a_second_sigterm_stops_without_waiting(
    tmp_path: Path, csms: TestCsms, capsys: pytest.CaptureFixture[str]
) -> None:
    """end_sessions waits for the turn-off to be signed; a second SIGTERM cuts that short, and
    the next start completes the session as after a power loss."""
    view = VIEWS["1.6"](csms)
    cfg = config(tmp_path, csms, sign_delay=3.0, shutdown={"end_sessions": True})
    service = ServiceProcess(cfg, tmp_path, watchdog_s=None)
    try:
        service.start()
        await service.ready()
        await booted(view)
        assert await view.remote_start(1, "TAG-1") == "Accepted"
        await view.wait_started(1)
        assert service.proc is not None
        service.proc.send_signal(signal.SIGTERM)
        await wait_until(lambda: "ending the session(s)" in service.log(), 5, "the end begun")
        loop = asyncio.get_running_loop()
        hurried = loop.time()
        assert await service.stop() == 0  # the second SIGTERM
        assert loop.time() - hurried < 2.5  # the meter needs 3 s to sign the turn-off
        assert "second stop signal: stopping without waiting" in service.log()
        assert view.ends() == []
        service.start()
        await service.ready()
        ended = await view.wait_ended(1, timeout=30)
        assert ended.reason == "PowerLoss"
        check_signed_pair(ended, await view.meter_key(1), "TAG-1")
        assert await service.stop() == 0
    finally:
        service.close()
