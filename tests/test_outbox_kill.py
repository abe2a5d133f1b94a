"""Power loss during a backlog drain: the daemon (`chargepoint run`) drains a backlog queued
while the CSMS was away and is killed with SIGKILL at seeded points of the drain (after a
seeded number of messages reached the CSMS, so that acknowledgements are waiting for their
group), then restarted, until the backlog is gone. Every queued message reaches the CSMS, in
the outbox's order; a message whose acknowledgement was not yet written is sent again with the
same content (the CSMS de-duplicates it as after a lost answer), never with other content, and
at most one acknowledgement group of them per kill. The project's delivery audit agrees.

CHARGEPOINT_OUTBOX_KILLS (per OCPP version, default 4) and CHARGEPOINT_OUTBOX_BACKLOG
(default 800 messages) raise the run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from pathlib import Path

import pytest

from chargepoint.service.control import ControlAddress, request
from chargepoint.store.outbox import ACK_GROUP
from chargepoint.testcsms import TestCsms
from tests.delivery_audit import audit
from tests.ocpp_views import VIEWS, canonical
from tests.station_harness import StationProcess, wait_until
from tests.test_outbox_drain import DURABLE_ACTIONS, delivery, queue_backlog, use_csms

KILLS = int(os.environ.get("CHARGEPOINT_OUTBOX_KILLS", "4"))
BACKLOG = int(os.environ.get("CHARGEPOINT_OUTBOX_BACKLOG", "800"))


async def _outbox(address: ControlAddress) -> int | None:
    with contextlib.suppress(OSError, TimeoutError, KeyError):
        _, data = await request(address, "GET", "/status")
        if data.get("online"):
            return int(data["outbox"])
    return None


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("version", "seed"), [("1.6", 1916), ("2.0.1", 1920)])
async def test_sigkill_during_a_drain_loses_nothing_and_keeps_the_order(
    version: str, seed: int, tmp_path: Path
) -> None:
    cfg, backlog = await queue_backlog(version, BACKLOG, tmp_path, values_per_session=40)
    rng = random.Random(seed)
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    use_csms(cfg, csms.url)
    proc = StationProcess(cfg, tmp_path / "daemon.log")
    address = ControlAddress("unix:control.sock", tmp_path / "state")

    def durable() -> int:
        return sum(1 for r in csms.received if r.action in DURABLE_ACTIONS)

    kills = 0
    try:
        for _ in range(KILLS):
            target = durable() + rng.randint(1, max(2, BACKLOG // (KILLS + 1)))
            proc.start()
            await wait_until(lambda t=target: durable() >= t, 60, f"{target} messages")  # type: ignore[misc]
            delivered = {canonical(r.payload) for r in csms.received if r.action in DURABLE_ACTIONS}
            assert len(delivered) < backlog.messages, "killed after the drain: tested nothing"
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            proc.kill()
            kills += 1
        proc.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while await _outbox(address) != 0:
            assert loop.time() < deadline, f"backlog not drained\n{proc.log_text()[-3000:]}"
            await asyncio.sleep(0.1)
        view = VIEWS[version](csms)
        keys = {n: await view.meter_key(n) for n in (1, 2)}
        assert proc.terminate() == 0
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill()
        await csms.stop()
    assert kills == KILLS
    d = delivery(csms, cfg, version)
    assert d.problems == []
    assert d.lost == 0
    assert d.in_order_exactly_once, next(
        (i, e, r) for i, (e, r) in enumerate(zip(d.expected, d.received, strict=False)) if e != r
    )
    assert len(d.expected) >= backlog.messages
    assert d.duplicates <= kills * (ACK_GROUP + 1)
    a = audit(view, keys)
    assert a.problems == [], a.problems
    assert a.lost == 0
    assert a.sessions >= backlog.sessions and a.ended == a.sessions
