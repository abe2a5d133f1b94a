"""The daemon against the test CSMS on loopback, on OCPP 1.6J and on 2.0.1: what a backend
sees. Each scenario runs once per version through a view (tests/ocpp_views.py) that speaks
that version's messages; version-only behaviour lives in test_ocpp16_station.py and
test_ocpp201_station.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chargepoint.testcsms import CallErrorReply
from meter.proof.ocmf import parse_ocmf
from meter.sim.device import SimulatedBsm
from meter.snapshot import SnapshotStatus
from tests.ocpp_views import VIEWS, canonical, signed_values_201
from tests.real_vectors import bsm_public_key_hex
from tests.station_env import Env, check_signed_pair, remote_session, running_env
from tests.station_harness import (
    STATION_ID,
    InProcessStation,
    wait_until,
)


@pytest.fixture(params=list(VIEWS))
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env(request.param, tmp_path) as e:
        yield e


async def test_remote_session_carries_verifiable_signed_values(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(1)
    session = await remote_session(env, seconds=0.5)
    assert session.reason == env.view.reasons["Remote"]
    assert session.meter_start is not None and session.meter_stop is not None
    assert session.meter_stop > session.meter_start, "the EV drew energy"
    check_signed_pair(session, key, "TAG-1")
    assert session.signed["Transaction.Begin"]["public_key"] in ("", key)
    assert session.signed["Transaction.End"]["public_key"] == ""  # OncePerTransaction
    # the Begin reading sent is the absolute register the signed Begin proves
    begin = parse_ocmf(session.signed["Transaction.Begin"]["ocmf"])
    assert begin.readings[0].xv is not None
    assert int(begin.readings[0].xv * 1000) == session.meter_start
    await wait_until(lambda: env.view.statuses(1)[-1] == "Available", what="EV leaves")
    statuses = env.view.statuses(1)
    assert tuple(statuses[-len(env.view.session_statuses) :]) == env.view.session_statuses


async def test_local_session_with_id_tag_and_plug(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(2)
    code, body = await env.control("POST", "/connectors/2/plug")
    assert code == 200
    code, body = await env.control("POST", "/id-tag", {"id_tag": "RFID-42", "connector": 2})
    assert code == 200, body
    authorize = await env.csms.wait_for("Authorize")
    assert env.view.authorized_id(authorize) == "RFID-42"
    await env.view.wait_started()
    await asyncio.sleep(0.3)
    code, body = await env.control("POST", "/id-tag", {"id_tag": "RFID-42"})  # same card stops
    assert code == 200 and "stopping" in body["result"]
    session = await env.view.wait_ended()
    assert session.reason == env.view.reasons["Local"] and session.id_tag == "RFID-42"
    check_signed_pair(session, key, "RFID-42")
    await env.control("POST", "/connectors/2/unplug")
    await wait_until(lambda: env.view.statuses(2)[-1] == "Available", what="Available")


async def test_unknown_tag_is_refused_and_starts_nothing(env: Env) -> None:
    env.csms.accept_id_tags = {"GOOD"}
    await env.start()
    code, body = await env.control("POST", "/id-tag", {"id_tag": "BAD", "connector": 1})
    assert code == 409 and "Invalid" in body["result"]
    await asyncio.sleep(0.3)
    assert not env.view.starts()


async def test_outage_during_session_loses_nothing(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(1)
    await env.view.remote_start(1, "OUT-1")
    await env.view.wait_started()
    await env.outbox_drained()  # the station has the answer: the CSMS goes away after that
    env.csms.refuse_connections(True)
    await env.csms.disconnect(STATION_ID)
    await asyncio.sleep(0.3)
    code, _ = await env.control("POST", "/connectors/1/stop")  # stopped while offline
    assert code == 200
    await asyncio.sleep(0.5)
    code, status = await env.control("GET", "/status")
    assert status["online"] is False and status["outbox"] >= 1
    assert not env.view.ends()
    env.csms.refuse_connections(False)
    session = await env.view.wait_ended(timeout=20)
    assert session.reason == env.view.reasons["Local"]
    check_signed_pair(session, key, "OUT-1")
    await asyncio.sleep(0.5)
    assert len(env.view.ends()) == 1 and len(env.view.starts()) == 1
    if env.version == "2.0.1":  # the end happened while offline, and says so
        assert env.view.ends()[0].payload["offline"] is True
        assert env.view.starts()[0].payload["offline"] is False


async def test_open_session_is_ended_with_power_loss_after_restart(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(1)
    await env.view.remote_start(1, "PL-1")
    await env.view.wait_started()
    await asyncio.sleep(0.3)
    await env.restart()  # the daemon goes away with the session open
    session = await env.view.wait_ended(timeout=20)
    assert session.reason == env.view.reasons["PowerLoss"]
    check_signed_pair(session, key, "PL-1")
    assert len(env.view.ends()) == 1


@pytest.mark.parametrize("reset_type", ["Soft", "Hard"])
async def test_reset_ends_sessions_with_signed_values_and_boots_again(
    env: Env, reset_type: str
) -> None:
    await env.start()
    key = await env.view.meter_key(1)
    await env.view.remote_start(1, "RS-1")
    await env.view.wait_started()
    boots = len(env.csms.messages("BootNotification"))
    mark = len(env.csms.received)
    assert await env.view.reset(reset_type) == "Accepted"
    session = await env.view.wait_ended(timeout=20)
    assert session.reason == env.view.reasons[f"{reset_type}Reset"]
    check_signed_pair(session, key, "RS-1")
    await wait_until(
        lambda: len(env.csms.messages("BootNotification")) > boots,
        timeout=20,
        what="a new BootNotification",
    )
    # the end was delivered before the new boot
    order = env.csms.received[mark:]
    first_end = next(i for i, r in enumerate(order) if env.view.is_end(r))
    first_boot = next(i for i, r in enumerate(order) if r.action == "BootNotification")
    assert first_end < first_boot


async def test_bad_frames_get_a_callerror_and_the_connection_stays(env: Env) -> None:
    await env.start()
    remote_start = "RemoteStartTransaction" if env.version == "1.6" else "RequestStartTransaction"
    for frame in (
        "not json",
        "[2, 17]",
        '{"a": 1}',
        '[2, "abc", "Nonsense", {}]',
        f'[2, "x1", "{remote_start}", {{"idTag": 5, "idToken": 5}}]',
    ):
        reply = await env.csms.send_raw(STATION_ID, frame)
        assert reply is not None, frame
        parsed = json.loads(reply)
        assert parsed[0] == 4, reply
    reply = await env.csms.send_raw(STATION_ID, '[2, "abc", "Nonsense", {}]')
    assert json.loads(reply or "[]")[2] == "NotImplemented"
    assert env.csms.is_connected(STATION_ID)
    assert await env.view.get_setting("HeartbeatInterval") == "300"


async def test_signed_begin_in_the_first_message_when_configured(env: Env) -> None:
    await env.start(
        ocpp={
            "start_txn_sampled_data": "Energy.Active.Import.Register",
            "sampled_data_sign_started_readings": True,
        }
    )
    key = await env.view.meter_key(1)
    session = await remote_session(env, id_tag="SB-1")
    check_signed_pair(session, key, "SB-1")
    # the key went out once per transaction: with the signed Begin, before the end
    if env.version == "1.6":
        mvs = [r for r in env.csms.messages("MeterValues") if "transactionId" in r.payload]
        assert mvs, "a MeterValues with the signed Begin follows StartTransaction"
        sv = mvs[0].payload["meterValue"][0]["sampledValue"][0]
        assert sv["context"] == "Transaction.Begin" and sv["format"] == "SignedData"
        assert json.loads(sv["value"])["publicKey"]
    else:
        started = session.payloads[0]
        assert started["eventType"] == "Started"
        assert signed_values_201(started)["Transaction.Begin"]["public_key"] == key
    assert session.signed["Transaction.Begin"]["public_key"] == ""


async def test_pinned_key_mismatch_faults_the_connector(env: Env) -> None:
    other = bsm_public_key_hex("B_meter_001BZR1521290137")
    await env.start(public_keys={1: other})
    await env.view.remote_start(1, "PK-1")
    await env.view.wait_status(1, "Faulted")
    await asyncio.sleep(0.3)
    assert not env.view.starts()
    _, status = await env.control("GET", "/status")
    assert "PublicKeyMismatch" in status["connectors"][0]["info"]


async def test_meter_that_cannot_sign_starts_no_session(env: Env) -> None:
    daemon = await env.start()
    sim = daemon.station.connectors[1].meter.sim if daemon.station else None
    assert isinstance(sim, SimulatedBsm)
    sim.faults.snapshot_status = SnapshotStatus.GENERAL_ERROR
    await env.view.remote_start(1, "NS-1")
    await env.view.wait_status(1, "Faulted")
    assert not env.view.starts()
    _, status = await env.control("GET", "/status")
    assert status["connectors"][0]["load_released"] is False


async def test_callerrors_are_retried_then_flagged_not_dropped(env: Env) -> None:
    await env.start(ocpp={"transaction_message_attempts": 2})
    await env.view.remote_start(1, "CE-1")
    await env.view.wait_started()
    await env.outbox_drained()
    env.csms.fail_next(env.view.end_action, count=5)
    await env.control("POST", "/connectors/1/stop")
    await wait_until(lambda: len(env.view.ends()) >= 2, timeout=15, what="two attempts")
    await asyncio.sleep(0.3)
    assert len(env.view.ends()) == 2
    _, status = await env.control("GET", "/status")
    assert status["failed_messages"] == 1 and status["outbox"] == 0


async def test_change_availability_is_scheduled_during_a_session(env: Env) -> None:
    await env.start()
    assert await env.view.change_availability(2, operative=False) == "Accepted"
    await env.view.wait_status(2, env.view.unavailable)
    assert await env.view.remote_start(2, "AV-1") == "Rejected"
    await env.view.remote_start(1, "AV-2")
    await env.view.wait_started()
    assert await env.view.change_availability(1, operative=False) == "Scheduled"
    session_id = env.view.sessions()[0].tx_id
    mark = len(env.csms.received)
    await env.view.remote_stop(session_id)
    await env.view.wait_ended()
    await env.view.wait_status(1, env.view.unavailable, after=mark)


async def test_trigger_message_and_callerror_for_an_invalid_call(env: Env) -> None:
    await env.start()
    mark = len(env.csms.received)
    assert await env.view.trigger("StatusNotification", 1) == "Accepted"
    await wait_until(lambda: bool(env.view.statuses(1, mark)), what="triggered status")
    assert await env.view.trigger("Heartbeat") == "Accepted"
    await env.csms.wait_for("Heartbeat", after=mark)
    assert await env.view.trigger("StatusNotification", 9) == "Rejected"
    action = "RemoteStartTransaction" if env.version == "1.6" else "RequestStartTransaction"
    with pytest.raises(CallErrorReply) as info:
        await env.view.call(action, {"connectorId": 1, "evseId": 1}, validate=False)
    assert info.value.code in (
        "ProtocolError",
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
        "FormationViolation",
        "FormatViolation",
    )


async def test_boot_pending_then_accepted_sends_nothing_else_before(env: Env) -> None:
    env.csms.boot_status = "Pending"
    env.csms.heartbeat_interval = 1  # the interval a Pending/Rejected boot is retried after
    env.station = InProcessStation(env.config())
    await env.station.start()
    await wait_until(
        lambda: len(env.csms.messages("BootNotification")) >= 2,
        timeout=10,
        what="a retried BootNotification",
    )
    assert {r.action for r in env.csms.received} == {"BootNotification"}
    env.csms.boot_status = "Accepted"
    await env.csms.wait_for("StatusNotification", timeout=10)


async def test_boot_rejected_leaves_csms_calls_unanswered_and_pending_refuses_remote_start(
    env: Env,
) -> None:
    env.csms.boot_status = "Rejected"
    env.csms.heartbeat_interval = 1
    env.station = InProcessStation(env.config())
    await env.station.start()
    await wait_until(
        lambda: env.daemon.adapter is not None and env.daemon.adapter.registration == "Rejected",
        timeout=10,
        what="a Rejected boot",
    )
    with pytest.raises(TimeoutError):
        await env.view.call("ClearCache", {}, timeout=1)
    env.csms.boot_status = "Pending"
    await wait_until(
        lambda: env.daemon.adapter is not None and env.daemon.adapter.registration == "Pending",
        timeout=10,
        what="a Pending boot",
    )
    assert await env.view.remote_start(1, "EARLY") == "Rejected"
    assert {r.action for r in env.csms.received} == {"BootNotification"}


async def test_offline_start_from_the_authorization_cache(env: Env) -> None:
    await env.start()
    await env.control("POST", "/connectors/1/plug")
    code, _ = await env.control("POST", "/id-tag", {"id_tag": "CACHED-1", "connector": 1})
    assert code == 200
    await env.view.wait_started()
    await env.control("POST", "/id-tag", {"id_tag": "CACHED-1"})
    await env.view.wait_ended()
    await env.outbox_drained()
    env.csms.refuse_connections(True)
    await env.csms.disconnect(STATION_ID)
    await asyncio.sleep(0.3)
    # offline: the cached tag starts a session (LocalAuthorizeOffline), an unknown one does not
    code, body = await env.control("POST", "/id-tag", {"id_tag": "UNKNOWN-9", "connector": 1})
    assert code == 409, body
    code, body = await env.control("POST", "/id-tag", {"id_tag": "CACHED-1", "connector": 1})
    assert code == 200 and "cache" in body["result"], body
    await asyncio.sleep(0.5)
    env.csms.refuse_connections(False)
    second = await env.view.wait_started(2, timeout=20)
    assert second.id_tag == "CACHED-1"
    await env.outbox_drained()
    answer = await env.view.call("ClearCache", {})
    assert answer["status"] == "Accepted"


async def test_a_slow_csms_is_no_refusal_nothing_flagged(env: Env) -> None:
    await env.start(csms={"call_timeout": 1})
    await env.view.remote_start(1, "SLOW-1")
    await env.view.wait_started()
    await env.outbox_drained()
    env.csms.delay(env.view.end_action, 1.5)
    await env.control("POST", "/connectors/1/stop")
    await wait_until(lambda: len(env.view.ends()) >= 2, timeout=20, what="a resent end")
    env.csms.delay(env.view.end_action, 0)
    await env.outbox_drained(timeout=20)
    _, status = await env.control("GET", "/status")
    assert status["failed_messages"] == 0
    payloads = {canonical(r.payload) for r in env.view.ends()}
    assert len(payloads) == 1, "a resend carries exactly the same content"


async def test_a_fault_while_the_turn_on_is_signed_starts_nothing(env: Env) -> None:
    await env.start(sign_delay=1.0)
    await env.view.remote_start(1, "RACE-1")
    await wait_until(lambda: bool(env.view.statuses(1)), what="the connector occupied")
    await asyncio.sleep(0.6)  # the meter is signing the turn-on snapshot
    await env.control("POST", "/connectors/1/fault", {"info": "RCM tripped"})
    await wait_until(lambda: env.view.statuses(1)[-1] == "Faulted", timeout=10, what="Faulted")
    await asyncio.sleep(1.5)
    assert not env.view.starts()
    _, status = await env.control("GET", "/status")
    assert status["connectors"][0]["load_released"] is False
    assert status["connectors"][0]["transaction"] is None


async def test_another_card_cannot_stop_a_session(env: Env) -> None:
    await env.start()
    await env.control("POST", "/connectors/1/plug")
    await env.control("POST", "/id-tag", {"id_tag": "ALICE", "connector": 1})
    await env.view.wait_started()
    code, body = await env.control("POST", "/id-tag", {"id_tag": "MALLORY", "connector": 1})
    assert code == 409, body
    await asyncio.sleep(0.3)
    assert not env.view.ends()


async def test_two_sessions_in_a_row_keep_their_own_ids_and_pairs(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(1)
    first = await remote_session(env, id_tag="A-1", seconds=0.2)
    await wait_until(lambda: env.view.statuses(1)[-1] == "Available", what="EV leaves")
    second = await remote_session(env, id_tag="A-2", seconds=0.2, n=2)
    assert first.tx_id != second.tx_id
    check_signed_pair(first, key, "A-1")
    check_signed_pair(second, key, "A-2")
    first_end = parse_ocmf(first.signed["Transaction.End"]["ocmf"])
    second_begin = parse_ocmf(second.signed["Transaction.Begin"]["ocmf"])
    assert int(str(second_begin.pagination)[1:]) > int(str(first_end.pagination)[1:])
