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
from chargepoint.csms.ocpp201 import messages as m
from meter.proof.keys import load_public_key
from meter.proof.ocmf import parse_ocmf, verify_ocmf
from tests.real_vectors import bsm_public_key_hex, bsm_vectors

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
        ("Timeout", "EVConnectTimeout", "Timeout"),
        ("StoppedByEV", "ChargingStateChanged", "StoppedByEV"),
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
    expected = {"transactionId": TID, "stoppedReason": stopped}
    if reason == "EVDisconnected":  # the EV left: the charging state is known to be Idle
        expected["chargingState"] = "Idle"
    assert p["transactionInfo"] == expected


def test_every_core_stop_reason_is_mapped() -> None:
    from chargepoint.core.transaction import StopReason

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


# --- transactions opened before the signed Begin (TxStartPoint EVConnected / Authorized) ---


def opened_data(
    start_point: str,
    *,
    trigger: str = "",
    id_tag: str = "",
    plugged: bool = True,
    remote_start_id: int | None = None,
    offline: bool = False,
) -> dict[str, Any]:
    return events.started(
        connector_id=2,
        evse_id="DE*BDO*E8025334492*2",
        id_tag=id_tag,
        timestamp="2022-07-08T07:59:00Z",
        meter_start_wh=None,
        begin=None,
        trigger=trigger,
        start_point=start_point,
        remote_start_id=remote_start_id,
        plugged=plugged,
        offline=offline,
    )


@pytest.mark.parametrize(
    ("start_point", "trigger", "expected"),
    [
        ("Authorized", "Authorized", "Authorized"),
        ("Authorized", "RemoteStart", "RemoteStart"),
        ("EVConnected", "", "CablePluggedIn"),
        ("DataSigned", "Authorized", "SignedDataReceived"),
        ("PowerPathClosed", "Authorized", "ChargingStateChanged"),
        ("EnergyTransfer", "RemoteStart", "ChargingStateChanged"),
    ],
)
def test_started_trigger_reason_follows_the_start_point(
    start_point: str, trigger: str, expected: str
) -> None:
    data = {**started_data(trigger=trigger or "Authorized"), "start_point": start_point}
    data["trigger"] = trigger
    assert m.started_trigger_reason(data) == expected
    p = m.started(
        data, seq_no=0, transaction_id=TID, offline=False, sign_started=True, key_mode="Never"
    )
    assert_valid(p)
    assert p["triggerReason"] == expected


def test_started_trigger_reason_of_an_event_without_start_point() -> None:
    data = started_data()
    del data["start_point"]
    assert m.started_trigger_reason(data) == "ChargingStateChanged"


def test_started_at_ev_connected_has_no_begin_and_no_id_token() -> None:
    p = m.started(
        opened_data("EVConnected"),
        seq_no=0,
        transaction_id=TID,
        offline=False,
        sign_started=True,
        key_mode="EveryMeterValue",
    )
    assert_valid(p)
    assert (p["eventType"], p["triggerReason"], p["timestamp"]) == (
        "Started",
        "CablePluggedIn",
        "2022-07-08T07:59:00Z",
    )
    assert p["transactionInfo"] == {"transactionId": TID, "chargingState": "EVConnected"}
    assert p["evse"] == {"id": 2, "connectorId": 1}
    assert "idToken" not in p  # not authorized yet
    assert "meterValue" not in p
    assert not m.payload_carries_key(p)


def test_started_at_authorized_before_the_ev_is_there() -> None:
    p = m.started(
        opened_data(
            "Authorized",
            trigger="RemoteStart",
            id_tag="APP-USER-1",
            plugged=False,
            remote_start_id=4711,
            offline=True,
        ),
        seq_no=0,
        transaction_id=TID,
        offline=True,
        sign_started=True,
        key_mode="Never",
    )
    assert_valid(p)
    assert p["triggerReason"] == "RemoteStart"
    assert p["offline"] is True
    assert p["transactionInfo"] == {
        "transactionId": TID,
        "chargingState": "Idle",
        "remoteStartId": 4711,
    }
    assert p["idToken"] == {"idToken": "APP-USER-1", "type": "Central"}
    assert "meterValue" not in p


def test_started_with_begin_carries_remote_start_id() -> None:
    data = events.started(
        connector_id=1,
        evse_id="E1",
        id_tag="APP-USER-1",
        timestamp="2022-07-08T08:00:29Z",
        meter_start_wh=99840,
        begin=BEGIN,
        trigger="RemoteStart",
        remote_start_id=0,
    )
    p = m.started(
        data, seq_no=0, transaction_id=TID, offline=False, sign_started=False, key_mode="Never"
    )
    assert_valid(p)
    assert p["triggerReason"] == "ChargingStateChanged"
    assert p["transactionInfo"]["remoteStartId"] == 0
    assert p["transactionInfo"]["chargingState"] == "Charging"
    assert p["idToken"]["type"] == "Central"


def test_authorized_after_opening() -> None:
    for trigger, reason, token_type in (
        ("Authorized", "Authorized", "ISO14443"),
        ("RemoteStart", "RemoteStart", "Central"),
    ):
        data = events.authorized(
            connector_id=2,
            id_tag="12345678ABCDEF",
            timestamp="2022-07-08T08:00:05Z",
            trigger=trigger,
            offline=True,
        )
        p = m.updated_authorized(data, seq_no=1, transaction_id=TID, offline=True)
        assert_valid(p)
        assert (p["eventType"], p["triggerReason"], p["seqNo"], p["offline"]) == (
            "Updated",
            reason,
            1,
            True,
        )
        assert p["timestamp"] == "2022-07-08T08:00:05Z"
        assert p["idToken"] == {"idToken": "12345678ABCDEF", "type": token_type}
        assert p["transactionInfo"] == {"transactionId": TID}


@pytest.mark.parametrize("signed_begin", [True, False])
def test_begin_of_a_transaction_opened_earlier_starts_charging(signed_begin: bool) -> None:
    data = events.begin_signed(
        connector_id=2,
        begin=BEGIN,
        signed=signed_begin,
        samples=[{"measurand": "Energy.Active.Import.Register", "value": "99840", "unit": "Wh"}],
        opened_earlier=True,
    )
    p = m.updated_begin_signed(
        data,
        seq_no=2,
        transaction_id=TID,
        offline=False,
        key_mode="OncePerTransaction",
        key_already_sent=False,
    )
    assert_valid(p)
    assert p["transactionInfo"] == {"transactionId": TID, "chargingState": "Charging"}
    if signed_begin:
        assert p["triggerReason"] == "SignedDataReceived"
        [sv] = signed_values(p)
        assert sv["signedMeterValue"]["publicKey"]
    else:
        assert p["triggerReason"] == "ChargingStateChanged"
        assert signed_values(p) == []
    # without opened_earlier nothing about the charging state is said
    data["opened_earlier"] = False
    p = m.updated_begin_signed(
        data,
        seq_no=2,
        transaction_id=TID,
        offline=False,
        key_mode="Never",
        key_already_sent=False,
    )
    assert "chargingState" not in p["transactionInfo"]


def test_trigger_context_meter_values() -> None:
    data = events.meter_values(
        connector_id=2,
        timestamp="2022-07-08T08:03:00Z",
        context="Trigger",
        samples=[{"measurand": "Energy.Active.Import.Register", "value": "99920", "unit": "Wh"}],
    )
    p = m.updated_meter_values(data, seq_no=3, transaction_id=TID, offline=False)
    assert_valid(p)
    assert p["triggerReason"] == "Trigger"
    assert p["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"


@pytest.mark.parametrize(
    ("reason", "trigger"), [("Local", "StopAuthorized"), ("StoppedByEV", "ChargingStateChanged")]
)
def test_charging_ended_keeps_the_transaction_open(reason: str, trigger: str) -> None:
    data = events.charging_ended(
        connector_id=2,
        timestamp="2022-07-08T08:05:53Z",
        reason=reason,
        id_tag="12345678ABCDEF" if reason == "Local" else None,
        meter_stop_wh=100000,
        offline=False,
    )
    p = m.updated_charging_ended(data, seq_no=4, transaction_id=TID, offline=False)
    assert_valid(p)
    assert (p["eventType"], p["triggerReason"]) == ("Updated", trigger)
    assert p["transactionInfo"] == {"transactionId": TID, "chargingState": "EVConnected"}
    assert ("idToken" in p) == (reason == "Local")
    [mv] = p["meterValue"]
    assert mv["sampledValue"] == [
        {
            "value": 100000,
            "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register",
            "unitOfMeasure": {"unit": "Wh", "multiplier": 0},
        }
    ]
    assert signed_values(p) == []


@pytest.mark.parametrize(
    ("reason", "close_trigger", "trigger", "stopped", "state"),
    [
        ("Local", "EVDisconnected", "EVCommunicationLost", "Local", "Idle"),
        ("Timeout", "EVConnectTimeout", "EVConnectTimeout", "Timeout", None),
        ("PowerLoss", "Restart", "AbnormalCondition", "PowerLoss", None),
        ("StoppedByEV", None, "ChargingStateChanged", "StoppedByEV", None),
        ("Remote", "SomethingNew", "RemoteStop", "Remote", None),
    ],
)
def test_close_trigger_overrides_the_trigger_reason(
    reason: str, close_trigger: str | None, trigger: str, stopped: str, state: str | None
) -> None:
    data = {**ended_data(reason), "close_trigger": close_trigger}
    p = m.ended(data, seq_no=6, transaction_id=TID, offline=False, key_already_sent=True)
    assert_valid(p)
    assert p["triggerReason"] == trigger
    assert p["transactionInfo"]["stoppedReason"] == stopped
    assert p["transactionInfo"].get("chargingState") == state
    assert len(signed_values(p)) == 2  # the signed values are still there


def test_ended_before_anything_was_signed_has_no_meter_value() -> None:
    data = events.ended(
        connector_id=2,
        id_tag=None,
        timestamp="2022-07-08T08:01:00Z",
        meter_stop_wh=None,
        reason="Timeout",
        begin=None,
        end=None,
        unsigned_reason=None,
        stop_samples=[],
        sign_readings=True,
        public_key_mode="EveryMeterValue",
        close_trigger="EVConnectTimeout",
        offline=True,
    )
    p = m.ended(data, seq_no=1, transaction_id=TID, offline=True, key_already_sent=False)
    assert_valid(p)
    assert (p["eventType"], p["triggerReason"], p["offline"]) == (
        "Ended",
        "EVConnectTimeout",
        True,
    )
    assert p["transactionInfo"] == {"transactionId": TID, "stoppedReason": "Timeout"}
    assert "meterValue" not in p
    assert "idToken" not in p
    # same without signing, and with a stop reason instead of a close trigger
    data.update(sign_readings=False, close_trigger=None, reason="EVDisconnected")
    p = m.ended(data, seq_no=1, transaction_id=TID, offline=False, key_already_sent=False)
    assert_valid(p)
    assert "meterValue" not in p
    assert p["transactionInfo"]["chargingState"] == "Idle"


def test_ended_with_unsigned_stop_reading_only() -> None:
    data = {**ended_data(end=None), "begin": None}
    p = m.ended(data, seq_no=3, transaction_id=TID, offline=False, key_already_sent=False)
    assert_valid(p)
    assert signed_values(p) == []
    [mv] = p["meterValue"]
    assert [sv["measurand"] for sv in mv["sampledValue"]] == [
        "Energy.Active.Import.Register",
        "Power.Active.Import",
    ]


# --- other messages -----------------------------------------------------------------


def test_local_id_of_reverses_transaction_id() -> None:
    for local_id in (0, 7, 10**15 - 1):
        assert m.local_id_of(m.transaction_id(local_id, STATION), STATION) == local_id
    assert m.local_id_of("EICHRECHT-STATION-00-007", STATION) is None
    assert m.local_id_of("EICHRECHT-STATION-00-", STATION) is None
    assert m.local_id_of("EICHRECHT-STATION-00-x1", STATION) is None
    assert m.local_id_of("EICHRECHT-STATION-00--1", STATION) is None
    assert m.local_id_of("OTHER-7", STATION) is None
    assert m.local_id_of("EICHRECHT-STATION-00-٣", STATION) is None  # a non-ASCII digit
    assert m.local_id_of("CP-1-12", "CP-1") == 12


def test_connector_status_mapping() -> None:
    from chargepoint.core.status import ConnectorStatus

    expected = {
        "Available": "Available",
        "Preparing": "Occupied",
        "Charging": "Occupied",
        "SuspendedEV": "Occupied",
        "SuspendedEVSE": "Occupied",
        "Finishing": "Occupied",
        "Reserved": "Reserved",
        "Unavailable": "Unavailable",
        "Faulted": "Faulted",
    }
    assert {s.value: m.connector_status(s.value) for s in ConnectorStatus} == expected
    assert m.connector_status("Reserved") == "Reserved"


def test_meter_values_outside_transactions() -> None:
    p = m.meter_values(
        2,
        "2022-07-08T09:00:00Z",
        "Sample.Clock",
        [{"measurand": "Energy.Active.Import.Register", "value": "1.5", "unit": "kWh"}],
    )
    path = Path(ocpp.v201.__file__).parent / "schemas" / "MeterValuesRequest.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    errors = [e.message for e in jsonschema.Draft6Validator(schema).iter_errors(p)]
    assert not errors, errors
    assert p["evseId"] == 2
    [sv] = p["meterValue"][0]["sampledValue"]
    assert (sv["value"], sv["context"]) == (1500, "Sample.Clock")
