"""Meter faults, both OCPP versions: a meter that does not answer, fails a snapshot (each
failure status), reports event flags or an error code gives a Faulted connector and no
session without signed data; a clock that jumps during a session leaves it provable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.core import station as station_module
from meter.sim.device import SimulatedBsm
from meter.snapshot import SnapshotStatus
from tests.ocpp_views import VIEWS
from tests.station_env import Env, check_signed_pair, remote_session, running_env
from tests.station_harness import wait_until


@pytest.fixture(params=list(VIEWS))
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env(request.param, tmp_path) as e:
        yield e


def sim_of(env: Env, connector: int = 1) -> SimulatedBsm:
    station = env.daemon.station
    assert station is not None
    sim = station.connectors[connector].meter.sim
    assert isinstance(sim, SimulatedBsm)
    return sim


FAULTS: dict[str, dict[str, Any]] = {
    "snapshot status Invalid": {"snapshot_status": SnapshotStatus.INVALID},
    "snapshot status GeneralError": {"snapshot_status": SnapshotStatus.GENERAL_ERROR},
    "snapshot status NoDoeRelease": {"snapshot_status": SnapshotStatus.NO_DOE_RELEASE},
    "snapshot status WrongContactorFeedback": {
        "snapshot_status": SnapshotStatus.WRONG_CONTACTOR_FEEDBACK
    },
    "event flags": {"events": 0x40000},
    "error code": {"error_code": "00010000"},
    "no reply": {"no_reply": True},
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_meter_fault_faults_the_connector_and_bills_nothing(env: Env, fault: str) -> None:
    await env.start()
    for name, value in FAULTS[fault].items():
        setattr(sim_of(env).faults, name, value)
    await env.view.remote_start(1, "FAULT-1")
    await env.view.wait_status(1, env.view.faulted)
    await asyncio.sleep(0.3)
    assert not env.view.starts(), "no session without a signed Begin"
    _, status = await env.control("GET", "/status")
    connector = status["connectors"][0]
    assert connector["status"] == "Faulted" and connector["load_released"] is False
    assert connector["transaction"] is None
    assert connector["info"], "the reason is visible"


async def test_the_connector_comes_back_when_the_meter_is_fit_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(station_module, "METER_HEALTH_INTERVAL_S", 0.5)
    await env.start()
    sim = sim_of(env)
    sim.faults.events = 0x40000
    await env.view.remote_start(1, "FAULT-2")
    await env.view.wait_status(1, env.view.faulted)
    sim.faults.events = 0
    sim.faults.error_code = None
    mark = len(env.csms.received)
    await wait_until(
        lambda: bool(env.view.statuses(1, mark)) and env.view.statuses(1)[-1] != "Faulted",
        timeout=10,
        what="the connector back from Faulted",
    )
    session = await remote_session(env, 1, "FIT-1", seconds=0.2)
    check_signed_pair(session, await env.view.meter_key(1), "FIT-1")


async def test_a_meter_clock_that_jumps_during_a_session_keeps_it_provable(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(1)
    sim = sim_of(env)
    assert await env.view.remote_start(1, "JUMP-1") == "Accepted"
    started = await env.view.wait_started()
    offset = sim.nv.clock_offset or 0.0
    sim.nv.clock_offset = offset + 3600.0  # the meter's clock jumps an hour ahead
    await asyncio.sleep(0.3)
    assert await env.view.remote_stop(started.tx_id) == "Accepted"
    session = await env.view.wait_ended()
    check_signed_pair(session, key, "JUMP-1")  # signed, paired: the jump is in the records


async def test_crc_errors_on_the_meter_line_are_retried_and_the_session_is_signed(
    env: Env,
) -> None:
    """Line noise (a reply with a broken CRC, RTU framing) costs a retry, not the session."""
    await env.start()
    key = await env.view.meter_key(1)
    sim = sim_of(env)
    sim.faults.crc_errors = 1
    session = await remote_session(env, 1, "NOISE-1", seconds=0.3)
    check_signed_pair(session, key, "NOISE-1")
    assert sim.faults.crc_errors == 0, "the broken replies went out"
    sim.faults.crc_errors = 1
    await asyncio.sleep(0.1)
    mark = len(env.csms.received)
    second = await remote_session(env, 1, "NOISE-2", seconds=0.3, n=2)
    check_signed_pair(second, key, "NOISE-2")
    assert "Faulted" not in env.view.statuses(1, mark)
