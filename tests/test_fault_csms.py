"""CSMS faults, both OCPP versions: a long outage (time-compressed: hours of periodic values
queued), broken answers to transaction messages, a CSMS that drops the connection while
messages are in flight. The station recovers and delivers its backlog in order, nothing
lost, nothing flagged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chargepoint.core import events
from chargepoint.store import utc_now
from tests.delivery_audit import audit
from tests.ocpp_views import VIEWS
from tests.station_env import Env, running_env
from tests.station_harness import STATION_ID, wait_until

BACKLOG = 720  # an outage of two hours at one periodic value every 10 s


@pytest.fixture(params=list(VIEWS))
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env(request.param, tmp_path) as e:
        yield e


def periodic_values(env: Env, tx_id: str) -> list[int]:
    """The energy values of the session's periodic messages, in arrival order."""
    found: list[int] = []
    for r in env.csms.received:
        if not env.csms.answered(r):
            continue
        if env.version == "1.6" and r.action == "MeterValues":
            if str(r.payload.get("transactionId")) != tx_id:
                continue
        elif env.version == "2.0.1" and r.action == "TransactionEvent":
            if r.payload["transactionInfo"]["transactionId"] != tx_id:
                continue
            if r.payload.get("triggerReason") != "MeterValuePeriodic":
                continue
        else:
            continue
        for mv in r.payload.get("meterValue", []):
            for sv in mv["sampledValue"]:
                if sv.get("context") == "Sample.Periodic":
                    found.append(int(float(sv["value"])))
    return found


async def test_hours_of_outage_are_delivered_in_order_when_the_csms_returns(env: Env) -> None:
    daemon = await env.start(csms={"reconnect_max_delay": 1.0})
    key = {n: await env.view.meter_key(n) for n in (1, 2)}
    await env.view.remote_start(1, "LONG-1")
    started = await env.view.wait_started()
    await env.outbox_drained()
    env.csms.refuse_connections(True)
    await env.csms.disconnect(STATION_ID)
    await wait_until(lambda: not env.csms.is_connected(STATION_ID), what="offline")
    station, store = daemon.station, daemon.store
    assert station is not None and store is not None
    tx = station.connectors[1].tx
    assert tx is not None
    for n in range(BACKLOG):  # what the sampling loop queues over two hours offline
        sample: events.Sample = {
            "measurand": "Energy.Active.Import.Register",
            "value": str(100_000 + n),
            "unit": "Wh",
        }
        await store.enqueue(
            events.TRANSACTION_METER_VALUES,
            events.meter_values(
                connector_id=1,
                timestamp=utc_now(),
                context="Sample.Periodic",
                samples=[sample],
                offline=True,
            ),
            local_tx_id=tx.local_id,
        )
    await env.control("POST", "/connectors/1/stop")
    await asyncio.sleep(1.5)  # reconnect attempts run into the refusal
    env.csms.refuse_connections(False)
    await env.outbox_drained(timeout=60)
    session = await env.view.wait_ended()
    values = periodic_values(env, started.tx_id)
    assert values == [100_000 + n for n in range(BACKLOG)], "all of them, once, in order"
    last_value = max(i for i, r in enumerate(env.csms.received) if env.view.is_end(r))
    assert env.view.is_end(env.csms.received[last_value]) and session.ends == 1
    result = audit(env.view, key)
    assert result.problems == [] and result.lost == 0


async def test_broken_answers_are_no_answers_and_nothing_is_lost(env: Env) -> None:
    await env.start(csms={"call_timeout": 1}, ocpp={"transaction_message_attempts": 5})
    key = {n: await env.view.meter_key(n) for n in (1, 2)}
    await env.view.remote_start(1, "BROKEN-1")
    started = await env.view.wait_started()
    await env.outbox_drained()
    env.csms.garble_next(
        env.view.end_action,
        [
            "not json at all",
            '[3, "some-other-call", {}]',
            "[3, {id}]",
            '[3, {id}, "not an object"]',
        ],
    )
    await env.view.remote_stop(started.tx_id)
    session = await env.view.wait_ended(timeout=40)
    await env.outbox_drained(timeout=20)
    _, status = await env.control("GET", "/status")
    assert status["failed_messages"] == 0
    assert session.ends == 1
    result = audit(env.view, key)
    assert result.problems == [] and result.lost == 0
    assert env.csms.is_connected(STATION_ID)
