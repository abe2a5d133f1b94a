"""A backlog queued while the CSMS was away drains in order, each message once, with the
acknowledgements written in groups; replies to no outstanding CALL are dropped.

Also the helpers the drain benchmarks and the kill test share: `queue_backlog` (a station whose
store holds a backlog queued offline by the core) and `delivery` (what the CSMS received
compared, message by message, with what the store holds)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from chargepoint.core import events
from chargepoint.core.security_events import SecurityEventType
from chargepoint.core.transaction import StopReason
from chargepoint.csms.ocpp201 import messages as m201
from chargepoint.csms.secured_link import OUTBOX_KIND, security_event_message
from chargepoint.service.daemon import STORE_FILE, Daemon
from chargepoint.store import AsyncStore, Store
from chargepoint.store.outbox import ACK_GROUP
from chargepoint.testcsms import Received, TestCsms
from tests.ocpp_views import canonical
from tests.station_harness import STATION_ID, InProcessStation, station_yaml, wait_until

DAY_S = 24 * 3600
SECURITY_EVENTS = (
    SecurityEventType.SETTING_SYSTEM_TIME,
    SecurityEventType.RESET_OR_REBOOT,
    SecurityEventType.TAMPER_DETECTION_ACTIVATED,
)
DURABLE_ACTIONS = frozenset(
    {
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
        "TransactionEvent",
        "SecurityEventNotification",
    }
)

# ---- a backlog, queued by the core while no CSMS is reachable --------------------------------


@dataclass
class Backlog:
    messages: int  # outbox length when the queueing stopped
    sessions: int
    meter_values: int
    security_events: int
    fill_seconds: float


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    await wait_until(predicate, timeout, what)


async def fill_backlog(
    daemon: Daemon, messages: int, *, span_s: float = DAY_S, values_per_session: int = 60
) -> Backlog:
    """Queue at least `messages` outbox messages on an offline daemon: sessions on every
    connector through the core (started, signed Begin, signed End), `values_per_session`
    meter values per session and one critical security event every 50 values, their
    timestamps spread over `span_s` seconds up to now (a time-compressed outage: sessions
    and events come from the core as they would, the periodic values at a compressed
    interval)."""
    station, store, security = daemon.station, daemon.store, daemon.security
    assert station is not None and store is not None and security is not None
    t0 = time.monotonic()
    connectors = sorted(station.connectors)
    per_round = len(connectors) * (values_per_session + 3)  # + started, begin, ended
    rounds = max(1, -(-(messages - await store.outbox_length()) // per_round))
    slot = span_s / rounds
    first = time.time() - span_s
    sessions = values = security_events = 0
    while await store.outbox_length() < messages or sessions == 0:
        round_start = first + sessions // len(connectors) * slot
        for cid in connectors:
            if not station.remote_start(f"OUTAGE-{sessions + cid}", cid):
                raise RuntimeError(f"connector {cid}: the offline start was refused")
        await _until(
            lambda: all(
                c.tx is not None and c.tx.begin is not None for c in station.connectors.values()
            ),
            30,
            "every connector's session to start signed",
        )
        for cid in connectors:
            c = station.connectors[cid]
            assert c.tx is not None
            samples = await station.read_meter(cid)
            for k in range(values_per_session):
                when = round_start + (k + 1) * slot / (values_per_session + 2)
                await store.enqueue(
                    events.TRANSACTION_METER_VALUES,
                    events.meter_values(
                        connector_id=cid,
                        timestamp=iso(when),
                        context="Sample.Periodic",
                        samples=samples,
                        offline=True,
                    ),
                    local_tx_id=c.tx.local_id,
                )
                values += 1
                if values % 50 == 0:
                    kind = SECURITY_EVENTS[security_events % len(SECURITY_EVENTS)]
                    await security.events.record(kind, f"outage event {security_events}")
                    security_events += 1
        for cid in connectors:
            station.stop_transaction(cid, StopReason.LOCAL)
        await _until(
            lambda: all(c.tx is None and not c.lock.locked() for c in station.connectors.values()),
            30,
            "every session to end",
        )
        sessions += len(connectors)
    return Backlog(
        await store.outbox_length(), sessions, values, security_events, time.monotonic() - t0
    )


async def queue_backlog(
    version: str,
    messages: int,
    tmp: Path,
    *,
    span_s: float = DAY_S,
    values_per_session: int = 60,
) -> tuple[Path, Backlog]:
    """A station config under `tmp` whose store holds a backlog of `messages`: the daemon ran
    in this process while no CSMS was reachable, and stopped."""
    cfg = station_yaml(
        tmp / "station.yaml",
        "ws://127.0.0.1:9/ocpp",  # nothing listens there: the station is offline
        tmp / "state",
        sign_delay=0.01,
        csms={"ocpp_version": version, "call_timeout": 10},
        ocpp={"allow_offline_tx_for_unknown_id": True},
        ev={"plug_in_delay": 0.0},
    )
    station = InProcessStation(cfg)
    daemon = await station.start()
    try:
        backlog = await fill_backlog(
            daemon, messages, span_s=span_s, values_per_session=values_per_session
        )
    finally:
        await station.stop()
    return cfg, backlog


def use_csms(cfg: Path, url: str) -> None:
    """Point the station at `url` (the test CSMS)."""
    doc = yaml.safe_load(cfg.read_text())
    doc["csms"]["url"] = url
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))


def store_path(cfg: Path) -> Path:
    return Path(yaml.safe_load(cfg.read_text())["store"]["state_dir"]) / STORE_FILE


# ---- what arrived, compared with what was queued -------------------------------------------


@dataclass
class Delivery:
    """The queued messages, each named by what identifies it on the wire, against what the
    CSMS received: `expected` in the outbox's order, `received` in arrival order."""

    expected: list[tuple[Any, ...]]
    received: list[tuple[Any, ...]]
    duplicates: int = 0  # the same message again, with the same content
    problems: list[str] = field(default_factory=list)

    @property
    def in_order_exactly_once(self) -> bool:
        return self.received == self.expected

    @property
    def lost(self) -> int:
        return len(set(self.expected) - set(self.received))


def _outbox_rows(path: Path) -> tuple[list[tuple[Any, ...]], dict[int, int]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT seq, kind, local_tx_id, data, status FROM outbox ORDER BY seq"
        ).fetchall()
        ids = dict(
            conn.execute(
                "SELECT csms_transaction_id, local_id FROM transactions"
                " WHERE csms_transaction_id IS NOT NULL"
            ).fetchall()
        )
    finally:
        conn.close()
    return rows, ids


def _stored_identity(
    version: str, kind: str, local_id: int | None, data: dict[str, Any], index: int
) -> tuple[Any, ...]:
    if kind == OUTBOX_KIND:
        payload = security_event_message(data, version)[1]
        return ("security", payload["type"], payload.get("techInfo"), payload["timestamp"])
    if version == "2.0.1":
        return ("tx", local_id, index)
    if kind == events.TRANSACTION_STARTED:
        return ("start", data["id_tag"])
    if kind == events.TRANSACTION_BEGIN_SIGNED:
        return ("begin", local_id)
    if kind == events.TRANSACTION_METER_VALUES:
        return ("values", local_id, data["timestamp"])
    if kind == events.TRANSACTION_ENDED:
        return ("stop", local_id)
    return ("other", kind, local_id)


def _received_identity(version: str, r: Received, ids: dict[int, int]) -> tuple[Any, ...]:
    p = r.payload
    if r.action == "SecurityEventNotification":
        return ("security", p["type"], p.get("techInfo"), p["timestamp"])
    if version == "2.0.1":
        tid = p["transactionInfo"]["transactionId"]
        return ("tx", m201.local_id_of(tid, STATION_ID), p["seqNo"])
    if r.action == "StartTransaction":
        return ("start", p["idTag"])
    local_id = ids.get(int(p["transactionId"]))
    if r.action == "StopTransaction":
        return ("stop", local_id)
    contexts = {sv.get("context") for mv in p["meterValue"] for sv in mv["sampledValue"]}
    if "Transaction.Begin" in contexts:
        return ("begin", local_id)
    return ("values", local_id, p["meterValue"][0]["timestamp"])


def delivery(csms: TestCsms, cfg: Path, version: str) -> Delivery:
    """Every message of the station's outbox (read from its store, the daemon stopped)
    against the transaction messages and security events the CSMS received. A message
    received again with the same content (sent again after a power loss before its
    acknowledgement was written) counts as a duplicate and is left out of `received`; one
    again with other content is a problem."""
    rows, ids = _outbox_rows(store_path(cfg))
    expected: list[tuple[Any, ...]] = []
    per_tx: dict[int, int] = {}
    result = Delivery(expected, [])
    for seq, kind, local_id, text, status in rows:
        index = 0
        if local_id is not None:
            index = per_tx.get(local_id, 0)
            per_tx[local_id] = index + 1
        if status != "sent":
            result.problems.append(f"outbox #{seq} ({kind}) is {status}")
        expected.append(_stored_identity(version, kind, local_id, json.loads(text), index))
    seen: dict[tuple[Any, ...], str] = {}
    for r in csms.received:
        if r.action not in DURABLE_ACTIONS or not csms.answered(r):
            continue
        identity = _received_identity(version, r, ids)
        content = canonical(r.payload)
        if identity in seen:
            result.duplicates += 1
            if seen[identity] != content:
                result.problems.append(f"{identity} delivered again with other content")
            continue
        seen[identity] = content
        result.received.append(identity)
    return result


# ---- the tests -------------------------------------------------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_backlog_drains_in_order_exactly_once(
    version: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg, backlog = await queue_backlog(version, 2000, tmp_path, values_per_session=120)
    assert backlog.messages >= 2000 and backlog.security_events > 0
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    use_csms(cfg, csms.url)
    caplog.set_level(logging.INFO, logger="chargepoint.ocpp")
    station = InProcessStation(cfg)
    daemon = await station.start()
    try:
        assert daemon.store is not None
        store = daemon.store

        def durable() -> int:
            return sum(1 for r in csms.received if r.action in DURABLE_ACTIONS)

        await wait_until(lambda: durable() >= backlog.messages, 120, "the backlog to drain")
        await wait_until(lambda: bool(daemon.adapter and daemon.adapter.accepted.is_set()), 5)
        for _ in range(100):
            if await store.outbox_length() == 0:
                break
            await asyncio.sleep(0.05)
        assert await store.outbox_length() == 0
    finally:
        await station.stop()
        await csms.stop()
    d = delivery(csms, cfg, version)
    assert d.problems == []
    assert d.duplicates == 0
    assert len(d.expected) >= backlog.messages
    assert d.in_order_exactly_once, next(
        (i, e, r) for i, (e, r) in enumerate(zip(d.expected, d.received, strict=False)) if e != r
    )
    # the log shows the drain's progress, not a line per message
    lines = [r.getMessage() for r in caplog.records if r.name == "chargepoint.ocpp"]
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]

    def counts(pattern: str) -> list[tuple[int, ...]]:
        found = (re.fullmatch(pattern, line) for line in lines)
        return [tuple(int(g.replace(",", "")) for g in f.groups()) for f in found if f]

    [(waiting,)] = counts(r"outbox: ([\d,]+) messages to deliver")
    assert waiting >= backlog.messages
    progress = counts(r"outbox: ([\d,]+) of ([\d,]+) delivered")
    assert [done for done, _ in progress] == [1000, 2000]
    assert all(total >= backlog.messages for _, total in progress)
    [(delivered,)] = counts(r"outbox: backlog delivered, ([\d,]+) messages in .*")
    assert delivered >= backlog.messages
    per_message = [line for line in info if line.startswith("-> ") and "<-" in line]
    assert len(per_message) < 50, per_message[:5]


async def test_acknowledgements_wait_for_their_group_and_go_before_any_later_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite"
    store = await AsyncStore.open(path, "CP-1")
    try:
        seqs = [await store.enqueue("k", {"n": n}) for n in range(5)]
        await store.mark_sent(seqs[0], response={"ok": 1})
        await store.mark_sent(seqs[1])
        # counted as sent at once, not yet on disk
        assert await store.outbox_length() == 3
        assert [m.seq for m in await store.pending()] == seqs[2:]
        assert (await store.message(seqs[0])) is not None
        assert (await store.message(seqs[0])).status == "sent"  # type: ignore[union-attr]
        with Store.open_read_only(path, "CP-1") as other:  # what a power loss would leave
            assert other.outbox_length() == 5
        # the next write carries them, before its own change
        await store.enqueue("k", {"n": 5})
        with Store.open_read_only(path, "CP-1") as other:
            assert other.outbox_length() == 4
            assert other.message(seqs[0]).response == {"ok": 1}  # type: ignore[union-attr]
        await store.mark_sent(seqs[2])
        await store.flush_acks()
        with Store.open_read_only(path, "CP-1") as other:
            assert other.outbox_length() == 3
        # a full group goes to disk by itself
        many = [await store.enqueue("k", {"n": n}) for n in range(ACK_GROUP)]
        for seq in many:
            await store.mark_sent(seq)
        with Store.open_read_only(path, "CP-1") as other:
            assert other.outbox_length() == 3
        await store.mark_sent(seqs[3])
    finally:
        await store.close()
    with Store.open_read_only(path, "CP-1") as other:  # closing writes what waited
        assert other.outbox_length() == 2


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_replies_to_no_outstanding_call_are_dropped(
    version: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    cfg = station_yaml(
        tmp_path / "station.yaml", csms.url, tmp_path / "state", csms={"ocpp_version": version}
    )
    station = InProcessStation(cfg)
    daemon = await station.start()
    try:
        await csms.wait_connected(STATION_ID)
        assert daemon.adapter is not None
        await asyncio.wait_for(daemon.adapter.accepted.wait(), 10)
        caplog.clear()
        for n in range(30):
            # no answer is due to a reply: send them without waiting for one
            await csms.send_raw(STATION_ID, json.dumps([3, f"never-sent-{n}", {}]), 0.005)
            stray_error = [4, f"never-sent-e{n}", "GenericError", "", {}]
            await csms.send_raw(STATION_ID, json.dumps(stray_error), 0.005)
        trigger = {"requestedMessage": "Heartbeat"}
        beats = len(csms.messages("Heartbeat"))
        await csms.call(STATION_ID, "TriggerMessage", trigger)
        await wait_until(lambda: len(csms.messages("Heartbeat")) > beats, 10, "a Heartbeat")
        await asyncio.sleep(0.2)
        # the Heartbeat got its own answer, not a stray one, and nothing waits for the next CALL
        assert daemon.adapter.awaiting is None
        beats = len(csms.messages("Heartbeat"))
        await csms.call(STATION_ID, "TriggerMessage", trigger)
        await wait_until(lambda: len(csms.messages("Heartbeat")) > beats, 10, "a second Heartbeat")
        adapter = daemon.adapter
        await wait_until(lambda: adapter.awaiting is None, 10, "its answer taken")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors]
    finally:
        await station.stop()
        await csms.stop()
