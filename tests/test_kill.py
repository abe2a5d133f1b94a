"""The daemon killed with SIGKILL before and after each step of a session, then restarted, on
OCPP 1.6J and 2.0.1: every started session gets exactly one end message (StopTransaction /
TransactionEvent Ended) with signed Begin and End values, and no message is repeated with
other content."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from chargepoint.service.control import ControlAddress, request
from chargepoint.testcsms import Received, TestCsms
from meter.proof.keys import load_public_key
from meter.proof.ocmf import parse_ocmf, verify_ocmf
from tests.ocpp_views import VIEWS, View, canonical
from tests.station_harness import (
    STATION_ID,
    StationProcess,
    signed_values,
    station_yaml,
    wait_until,
)


class Bench:
    def __init__(self, csms: TestCsms, view: View, tmp: Path) -> None:
        self.csms = csms
        self.view = view
        self.tmp = tmp
        cfg = station_yaml(
            tmp / "station.yaml",
            csms.url,
            tmp / "state",
            sign_delay=0.3,
            connectors=1,
            csms={"ocpp_version": view.version},
        )
        self.proc = StationProcess(cfg, tmp / "daemon.log")
        self.address = ControlAddress("unix:control.sock", tmp / "state")

        self.mark = self.starts = self.ends = 0

    def remember(self) -> None:
        """Where the next session's messages begin."""
        self.mark = len(self.csms.received)
        self.starts = len(self.view.starts())
        self.ends = len(self.view.ends())

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


def sessions(csms: TestCsms) -> dict[tuple[Any, ...], list[int]]:
    """Logical sessions (a repeated StartTransaction has the same content) -> their ids."""
    by_content: dict[tuple[Any, ...], list[int]] = {}
    for tx_id, entry in sorted(csms.transaction_log().items()):
        start = entry["start"]
        key = (start["connectorId"], start["idTag"], start["meterStart"], start["timestamp"])
        by_content.setdefault(key, []).append(tx_id)
    return by_content


def check_pair(values: dict[str, dict[str, Any]], key_hex: str) -> None:
    assert set(values) == {"Transaction.Begin", "Transaction.End"}, values
    key = load_public_key(key_hex)
    begin = parse_ocmf(values["Transaction.Begin"]["ocmf"])
    end = parse_ocmf(values["Transaction.End"]["ocmf"])
    for record in (begin, end):
        assert verify_ocmf(record, key).billable
    assert int(str(end.pagination)[1:]) == int(str(begin.pagination)[1:]) + 1


def check_invariants_201(view: View, key_hex: str) -> int:
    """Transaction ids are the station's own (stable across restarts): each transaction has
    one Started, its Ended (repeated only with the same content), and seqNos without gaps."""
    sessions = view.sessions()
    for session in sessions:
        events = session.payloads
        assert session.starts >= 1, f"{session.tx_id}: no Started"
        started = {canonical(e) for e in events if e["eventType"] == "Started"}
        assert len(started) == 1, f"{session.tx_id}: Started repeated with other content"
        ended = {canonical(e) for e in events if e["eventType"] == "Ended"}
        assert len(ended) == 1, f"{session.tx_id}: {len(ended)} different Ended"
        seq_nos = sorted({int(e["seqNo"]) for e in events})
        assert seq_nos == list(range(len(seq_nos))), f"{session.tx_id}: seqNo gaps {seq_nos}"
        check_pair(session.signed, key_hex)
    return len(sessions)


def check_invariants(view: View, key_hex: str) -> int:
    """Returns the number of sessions checked."""
    if view.version == "2.0.1":
        return check_invariants_201(view, key_hex)
    csms = view.csms
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
        check_pair(signed_values(stops[0].payload), key_hex)
    return len(sessions(csms))


Step = Callable[[Bench], Awaitable[None]]


async def after_remote_start(b: Bench) -> None:
    occupied = b.view.session_statuses[0]
    await wait_until(lambda: occupied in b.view.statuses(1, b.mark), what=occupied)


async def during_turn_on(b: Bench) -> None:
    await after_remote_start(b)
    await asyncio.sleep(0.15)  # the meter is signing the turn-on snapshot


async def after_start_transaction(b: Bench) -> None:
    await wait_until(lambda: len(b.view.starts()) > b.starts, what="the start message")


async def while_charging(b: Bench) -> None:
    await after_start_transaction(b)
    await asyncio.sleep(0.3)


async def after_remote_stop(b: Bench) -> None:
    await while_charging(b)
    await b.view.remote_stop(b.view.sessions()[-1].tx_id)


async def during_turn_off(b: Bench) -> None:
    await after_remote_stop(b)
    await asyncio.sleep(0.15)


async def after_stop_transaction(b: Bench) -> None:
    await after_remote_stop(b)
    await wait_until(lambda: len(b.view.ends()) > b.ends, what="the end message")


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
    key = await bench.view.meter_key(1)
    bench.remember()
    await bench.view.remote_start(1, "KILL-1")
    await STEPS[step](bench)
    bench.proc.kill()
    await asyncio.sleep(0.2)
    await bench.boot()
    await bench.quiet()
    # one more complete session after the recovery: the meter still pairs begin and end
    bench.remember()
    await bench.view.remote_start(1, "AFTER-1")
    await after_remote_stop(bench)
    await bench.quiet()
    assert check_invariants(bench.view, key) >= 1
    assert bench.proc.terminate() == 0, bench.proc.log_text()[-2000:]
