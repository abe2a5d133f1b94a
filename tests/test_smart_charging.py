"""Smart charging end to end, OCPP 1.6J and 2.0.1, against the schema-validating test CSMS: the
station takes charging profiles, the simulated EV follows its limit within seconds (seen in the
MeterValues the CSMS receives), the composite schedule is what the specifications say, and
the signed readings stay one signed Begin and one signed End per session."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chargepoint.core.charging.clock import ShiftedClock
from chargepoint.testcsms.smart_charging import ProfileSpec
from tests.ocpp_views import Session
from tests.station_env import Env, check_signed_pair, running_env
from tests.station_harness import STATION_ID, StationProcess, wait_until

EV_W = 11040.0  # the simulated EV: 16 A on 3 phases
TOLERANCE_W = 30.0  # the meter's power register counts tens of W


@pytest.fixture(params=["1.6", "2.0.1"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env(request.param, tmp_path) as e:
        yield e


def settings(**ocpp: Any) -> dict[str, Any]:
    return {
        "ev": {"power_w": EV_W},
        "ocpp": {
            "meter_value_sample_interval": 1,
            "meter_values_sampled_data": "Energy.Active.Import.Register,Power.Active.Import",
            **ocpp,
        },
        "sections": {"smart_charging": {"ev_ramp_seconds": 1.0}},
    }


def tx_of(session: Session, version: str) -> int | str:
    """The transactionId a CSMS names the session with."""
    return int(session.tx_id) if version == "1.6" else session.tx_id


def power_samples(env: Env, session: Session, after: int = 0) -> list[float]:
    """The Power.Active.Import values the CSMS received for a session, in order."""
    found = []
    for r in env.csms.received[after:]:
        if env.version == "1.6":
            if r.action != "MeterValues" or str(r.payload.get("transactionId")) != session.tx_id:
                continue
        elif (
            r.action != "TransactionEvent"
            or r.payload["transactionInfo"]["transactionId"] != session.tx_id
        ):
            continue
        for mv in r.payload.get("meterValue", []):
            for sv in mv.get("sampledValue", []):
                if sv.get("measurand") == "Power.Active.Import":
                    found.append(float(sv["value"]))
    return found


async def wait_power(
    env: Env, session: Session, check: Callable[[float], bool], what: str, timeout: float = 6
) -> float:
    """The first power sample after now that passes `check`."""
    mark = len(env.csms.received)
    await wait_until(
        lambda: any(check(p) for p in power_samples(env, session, mark)), timeout, what
    )
    return next(p for p in power_samples(env, session, mark) if check(p))


def near(watts: float) -> Callable[[float], bool]:
    return lambda p: abs(p - watts) <= TOLERANCE_W


async def charging_session(env: Env, connector: int = 1, n: int = 1, tag: str = "SC-1") -> Session:
    assert await env.view.remote_start(connector, tag) == "Accepted"
    return await env.view.wait_started(n)


async def end_session(env: Env, session: Session, n: int = 1) -> Session:
    assert await env.view.remote_stop(session.tx_id) == "Accepted"
    return await env.view.wait_ended(n)


async def limit_status(env: Env, connector: int) -> dict[str, Any]:
    _, status = await env.control("GET", "/status")
    limit: dict[str, Any] = status["connectors"][connector - 1]["charging_limit"]
    return limit


class EventStream:
    """GET /events on the control interface, read line by line."""

    def __init__(self, env: Env) -> None:
        self.path = env.tmp / "state" / "control.sock"
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventStream:
        reader, writer = await asyncio.open_unix_connection(str(self.path))
        writer.write(b"GET /events HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"application/x-ndjson" in head
        self._writer = writer

        async def read() -> None:
            while line := await reader.readline():
                self.events.append(json.loads(line))

        self._task = asyncio.create_task(read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._writer.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# ---- the load follows ------------------------------------------------------------------


async def test_tx_profile_halves_the_power_and_clearing_restores_it(env: Env) -> None:
    await env.start(**settings())
    session = await charging_session(env)
    await wait_power(env, session, near(EV_W), "full power")
    async with EventStream(env) as stream:
        answer = await env.csms.set_charging_profile(
            STATION_ID,
            1,
            ProfileSpec(
                7,
                "Tx",
                [(0, 8)],
                kind="Relative",
                stack_level=1,
                transaction_id=tx_of(session, env.version),
            ),
        )
        assert answer["status"] == "Accepted"
        await wait_power(env, session, near(EV_W / 2), "half power")  # 8 A x 3 x 230 V
        limit = await limit_status(env, 1)
        assert limit["limit_w"] == 5520.0 and limit["limit_a"] == 8.0
        assert limit["source"] == "TxProfile 7 (stack 1)"
        await wait_until(
            lambda: any(e["connector"] == 1 and e["limit_w"] == 5520.0 for e in stream.events),
            5,
            "the limit event",
        )
        assert {e["event"] for e in stream.events} == {"charging_limit"}

        cleared = await env.csms.clear_charging_profile(STATION_ID, profile_id=7)
        assert cleared["status"] == "Accepted"
        await wait_power(env, session, near(EV_W), "full power again")
        assert (await limit_status(env, 1))["source"] == "none"
        await wait_until(
            lambda: stream.events[-1]["connector"] == 1 and stream.events[-1]["limit_w"] is None,
            5,
            "the limit released",
        )
    again = await env.csms.clear_charging_profile(STATION_ID, profile_id=7)
    assert again["status"] == "Unknown"
    ended = await end_session(env, session)
    check_signed_pair(ended, await env.view.meter_key(1), "SC-1")  # one Begin, one End


async def test_station_maximum_caps_both_connectors_together(env: Env) -> None:
    await env.start(**settings())
    first = await charging_session(env, 1, 1, "SC-A")
    second = await charging_session(env, 2, 2, "SC-B")
    start = datetime.now(UTC) - timedelta(minutes=1)
    answer = await env.csms.set_charging_profile(
        STATION_ID, 0, ProfileSpec(1, "StationMax", [(0, 16)], start=start)
    )
    assert answer["status"] == "Accepted"
    a = await wait_power(env, first, near(EV_W / 2), "connector 1 at half")
    b = await wait_power(env, second, near(EV_W / 2), "connector 2 at half")
    assert a + b <= EV_W + 2 * TOLERANCE_W
    limit = await limit_status(env, 2)
    assert limit["limit_w"] == 5520.0
    assert limit["source"].endswith("shared by 2 connectors")
    # the composite schedule of a connector is the merged schedules: 16 A
    composite = await env.csms.get_composite_schedule(STATION_ID, 1, 600, "A")
    periods = (
        composite["chargingSchedule"]["chargingSchedulePeriod"]
        if env.version == "1.6"
        else composite["schedule"]["chargingSchedulePeriod"]
    )
    assert composite["status"] == "Accepted"
    assert periods == [{"startPeriod": 0, "limit": 16.0}]
    # one session ends: the other gets the whole station maximum (its EV takes 16 A)
    await end_session(env, first)
    await wait_power(env, second, near(EV_W), "connector 2 alone")


async def test_tx_default_profile_applies_from_session_start(env: Env) -> None:
    await env.start(**settings())
    answer = await env.csms.set_charging_profile(
        STATION_ID,
        0,
        ProfileSpec(3, "TxDefault", [(0, 10)], start=datetime.now(UTC) - timedelta(hours=1)),
    )
    assert answer["status"] == "Accepted"
    assert (await limit_status(env, 2))["limit_a"] == 10.0  # waiting for a session
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "chargepoint", "status", "--config", str(env.tmp / "station.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "charging limit 6900 W (10.0 A x 3) by TxDefaultProfile 3 (stack 0)" in shown.stdout
    session = await charging_session(env)
    await wait_until(lambda: bool(power_samples(env, session)), 6, "the first power sample")
    # the EV starts at its limit: 10 A x 3 x 230 V, never at its full 11 kW
    assert power_samples(env, session)[0] == pytest.approx(6900, abs=TOLERANCE_W)
    composite = await env.csms.get_composite_schedule(STATION_ID, 1, 300, "W")
    body = composite["chargingSchedule"] if env.version == "1.6" else composite["schedule"]
    assert body["chargingRateUnit"] == "W"
    assert body["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 6900.0}]
    await end_session(env, session)


async def test_recurring_daily_profile_crosses_a_period_boundary(env: Env) -> None:
    """The daily default profile of OCPP 1.6 3.13.7 (6 kW from 08:00), on a station whose
    smart charging clock reads 07:59:00 and runs ten times as fast: 08:00 comes after six
    seconds."""
    daemon = await env.start(**settings())
    assert daemon.station is not None
    clock = ShiftedClock(datetime(2024, 5, 2, 7, 59, 0, tzinfo=UTC), speed=10)
    daemon.station.charging.set_clock(clock)
    daily = ProfileSpec(
        100,
        "TxDefault",
        [(0, 11000, 3), (28800, 6000, 3), (72000, 11000, 3)],
        unit="W",
        kind="Recurring",
        recurrency="Daily",
        start="2013-01-01T00:00:00Z",
        duration=86400,
    )
    assert (await env.csms.set_charging_profile(STATION_ID, 0, daily))["status"] == "Accepted"
    session = await charging_session(env)
    await wait_power(env, session, near(11000), "11 kW before 08:00", timeout=4)
    assert clock.now() < datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    await wait_power(env, session, near(6000), "6 kW after 08:00", timeout=10)
    composite = await env.csms.get_composite_schedule(STATION_ID, 1, 43200, "W")
    body = composite["chargingSchedule"] if env.version == "1.6" else composite["schedule"]
    assert body["scheduleStart" if env.version == "2.0.1" else "startSchedule"].startswith(
        "2024-05-02T08:"
    )
    limits = [p["limit"] for p in body["chargingSchedulePeriod"]]
    assert limits == [6000.0, 11000.0]  # until 20:00, then 11 kW
    await end_session(env, session)


async def test_remote_start_with_a_charging_profile(env: Env) -> None:
    await env.start(**settings())
    spec = ProfileSpec(9, "Tx", [(0, 6)], kind="Relative")
    profile = env.csms.profile_payload(STATION_ID, spec)
    if env.version == "1.6":
        payload: dict[str, Any] = {"idTag": "SC-R", "connectorId": 1, "chargingProfile": profile}
        action = "RemoteStartTransaction"
    else:
        payload = {
            "idToken": {"idToken": "SC-R", "type": "Central"},
            "remoteStartId": 5,
            "evseId": 1,
            "chargingProfile": profile,
        }
        action = "RequestStartTransaction"
    assert (await env.view.call(action, payload))["status"] == "Accepted"
    session = await env.view.wait_started(1)
    await wait_until(lambda: bool(power_samples(env, session)), 6, "the first power sample")
    assert power_samples(env, session)[0] == pytest.approx(4140, abs=TOLERANCE_W)  # 6 A
    assert (await limit_status(env, 1))["source"] == "TxProfile 9 (stack 0)"
    await end_session(env, session)
    # the TxProfile went with its transaction
    composite = await env.csms.get_composite_schedule(STATION_ID, 1, 60, "A")
    body = composite["chargingSchedule"] if env.version == "1.6" else composite["schedule"]
    assert body["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 32.0}]
    # a profile that is no TxProfile rejects the start
    payload["chargingProfile"] = env.csms.profile_payload(
        STATION_ID, ProfileSpec(10, "TxDefault", [(0, 6)], kind="Relative")
    )
    if env.version == "2.0.1":
        payload["remoteStartId"] = 6
    assert (await env.view.call(action, payload))["status"] == "Rejected"


async def test_invalid_profiles_are_rejected_with_the_reason(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await env.start(**settings())
    start = datetime.now(UTC) - timedelta(minutes=1)
    cases = [
        (1, ProfileSpec(1, "Tx", [(0, 8)], kind="Relative"), "no transaction is running"),
        (0, ProfileSpec(2, "TxDefault", [(10, 8)], start=start), "must start at 0"),
        (1, ProfileSpec(3, "StationMax", [(0, 8)], start=start), "belongs to connector/EVSE 0"),
        (0, ProfileSpec(4, "TxDefault", [(0, 8)], stack_level=99, start=start), "stackLevel 99"),
        (7, ProfileSpec(5, "TxDefault", [(0, 8)], start=start), "does not exist"),
        (
            0,
            ProfileSpec(6, "TxDefault", [(0, 8), (0, 6)], start=start),
            "does not come after",
        ),
    ]
    if env.version == "2.0.1":
        cases.append(
            (0, ProfileSpec(7, "External", [(0, 8)], start=start), "not the CSMS"),
        )
    for connector, spec, reason in cases:
        answer = await env.csms.set_charging_profile(STATION_ID, connector, spec)
        assert answer["status"] == "Rejected", spec
        assert reason in caplog.text, reason
        if env.version == "2.0.1":
            assert reason in answer["statusInfo"]["additionalInfo"]
    # nothing of them was installed: the connector's full current
    composite = await env.csms.get_composite_schedule(STATION_ID, 1, 60, "A")
    body = composite["chargingSchedule"] if env.version == "1.6" else composite["schedule"]
    assert body["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 32.0}]
    assert (await limit_status(env, 1))["source"] == "none"


async def test_sample_interval_change_applies_at_once(env: Env) -> None:
    await env.start(**settings(meter_value_sample_interval=60))
    session = await charging_session(env)
    await asyncio.sleep(0.5)
    mark = len(env.csms.received)
    if env.version == "1.6":
        answer = await env.view.call(
            "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "1"}
        )
        assert answer["status"] == "Accepted"
    else:
        answer = await env.view.call(
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "SampledDataCtrlr"},
                        "variable": {"name": "TxUpdatedInterval"},
                        "attributeValue": "1",
                    }
                ]
            },
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    # not after the 60 s the loop was sleeping: within about one new interval
    await wait_until(lambda: len(power_samples(env, session, mark)) >= 2, 4, "1 s samples")
    await end_session(env, session)


# ---- persistence ---------------------------------------------------------------------------


async def test_profiles_survive_kill_9(env: Env) -> None:
    config = env.config(**settings())
    proc = StationProcess(config, env.tmp / "daemon.log")
    proc.start()
    try:
        await env.csms.wait_connected(STATION_ID, timeout=30)
        await wait_until(lambda: bool(env.csms.messages("StatusNotification")), 15, "boot")
        start = datetime.now(UTC) - timedelta(minutes=1)
        for connector, spec in (
            (0, ProfileSpec(1, "StationMax", [(0, 20)], start=start)),
            (2, ProfileSpec(2, "TxDefault", [(0, 12), (3600, 6)], start=start)),
        ):
            answer = await env.csms.set_charging_profile(STATION_ID, connector, spec)
            assert answer["status"] == "Accepted"
        before = await env.csms.get_composite_schedule(STATION_ID, 2, 7200, "A")
        proc.kill()
        connections = len(env.csms.messages("BootNotification"))
        proc.start()
        await wait_until(
            lambda: len(env.csms.messages("BootNotification")) > connections, 30, "reboot"
        )
        await env.csms.wait_connected(STATION_ID, timeout=30)
        await asyncio.sleep(0.5)
        after = await env.csms.get_composite_schedule(STATION_ID, 2, 7200, "A")
        key = "chargingSchedule" if env.version == "1.6" else "schedule"
        periods = after[key]["chargingSchedulePeriod"]
        assert [p["limit"] for p in periods] == [12.0, 6.0]
        # the same boundary, a few seconds nearer
        boundary = before[key]["chargingSchedulePeriod"][1]["startPeriod"]
        assert boundary - 30 < periods[1]["startPeriod"] <= boundary
        one = await env.csms.get_composite_schedule(STATION_ID, 1, 60, "A")
        assert [p["limit"] for p in one[key]["chargingSchedulePeriod"]] == [20.0]
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.terminate()


# ---- OCPP 2.0.1 only: reports and external limits --------------------------------------


@pytest.fixture
async def env201(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env("2.0.1", tmp_path) as e:
        yield e


async def test_get_charging_profiles_reports_them(env201: Env) -> None:
    env = env201
    await env.start(**settings())
    start = datetime.now(UTC) - timedelta(minutes=1)
    for connector, spec in (
        (0, ProfileSpec(1, "StationMax", [(0, 20)], start=start)),
        (1, ProfileSpec(2, "TxDefault", [(0, 12)], start=start, stack_level=2)),
        (2, ProfileSpec(3, "TxDefault", [(0, 10)], start=start)),
    ):
        assert (await env.csms.set_charging_profile(STATION_ID, connector, spec))[
            "status"
        ] == "Accepted"
    answer = await env.csms.get_charging_profiles(STATION_ID, 41, purpose="TxDefault")
    assert answer["status"] == "Accepted"
    await wait_until(lambda: len(env.csms.reported_profiles(STATION_ID, 41)) == 2, 5, "reports")
    reports = env.csms.reported_profiles(STATION_ID, 41)
    assert [(r["evseId"], r.get("tbc", False)) for r in reports] == [(1, True), (2, False)]
    assert [[p["id"] for p in r["chargingProfile"]] for r in reports] == [[2], [3]]
    assert reports[0]["chargingProfile"][0]["chargingSchedule"][0]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 12.0}
    ]
    none = await env.csms.get_charging_profiles(STATION_ID, 42, stack_level=9)
    assert none["status"] == "NoProfiles"
    by_id = await env.csms.get_charging_profiles(STATION_ID, 43, evse_id=0, profile_ids=[1])
    assert by_id["status"] == "Accepted"


async def test_external_limit_from_the_charge_controller(env201: Env) -> None:
    env = env201
    await env.start(**settings())
    session = await charging_session(env)
    await wait_power(env, session, near(EV_W), "full power")
    code, body = await env.control(
        "POST", "/charging-limit", {"connector": 0, "limit": 8, "unit": "A", "source": "EMS"}
    )
    assert code == 200, body
    await wait_power(env, session, near(EV_W / 2), "the external limit")
    await wait_until(
        lambda: bool(env.csms.messages("NotifyChargingLimit")), 5, "NotifyChargingLimit"
    )
    notice = env.csms.messages("NotifyChargingLimit")[0].payload
    assert notice["chargingLimit"] == {"chargingLimitSource": "EMS", "isGridCritical": False}
    assert notice["chargingSchedule"][0]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 8.0}
    ]
    assert "evseId" not in notice  # the whole station
    assert (await limit_status(env, 1))["source"].startswith(
        "ChargingStationExternalConstraints 1 (stack 0) from EMS"
    )
    # the CSMS sees it, and cannot clear it
    answer = await env.csms.get_charging_profiles(STATION_ID, 7, sources=["EMS"])
    assert answer["status"] == "Accepted"
    cleared = await env.csms.clear_charging_profile(STATION_ID, profile_id=1)
    assert cleared["status"] == "Unknown"
    code, body = await env.control("POST", "/charging-limit/clear", {"source": "EMS"})
    assert (code, body["result"]) == (200, "1 limits cleared")
    await wait_power(env, session, near(EV_W), "full power again")
    await wait_until(
        lambda: bool(env.csms.messages("ClearedChargingLimit")), 5, "ClearedChargingLimit"
    )
    assert env.csms.messages("ClearedChargingLimit")[0].payload == {"chargingLimitSource": "EMS"}
    code, body = await env.control("POST", "/charging-limit", {"limit": -1})
    assert code == 400 and "limit must be a number" in body["error"]
    ended = await end_session(env, session)
    check_signed_pair(ended, await env.view.meter_key(1), "SC-1")
