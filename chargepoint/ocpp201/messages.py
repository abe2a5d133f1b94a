"""OCPP 2.0.1 TransactionEvent payloads built from the core's version-free events.

Pure functions: each takes the event data as kept in the outbox (chargepoint.core.events)
and returns the camelCase wire dict of a TransactionEventRequest. Nothing here reads
settings or state; the adapter passes seqNo, transactionId, the offline flag and the
signing/public-key settings that apply.

Signed values (field guide 4): the signed reading rides as `signedMeterValue` on the
Energy.Active.Import.Register sampledValue whose `value` is the same reading in Wh:
{"signedMeterData": base64(OCMF utf-8), "signingMethod": "", "encodingMethod": "OCMF",
"publicKey": "" | base64("oca:base16:asn1:<key hex>")}. signedMeterData may be at most
2,500 characters; a longer one raises `SignedValueTooLong` before anything is sent.

Mapping notes (1.6-style event fields -> 2.0.1):
- idToken.type: "Central" when the session was started by the CSMS (trigger or
  triggerReason "RemoteStart", RequestStartTransaction), else "ISO14443" (an RFID tag at
  the station); an empty id tag is sent as {"idToken": "", "type": "NoAuthorization"}.
- Ended triggerReason / stoppedReason per `STOP_REASONS` below. EVDisconnected becomes
  EVCommunicationLost (use case E10, cable unplugged: EVCommunicationLost + EVDisconnected);
  EVDeparted is kept for a parking-bay sensor, which this station does not have.
  Soft and hard resets map to ResetCommand + ImmediateReset: in 2.0.1 only an Immediate
  Reset ends a running transaction (OnIdle waits for it), and "Reboot" is kept for a
  restart the station did on its own. UnlockCommand has no ReasonEnumType value; it is a
  CSMS command, so stoppedReason is "Remote". Unknown reasons map to AbnormalCondition +
  Other.
"""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation
from typing import Any

from chargepoint.core import events

SIGNED_METER_DATA_MAX = 2500
TRANSACTION_ID_MAX = 36
STATION_PREFIX_MAX = 20

ENERGY = "Energy.Active.Import.Register"

KEY_NEVER = "Never"
KEY_ONCE = "OncePerTransaction"
KEY_EVERY = "EveryMeterValue"

# 1.6 Reason (StopReason in the core) -> (triggerReason, stoppedReason)
STOP_REASONS: dict[str, tuple[str, str]] = {
    "Remote": ("RemoteStop", "Remote"),
    "Local": ("StopAuthorized", "Local"),
    "EVDisconnected": ("EVCommunicationLost", "EVDisconnected"),
    "DeAuthorized": ("Deauthorized", "DeAuthorized"),
    "SoftReset": ("ResetCommand", "ImmediateReset"),
    "HardReset": ("ResetCommand", "ImmediateReset"),
    "Reboot": ("AbnormalCondition", "Reboot"),
    "PowerLoss": ("AbnormalCondition", "PowerLoss"),
    "UnlockCommand": ("UnlockCommand", "Remote"),
    "EmergencyStop": ("AbnormalCondition", "EmergencyStop"),
    "Other": ("AbnormalCondition", "Other"),
}
UNKNOWN_STOP_REASON = ("AbnormalCondition", "Other")

# unit conversions to the base unit sent (multiplier 0)
_UNIT_SCALE: dict[str, tuple[str, int]] = {"kWh": ("Wh", 1000), "kW": ("W", 1000)}


class SignedValueTooLong(ValueError):
    """The base64 signedMeterData would exceed the 2,500 characters OCPP 2.0.1 allows."""

    def __init__(self, length: int) -> None:
        super().__init__(
            f"signedMeterData is {length} characters, OCPP 2.0.1 allows {SIGNED_METER_DATA_MAX}"
        )
        self.length = length


def transaction_id(local_id: int, station_id: str) -> str:
    """f"{station_id[:20]}-{local_id}": stable across resends and restarts (both parts are
    persisted), readable in CSMS logs, unique per station as the core's local ids are, and
    at most 36 characters (local ids below 10**15)."""
    if local_id < 0:
        raise ValueError(f"local transaction id must not be negative: {local_id}")
    tid = f"{station_id[:STATION_PREFIX_MAX]}-{local_id}"
    if len(tid) > TRANSACTION_ID_MAX:
        raise ValueError(f"transaction id {tid!r} longer than {TRANSACTION_ID_MAX} characters")
    return tid


def signed_meter_value(signed: events.SignedValue, with_key: bool) -> dict[str, Any]:
    data = base64.b64encode(signed["ocmf"].encode("utf-8")).decode()
    if len(data) > SIGNED_METER_DATA_MAX:
        raise SignedValueTooLong(len(data))
    return {
        "signedMeterData": data,
        "signingMethod": "",
        "encodingMethod": "OCMF",
        "publicKey": events.oca_public_key(signed["public_key_hex"]) if with_key else "",
    }


def energy_sampled_value(
    wh: int, context: str, signed: events.SignedValue | None, with_key: bool
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "value": int(wh),
        "context": context,
        "measurand": ENERGY,
        "unitOfMeasure": {"unit": "Wh", "multiplier": 0},
    }
    if signed is not None:
        value["signedMeterValue"] = signed_meter_value(signed, with_key)
    return value


def _number(text: str) -> int | float:
    try:
        d = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise ValueError(f"sample value {text!r} is not a number") from exc
    if not d.is_finite():
        raise ValueError(f"sample value {text!r} is not a finite number")
    return int(d) if d == d.to_integral_value() else float(d)


def plain_sampled_value(sample: events.Sample | dict[str, Any], context: str) -> dict[str, Any]:
    """One unsigned sample: value as a number, kWh/kW converted to Wh/W."""
    unit = str(sample.get("unit") or ("Wh" if sample["measurand"].startswith("Energy") else ""))
    number = _number(sample["value"])
    if unit in _UNIT_SCALE:
        unit, scale = _UNIT_SCALE[unit]
        number = _number(str(Decimal(str(sample["value"]).strip()) * scale))
    value: dict[str, Any] = {"value": number, "context": context, "measurand": sample["measurand"]}
    if unit:
        value["unitOfMeasure"] = {"unit": unit, "multiplier": 0}
    return value


def payload_carries_key(payload: dict[str, Any]) -> bool:
    """True when a signed value in this TransactionEvent payload carries the public key."""
    for mv in payload.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            if sv.get("signedMeterValue", {}).get("publicKey"):
                return True
    return False


def _id_token(id_tag: str | None, central: bool) -> dict[str, Any]:
    if not id_tag:
        return {"idToken": "", "type": "NoAuthorization"}
    return {"idToken": id_tag, "type": "Central" if central else "ISO14443"}


def _base(
    event_type: str, timestamp: str, trigger_reason: str, seq_no: int, offline: bool, tid: str
) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger_reason,
        "seqNo": int(seq_no),
        "offline": bool(offline),
        "transactionInfo": {"transactionId": tid},
    }


def started(
    data: dict[str, Any],
    *,
    seq_no: int,
    transaction_id: str,
    trigger_reason: str,
    offline: bool,
    sign_started: bool,
    key_mode: str,
) -> dict[str, Any]:
    """eventType Started from a TransactionStarted event. With `sign_started`
    (SampledDataCtrlr.SignStartedReadings) the Transaction.Begin energy value carries the
    signed Begin; as the first message of the transaction it carries the key unless
    `key_mode` is Never."""
    begin: events.SignedValue = data["begin"]
    payload = _base("Started", data["timestamp"], trigger_reason, seq_no, offline, transaction_id)
    payload["transactionInfo"]["chargingState"] = "Charging"
    payload["evse"] = {"id": int(data["connector_id"]), "connectorId": 1}
    central = "RemoteStart" in (data.get("trigger"), trigger_reason)
    payload["idToken"] = _id_token(data.get("id_tag"), central)
    if sign_started:
        value = energy_sampled_value(
            begin["energy_wh"], "Transaction.Begin", begin, key_mode != KEY_NEVER
        )
    else:
        value = energy_sampled_value(data["meter_start_wh"], "Transaction.Begin", None, False)
    payload["meterValue"] = [{"timestamp": begin["timestamp"], "sampledValue": [value]}]
    return payload


def updated_meter_values(
    data: dict[str, Any], *, seq_no: int, transaction_id: str, offline: bool
) -> dict[str, Any]:
    """eventType Updated from a TransactionMeterValues event: triggerReason MeterValueClock
    for Sample.Clock, else MeterValuePeriodic; meterValue left out when there are no
    samples."""
    trigger = "MeterValueClock" if data["context"] == "Sample.Clock" else "MeterValuePeriodic"
    payload = _base("Updated", data["timestamp"], trigger, seq_no, offline, transaction_id)
    values = [plain_sampled_value(s, data["context"]) for s in data.get("samples", [])]
    if values:
        payload["meterValue"] = [{"timestamp": data["timestamp"], "sampledValue": values}]
    return payload


def updated_begin_signed(
    data: dict[str, Any],
    *,
    seq_no: int,
    transaction_id: str,
    offline: bool,
    key_mode: str,
    key_already_sent: bool,
) -> dict[str, Any]:
    """eventType Updated from a TransactionBeginSigned event, timestamped at the Begin
    reading. When data["signed"], triggerReason SignedDataReceived and the Transaction.Begin
    energy value carries the signed Begin (with the key for EveryMeterValue, or for
    OncePerTransaction when it has not gone out yet); the plain energy sample is then
    dropped, the signed one carries the same reading. Unsigned, triggerReason Trigger with
    the plain samples."""
    begin: events.SignedValue = data["begin"]
    signed = bool(data.get("signed", True))
    trigger = "SignedDataReceived" if signed else "Trigger"
    payload = _base("Updated", begin["timestamp"], trigger, seq_no, offline, transaction_id)
    values: list[dict[str, Any]] = []
    samples = data.get("samples", [])
    if signed:
        with_key = key_mode == KEY_EVERY or (key_mode == KEY_ONCE and not key_already_sent)
        values.append(
            energy_sampled_value(begin["energy_wh"], "Transaction.Begin", begin, with_key)
        )
        samples = [s for s in samples if s["measurand"] != ENERGY]
    values.extend(plain_sampled_value(s, "Transaction.Begin") for s in samples)
    if values:
        payload["meterValue"] = [{"timestamp": begin["timestamp"], "sampledValue": values}]
    return payload


def stop_reasons(reason: str) -> tuple[str, str]:
    """(triggerReason, stoppedReason) for a 1.6-style stop reason."""
    return STOP_REASONS.get(reason, UNKNOWN_STOP_REASON)


def ended(
    data: dict[str, Any],
    *,
    seq_no: int,
    transaction_id: str,
    offline: bool,
    key_already_sent: bool,
) -> dict[str, Any]:
    """eventType Ended from a TransactionEnded event.

    With data["sign_readings"]: a meterValue at the Begin timestamp with the signed Begin
    (Transaction.Begin) and, at the stop timestamp, the signed End (Transaction.End) when
    the meter gave one. The key follows data["public_key_mode"]: Never: none;
    OncePerTransaction: on the first signed value here, only if not `key_already_sent`;
    EveryMeterValue: on each. The Transaction.End energy value is always sent (meter_stop_wh,
    or the signed End's reading); the stop samples follow it, their plain energy sample
    dropped as a duplicate. An End the meter did not sign (data["unsigned_reason"]) goes as
    a plain value: 2.0.1 has no field for the reason.
    """
    trigger, stopped = stop_reasons(data["reason"])
    payload = _base("Ended", data["timestamp"], trigger, seq_no, offline, transaction_id)
    payload["transactionInfo"]["stoppedReason"] = stopped
    if data.get("id_tag"):
        payload["idToken"] = _id_token(data["id_tag"], central=False)

    key_mode = data.get("public_key_mode", KEY_NEVER)
    key_sent = key_already_sent

    def with_key() -> bool:
        nonlocal key_sent
        send = key_mode == KEY_EVERY or (key_mode == KEY_ONCE and not key_sent)
        key_sent = key_sent or send
        return send

    meter_values: list[dict[str, Any]] = []
    sign = bool(data.get("sign_readings"))
    if sign:
        begin: events.SignedValue = data["begin"]
        meter_values.append(
            {
                "timestamp": begin["timestamp"],
                "sampledValue": [
                    energy_sampled_value(begin["energy_wh"], "Transaction.Begin", begin, with_key())
                ],
            }
        )
    end: events.SignedValue | None = data.get("end") if sign else None
    if end is not None:
        end_value = energy_sampled_value(end["energy_wh"], "Transaction.End", end, with_key())
    else:
        end_value = energy_sampled_value(data["meter_stop_wh"], "Transaction.End", None, False)
    end_values = [end_value]
    end_values.extend(
        plain_sampled_value(s, "Transaction.End")
        for s in data.get("stop_samples", [])
        if s["measurand"] != ENERGY
    )
    meter_values.append({"timestamp": data["timestamp"], "sampledValue": end_values})
    payload["meterValue"] = meter_values
    return payload
