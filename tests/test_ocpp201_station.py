"""OCPP 2.0.1 only: where transactions start and stop (TxStartPoint / TxStopPoint), the device
model over the wire, and 2.0.1 answers. Shared scenarios are in test_station.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.ocpp_views import View201, signed_values_201
from tests.station_env import Env, check_signed_pair, remote_session, running_env
from tests.station_harness import wait_until


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env("2.0.1", tmp_path) as e:
        yield e


def view(env: Env) -> View201:
    assert isinstance(env.view, View201)
    return env.view


async def set_variables(env: Env, *entries: tuple[str, str, str]) -> list[str]:
    answer = await env.view.call(
        "SetVariables",
        {
            "setVariableData": [
                {"component": {"name": c}, "variable": {"name": v}, "attributeValue": value}
                for c, v, value in entries
            ]
        },
    )
    return [r["attributeStatus"] for r in answer["setVariableResult"]]


def events_of(env: Env, n: int = 1) -> list[dict[str, Any]]:
    return env.view.sessions()[n - 1].payloads


def shape(events: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    """(eventType, triggerReason, chargingState) of each event."""
    return [
        (e["eventType"], e["triggerReason"], e["transactionInfo"].get("chargingState"))
        for e in events
    ]


async def test_start_point_authorized_opens_before_the_meter_signs(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(1)
    assert await set_variables(
        env,
        ("TxCtrlr", "TxStartPoint", "Authorized"),
        ("SampledDataCtrlr", "SignStartedReadings", "true"),
    ) == ["Accepted", "Accepted"]
    session = await remote_session(env, id_tag="EARLY-1", seconds=0.3)
    events = session.payloads
    started = events[0]
    assert started["eventType"] == "Started" and started["triggerReason"] == "RemoteStart"
    assert started["transactionInfo"]["remoteStartId"] == 1
    assert started["idToken"] == {"idToken": "EARLY-1", "type": "Central"}
    assert "meterValue" not in started, "nothing is signed yet when it opens"
    begun = next(e for e in events if e["triggerReason"] == "SignedDataReceived")
    assert begun["eventType"] == "Updated"
    assert begun["transactionInfo"]["chargingState"] == "Charging"
    assert signed_values_201(begun)["Transaction.Begin"]["public_key"] == key
    check_signed_pair(session, key, "EARLY-1")
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1


async def test_start_point_ev_connected_opens_at_plug_in_then_authorizes(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(2)
    assert await set_variables(
        env,
        ("TxCtrlr", "TxStartPoint", "EVConnected"),
        ("SampledDataCtrlr", "SignStartedReadings", "true"),
    ) == ["Accepted", "Accepted"]
    await env.control("POST", "/connectors/2/plug")
    started = await env.view.wait_started()
    first = started.payloads[0]
    assert first["triggerReason"] == "CablePluggedIn" and "idToken" not in first
    assert first["transactionInfo"]["chargingState"] == "EVConnected"
    assert first["evse"] == {"id": 2, "connectorId": 1}
    code, body = await env.control("POST", "/id-tag", {"id_tag": "PLUG-1"})
    assert code == 200, body
    await wait_until(
        lambda: any(e["triggerReason"] == "SignedDataReceived" for e in events_of(env)),
        what="the signed Begin",
    )
    authorized = [e for e in events_of(env) if e["triggerReason"] == "Authorized"]
    assert authorized and authorized[0]["idToken"]["idToken"] == "PLUG-1"
    await env.control("POST", "/id-tag", {"id_tag": "PLUG-1"})
    session = await env.view.wait_ended()
    check_signed_pair(session, key, "PLUG-1")
    assert shape(session.payloads)[:3] == [
        ("Started", "CablePluggedIn", "EVConnected"),
        ("Updated", "Authorized", None),
        ("Updated", "SignedDataReceived", "Charging"),
    ]


async def test_plugged_in_and_gone_without_authorization_bills_nothing(env: Env) -> None:
    await env.start()
    await set_variables(env, ("TxCtrlr", "TxStartPoint", "EVConnected"))
    await env.control("POST", "/connectors/1/plug")
    await env.view.wait_started()
    await asyncio.sleep(0.2)
    await env.control("POST", "/connectors/1/unplug")
    session = await env.view.wait_ended()
    ended = session.payloads[-1]
    assert ended["triggerReason"] == "EVCommunicationLost"
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert "meterValue" not in ended and session.signed == {}
    _, status = await env.control("GET", "/status")
    assert status["connectors"][0]["transaction"] is None


async def test_no_ev_within_the_connection_timeout_closes_the_transaction(env: Env) -> None:
    await env.start(ev={"plug_in_delay": 30.0}, ocpp={"connection_time_out": 1})
    await set_variables(env, ("TxCtrlr", "TxStartPoint", "Authorized"))
    assert await env.view.remote_start(1, "LATE-1") == "Accepted"
    session = await env.view.wait_ended(timeout=10)
    ended = session.payloads[-1]
    assert ended["triggerReason"] == "EVConnectTimeout"
    assert ended["transactionInfo"]["stoppedReason"] == "Timeout"
    assert session.signed == {}
    await wait_until(lambda: env.view.statuses(1)[-1] == "Available", what="Available")


async def test_stop_point_ev_connected_keeps_the_transaction_until_unplug(env: Env) -> None:
    await env.start(ev={"plug_in_delay": 0.6})
    key = await env.view.meter_key(1)
    assert await set_variables(env, ("TxCtrlr", "TxStopPoint", "EVConnected")) == ["Accepted"]
    assert await env.view.remote_start(1, "STAY-1") == "Accepted"
    started = await env.view.wait_started()
    await asyncio.sleep(0.3)
    assert await env.view.remote_stop(started.tx_id) == "Accepted"
    await wait_until(
        lambda: any(e["triggerReason"] == "RemoteStop" for e in events_of(env)),
        what="charging stopped",
    )
    stopped = next(e for e in events_of(env) if e["triggerReason"] == "RemoteStop")
    assert stopped["eventType"] == "Updated"
    assert stopped["transactionInfo"]["chargingState"] == "EVConnected"
    assert env.view.sessions()[0].ends == 0, "the EV is still plugged in"
    session = await env.view.wait_ended()  # the simulated EV drives off
    ended = session.payloads[-1]
    assert ended["triggerReason"] == "EVCommunicationLost"
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    check_signed_pair(session, key, "STAY-1")


async def test_stop_point_energy_transfer_ends_when_the_ev_stops_drawing(env: Env) -> None:
    daemon = await env.start()
    key = await env.view.meter_key(1)
    assert await set_variables(
        env,
        ("TxCtrlr", "TxStopPoint", "EnergyTransfer"),
        ("SampledDataCtrlr", "TxUpdatedInterval", "1"),
    ) == ["Accepted", "Accepted"]
    await env.view.remote_start(1, "FULL-1")
    await env.view.wait_started()
    await wait_until(
        lambda: any(e["triggerReason"] == "MeterValuePeriodic" for e in events_of(env)),
        timeout=5,
        what="a periodic value while energy flows",
    )
    assert daemon.station is not None
    sim = daemon.station.connectors[1].meter.sim
    assert sim is not None
    sim.set_power(0.0)  # the battery is full
    session = await env.view.wait_ended(timeout=10)
    assert session.reason == "StoppedByEV"
    check_signed_pair(session, key, "FULL-1")


async def test_sign_readings_off_sends_no_signed_values(env: Env) -> None:
    await env.start()
    assert await set_variables(
        env,
        ("SampledDataCtrlr", "SignReadings", "false"),
        ("SampledDataCtrlr", "SignStartedReadings", "false"),
    ) == ["Accepted", "Accepted"]
    session = await remote_session(env, id_tag="PLAIN-1", seconds=0.2)
    assert session.signed == {}
    assert all("signedMeterValue" not in str(e) for e in session.payloads)
    assert session.meter_stop is not None and session.meter_start is not None


async def test_public_key_with_every_signed_value(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(1)
    assert await set_variables(
        env, ("OCPPCommCtrlr", "PublicKeyWithSignedMeterValue", "EveryMeterValue")
    ) == ["Accepted"]
    session = await remote_session(env, id_tag="KEYS-1", seconds=0.2)
    assert {v["public_key"] for v in session.signed.values()} == {key}


async def test_variables_persist_and_unknown_ones_are_reported(env: Env) -> None:
    await env.start()
    statuses = await set_variables(
        env,
        ("TxCtrlr", "TxStartPoint", "Authorized,EVConnected"),
        ("TxCtrlr", "NoSuchVariable", "1"),
        ("NoSuchComponent", "Enabled", "true"),
        ("TxCtrlr", "TxStopPoint", "DataSigned"),
    )
    assert statuses == ["Accepted", "UnknownVariable", "UnknownComponent", "Rejected"]
    await env.restart()
    result = await view(env).get_variable({"name": "TxCtrlr"}, "TxStartPoint")
    assert set(result["attributeValue"].split(",")) == {"Authorized", "EVConnected"}


async def test_base_report_arrives_in_notify_report_pages(env: Env) -> None:
    await env.start()
    mark = len(env.csms.received)
    answer = await env.view.call("GetBaseReport", {"requestId": 7, "reportBase": "FullInventory"})
    assert answer["status"] == "Accepted"
    first = await env.csms.wait_for("NotifyReport", after=mark)
    await wait_until(
        lambda: any(
            not r.payload.get("tbc", False) for r in env.csms.messages("NotifyReport")[-1:]
        ),
        what="the last page",
    )
    pages = [r.payload for r in env.csms.messages("NotifyReport")]
    assert first.payload["requestId"] == 7 and [p["seqNo"] for p in pages] == list(
        range(len(pages))
    )
    reported = {
        (d["component"]["name"], d["variable"]["name"]) for p in pages for d in p["reportData"]
    }
    for needed in (
        ("TxCtrlr", "TxStartPoint"),
        ("SampledDataCtrlr", "SignReadings"),
        ("OCPPCommCtrlr", "PublicKeyWithSignedMeterValue"),
        ("FiscalMetering", "PublicKey"),
        ("AuthCacheCtrlr", "Enabled"),
    ):
        assert needed in reported, needed


async def test_unlock_refused_while_a_transaction_runs(env: Env) -> None:
    await env.start()
    assert await env.view.unlock(1) == "Unlocked"
    assert await env.view.unlock(9) == "UnknownConnector"
    await env.view.remote_start(1, "LOCK-1")
    await env.view.wait_started()
    assert await env.view.unlock(1) == "OngoingAuthorizedTransaction"
    await asyncio.sleep(0.2)
    assert not env.view.ends()


async def test_reset_on_idle_waits_for_the_transaction(env: Env) -> None:
    await env.start()
    await env.view.remote_start(1, "IDLE-1")
    started = await env.view.wait_started()
    boots = len(env.csms.messages("BootNotification"))
    assert await env.view.reset("OnIdle") == "Scheduled"
    await asyncio.sleep(0.5)
    assert len(env.csms.messages("BootNotification")) == boots and not env.view.ends()
    await env.view.remote_stop(started.tx_id)
    session = await env.view.wait_ended()
    assert session.reason == "Remote"
    await wait_until(
        lambda: len(env.csms.messages("BootNotification")) > boots, timeout=20, what="reboot"
    )
    boot = env.csms.messages("BootNotification")[-1]
    assert boot.payload["reason"] == "RemoteReset"


async def test_request_start_answers_with_the_open_transaction(env: Env) -> None:
    await env.start()
    await set_variables(env, ("TxCtrlr", "TxStartPoint", "EVConnected"))
    await env.control("POST", "/connectors/1/plug")
    started = await env.view.wait_started()
    answer = await env.view.call(
        "RequestStartTransaction",
        {"idToken": {"idToken": "APP-1", "type": "Central"}, "remoteStartId": 42, "evseId": 1},
    )
    assert answer["status"] == "Accepted" and answer.get("transactionId") == started.tx_id
    status = await env.view.call("GetTransactionStatus", {"transactionId": started.tx_id})
    assert status["ongoingIndicator"] is True


async def test_a_restart_closes_a_transaction_opened_before_the_meter_signed(env: Env) -> None:
    await env.start(ev={"plug_in_delay": 60.0}, ocpp={"connection_time_out": 120})
    await set_variables(env, ("TxCtrlr", "TxStartPoint", "Authorized"))
    await env.view.remote_start(1, "WAIT-1")
    await env.view.wait_started()
    await env.outbox_drained()
    await env.restart()  # power lost while the station waited for the EV
    session = await env.view.wait_ended(timeout=20)
    ended = session.payloads[-1]
    assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert session.signed == {} and "meterValue" not in ended
    assert [e["seqNo"] for e in session.payloads] == [0, 1]


async def test_a_restart_closes_a_transaction_whose_charging_had_ended(env: Env) -> None:
    await env.start(ev={"plug_in_delay": 60.0})
    key = await env.view.meter_key(1)
    await set_variables(env, ("TxCtrlr", "TxStopPoint", "EVConnected"))
    await env.control("POST", "/connectors/1/plug")  # the EV stays until after the restart
    await env.view.remote_start(1, "AFTER-1")
    started = await env.view.wait_started()
    await env.view.remote_stop(started.tx_id)
    await wait_until(
        lambda: any(e["triggerReason"] == "RemoteStop" for e in events_of(env)),
        what="charging stopped",
    )
    await env.outbox_drained()
    await env.restart()  # the EV is still there, the station restarts
    session = await env.view.wait_ended(timeout=20)
    ended = session.payloads[-1]
    assert ended["triggerReason"] == "AbnormalCondition"
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    check_signed_pair(session, key, "AFTER-1")


async def test_a_stop_while_the_begin_is_being_stored_ends_before_any_load(env: Env) -> None:
    daemon = await env.start()
    station = daemon.station
    assert station is not None
    await set_variables(env, ("TxCtrlr", "TxStartPoint", "Authorized"))
    store_begin = station.store.begin_transaction
    storing = asyncio.Event()

    async def slow_begin(*args: Any, **kwargs: Any) -> None:
        storing.set()
        await asyncio.sleep(0.5)  # a slow flash write
        await store_begin(*args, **kwargs)

    station.store.begin_transaction = slow_begin  # type: ignore[method-assign]
    await env.view.remote_start(1, "RACE-2")
    started = await env.view.wait_started()
    await asyncio.wait_for(storing.wait(), 10)
    assert await env.view.remote_stop(started.tx_id) == "Accepted"
    session = await env.view.wait_ended()
    assert session.reason == "Remote"
    c = station.connectors[1]
    assert c.tx is None and not c.load_released
    check_signed_pair(session, await env.view.meter_key(1), "RACE-2")


async def test_the_same_card_cancels_a_start_still_waiting_for_the_ev(env: Env) -> None:
    await env.start(ev={"plug_in_delay": 30.0}, ocpp={"connection_time_out": 20})
    await set_variables(env, ("TxCtrlr", "TxStartPoint", "Authorized"))
    code, _ = await env.control("POST", "/id-tag", {"id_tag": "CARD-1", "connector": 1})
    assert code == 200
    await env.view.wait_started()
    code, body = await env.control("POST", "/id-tag", {"id_tag": "CARD-1"})
    assert code == 200 and "stopping" in body["result"]
    session = await env.view.wait_ended(timeout=3)  # at once, not after the timeout
    ended = session.payloads[-1]
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert ended["idToken"]["idToken"] == "CARD-1" and session.signed == {}


async def test_an_ev_leaving_while_its_transaction_opens_closes_it(env: Env) -> None:
    daemon = await env.start()
    station = daemon.station
    assert station is not None
    await set_variables(env, ("TxCtrlr", "TxStartPoint", "EVConnected"))
    store_open = station.store.open_transaction

    async def slow_open(*args: Any, **kwargs: Any) -> int:
        await asyncio.sleep(0.3)
        return await store_open(*args, **kwargs)

    station.store.open_transaction = slow_open  # type: ignore[method-assign]
    await env.control("POST", "/connectors/1/plug")
    await asyncio.sleep(0.05)
    await env.control("POST", "/connectors/1/unplug")
    session = await env.view.wait_ended()
    assert session.reason == "EVDisconnected"
    assert station.connectors[1].tx is None and not station.busy()


async def test_a_reset_abandons_a_start_still_waiting_for_the_ev_at_once(env: Env) -> None:
    await env.start(ev={"plug_in_delay": 30.0}, ocpp={"connection_time_out": 30})
    await set_variables(env, ("TxCtrlr", "TxStartPoint", "Authorized"))
    await env.view.remote_start(1, "RST-1")
    await env.view.wait_started()
    boots = len(env.csms.messages("BootNotification"))
    assert await env.view.reset("Immediate") == "Accepted"
    session = await env.view.wait_ended(timeout=5)
    ended = session.payloads[-1]
    assert ended["triggerReason"] == "ResetCommand"
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    await wait_until(
        lambda: len(env.csms.messages("BootNotification")) > boots, timeout=10, what="reboot"
    )


async def test_the_id_token_type_of_a_remote_start_is_kept(env: Env) -> None:
    await env.start()
    answer = await env.view.call(
        "RequestStartTransaction",
        {"idToken": {"idToken": "EMAID-DE8AA1", "type": "eMAID"}, "remoteStartId": 9},
    )
    assert answer["status"] == "Accepted"
    started = await env.view.wait_started()
    assert started.payloads[0]["idToken"] == {"idToken": "EMAID-DE8AA1", "type": "eMAID"}
