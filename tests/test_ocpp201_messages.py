"""OCPP 2.0.1 TransactionEvent payloads from the core's events (field guide 4)."""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import ocpp.v201
import pytest

from chargepoint.core import events
from chargepoint.ocpp201 import messages as m
from meter.keys import load_public_key
from meter.ocmf import parse_ocmf, verify_ocmf
from tests.shared_vectors import bsm_public_key_hex, bsm_vectors

KEY_NAME = "A_meter_001BZR1521070006"
STATION = "EICHRECHT-STATION-0001-LONG-NAME"
TID = m.transaction_id(7, STATION)


@cache
def validator() -> jsonschema.Draft6Validator:
    path = Path(ocpp.v201.__file__).parent / "schemas" / "TransactionEventRequest.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema)


def assert_valid(payload: dict[str, Any]) -> None:
    errors = [e.message for e in validator().iter_errors(payload)]
    assert not errors, errors


def signed(name: str, energy_wh: int, timestamp: str) -> events.SignedValue:
    return {
        "ocmf": bsm_vectors()["ocmf_vectors"][name]["ocmf"],
        "timestamp": timestamp,
        "energy_wh": energy_wh,
        "public_key_hex": bsm_public_key_hex(KEY_NAME),
    }


BEGIN = signed("ostons_T4276", 99840, "2022-07-08T08:00:28Z")
END = signed("ostoffs_T4277", 100000, "2022-07-08T08:05:52Z")


def started_data(trigger: str = "Authorized", id_tag: str = "12345678ABCDEF") -> dict[str, Any]:
    return events.started(
        connector_id=2,
        evse_id="DE*BDO*E8025334492*2",
        id_tag=id_tag,
        timestamp="2022-07-08T08:00:29Z",
        meter_start_wh=99840,
        begin=BEGIN,
        trigger=trigger,
    )


def ended_data(
    reason: str = "Local",
    *,
    sign: bool = True,
    key_mode: str = "OncePerTransaction",
    end: events.SignedValue | None = END,
) -> dict[str, Any]:
    return events.ended(
        connector_id=2,
        id_tag="12345678ABCDEF",
        timestamp="2022-07-08T08:05:53Z",
        meter_stop_wh=100000,
        reason=reason,
        begin=BEGIN,
        end=end,
        unsigned_reason=None if end is not None else "meter timeout",
        stop_samples=[
            {"measurand": "Energy.Active.Import.Register", "value": "100000", "unit": "Wh"},
            {"measurand": "Power.Active.Import", "value": "0", "unit": "W"},
        ],
        sign_readings=sign,
        public_key_mode=key_mode,
    )


def signed_values(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        sv
        for mv in payload.get("meterValue", [])
        for sv in mv["sampledValue"]
        if "signedMeterValue" in sv
    ]


# --- transaction id -------------------------------------------------------------------


def test_transaction_id_is_stable_short_and_distinct() -> None:
    assert m.transaction_id(7, STATION) == "EICHRECHT-STATION-00-7"
    assert m.transaction_id(7, STATION) == TID
    assert m.transaction_id(8, STATION) != TID
    assert len(m.transaction_id(10**15 - 1, STATION)) == 36
    with pytest.raises(ValueError):
        m.transaction_id(10**15, STATION)
    with pytest.raises(ValueError):
        m.transaction_id(-1, STATION)


# --- signed values --------------------------------------------------------------------


def test_signed_meter_value_round_trips_byte_for_byte_and_verifies() -> None:
    smv = m.signed_meter_value(BEGIN, with_key=True)
    assert set(smv) == {"signedMeterData", "signingMethod", "encodingMethod", "publicKey"}
    assert (smv["signingMethod"], smv["encodingMethod"]) == ("", "OCMF")
    raw = base64.b64decode(smv["signedMeterData"], validate=True)
    assert raw == BEGIN["ocmf"].encode("utf-8")
    key_text = base64.b64decode(smv["publicKey"], validate=True).decode()
    assert key_text == "oca:base16:asn1:" + bsm_public_key_hex(KEY_NAME)
    key = load_public_key(key_text)
    result = verify_ocmf(parse_ocmf(raw), key)
    assert result.signature_valid, result.reason
    assert m.signed_meter_value(BEGIN, with_key=False)["publicKey"] == ""


def test_signed_meter_data_over_2500_characters_is_refused() -> None:
    big: events.SignedValue = {**BEGIN, "ocmf": "OCMF|" + "x" * 1895}
    assert len(big["ocmf"].encode()) == 1900
    with pytest.raises(m.SignedValueTooLong) as info:
        m.signed_meter_value(big, with_key=False)
    assert info.value.length == 2536
    assert isinstance(info.value, ValueError)
    fits: events.SignedValue = {**BEGIN, "ocmf": "OCMF|" + "x" * 1870}  # 1875 bytes
    assert len(m.signed_meter_value(fits, with_key=True)["signedMeterData"]) == 2500
    with pytest.raises(m.SignedValueTooLong):
        m.ended(
            ended_data(end={**END, "ocmf": big["ocmf"]}),
            seq_no=3,
            transaction_id=TID,
            offline=False,
            key_already_sent=True,
        )


def test_energy_sampled_value_is_a_number_in_wh() -> None:
    sv = m.energy_sampled_value(99840, "Transaction.Begin", BEGIN, False)
    assert sv["value"] == 99840 and isinstance(sv["value"], int)
    assert sv["measurand"] == "Energy.Active.Import.Register"
    assert sv["unitOfMeasure"] == {"unit": "Wh", "multiplier": 0}
    assert sv["signedMeterValue"]["publicKey"] == ""
    assert "signedMeterValue" not in m.energy_sampled_value(5, "Sample.Periodic", None, True)


# --- Started ----------------------------------------------------------------------------


@pytest.mark.parametrize("key_mode", ["Never", "OncePerTransaction", "EveryMeterValue"])
def test_started_with_signed_begin(key_mode: str) -> None:
    p = m.started(
        started_data(),
        seq_no=0,
        transaction_id=TID,
        trigger_reason="Authorized",
        offline=False,
        sign_started=True,
        key_mode=key_mode,
    )
    assert_valid(p)
    assert (p["eventType"], p["triggerReason"], p["seqNo"], p["offline"]) == (
        "Started",
        "Authorized",
        0,
        False,
    )
    assert p["timestamp"] == "2022-07-08T08:00:29Z"
    assert p["transactionInfo"] == {"transactionId": TID, "chargingState": "Charging"}
    assert p["evse"] == {"id": 2, "connectorId": 1}
    assert p["idToken"] == {"idToken": "12345678ABCDEF", "type": "ISO14443"}
    [mv] = p["meterValue"]
    assert mv["timestamp"] == BEGIN["timestamp"]
    [sv] = mv["sampledValue"]
    assert (sv["value"], sv["context"]) == (99840, "Transaction.Begin")
    assert base64.b64decode(sv["signedMeterValue"]["signedMeterData"]) == BEGIN["ocmf"].encode()
    assert bool(sv["signedMeterValue"]["publicKey"]) == (key_mode != "Never")
    assert m.payload_carries_key(p) == (key_mode != "Never")


def test_started_unsigned_and_remote_and_offline() -> None:
    p = m.started(
        started_data(trigger="RemoteStart"),
        seq_no=0,
        transaction_id=TID,
        trigger_reason="RemoteStart",
        offline=True,
        sign_started=False,
        key_mode="EveryMeterValue",
    )
    assert_valid(p)
    assert p["offline"] is True
    assert p["idToken"]["type"] == "Central"
    assert signed_values(p) == []
    assert p["meterValue"][0]["sampledValue"][0]["value"] == 99840
    # a remote start whose transaction starts at a later TxStartPoint is still Central
    p = m.started(
        started_data(trigger="RemoteStart"),
        seq_no=0,
        transaction_id=TID,
        trigger_reason="EVDetected",
        offline=False,
        sign_started=False,
        key_mode="Never",
    )
    assert_valid(p)
    assert p["idToken"]["type"] == "Central"
    p = m.started(
        started_data(id_tag=""),
        seq_no=0,
        transaction_id=TID,
        trigger_reason="CablePluggedIn",
        offline=False,
        sign_started=False,
        key_mode="Never",
    )
    assert_valid(p)
    assert p["idToken"] == {"idToken": "", "type": "NoAuthorization"}


# --- Updated ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "trigger"),
    [("Sample.Periodic", "MeterValuePeriodic"), ("Sample.Clock", "MeterValueClock")],
)
def test_updated_meter_values(context: str, trigger: str) -> None:
    data = events.meter_values(
        connector_id=2,
        timestamp="2022-07-08T08:03:00Z",
        context=context,
        samples=[
            {"measurand": "Energy.Active.Import.Register", "value": "99920", "unit": "Wh"},
            {"measurand": "Power.Active.Import", "value": "11040", "unit": "W"},
        ],
    )
    p = m.updated_meter_values(data, seq_no=2, transaction_id=TID, offline=False)
    assert_valid(p)
    assert (p["eventType"], p["triggerReason"], p["seqNo"]) == ("Updated", trigger, 2)
    assert p["transactionInfo"] == {"transactionId": TID}
    [mv] = p["meterValue"]
    assert mv["timestamp"] == "2022-07-08T08:03:00Z"
    assert mv["sampledValue"] == [
        {
            "value": 99920,
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "unitOfMeasure": {"unit": "Wh", "multiplier": 0},
        },
        {
            "value": 11040,
            "context": context,
            "measurand": "Power.Active.Import",
            "unitOfMeasure": {"unit": "W", "multiplier": 0},
        },
    ]


def test_updated_meter_values_converts_kwh_and_keeps_fractions() -> None:
    data = events.meter_values(
        connector_id=1,
        timestamp="2022-07-08T08:03:00Z",
        context="Sample.Periodic",
        samples=[
            {"measurand": "Energy.Active.Import.Register", "value": "99.84", "unit": "kWh"},
            {"measurand": "Power.Active.Import", "value": "1.5", "unit": "W"},
        ],
    )
    p = m.updated_meter_values(data, seq_no=2, transaction_id=TID, offline=False)
    assert_valid(p)
    e, w = p["meterValue"][0]["sampledValue"]
    assert (e["value"], e["unitOfMeasure"]["unit"]) == (99840, "Wh")
    assert w["value"] == 1.5
    empty = events.meter_values(
        connector_id=1, timestamp="2022-07-08T08:03:00Z", context="Sample.Clock", samples=[]
    )
    p = m.updated_meter_values(empty, seq_no=3, transaction_id=TID, offline=True)
    assert_valid(p)
    assert "meterValue" not in p


@pytest.mark.parametrize(
    ("key_mode", "already", "expect_key"),
    [
        ("Never", False, False),
        ("OncePerTransaction", False, True),
        ("OncePerTransaction", True, False),
        ("EveryMeterValue", True, True),
    ],
)
def test_updated_begin_signed(key_mode: str, already: bool, expect_key: bool) -> None:
    data = events.begin_signed(
        connector_id=2,
        begin=BEGIN,
        signed=True,
        samples=[
            {"measurand": "Energy.Active.Import.Register", "value": "99840", "unit": "Wh"},
            {"measurand": "Power.Active.Import", "value": "0", "unit": "W"},
        ],
    )
    p = m.updated_begin_signed(
        data,
        seq_no=1,
        transaction_id=TID,
        offline=False,
        key_mode=key_mode,
        key_already_sent=already,
    )
    assert_valid(p)
    assert (p["eventType"], p["triggerReason"]) == ("Updated", "SignedDataReceived")
    assert p["timestamp"] == BEGIN["timestamp"]
    [mv] = p["meterValue"]
    measurands = [sv["measurand"] for sv in mv["sampledValue"]]
    assert measurands == ["Energy.Active.Import.Register", "Power.Active.Import"]
    [sv] = signed_values(p)
    assert (sv["value"], sv["context"]) == (99840, "Transaction.Begin")
    assert base64.b64decode(sv["signedMeterValue"]["signedMeterData"]) == BEGIN["ocmf"].encode()
    assert m.payload_carries_key(p) == expect_key


def test_updated_begin_unsigned() -> None:
    data = events.begin_signed(
        connector_id=2,
        begin=BEGIN,
        signed=False,
        samples=[{"measurand": "Energy.Active.Import.Register", "value": "99840", "unit": "Wh"}],
    )
    p = m.updated_begin_signed(
        data,
        seq_no=1,
        transaction_id=TID,
        offline=False,
        key_mode="EveryMeterValue",
        key_already_sent=False,
    )
    assert_valid(p)
    assert p["triggerReason"] == "Trigger"
    assert signed_values(p) == []
    assert p["meterValue"][0]["sampledValue"][0]["value"] == 99840


# --- Ended ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "trigger", "stopped"),
    [
        ("Remote", "RemoteStop", "Remote"),
        ("Local", "StopAuthorized", "Local"),
        ("EVDisconnected", "EVCommunicationLost", "EVDisconnected"),
        ("DeAuthorized", "Deauthorized", "DeAuthorized"),
        ("SoftReset", "ResetCommand", "ImmediateReset"),
        ("HardReset", "ResetCommand", "ImmediateReset"),
        ("Reboot", "AbnormalCondition", "Reboot"),
        ("PowerLoss", "AbnormalCondition", "PowerLoss"),
        ("UnlockCommand", "UnlockCommand", "Remote"),
        ("EmergencyStop", "AbnormalCondition", "EmergencyStop"),
        ("Other", "AbnormalCondition", "Other"),
        ("SomethingNew", "AbnormalCondition", "Other"),
    ],
)
def test_ended_reason_mapping(reason: str, trigger: str, stopped: str) -> None:
    p = m.ended(
        ended_data(reason), seq_no=5, transaction_id=TID, offline=False, key_already_sent=True
    )
    assert_valid(p)
    assert p["eventType"] == "Ended"
    assert p["triggerReason"] == trigger
    assert p["transactionInfo"] == {"transactionId": TID, "stoppedReason": stopped}


def test_every_core_stop_reason_is_mapped() -> None:
    from chargepoint.core.station import StopReason

    assert {r.value for r in StopReason} <= set(m.STOP_REASONS)


@pytest.mark.parametrize(
    ("key_mode", "already", "begin_key", "end_key"),
    [
        ("Never", False, False, False),
        ("OncePerTransaction", False, True, False),
        ("OncePerTransaction", True, False, False),
        ("EveryMeterValue", True, True, True),
    ],
)
def test_ended_signed_begin_and_end(
    key_mode: str, already: bool, begin_key: bool, end_key: bool
) -> None:
    p = m.ended(
        ended_data(key_mode=key_mode),
        seq_no=4,
        transaction_id=TID,
        offline=True,
        key_already_sent=already,
    )
    assert_valid(p)
    assert p["offline"] is True and p["seqNo"] == 4
    assert p["timestamp"] == "2022-07-08T08:05:53Z"
    assert p["idToken"] == {"idToken": "12345678ABCDEF", "type": "ISO14443"}
    begin_mv, end_mv = p["meterValue"]
    assert begin_mv["timestamp"] == BEGIN["timestamp"]
    assert end_mv["timestamp"] == "2022-07-08T08:05:53Z"
    b, e = signed_values(p)
    assert (b["context"], b["value"]) == ("Transaction.Begin", 99840)
    assert (e["context"], e["value"]) == ("Transaction.End", 100000)
    for sv, record in ((b, BEGIN), (e, END)):
        raw = base64.b64decode(sv["signedMeterValue"]["signedMeterData"], validate=True)
        assert raw == record["ocmf"].encode("utf-8")
    assert bool(b["signedMeterValue"]["publicKey"]) == begin_key
    assert bool(e["signedMeterValue"]["publicKey"]) == end_key
    # the stop samples follow the End value; their plain energy is not repeated
    assert [sv["measurand"] for sv in end_mv["sampledValue"]] == [
        "Energy.Active.Import.Register",
        "Power.Active.Import",
    ]
    assert end_mv["sampledValue"][1]["value"] == 0


def test_ended_without_signing_or_without_signed_end() -> None:
    p = m.ended(
        ended_data(sign=False, key_mode="EveryMeterValue"),
        seq_no=4,
        transaction_id=TID,
        offline=False,
        key_already_sent=False,
    )
    assert_valid(p)
    assert signed_values(p) == []
    [mv] = p["meterValue"]
    assert mv["sampledValue"][0] == {
        "value": 100000,
        "context": "Transaction.End",
        "measurand": "Energy.Active.Import.Register",
        "unitOfMeasure": {"unit": "Wh", "multiplier": 0},
    }
    p = m.ended(
        ended_data(end=None, key_mode="OncePerTransaction"),
        seq_no=4,
        transaction_id=TID,
        offline=False,
        key_already_sent=False,
    )
    assert_valid(p)
    [b] = signed_values(p)
    assert b["context"] == "Transaction.Begin" and b["signedMeterValue"]["publicKey"]
    assert p["meterValue"][1]["sampledValue"][0]["value"] == 100000


def test_same_event_gives_the_same_payload() -> None:
    data = ended_data(key_mode="EveryMeterValue")
    first = m.ended(data, seq_no=4, transaction_id=TID, offline=False, key_already_sent=False)
    again = m.ended(
        json.loads(json.dumps(data)),
        seq_no=4,
        transaction_id=TID,
        offline=False,
        key_already_sent=False,
    )
    assert json.dumps(first) == json.dumps(again)
