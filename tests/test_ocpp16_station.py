"""OCPP 1.6J only: configuration keys, connector 0, 1.6 error codes and status details.

The scenarios both versions share are in test_station.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.real_vectors import bsm_public_key_hex
from tests.station_env import Env, running_env
from tests.station_harness import STATION_ID


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env("1.6", tmp_path) as e:
        yield e


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


async def test_pinned_key_mismatch_is_reported_as_power_meter_failure(env: Env) -> None:
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
