"""GET /events (the charge controller's feed of charging limits) with a client that reads
slowly: it must end with every connector's limit in force, never an older one."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from chargepoint.core.charging.controller import ConnectorLimit
from chargepoint.service.control_charging import LimitStreams

CHANGES = 5_000  # per connector: far more than a client's socket buffers hold


class Feed:
    """The connectors' limits as SmartCharging gives them: the current ones, and a call to
    every subscriber at each change."""

    def __init__(self) -> None:
        self.current: dict[int, ConnectorLimit] = {}
        self.listeners: list[Callable[[ConnectorLimit], None]] = []

    def subscribe(self, listener: Callable[[ConnectorLimit], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def limits(self) -> dict[int, ConnectorLimit]:
        return dict(self.current)

    def change(self, connector: int, watts: float) -> None:
        limit = ConnectorLimit(connector, watts, watts / 690, 3, "EMS", datetime.now(UTC))
        self.current[connector] = limit
        for listener in list(self.listeners):
            listener(limit)


async def test_a_slow_reader_ends_with_the_limit_in_force(tmp_path: Path) -> None:
    feed = Feed()
    feed.change(1, 11_000.0)
    feed.change(2, 22_000.0)
    streams = LimitStreams(feed)
    app = web.Application()
    app.router.add_get("/events", streams.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    path = tmp_path / "control.sock"
    site = web.UnixSite(runner, str(path))
    await site.start()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(client, str(path))
        await loop.sock_sendall(client, b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # the client reads nothing while the limits change CHANGES times on each connector
        # (the server's writes fill its buffers and then wait)
        for n in range(1, CHANGES + 1):
            feed.change(1, 1_000.0 + n)
            feed.change(2, 2_000.0 + n)
            if n % 50 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.2)
        events = await _read_until(loop, client, lambda seen: _last(seen, 1) == 1_000.0 + CHANGES)
    finally:
        client.close()
        streams.close()
        await runner.cleanup()

    assert _last(events, 1) == 1_000.0 + CHANGES
    assert _last(events, 2) == 2_000.0 + CHANGES
    for connector in (1, 2):
        values = [e["limit_w"] for e in events if e["connector"] == connector]
        assert values == sorted(values), "an older limit came after a newer one"
    assert len(events) < 2 * CHANGES  # the replaced limits were skipped, not queued
    assert {e["event"] for e in events} == {"charging_limit"}


def _last(events: list[dict[str, Any]], connector: int) -> float | None:
    values = [e["limit_w"] for e in events if e["connector"] == connector]
    return values[-1] if values else None


async def _read_until(
    loop: asyncio.AbstractEventLoop,
    client: socket.socket,
    done: Callable[[list[dict[str, Any]]], bool],
) -> list[dict[str, Any]]:
    """The JSON lines of the stream (after its head) until `done` holds for them, or until
    nothing more comes for 5 s."""
    data = b""
    head: bytes | None = None
    events: list[dict[str, Any]] = []
    while not done(events):
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
        except TimeoutError:
            break  # nothing more comes: the caller's checks say what is missing
        assert chunk, "the stream ended"
        data += chunk
        if head is None:
            if b"\r\n\r\n" not in data:
                continue
            head, _, data = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and b"application/x-ndjson" in head
        *lines, data = data.split(b"\n")
        events += [json.loads(line) for line in lines]
    return events
