"""The daemon on OCPP 1.6J against the test CSMS on loopback: what a backend sees."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chargepoint.control import ControlAddress, request
from chargepoint.daemon import Daemon
from chargepoint.testcsms import CallErrorReply, TestCsms
from meter.keys import load_public_key
from meter.ocmf import parse_ocmf, verify_ocmf
from meter.snapshot import SnapshotStatus
from tests.shared_vectors import bsm_public_key_hex
from tests.station_harness import (
    STATION_ID,
    InProcessStation,
    actions,
    meter_key,
    signed_values,
    station_yaml,
    statuses,
    wait_until,
)


@dataclass
class Env:
    csms: TestCsms
    tmp: Path
    station: InProcessStation | None = None

    @property
    def daemon(self) -> Daemon:
        assert self.station is not None and self.station.daemon is not None
        return self.station.daemon

    async def start(self, **kwargs: Any) -> Daemon:
        cfg = station_yaml(self.tmp / "station.yaml", self.csms.url, self.tmp / "state", **kwargs)
        self.station = InProcessStation(cfg)
        daemon = await self.station.start()
        await self.csms.wait_connected(STATION_ID, timeout=10)
        await self.csms.wait_for("StatusNotification", lambda r: r.payload["connectorId"] == 0)
        return daemon

    async def restart(self) -> Daemon:
        assert self.station is not None
        await self.station.stop()
        daemon = await self.station.start()
        await self.csms.wait_connected(STATION_ID, timeout=10)
        return daemon

    async def outbox_drained(self, timeout: float = 10) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            _, status = await self.control("GET", "/status")
            if status["outbox"] == 0:
                return
            if loop.time() > deadline:
                raise TimeoutError(f"outbox still holds {status['outbox']} messages")
            await asyncio.sleep(0.02)

    async def control(
        self, method: str, target: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        address = ControlAddress("unix:control.sock", self.tmp / "state")
        return await request(address, method, target, body)


StartEnv = Callable[..., Awaitable[Env]]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    e = Env(csms, tmp_path)
    try:
        yield e
    finally:
        if e.station is not None:
            await e.station.stop()
        await csms.stop()


async def remote_session(
    env: Env, connector: int = 1, id_tag: str = "TAG-1", seconds: float = 0.4
) -> tuple[dict[str, Any], dict[str, Any]]:
    mark = len(env.csms.received)
    answer = await env.csms.call(
        STATION_ID, "RemoteStartTransaction", {"idTag": id_tag, "connectorId": connector}
    )
    assert answer["status"] == "Accepted"
    start = await env.csms.wait_for("StartTransaction", after=mark, timeout=15)
    await wait_until(lambda: bool(env.csms.transaction_log()), what="transaction id")
    tx_id = max(env.csms.transaction_log())
    await asyncio.sleep(seconds)
    stop_answer = await env.csms.call(STATION_ID, "RemoteStopTransaction", {"transactionId": tx_id})
    assert stop_answer["status"] == "Accepted"
    stop = await env.csms.wait_for("StopTransaction", after=mark, timeout=15)
    return start.payload, stop.payload


def check_signed_pair(stop: dict[str, Any], key_hex: str, id_tag: str) -> None:
    values = signed_values(stop)
    assert set(values) == {"Transaction.Begin", "Transaction.End"}
    key = load_public_key(key_hex)
    begin = parse_ocmf(values["Transaction.Begin"]["ocmf"])
    end = parse_ocmf(values["Transaction.End"]["ocmf"])
    for record in (begin, end):
        check = verify_ocmf(record, key)
        assert check.signature_valid and check.billable, check.reason
        assert record.identification == id_tag
    assert int(str(end.pagination)[1:]) == int(str(begin.pagination)[1:]) + 1  # RCnt + 1
    assert values["Transaction.Begin"]["sampled_value"]["measurand"] == (
        "Energy.Active.Import.Register"
    )


async def test_remote_session_carries_verifiable_signed_values(env: Env) -> None:
    await env.start()
    key = await meter_key(env.csms, 1)
    start, stop = await remote_session(env, seconds=0.5)
    assert isinstance(start["meterStart"], int) and start["timestamp"].endswith("Z")
    assert stop["reason"] == "Remote"
    assert stop["meterStop"] > start["meterStart"], "the EV drew energy"
    check_signed_pair(stop, key, "TAG-1")
    values = signed_values(stop)
    assert values["Transaction.Begin"]["public_key"] == key  # OncePerTransaction
    assert values["Transaction.End"]["public_key"] == ""
    # meterStart is the absolute register the signed begin value proves
    begin = parse_ocmf(values["Transaction.Begin"]["ocmf"])
    assert begin.readings[0].xv is not None
    assert int(begin.readings[0].xv * 1000) == start["meterStart"]
    await wait_until(lambda: statuses(env.csms, 1)[-1] == "Available", what="EV leaves")
    assert statuses(env.csms, 1)[-4:] == ["Preparing", "Charging", "Finishing", "Available"]


async def test_local_session_with_id_tag_and_plug(env: Env) -> None:
    await env.start()
    key = await meter_key(env.csms, 2)
    code, body = await env.control("POST", "/connectors/2/plug")
    assert code == 200
    code, body = await env.control("POST", "/id-tag", {"id_tag": "RFID-42", "connector": 2})
    assert code == 200, body
    authorize = await env.csms.wait_for("Authorize")
    assert authorize.payload == {"idTag": "RFID-42"}
    start = await env.csms.wait_for("StartTransaction", timeout=15)
    assert start.payload["connectorId"] == 2
    await asyncio.sleep(0.3)
    code, body = await env.control("POST", "/id-tag", {"id_tag": "RFID-42"})  # same card stops
    assert code == 200 and "stopping" in body["result"]
    stop = await env.csms.wait_for("StopTransaction", timeout=15)
    assert stop.payload["reason"] == "Local" and stop.payload["idTag"] == "RFID-42"
    check_signed_pair(stop.payload, key, "RFID-42")
    await env.control("POST", "/connectors/2/unplug")
    await wait_until(lambda: statuses(env.csms, 2)[-1] == "Available", what="Available")


async def test_unknown_tag_is_refused_and_starts_nothing(env: Env) -> None:
    env.csms.accept_id_tags = {"GOOD"}
    await env.start()
    code, body = await env.control("POST", "/id-tag", {"id_tag": "BAD", "connector": 1})
    assert code == 409 and "Invalid" in body["result"]
    await asyncio.sleep(0.3)
    assert not env.csms.messages("StartTransaction")


async def test_outage_during_session_loses_nothing(env: Env) -> None:
    await env.start()
    key = await meter_key(env.csms, 1)
    mark = len(env.csms.received)
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "OUT-1", "connectorId": 1})
    await env.csms.wait_for("StartTransaction", after=mark, timeout=15)
    await env.outbox_drained()  # the station has the answer: the CSMS goes away after that
    env.csms.refuse_connections(True)
    await env.csms.disconnect(STATION_ID)
    await asyncio.sleep(0.3)
    code, _ = await env.control("POST", "/connectors/1/stop")  # stopped while offline
    assert code == 200
    await asyncio.sleep(0.5)
    code, status = await env.control("GET", "/status")
    assert status["online"] is False and status["outbox"] >= 1
    assert not env.csms.messages("StopTransaction")
    env.csms.refuse_connections(False)
    stop = await env.csms.wait_for("StopTransaction", timeout=20)
    assert stop.payload["reason"] == "Local"
    check_signed_pair(stop.payload, key, "OUT-1")
    await asyncio.sleep(0.5)
    assert len(env.csms.messages("StopTransaction")) == 1
    assert len(env.csms.messages("StartTransaction")) == 1


async def test_open_session_is_ended_with_power_loss_after_restart(env: Env) -> None:
    await env.start()
    key = await meter_key(env.csms, 1)
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "PL-1", "connectorId": 1})
    await env.csms.wait_for("StartTransaction", timeout=15)
    await asyncio.sleep(0.3)
    await env.restart()  # the daemon goes away with the session open
    stop = await env.csms.wait_for("StopTransaction", timeout=20)
    assert stop.payload["reason"] == "PowerLoss"
    check_signed_pair(stop.payload, key, "PL-1")
    assert len(env.csms.messages("StopTransaction")) == 1


@pytest.mark.parametrize("reset_type", ["Soft", "Hard"])
async def test_reset_ends_sessions_with_signed_values_and_boots_again(
    env: Env, reset_type: str
) -> None:
    await env.start()
    key = await meter_key(env.csms, 1)
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "RS-1", "connectorId": 1})
    await env.csms.wait_for("StartTransaction", timeout=15)
    boots = len(env.csms.messages("BootNotification"))
    answer = await env.csms.call(STATION_ID, "Reset", {"type": reset_type})
    assert answer["status"] == "Accepted"
    stop = await env.csms.wait_for("StopTransaction", timeout=20)
    assert stop.payload["reason"] == f"{reset_type}Reset"
    check_signed_pair(stop.payload, key, "RS-1")
    await wait_until(
        lambda: len(env.csms.messages("BootNotification")) > boots,
        timeout=20,
        what="a new BootNotification",
    )


async def test_bad_frames_get_a_callerror_and_the_connection_stays(env: Env) -> None:
    await env.start()
    for frame in (
        "not json",
        "[2, 17]",
        '{"a": 1}',
        '[2, "abc", "Nonsense", {}]',
        '[2, "x1", "RemoteStartTransaction", {"idTag": 5}]',
    ):
        reply = await env.csms.send_raw(STATION_ID, frame)
        assert reply is not None, frame
        parsed = json.loads(reply)
        assert parsed[0] == 4, reply
    assert json.loads(await env.csms.send_raw(STATION_ID, '[2, "abc", "Nonsense", {}]') or "[]")[
        2
    ] in ("NotImplemented", "NotSupported")
    assert env.csms.is_connected(STATION_ID)
    answer = await env.csms.call(STATION_ID, "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["value"] == "300"


async def test_configuration_keys_are_real(env: Env) -> None:
    await env.start()
    csms = env.csms
    answer = await csms.call(STATION_ID, "GetConfiguration", {})
    keys = {k["key"]: k for k in answer["configurationKey"]}
    for required in (
        "HeartbeatInterval",
        "MeterValueSampleInterval",
        "MeterValuesSampledData",
        "ClockAlignedDataInterval",
        "AuthorizeRemoteTxRequests",
        "LocalAuthorizeOffline",
        "LocalPreAuthorize",
        "TransactionMessageAttempts",
        "TransactionMessageRetryInterval",
        "NumberOfConnectors",
        "MeterPublicKey1",
        "MeterPublicKey2",
        "PublicKeyWithSignedMeterValue",
        "SampledDataSignReadings",
        "SampledDataSignStartedReadings",
        "StartTxnSampledData",
    ):
        assert required in keys, required
    assert keys["NumberOfConnectors"]["readonly"] is True
    assert keys["MeterPublicKey1"]["readonly"] is True
    change = await csms.call(
        STATION_ID, "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "5"}
    )
    assert change["status"] == "Rejected"
    change = await csms.call(STATION_ID, "ChangeConfiguration", {"key": "NoSuchKey", "value": "1"})
    assert change["status"] == "NotSupported"
    change = await csms.call(
        STATION_ID, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "soon"}
    )
    assert change["status"] == "Rejected"
    change = await csms.call(
        STATION_ID, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "1"}
    )
    assert change["status"] == "Accepted"
    # it changes behaviour: periodic MeterValues with the transaction id appear
    await csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "MV-1", "connectorId": 1})
    await csms.wait_for("StartTransaction", timeout=15)
    mv = await csms.wait_for("MeterValues", lambda r: "transactionId" in r.payload, timeout=10)
    sampled = mv.payload["meterValue"][0]["sampledValue"]
    assert sampled[0]["measurand"] == "Energy.Active.Import.Register"
    assert sampled[0]["context"] == "Sample.Periodic"
    # and it survives a restart
    await env.restart()
    answer = await csms.call(STATION_ID, "GetConfiguration", {"key": ["MeterValueSampleInterval"]})
    assert answer["configurationKey"][0]["value"] == "1"


async def test_signed_begin_in_meter_values_when_configured(env: Env) -> None:
    await env.start(
        ocpp={
            "start_txn_sampled_data": "Energy.Active.Import.Register",
            "sampled_data_sign_started_readings": True,
        }
    )
    key = await meter_key(env.csms, 1)
    _, stop = await remote_session(env, id_tag="SB-1")
    mvs = [r for r in env.csms.messages("MeterValues") if "transactionId" in r.payload]
    assert mvs, "a MeterValues with the signed Begin follows StartTransaction"
    sv = mvs[0].payload["meterValue"][0]["sampledValue"][0]
    assert sv["context"] == "Transaction.Begin" and sv["format"] == "SignedData"
    body = json.loads(sv["value"])
    assert body["encodingMethod"] == "OCMF" and body["publicKey"]
    # the key went out once per transaction: not again in StopTransaction
    assert signed_values(stop)["Transaction.Begin"]["public_key"] == ""
    check_signed_pair(stop, key, "SB-1")
    order = actions(env.csms)
    assert (
        order.index("StartTransaction")
        < order.index("MeterValues")
        < order.index("StopTransaction")
    )


async def test_pinned_key_mismatch_faults_the_connector(env: Env) -> None:
    other = bsm_public_key_hex("B_meter_001BZR1521290137")
    await env.start(public_keys={1: other})
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "PK-1", "connectorId": 1})
    faulted = await env.csms.wait_for(
        "StatusNotification",
        lambda r: r.payload["connectorId"] == 1 and r.payload["status"] == "Faulted",
        timeout=15,
    )
    assert faulted.payload["errorCode"] == "PowerMeterFailure"
    assert "PublicKeyMismatch" in faulted.payload.get("info", "")
    await asyncio.sleep(0.3)
    assert not env.csms.messages("StartTransaction")


async def test_meter_that_cannot_sign_starts_no_session(env: Env) -> None:
    daemon = await env.start()
    sim = daemon.station.connectors[1].meter.sim if daemon.station else None
    assert sim is not None
    sim.faults.snapshot_status = SnapshotStatus.GENERAL_ERROR
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "NS-1", "connectorId": 1})
    await env.csms.wait_for(
        "StatusNotification",
        lambda r: r.payload["connectorId"] == 1 and r.payload["status"] == "Faulted",
        timeout=15,
    )
    assert not env.csms.messages("StartTransaction")
    _, status = await env.control("GET", "/status")
    assert status["connectors"][0]["load_released"] is False


async def test_callerrors_are_retried_then_flagged_not_dropped(env: Env) -> None:
    await env.start(ocpp={"transaction_message_attempts": 2})
    env.csms.fail_next("StopTransaction", count=5)
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "CE-1", "connectorId": 1})
    await env.csms.wait_for("StartTransaction", timeout=15)
    await asyncio.sleep(0.2)
    await env.control("POST", "/connectors/1/stop")
    await wait_until(
        lambda: len(env.csms.messages("StopTransaction")) >= 2, timeout=15, what="two attempts"
    )
    await asyncio.sleep(0.3)
    assert len(env.csms.messages("StopTransaction")) == 2
    _, status = await env.control("GET", "/status")
    assert status["failed_messages"] == 1 and status["outbox"] == 0


async def test_change_availability_is_scheduled_during_a_session(env: Env) -> None:
    await env.start()
    answer = await env.csms.call(
        STATION_ID, "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}
    )
    assert answer["status"] == "Accepted"
    await env.csms.wait_for(
        "StatusNotification",
        lambda r: r.payload["connectorId"] == 2 and r.payload["status"] == "Unavailable",
    )
    remote = await env.csms.call(
        STATION_ID, "RemoteStartTransaction", {"idTag": "AV-1", "connectorId": 2}
    )
    assert remote["status"] == "Rejected"
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "AV-2", "connectorId": 1})
    await env.csms.wait_for("StartTransaction", timeout=15)
    answer = await env.csms.call(
        STATION_ID, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}
    )
    assert answer["status"] == "Scheduled"


async def test_trigger_message_and_callerror_for_unknown(env: Env) -> None:
    await env.start()
    mark = len(env.csms.received)
    answer = await env.csms.call(
        STATION_ID, "TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}
    )
    assert answer["status"] == "Accepted"
    await env.csms.wait_for(
        "StatusNotification", lambda r: r.payload["connectorId"] == 1, after=mark
    )
    answer = await env.csms.call(STATION_ID, "TriggerMessage", {"requestedMessage": "Heartbeat"})
    assert answer["status"] == "Accepted"
    await env.csms.wait_for("Heartbeat", after=mark)
    with pytest.raises(CallErrorReply) as info:
        await env.csms.call(
            STATION_ID, "RemoteStartTransaction", {"connectorId": 1}, validate=False
        )
    assert info.value.code in (
        "ProtocolError",
        "OccurenceConstraintViolation",
        "FormationViolation",
    )


async def test_boot_pending_then_accepted_sends_nothing_else_before(env: Env) -> None:
    env.csms.boot_status = "Pending"
    env.csms.heartbeat_interval = 1  # the interval a Pending/Rejected boot is retried after
    cfg = station_yaml(env.tmp / "station.yaml", env.csms.url, env.tmp / "state")
    env.station = InProcessStation(cfg)
    await env.station.start()
    await wait_until(
        lambda: len(env.csms.messages("BootNotification")) >= 2,
        timeout=10,
        what="a retried BootNotification",
    )
    assert set(actions(env.csms)) == {"BootNotification"}
    env.csms.boot_status = "Accepted"
    await env.csms.wait_for(
        "StatusNotification", lambda r: r.payload["connectorId"] == 0, timeout=10
    )


async def test_offline_start_from_the_authorization_cache(env: Env) -> None:
    await env.start()
    await env.control("POST", "/connectors/1/plug")
    code, _ = await env.control("POST", "/id-tag", {"id_tag": "CACHED-1", "connector": 1})
    assert code == 200
    await env.csms.wait_for("StartTransaction", timeout=15)
    await env.control("POST", "/id-tag", {"id_tag": "CACHED-1"})
    await env.csms.wait_for("StopTransaction", timeout=15)
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
    await wait_until(
        lambda: len(env.csms.messages("StartTransaction")) == 2,
        timeout=20,
        what="the offline StartTransaction",
    )
    assert env.csms.messages("StartTransaction")[1].payload["idTag"] == "CACHED-1"
    # ClearCache empties it: offline, the tag is unknown again
    await env.outbox_drained()
    answer = await env.csms.call(STATION_ID, "ClearCache", {})
    assert answer["status"] == "Accepted"


async def test_unlock_and_data_transfer_answers(env: Env) -> None:
    await env.start()
    answer = await env.csms.call(STATION_ID, "UnlockConnector", {"connectorId": 1})
    assert answer["status"] == "Unlocked"
    answer = await env.csms.call(STATION_ID, "UnlockConnector", {"connectorId": 9})
    assert answer["status"] == "NotSupported"
    answer = await env.csms.call(STATION_ID, "DataTransfer", {"vendorId": "com.example"})
    assert answer["status"] == "UnknownVendorId"
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "UL-1", "connectorId": 1})
    await env.csms.wait_for("StartTransaction", timeout=15)
    answer = await env.csms.call(STATION_ID, "UnlockConnector", {"connectorId": 1})
    assert answer["status"] == "Unlocked"
    stop = await env.csms.wait_for("StopTransaction", timeout=15)
    assert stop.payload["reason"] == "UnlockCommand"


async def test_boot_rejected_leaves_csms_calls_unanswered_and_pending_refuses_remote_start(
    env: Env,
) -> None:
    env.csms.boot_status = "Rejected"
    env.csms.heartbeat_interval = 1
    cfg = station_yaml(env.tmp / "station.yaml", env.csms.url, env.tmp / "state")
    env.station = InProcessStation(cfg)
    await env.station.start()
    await wait_until(
        lambda: env.daemon.adapter is not None and env.daemon.adapter.registration == "Rejected",
        timeout=10,
        what="a Rejected boot",
    )
    with pytest.raises(TimeoutError):
        await env.csms.call(STATION_ID, "GetConfiguration", {}, timeout=1)
    env.csms.boot_status = "Pending"
    await wait_until(
        lambda: env.daemon.adapter is not None and env.daemon.adapter.registration == "Pending",
        timeout=10,
        what="a Pending boot",
    )
    answer = await env.csms.call(
        STATION_ID, "RemoteStartTransaction", {"idTag": "EARLY", "connectorId": 1}
    )
    assert answer["status"] == "Rejected"
    assert set(actions(env.csms)) == {"BootNotification"}


async def test_connector_zero_goes_unavailable_with_the_whole_station(env: Env) -> None:
    await env.start()
    mark = len(env.csms.received)
    answer = await env.csms.call(
        STATION_ID, "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}
    )
    assert answer["status"] == "Accepted"
    await env.csms.wait_for(
        "StatusNotification",
        lambda r: r.payload["connectorId"] == 0 and r.payload["status"] == "Unavailable",
        after=mark,
    )
    await env.csms.call(STATION_ID, "ChangeAvailability", {"connectorId": 0, "type": "Operative"})
    await env.csms.wait_for(
        "StatusNotification",
        lambda r: r.payload["connectorId"] == 0 and r.payload["status"] == "Available",
        after=mark,
    )


async def test_a_slow_csms_is_no_refusal_nothing_flagged(env: Env) -> None:
    await env.start(csms={"call_timeout": 1})
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "SLOW-1", "connectorId": 1})
    await env.csms.wait_for("StartTransaction", timeout=15)
    await env.outbox_drained()
    env.csms.delay("StopTransaction", 1.5)
    await env.control("POST", "/connectors/1/stop")
    await wait_until(
        lambda: len(env.csms.messages("StopTransaction")) >= 2,
        timeout=20,
        what="a resent StopTransaction",
    )
    env.csms.delay("StopTransaction", 0)
    await env.outbox_drained(timeout=20)
    _, status = await env.control("GET", "/status")
    assert status["failed_messages"] == 0
    payloads = {json.dumps(r.payload, sort_keys=True) for r in env.csms.messages("StopTransaction")}
    assert len(payloads) == 1, "a resend carries exactly the same content"


async def test_a_fault_while_the_turn_on_is_signed_starts_nothing(env: Env) -> None:
    await env.start(sign_delay=1.0)
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "RACE-1", "connectorId": 1})
    await env.csms.wait_for(
        "StatusNotification",
        lambda r: r.payload["connectorId"] == 1 and r.payload["status"] == "Preparing",
    )
    await asyncio.sleep(0.5)  # the meter is signing the turn-on snapshot
    await env.control("POST", "/connectors/1/fault", {"info": "RCM tripped"})
    await wait_until(lambda: statuses(env.csms, 1)[-1] == "Faulted", timeout=10, what="Faulted")
    await asyncio.sleep(1.5)
    assert not env.csms.messages("StartTransaction")
    _, status = await env.control("GET", "/status")
    assert status["connectors"][0]["load_released"] is False
    assert status["connectors"][0]["transaction"] is None


async def test_another_card_cannot_stop_a_session(env: Env) -> None:
    await env.start()
    await env.control("POST", "/connectors/1/plug")
    await env.control("POST", "/id-tag", {"id_tag": "ALICE", "connector": 1})
    await env.csms.wait_for("StartTransaction", timeout=15)
    code, body = await env.control("POST", "/id-tag", {"id_tag": "MALLORY", "connector": 1})
    assert code == 409, body
    await asyncio.sleep(0.3)
    assert not env.csms.messages("StopTransaction")


async def test_soft_reset_delivers_the_stop_before_the_new_boot(env: Env) -> None:
    await env.start()
    await env.csms.call(STATION_ID, "RemoteStartTransaction", {"idTag": "RO-1", "connectorId": 1})
    await env.csms.wait_for("StartTransaction", timeout=15)
    mark = len(env.csms.received)
    await env.csms.call(STATION_ID, "Reset", {"type": "Soft"})
    await env.csms.wait_for("BootNotification", after=mark, timeout=20)
    order = actions(env.csms, mark)
    assert "StopTransaction" in order
    assert order.index("StopTransaction") < order.index("BootNotification")


async def test_schema_violations_get_1_6_error_codes(env: Env) -> None:
    await env.start()
    reply = await env.csms.send_raw(STATION_ID, '[2, "r1", "Reset", {"type": "Medium"}]')
    assert reply is not None
    assert json.loads(reply)[2] in (
        "FormationViolation",
        "PropertyConstraintViolation",
        "TypeConstraintViolation",
    )
    reply = await env.csms.send_raw(STATION_ID, "not json at all")
    assert reply is not None and json.loads(reply)[2] == "FormationViolation"
    for frame in ('[2, "r2", "Reset", {"type": "Soft", "extra": 1}]', '[2, "r3", "Reset", {}]'):
        reply = await env.csms.send_raw(STATION_ID, frame)
        assert reply is not None
        assert json.loads(reply)[2] != "FormatViolation", "2.0.1's name is not valid in 1.6"
