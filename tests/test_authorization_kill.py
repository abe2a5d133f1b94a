"""The local list, reservations and offline starts survive kill -9 (SIGKILL, the daemon as a
real process), on OCPP 1.6J and 2.0.1: after the restart the list and its version are there,
an active reservation still holds its connector, one that expired while the daemon was down
has ended (2.0.1: ReservationStatusUpdate Expired, once), and a session started offline from
the local list reaches the CSMS exactly once with its signed values."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chargepoint.service.control import ControlAddress, request
from chargepoint.testcsms import TestCsms
from chargepoint.testcsms.authorization import ListItem, TagAnswer
from tests.authorization_env import in_seconds
from tests.ocpp_views import VIEWS, View
from tests.station_env import check_signed_pair
from tests.station_harness import STATION_ID, StationProcess, station_yaml, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent


class Bench:
    def __init__(self, csms: TestCsms, view: View, tmp: Path) -> None:
        self.csms = csms
        self.view = view
        self.config = station_yaml(
            tmp / "station.yaml",
            csms.url,
            tmp / "state",
            csms={"ocpp_version": view.version},
        )
        self.proc = StationProcess(self.config, tmp / "daemon.log")
        self.address = ControlAddress("unix:control.sock", tmp / "state")

    async def boot(self) -> None:
        boots = len(self.csms.messages("BootNotification"))
        self.proc.start()
        await wait_until(
            lambda: len(self.csms.messages("BootNotification")) > boots,
            timeout=30,
            what="BootNotification",
        )
        await self.csms.wait_connected(STATION_ID, timeout=10)
        await self.online(True)

    async def start_offline(self) -> None:
        """Start the daemon while the CSMS refuses it: it runs on its own."""
        self.proc.start()
        await wait_until(lambda: self.proc.proc is not None, what="process")
        for _ in range(300):
            try:
                await self.status()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise TimeoutError(self.proc.log_text()[-3000:])

    async def status(self) -> dict[str, Any]:
        _, data = await request(self.address, "GET", "/status")
        return data

    async def online(self, wanted: bool) -> None:
        for _ in range(300):
            try:
                if (await self.status())["online"] is wanted:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise TimeoutError(f"online is not {wanted}: {self.proc.log_text()[-3000:]}")

    async def present(self, id_tag: str, connector: int | None = None) -> tuple[int, str]:
        body: dict[str, Any] = {"id_tag": id_tag}
        if connector is not None:
            body["connector"] = connector
        code, data = await request(self.address, "POST", "/id-tag", body)
        return code, str(data.get("result") or data.get("error"))

    async def connector(self, connector: int, wanted: str) -> None:
        for _ in range(300):
            if (await self.status())["connectors"][connector - 1]["status"] == wanted:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"connector {connector} not {wanted}: {await self.status()}")

    def status_command(self) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "chargepoint", "status", "--config", str(self.config)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
        )
        return done.stdout


@pytest.fixture(params=list(VIEWS))
async def bench(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bench]:
    csms = TestCsms()
    await csms.start()
    b = Bench(csms, VIEWS[request.param](csms), tmp_path)
    try:
        yield b
    finally:
        if b.proc.proc is not None and b.proc.proc.poll() is None:
            b.proc.terminate()
        await csms.stop()


async def test_list_reservations_and_offline_sessions_survive_kill_9(bench: Bench) -> None:
    csms, view = bench.csms, bench.view
    await bench.boot()
    key = await view.meter_key(2)
    items = [
        ListItem("KILL-OK"),
        ListItem("BOB"),
        ListItem("ALICE"),
        ListItem("STOLEN", TagAnswer("Blocked")),
    ]
    assert (await csms.send_local_list(STATION_ID, 3, items))["status"] == "Accepted"
    assert await csms.reserve_now(STATION_ID, 11, "ALICE", in_seconds(600), connector=1) == (
        "Accepted"
    )
    short = in_seconds(2.5)
    assert await csms.reserve_now(STATION_ID, 12, "CAROL", short, connector=2) == "Accepted"
    await bench.connector(2, "Reserved")
    bench.proc.kill()
    expiry = datetime.fromisoformat(short.replace("Z", "+00:00"))
    await wait_until(lambda: datetime.now(UTC) > expiry, timeout=10, what="expiry while down")

    # restart: the list is there, reservation 11 holds connector 1, 12 has expired
    await bench.boot()
    await bench.connector(1, "Reserved")
    await bench.connector(2, "Available")
    shown = bench.status_command()
    assert "local list: version 3, 4 entries" in shown, shown
    assert "reservation 11: connector 1 for ALICE until" in shown, shown
    assert "reservation 12" not in shown
    if view.version == "2.0.1":
        await wait_until(lambda: bool(csms.reservation_updates(STATION_ID)), what="update")
    assert await csms.get_local_list_version(STATION_ID) == 3

    # offline: the listed card starts (on the free connector), another is refused at 1
    csms.refuse_connections(True)
    await csms.disconnect(STATION_ID)
    await bench.online(False)
    code, text = await bench.present("BOB", 1)
    assert code == 409 and "reserved for another card" in text, text
    assert await bench.present("STOLEN", 2) == (409, "rejected: blocked in local list")
    code, text = await bench.present("NOBODY", 2)
    assert (code, text) == (409, "rejected: not in local list and offline unknown ids not allowed")
    code, text = await bench.present("KILL-OK")
    assert code == 200 and "connector 2" in text and "local list (version 3)" in text, text
    await bench.connector(2, "Charging")
    await asyncio.sleep(0.3)
    bench.proc.kill()  # power loss during the offline session

    # back with the CSMS: the session ends (PowerLoss) and reaches the CSMS exactly once
    csms.refuse_connections(False)
    await bench.boot()
    session = await view.wait_ended(timeout=30)
    check_signed_pair(session, key, "KILL-OK")
    assert session.reason == view.reasons["PowerLoss"]
    await asyncio.sleep(1.0)
    assert len(view.starts()) == 1 and len(view.ends()) == 1
    if view.version == "2.0.1":
        assert view.starts()[0].payload["offline"] is True
        assert csms.reservation_updates(STATION_ID) == [(12, "Expired")]  # once
    await bench.connector(1, "Reserved")  # 11 still holds connector 1, for ALICE
    code, text = await bench.present("ALICE")
    assert code == 200 and "connector 1" in text and "reservation 11" in text, text
    await wait_until(lambda: len(view.starts()) == 2, timeout=20, what="ALICE's start")
    assert view.starts()[1].payload.get("reservationId") == 11
    assert await csms.cancel_reservation(STATION_ID, 11) == "Rejected"  # used
