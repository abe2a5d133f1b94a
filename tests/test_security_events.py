"""The security log of the core: every event in the log file, critical ones also in the durable
outbox (in order, surviving a restart), the entries between two times for GetLog."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

from chargepoint.core.security_events import (
    OUTBOX_KIND,
    SecurityEvent,
    SecurityEvents,
    SecurityEventType,
    is_critical,
    name_16,
    outbox_event,
)
from chargepoint.store import AsyncStore


async def test_critical_events_go_to_the_outbox_in_order_and_all_to_the_log(
    tmp_path: Path,
) -> None:
    store = await AsyncStore.open(tmp_path / "s.sqlite", "CP-1")
    woken: list[int] = []
    events = SecurityEvents(tmp_path, store)
    events.outbox_changed = lambda: woken.append(1)
    await events.record(SecurityEventType.STARTUP_OF_THE_DEVICE)
    await events.record(SecurityEventType.INVALID_MESSAGES, "frame not JSON")
    tasks = [
        events.record_soon(SecurityEventType.SETTING_SYSTEM_TIME, f"meter {n}") for n in range(5)
    ]
    await asyncio.gather(*tasks)
    await events.record("MeterLogbookError", "connector 1")  # not in the spec: critical
    pending = await store.pending()
    assert [m.kind for m in pending] == [OUTBOX_KIND] * 7
    sent = [outbox_event(m.data) for m in pending]
    assert [e.event_type for e in sent] == [
        "StartupOfTheDevice",
        *["SettingSystemTime"] * 5,
        "MeterLogbookError",
    ]
    assert [e.tech_info for e in sent[1:6]] == [f"meter {n}" for n in range(5)]
    assert len(woken) == 7
    logged = events.entries()
    assert [e.event_type for e in logged][:2] == ["StartupOfTheDevice", "InvalidMessages"]
    assert len(logged) == 8 and not logged[1].critical
    await store.close()
    # the log survives a restart
    assert len(SecurityEvents(tmp_path, store).entries()) == 8


def test_payloads_per_version() -> None:
    event = SecurityEvent("InvalidCsmsCertificate", "2026-01-02T03:04:05.678Z", "x" * 300, False)
    assert event.payload("2.0.1") == {
        "type": "InvalidCsmsCertificate",
        "timestamp": "2026-01-02T03:04:05.678Z",
        "techInfo": "x" * 255,
    }
    assert event.payload("1.6")["type"] == "InvalidCentralSystemCertificate"
    assert name_16("InvalidChargingStationCertificate") == "InvalidChargePointCertificate"
    assert name_16("StartupOfTheDevice") == "StartupOfTheDevice"
    assert is_critical("TamperDetectionActivated") and not is_critical("InvalidMessages")


async def test_entries_between_two_times_and_rotation(tmp_path: Path) -> None:
    store = await AsyncStore.open(tmp_path / "s.sqlite", "CP-1")
    events = SecurityEvents(tmp_path, store, max_log_bytes=250)
    first = await events.record(SecurityEventType.INVALID_MESSAGES, "one")
    await asyncio.sleep(0.01)
    middle = await events.record(SecurityEventType.INVALID_MESSAGES, "two")
    await asyncio.sleep(0.01)
    last = await events.record(SecurityEventType.INVALID_MESSAGES, "three")
    assert events.path.with_name("security.log.1").exists()  # rotated at 250 bytes
    everything = await events.entries_between()
    assert [e.tech_info for e in everything] == ["one", "two", "three"]
    assert [e.tech_info for e in await events.entries_between(middle.at, middle.at)] == ["two"]
    assert [e.tech_info for e in await events.entries_between(None, first.at)] == ["one"]
    assert [e.tech_info for e in await events.entries_between(last.at, None)] == ["three"]
    later = last.at + dt.timedelta(seconds=1)
    assert await events.entries_between(later, None) == []
    # a line cut by a power loss is skipped
    with events.path.open("a") as f:
        f.write('{"type": "Cut')
    assert len(events.entries()) == 3
    json.loads(events.path.read_text().splitlines()[0])
    await store.close()
