"""The edges of a full disk that need no tmpfs: a held signed value is written as soon as the
store takes it (even while free space stays short), a security log line is never left half
written, and a CSMS answer the store cannot record keeps the connection and is retried."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from pathlib import Path
from typing import Any

import pytest

from chargepoint.core import security_events as security_module
from chargepoint.core.disk_space import DiskSpace, SpaceState
from chargepoint.core.security_events import SecurityEvents


async def test_a_held_end_is_written_once_the_store_takes_it_though_space_stays_short(
    tmp_path: Path,
) -> None:
    # far more than any disk has free: the state never goes back to ok
    space = DiskSpace(tmp_path, recheck_interval_s=0.02, min_free_bytes=2**62)
    attempts: list[int] = []

    async def write_end() -> str:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return "stored"

    checks = asyncio.create_task(space.run())
    try:
        assert await asyncio.wait_for(space.store("end", write_end, signed_values=1), 5) == "stored"
        assert space.held_signed_values == 0  # not left in memory
        assert space.state is SpaceState.FULL and space.refuses_sessions  # still short of space
    finally:
        checks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checks


class _Outbox:
    async def enqueue(self, kind: str, data: dict[str, Any], local_tx_id: int | None = None) -> int:
        return 1


def test_a_security_log_line_written_in_part_is_taken_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = SecurityEvents(tmp_path, _Outbox())
    first = security_module.SecurityEvent(
        "SettingSystemTime", "2026-12-04T08:00:00.000Z", None, False
    )
    events._append(first)
    before = events.path.read_bytes()
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:  # what a nearly full disk may do
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", short_write)
    second = security_module.SecurityEvent(
        "MemoryExhaustion", "2026-12-04T08:00:01.000Z", "x", True
    )
    with pytest.raises(OSError) as caught:
        events._append(second)
    assert caught.value.errno == errno.ENOSPC  # so the line is held, not lost
    assert events.path.read_bytes() == before  # no half line for the next one to join
    monkeypatch.setattr(os, "write", real_write)
    events._append(second)
    assert [e.event_type for e in events.entries()] == ["SettingSystemTime", "MemoryExhaustion"]


async def test_an_answer_the_full_store_cannot_record_keeps_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from chargepoint.csms import session as session_module
    from chargepoint.store import StoreFull
    from chargepoint.store.sessions import AsyncSessions
    from chargepoint.testcsms import TestCsms
    from tests.station_harness import InProcessStation, wait_until
    from tests.test_outbox_drain import delivery, queue_backlog, use_csms

    cfg, backlog = await queue_backlog("1.6", 40, tmp_path, values_per_session=10)
    monkeypatch.setattr(session_module, "STORE_FULL_RETRY_S", 0.05)
    real = AsyncSessions.set_csms_transaction_id
    refused: list[int] = []

    async def full_twice(self: AsyncSessions, local_id: int, transaction_id: int) -> None:
        if len(refused) < 2:
            refused.append(local_id)
            raise StoreFull("database or disk is full")
        await real(self, local_id, transaction_id)

    monkeypatch.setattr(AsyncSessions, "set_csms_transaction_id", full_twice)
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    use_csms(cfg, csms.url)
    station = InProcessStation(cfg)
    daemon = await station.start()
    try:
        assert daemon.store is not None
        store = daemon.store

        async def drained() -> bool:
            return await store.outbox_length() == 0

        for _ in range(200):
            if await drained():
                break
            await asyncio.sleep(0.05)
        await wait_until(lambda: len(refused) == 2, 5, "the full store")
        assert await drained()
    finally:
        await station.stop()
        await csms.stop()
    boots = [r for r in csms.received if r.action == "BootNotification"]
    assert len(boots) == 1  # one connection throughout: no reconnect loop
    starts = [r for r in csms.received if r.action == "StartTransaction"]
    assert len(starts) == backlog.sessions + 2  # the two unrecorded answers: sent again
    assert "storage full: " in caplog.text and "sending it again" in caplog.text
    d = delivery(csms, cfg, "1.6")
    assert d.problems == []
