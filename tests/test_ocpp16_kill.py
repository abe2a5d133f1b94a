"""The daemon killed with SIGKILL before and after each step of a session, then restarted:
every started session gets exactly one StopTransaction with signed Begin and End values."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from chargepoint.control import ControlAddress, request
from chargepoint.testcsms import Received, TestCsms
from meter.keys import load_public_key
from meter.ocmf import parse_ocmf, verify_ocmf
from tests.station_harness import (
    STATION_ID,
    StationProcess,
    meter_key,
    signed_values,
    station_yaml,
    wait_until,
)


class Bench:
    def __init__(self, csms: TestCsms, tmp: Path) -> None:
        self.csms = csms
        self.tmp = tmp
        cfg = station_yaml(
            tmp / "station.yaml", csms.url, tmp / "state", sign_delay=0.3, connectors=1
        )
        self.proc = StationProcess(cfg, tmp / "daemon.log")
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

    async def quiet(self, timeout: float = 30) -> dict[str, Any]:
        """Wait until no session is open and the outbox is empty."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                _, status = await request(self.address, "GET", "/status")
            except OSError:
                status = {}
            if (
                status
                and status["outbox"] == 0
                and status["online"]
                and all(
                    c["transaction"] is None
                    and c["status"] in ("Available", "Preparing", "Finishing")
                    for c in status["connectors"]
                )
            ):
                return status
            if loop.time() > deadline:
                raise TimeoutError(f"station not quiet: {status}\n{self.proc.log_text()[-3000:]}")
            await asyncio.sleep(0.1)


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    csms = TestCsms()
    await csms.start()
    b = Bench(csms, tmp_path)
    try:
        yield b
    finally:
        if b.proc.proc is not None and b.proc.proc.poll() is None:
            b.proc.terminate()
        await csms.stop()


def sessions(csms: TestCsms) -> dict[tuple[Any, ...], list[int]]:
    """Logical sessions (a repeated StartTransaction has the same content) -> their ids."""
    by_content: dict[tuple[Any, ...], list[int]] = {}
    for tx_id, entry in sorted(csms.transaction_log().items()):
        start = entry["start"]
        key = (start["connectorId"], start["idTag"], start["meterStart"], start["timestamp"])
        by_content.setdefault(key, []).append(tx_id)
    return by_content


def check_invariants(csms: TestCsms, key_hex: str) -> int:
    """Returns the number of sessions checked."""
    key = load_public_key(key_hex)
    stops_by_id: dict[int, list[Received]] = {}
    for r in csms.messages("StopTransaction"):
        stops_by_id.setdefault(int(r.payload["transactionId"]), []).append(r)
    known = set(csms.transaction_log())
    assert set(stops_by_id) <= known, "StopTransaction for a transaction never started"
    for ids in sessions(csms).values():
        stopped = [i for i in ids if i in stops_by_id]
        assert len(stopped) == 1, f"session {ids}: {len(stopped)} transaction ids stopped"
        stops = stops_by_id[stopped[0]]
        payloads = {repr(s.payload) for s in stops}
        assert len(payloads) == 1, "a StopTransaction was repeated with other content"
        values = signed_values(stops[0].payload)
        assert set(values) == {"Transaction.Begin", "Transaction.End"}, stops[0].payload
        begin = parse_ocmf(values["Transaction.Begin"]["ocmf"])
        end = parse_ocmf(values["Transaction.End"]["ocmf"])
        for record in (begin, end):
            assert verify_ocmf(record, key).billable
        assert int(str(end.pagination)[1:]) == int(str(begin.pagination)[1:]) + 1
    return len(sessions(csms))


Step = Callable[[Bench], Awaitable[None]]


async def after_remote_start(b: Bench) -> None:
    await b.csms.wait_for("StatusNotification", lambda r: r.payload["status"] == "Preparing")


async def during_turn_on(b: Bench) -> None:
    await after_remote_start(b)
    await asyncio.sleep(0.15)  # the meter is signing the turn-on snapshot


async def after_start_transaction(b: Bench) -> None:
    await b.csms.wait_for("StartTransaction")


async def while_charging(b: Bench) -> None:
    await b.csms.wait_for("StatusNotification", lambda r: r.payload["status"] == "Charging")
    await asyncio.sleep(0.3)


async def after_remote_stop(b: Bench) -> None:
    await while_charging(b)
    ids = sorted(b.csms.transaction_log())
    await b.csms.call(STATION_ID, "RemoteStopTransaction", {"transactionId": ids[-1]})


async def during_turn_off(b: Bench) -> None:
    await after_remote_stop(b)
    await asyncio.sleep(0.15)


async def after_stop_transaction(b: Bench) -> None:
    await after_remote_stop(b)
    await b.csms.wait_for("StopTransaction")


STEPS: dict[str, Step] = {
    "after RemoteStart": after_remote_start,
    "during turn-on signing": during_turn_on,
    "after StartTransaction": after_start_transaction,
    "while charging": while_charging,
    "after RemoteStop": after_remote_stop,
    "during turn-off signing": during_turn_off,
    "after StopTransaction": after_stop_transaction,
}


@pytest.mark.parametrize("step", list(STEPS))
async def test_sigkill_at_each_step_loses_and_duplicates_nothing(bench: Bench, step: str) -> None:
    await bench.boot()
    key = await meter_key(bench.csms, 1)
    await bench.csms.call(
        STATION_ID, "RemoteStartTransaction", {"idTag": "KILL-1", "connectorId": 1}
    )
    await STEPS[step](bench)
    bench.proc.kill()
    await asyncio.sleep(0.2)
    await bench.boot()
    await bench.quiet()
    # one more complete session after the recovery: the meter still pairs begin and end
    await bench.csms.call(
        STATION_ID, "RemoteStartTransaction", {"idTag": "AFTER-1", "connectorId": 1}
    )
    await after_remote_stop(bench)
    await bench.quiet()
    assert check_invariants(bench.csms, key) >= 1
    assert bench.proc.terminate() == 0, bench.proc.log_text()[-2000:]
