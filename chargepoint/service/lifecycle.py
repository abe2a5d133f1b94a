"""The daemon as a service: what it tells systemd, and how it stops.

Readiness: READY=1 follows `Daemon.start()`, i.e. the store is open, the meter buses are up and
every meter was asked for its identity and key (a meter that does not answer leaves its connector
Faulted and is named in STATUS=; waiting for it would only make systemd restart the station in a
loop while the CSMS hears nothing).

Progress (the watchdog): the event loop runs this check, the store's worker thread answers a
query, and the OCPP connection loop and the station's periodic loops are still running.

Stopping (SIGTERM, SIGINT), in this order:

1. The control interface closes: no new plug, id tag or stop from the charge controller or HMI.
2. With `shutdown.end_sessions: true`, every open session ends now (reason Reboot): the load is
   cut, the meter signs the turn-off, the end goes into the store, and the daemon waits up to
   `shutdown.flush_timeout` for the CSMS to take the queued messages.
   With `end_sessions: false` (the default) the OCPP connection closes, and meter operations in
   flight (a turn-on or turn-off being signed and stored) get up to `shutdown.grace_period` to
   finish. Open sessions stay open in the store and on the meter, which keeps counting; the next
   start takes their signed turn-off, so every Wh delivered lies between one signed Begin and one
   signed End.
3. Every task is cancelled, the meter buses are closed between requests, and the store is closed
   (each write was already durable when it returned, SQLite WAL with synchronous=FULL; closing
   checkpoints the WAL into the database file).

A second signal cuts steps 2's waits short; what did not finish is picked up at the next start as
after a power loss.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from chargepoint.config import StationConfig
from chargepoint.core.station import Station
from chargepoint.core.status import ConnectorStatus
from chargepoint.core.transaction import StopReason
from chargepoint.store import AsyncStore


class Stoppable(Protocol):
    async def stop(self) -> None: ...


class Notifier(Protocol):
    def status(self, status: str) -> bool: ...


class Daemon(Protocol):
    """What this module needs of the running daemon (`chargepoint.service.daemon.Daemon`)."""

    @property
    def config(self) -> StationConfig: ...
    @property
    def station(self) -> Station | None: ...
    @property
    def store(self) -> AsyncStore | None: ...
    @property
    def control(self) -> Stoppable | None: ...
    @property
    def adapter(self) -> Stoppable | None: ...
    @property
    def adapter_task(self) -> asyncio.Task[None] | None: ...
    @property
    def notifier(self) -> Notifier: ...


log = logging.getLogger("chargepoint.service.lifecycle")

POLL_S = 0.05


def meters_answering(daemon: Daemon) -> tuple[list[int], list[int]]:
    """Connector ids whose meter answered at start, and those whose meter did not."""
    station = daemon.station
    if station is None:
        return [], []
    ok = [cid for cid, c in station.connectors.items() if c.meter.driver.cached_identity]
    silent = [cid for cid in station.connectors if cid not in ok]
    return ok, silent


def ready_status(daemon: Daemon) -> str:
    """STATUS= for READY=1: the station, and which meters answered."""
    ok, silent = meters_answering(daemon)
    text = f"station {daemon.config.station.id}: {len(ok) + len(silent)} connector(s)"
    if ok:
        text += f", meters answering on {_ids(ok)}"
    if silent:
        text += f", NO meter answer on {_ids(silent)}"
    return text + f"; connecting to the CSMS (OCPP {daemon.config.csms.ocpp_version})"


async def describe(daemon: Daemon) -> str | None:
    """STATUS= while running: CSMS link, sessions, outbox, faulted connectors."""
    station, store = daemon.station, daemon.store
    if station is None or store is None:
        return None
    outbox = await store.outbox_length()
    sessions = sum(1 for c in station.connectors.values() if c.tx is not None)
    faulted = [cid for cid, c in station.connectors.items() if c.status is ConnectorStatus.FAULTED]
    text = (
        f"{'online' if station.is_online() else 'CSMS not connected'}, "
        f"{sessions} session(s) open, outbox {outbox}"
    )
    if faulted:
        text += f", Faulted: {_ids(faulted)}"
    return text


async def progress(daemon: Daemon) -> str | None:
    """None while the daemon makes progress; else what is stuck (the watchdog stops pinging)."""
    station, store = daemon.station, daemon.store
    if station is None or store is None:
        return "not started"
    adapter = daemon.adapter_task
    if adapter is None or adapter.done():
        return "the OCPP connection loop has ended"
    # the station's periodic loops (sampling, clock-aligned values, meter health, clocks)
    ended = station.ended_loops()
    if ended:
        return f"station loop(s) ended: {', '.join(ended)}"
    await store.outbox_length()  # a round trip through the store's worker thread
    return None


def meter_operations_in_flight(station: Station) -> list[int]:
    """Connectors busy with their meter: a start signing its turn-on (the EV is there) or a
    session signing its turn-off. A start still waiting for the EV is not: nothing was signed."""
    return [
        cid
        for cid, c in station.connectors.items()
        if c.lock.locked() and (c.plugged or (c.tx is not None and c.tx.begin is not None))
    ]


async def _until(done: asyncio.Event | None, hurry: asyncio.Event, timeout: float | None) -> None:
    """Wait for `done` (or just the time) unless `hurry` is set first."""
    waits = [asyncio.create_task(hurry.wait(), name="shutdown hurry")]
    if done is not None:
        waits.append(asyncio.create_task(done.wait(), name="shutdown step"))
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def _run_step(
    coro: Coroutine[Any, Any, None], name: str, hurry: asyncio.Event, timeout: float | None
) -> bool:
    """Run one shutdown step; False (and the step cancelled) when hurried or out of time."""
    finished = asyncio.Event()
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(lambda _: finished.set())
    await _until(finished, hurry, timeout)
    if task.done():
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %r", name, task.exception())
        return True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False


async def _poll(predicate: Callable[[], Awaitable[bool]], interval: float = POLL_S) -> None:
    while True:
        if await predicate():
            return
        await asyncio.sleep(interval)


async def shutdown(daemon: Daemon, hurry: asyncio.Event) -> None:
    """Steps 1 and 2 of stopping (see the module); `Daemon.stop()` does step 3."""
    cfg = daemon.config.shutdown
    if daemon.control is not None:
        await daemon.control.stop()
    station, store = daemon.station, daemon.store
    if station is None or store is None:
        return
    if cfg.end_sessions:
        open_sessions = [cid for cid, c in station.connectors.items() if c.tx is not None]
        if open_sessions:
            log.info(
                "shutdown.end_sessions: ending the session(s) on connector(s) %s (Reboot)",
                _ids(open_sessions),
            )
            daemon.notifier.status(f"stopping: ending the sessions on {_ids(open_sessions)}")
        ended = await _run_step(
            station.end_all(StopReason.REBOOT), "end sessions at shutdown", hurry, None
        )
        if not ended:
            log.warning("stopping at once: sessions not ended yet are ended at the next start")
        await _flush(daemon, hurry)
        return
    if daemon.adapter is not None:
        await daemon.adapter.stop()
    busy = meter_operations_in_flight(station)
    if busy:
        log.info(
            "waiting up to %.0f s for the meter(s) of connector(s) %s to finish",
            cfg.grace_period,
            _ids(busy),
        )
        daemon.notifier.status(f"stopping: meter operation in flight on {_ids(busy)}")

        async def settled() -> bool:
            return not meter_operations_in_flight(station)

        await _run_step(_poll(settled), "meter operations at shutdown", hurry, cfg.grace_period)
        left = meter_operations_in_flight(station)
        if left:
            log.warning(
                "connector(s) %s still busy with the meter after %.0f s; the next start "
                "completes it as after a power loss",
                _ids(left),
                cfg.grace_period,
            )
    kept = await station.keep_sessions_open()
    if kept:
        log.info(
            "session(s) %s stay open (shutdown.end_sessions is false): the next start resumes "
            "them when their meter still holds the same open turn-on",
            ", ".join(str(i) for i in kept),
        )


async def _flush(daemon: Daemon, hurry: asyncio.Event) -> None:
    """Give the CSMS up to `shutdown.flush_timeout` to take the queued messages."""
    store, station = daemon.store, daemon.station
    assert store is not None and station is not None
    timeout = daemon.config.shutdown.flush_timeout
    if await store.outbox_length() == 0:  # delivered already (or nothing was queued)
        log.info("every queued message was delivered to the CSMS")
        return
    daemon.notifier.status("stopping: delivering the queued messages to the CSMS")

    async def empty() -> bool:
        return await store.outbox_length() == 0

    await _run_step(_poll(empty), "outbox flush at shutdown", hurry, timeout)
    left = await store.outbox_length()
    if left:
        log.warning(
            "%d message(s) not delivered before stopping (%s); they are kept in the store and "
            "sent after the next start",
            left,
            "CSMS connected" if station.is_online() else "CSMS not connected",
        )
    else:
        log.info("every queued message was delivered to the CSMS")


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
