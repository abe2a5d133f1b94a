"""The systemd notification protocol against a real datagram socket, and the watchdog that
pings only while the daemon makes progress."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chargepoint.service.sd_notify import SdNotifier, Watchdog, watchdog_interval
from tests.fake_systemd import FakeSystemd


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[FakeSystemd, str]]:
    path = str(tmp_path / "notify")
    fake = FakeSystemd(path)
    yield fake, path
    fake.close()


def test_messages_reach_the_socket(systemd: tuple[FakeSystemd, str]) -> None:
    fake, path = systemd
    notifier = SdNotifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.ready("station CP-1: 2 connector(s)\nmeters answering on 1, 2")
    assert notifier.watchdog()
    assert notifier.stopping("stopping")
    assert fake.messages() == [
        "READY=1\nSTATUS=station CP-1: 2 connector(s) meters answering on 1, 2",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_abstract_socket_names_start_with_at() -> None:
    name = f"chargepoint-test-{os.getpid()}"
    fake = FakeSystemd(b"\0" + name.encode())
    try:
        assert SdNotifier(f"@{name}").status("online")
        assert fake.messages() == ["STATUS=online"]
    finally:
        fake.close()


def test_without_systemd_nothing_is_sent() -> None:
    notifier = SdNotifier.from_environment({})
    assert not notifier.enabled
    assert not notifier.ready("x")


def test_a_vanished_socket_is_logged_once_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SdNotifier(str(tmp_path / "gone"))
    with caplog.at_level(logging.WARNING, "chargepoint.service.sd_notify"):
        assert not notifier.watchdog()
        assert not notifier.watchdog()
    assert len(caplog.records) == 1
    assert "cannot notify systemd" in caplog.records[0].getMessage()


def test_watchdog_interval_comes_from_systemd() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": pid}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({}) is None


async def test_watchdog_pings_only_while_the_probe_sees_progress(
    systemd: tuple[FakeSystemd, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, path = systemd
    stuck: list[str | None] = [None]

    async def probe() -> str | None:
        return stuck[0]

    async def describe() -> str | None:
        return "online, 0 session(s) open, outbox 0"

    dog = Watchdog(SdNotifier(path), 0.1, probe, describe)
    task = asyncio.create_task(dog.run())
    try:
        await asyncio.sleep(0.22)
        healthy = fake.messages()
        assert healthy.count("WATCHDOG=1") >= 3
        assert "STATUS=online, 0 session(s) open, outbox 0" in healthy
        with caplog.at_level(logging.WARNING, "chargepoint.service.sd_notify"):
            stuck[0] = "the OCPP connection loop has ended"
            await asyncio.sleep(0.22)
            assert fake.messages() == ["STATUS=stuck: the OCPP connection loop has ended"]
            stuck[0] = None
            await asyncio.sleep(0.12)
        assert "WATCHDOG=1" in fake.messages()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    logged = [r.getMessage() for r in caplog.records]
    assert logged == [
        "watchdog: no progress (the OCPP connection loop has ended); not pinging systemd",
        "watchdog: progress again (the OCPP connection loop has ended cleared)",
    ]


async def test_a_probe_that_hangs_or_fails_stops_the_pings(
    systemd: tuple[FakeSystemd, str],
) -> None:
    fake, path = systemd
    mode = ["hang"]

    async def probe() -> str | None:
        if mode[0] == "hang":
            await asyncio.sleep(10)
        raise RuntimeError("store closed")

    dog = Watchdog(SdNotifier(path), 0.1, probe)
    task = asyncio.create_task(dog.run())
    try:
        await asyncio.sleep(0.2)
        assert dog.problem == "the progress check took longer than 0.1 s"
        mode[0] = "fail"
        await asyncio.sleep(0.2)
        assert dog.problem == "the progress check failed: RuntimeError: store closed"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert "WATCHDOG=1" not in fake.messages()
    assert dog.pings == 0
