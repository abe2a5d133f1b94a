"""What the control interface and `chargepoint control` / `status` tell a person: why a card is
refused on a connector, which connector numbers exist, that there is no session to stop, the
last meter error; and a stop from the control interface is logged like a remote stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meter.sim.device import SimulatedBsm
from tests.station_env import Env, cli, running_env

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env("1.6", tmp_path) as e:
        yield e


async def test_a_card_on_a_faulted_connector_is_told_why(env: Env) -> None:
    await env.start()
    code, _ = await env.control("POST", "/connectors/1/fault", {"info": "RCM tripped"})
    assert code == 200
    code, data = await env.control("POST", "/id-tag", {"id_tag": "CARD-1", "connector": 1})
    assert code == 409
    assert data["result"] == "rejected: connector 1 is Faulted (RCM tripped)"


async def test_connector_numbers_and_missing_sessions(env: Env) -> None:
    await env.start()
    code, data = await env.control("POST", "/connectors/abc/plug")
    assert (code, data["error"]) == (404, "connector must be a number 1..2")
    code, data = await env.control("POST", "/connectors/7/plug")
    assert (code, data["error"]) == (404, "connector must be a number 1..2")
    code, data = await env.control("POST", "/connectors/1/stop")
    assert (code, data["error"]) == (409, "no session on connector 1")

    plug = await asyncio.to_thread(cli, env, "control", "plug", "abc")
    assert plug.returncode == 2
    assert plug.stderr == "control: connector must be a number 1..2\n"
    stop = await asyncio.to_thread(cli, env, "control", "stop", "1")
    assert stop.returncode == 1
    assert stop.stderr == "control: no session on connector 1\n"


async def test_a_control_stop_is_logged_like_a_remote_stop(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    await env.start()
    caplog.set_level(logging.INFO)
    assert await env.view.remote_start(1, "TAG-1") == "Accepted"
    started = await env.view.wait_started(1)
    assert await env.view.remote_stop(started.tx_id) == "Accepted"
    await env.view.wait_ended(1)
    assert await env.view.remote_start(2, "TAG-2") == "Accepted"
    await env.view.wait_started(2)
    code, _ = await env.control("POST", "/connectors/2/stop")
    assert code == 200
    await env.view.wait_ended(2)
    stops = [r.getMessage() for r in caplog.records if "stop of session" in r.getMessage()]
    assert stops == [
        "connector 1: stop of session 1 requested (Remote)",
        "connector 2: stop of session 2 requested (Local)",
    ]


async def test_status_shows_the_last_meter_error_in_words(env: Env) -> None:
    daemon = await env.start(ocpp={"meter_value_sample_interval": 1})
    assert daemon.station is not None
    sim = daemon.station.connectors[1].meter.sim
    assert isinstance(sim, SimulatedBsm)
    assert await env.view.remote_start(1, "TAG-1") == "Accepted"
    await env.view.wait_started(1)
    sim.faults.no_reply = True  # the meter stops answering while the session runs

    async def noted() -> bool:
        _, status = await env.control("GET", "/status")
        return bool(status["connectors"][0]["last_meter_error"])

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not await noted():
        assert loop.time() < deadline, "no meter error noted"
        await asyncio.sleep(0.1)
    shown = await asyncio.to_thread(cli, env, "status")
    assert shown.returncode == 0, shown.stderr
    assert "last meter error" in shown.stdout
    assert "no reply" in shown.stdout and "check the wiring" in shown.stdout
    sim.faults.no_reply = False
