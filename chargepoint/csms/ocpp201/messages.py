"""OCPP 2.0.1 payloads built from the core's version-free events (TransactionEvent above all).

Pure functions: each takes the event data as kept in the outbox (chargepoint.core.events)
and returns the camelCase wire dict of a TransactionEventRequest (`meter_values`: of a
MeterValuesRequest; `local_id_of` and `connector_status` serve the adapter). Nothing here reads
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
  CSMS command, so stoppedReason is "Remote". Timeout (no EV within EVConnectionTimeOut)
  is EVConnectTimeout + Timeout, StoppedByEV (TxStopPoint EnergyTransfer) is
  ChargingStateChanged + StoppedByEV. Unknown reasons map to AbnormalCondition + Other.
- What closed a transaction whose charging had already ended (or never began) is the
  event's `close_trigger`; it overrides the triggerReason of Ended (`CLOSE_TRIGGERS`), the
  stoppedReason still comes from the stop reason.
- Started: the triggerReason names the TxStartPoint that opened the transaction
  (`started_trigger_reason`). A transaction opened before the meter signed (start point
  EVConnected or Authorized) has no Begin yet: no meterValue, chargingState EVConnected or
  Idle; the signed Begin follows in an Updated (chargingState Charging).
- chargingState on Ended: TransactionType.chargingState is to be sent when the state
  changed. It is sent as Idle when the EV leaving ended the transaction (the state is then
  known to have changed); otherwise the station cannot tell whether the cable is still
  plugged, so the field is left out.
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
    "Timeout": ("EVConnectTimeout", "Timeout"),
    "StoppedByEV": ("ChargingStateChanged", "StoppedByEV"),
}
UNKNOWN_STOP_REASON = ("AbnormalCondition", "Other")

# events.ended(close_trigger=...) -> triggerReason of the Ended. The core names what closed
# the transaction with a stop reason (EVDisconnected: the EV left; PowerLoss: the station
# restarted; Remote, SoftReset, ...); its triggerReason is that reason's (STOP_REASONS).
CLOSE_TRIGGERS: dict[str, str] = {
    **{reason: trigger for reason, (trigger, _) in STOP_REASONS.items()},
    "EVConnectTimeout": "EVConnectTimeout",
    "Restart": "AbnormalCondition",
}

# events.started(start_point=...) -> triggerReason of the Started
START_TRIGGERS: dict[str, str] = {
    events.EV_CONNECTED: "CablePluggedIn",
    events.AUTHORIZED: "Authorized",
    events.DATA_SIGNED: "SignedDataReceived",
    events.POWER_PATH_CLOSED: "ChargingStateChanged",
    events.ENERGY_TRANSFER: "ChargingStateChanged",
}

# core ConnectorStatus (OCPP 1.6 names) -> 2.0.1 ConnectorStatusEnumType
CONNECTOR_STATUS: dict[str, str] = {
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


def local_id_of(tid: str, station_id: str) -> int | None:
    """The local transaction id behind a transactionId this station gave out, or None when
    `tid` is not one of ours (RequestStopTransaction, GetTransactionStatus)."""
    prefix = f"{station_id[:STATION_PREFIX_MAX]}-"
    rest = tid[len(prefix) :] if tid.startswith(prefix) else ""
    if not rest.isascii() or not rest.isdigit():
        return None
    local_id = int(rest)
    try:
        return local_id if transaction_id(local_id, station_id) == tid else None
    except ValueError:
        return None


def connector_status(core_status: str) -> str:
    """StatusNotification.connectorStatus for a core (1.6-named) connector status."""
    return CONNECTOR_STATUS.get(core_status, "Unavailable")


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


def _id_token(id_tag: str | None, central: bool, token_type: str | None = None) -> dict[str, Any]:
    """The idToken as the CSMS named it (RequestStartTransaction keeps its type), else
    Central for a CSMS start and ISO14443 for a card at the station."""
    if not id_tag:
        return {"idToken": "", "type": "NoAuthorization"}
    kind = token_type or ("Central" if central else "ISO14443")
    return {"idToken": id_tag, "type": kind}


def _authorized_by(trigger: str | None) -> str:
    """triggerReason of the event that brought the id token."""
    return "RemoteStart" if trigger == "RemoteStart" else "Authorized"


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


def started_trigger_reason(data: dict[str, Any]) -> str:
    """triggerReason of a Started from the start point that opened the transaction:
    Authorized -> Authorized (RemoteStart when the CSMS asked for it), EVConnected ->
    CablePluggedIn, DataSigned -> SignedDataReceived, PowerPathClosed / EnergyTransfer ->
    ChargingStateChanged (also for an event without a start point: the 1.6-compatible
    default PowerPathClosed)."""
    point = data.get("start_point") or events.POWER_PATH_CLOSED
    if point == events.AUTHORIZED:
        return _authorized_by(data.get("trigger"))
    return START_TRIGGERS.get(point, "ChargingStateChanged")


def started(
    data: dict[str, Any],
    *,
    seq_no: int,
    transaction_id: str,
    offline: bool,
    sign_started: bool,
    key_mode: str,
    trigger_reason: str | None = None,
) -> dict[str, Any]:
    """eventType Started from a TransactionStarted event; `trigger_reason` defaults to
    `started_trigger_reason(data)`.

    With a Begin (the meter signed before the transaction opened): chargingState Charging and
    the Transaction.Begin energy value, which with `sign_started`
    (SampledDataCtrlr.SignStartedReadings) carries the signed Begin; as the first message of
    the transaction it carries the key unless `key_mode` is Never. Without a Begin (opened at
    EVConnected or Authorized): no meterValue, chargingState EVConnected when the EV is
    plugged, else Idle. The idToken is left out while the transaction has none yet (id tag ""
    and trigger ""); an empty id tag of an authorized start is NoAuthorization."""
    begin: events.SignedValue | None = data.get("begin")
    if trigger_reason is None:
        trigger_reason = started_trigger_reason(data)
    payload = _base("Started", data["timestamp"], trigger_reason, seq_no, offline, transaction_id)
    info = payload["transactionInfo"]
    if begin is not None:
        info["chargingState"] = "Charging"
    else:
        info["chargingState"] = "EVConnected" if data.get("plugged", True) else "Idle"
    if data.get("remote_start_id") is not None:
        info["remoteStartId"] = int(data["remote_start_id"])
    payload["evse"] = {"id": int(data["connector_id"]), "connectorId": 1}
    if data.get("reservation_id") is not None:  # the reservation this start used (H03)
        payload["reservationId"] = int(data["reservation_id"])
    id_tag = data.get("id_tag") or ""
    trigger = data.get("trigger") or ""
    if id_tag or trigger:
        central = "RemoteStart" in (trigger, trigger_reason)
        payload["idToken"] = _id_token(id_tag, central, data.get("id_token_type"))
    if begin is not None:
        if sign_started:
            value = energy_sampled_value(
                begin["energy_wh"], "Transaction.Begin", begin, key_mode != KEY_NEVER
            )
        else:
            start_wh = data.get("meter_start_wh")
            value = energy_sampled_value(
                begin["energy_wh"] if start_wh is None else start_wh,
                "Transaction.Begin",
                None,
                False,
            )
        payload["meterValue"] = [{"timestamp": begin["timestamp"], "sampledValue": [value]}]
    return payload


def updated_meter_values(
    data: dict[str, Any], *, seq_no: int, transaction_id: str, offline: bool
) -> dict[str, Any]:
    """eventType Updated from a TransactionMeterValues event: triggerReason MeterValueClock
    for Sample.Clock, Trigger for context Trigger (TriggerMessage TransactionEvent), else
    MeterValuePeriodic; meterValue left out when there are no samples."""
    context = data["context"]
    trigger = {"Sample.Clock": "MeterValueClock", "Trigger": "Trigger"}.get(
        context, "MeterValuePeriodic"
    )
    payload = _base("Updated", data["timestamp"], trigger, seq_no, offline, transaction_id)
    values = [plain_sampled_value(s, context) for s in data.get("samples", [])]
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
    the plain samples. When data["opened_earlier"] (the transaction opened before the meter
    signed), charging starts with this event: chargingState Charging, and unsigned the
    triggerReason is ChargingStateChanged."""
    begin: events.SignedValue = data["begin"]
    signed = bool(data.get("signed", True))
    opened_earlier = bool(data.get("opened_earlier"))
    if signed:
        trigger = "SignedDataReceived"
    else:
        trigger = "ChargingStateChanged" if opened_earlier else "Trigger"
    payload = _base("Updated", begin["timestamp"], trigger, seq_no, offline, transaction_id)
    if opened_earlier:
        payload["transactionInfo"]["chargingState"] = "Charging"
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


def updated_authorized(
    data: dict[str, Any], *, seq_no: int, transaction_id: str, offline: bool
) -> dict[str, Any]:
    """eventType Updated from a TransactionAuthorized event (the id token of a transaction
    opened without one): triggerReason Authorized, or RemoteStart for a CSMS start."""
    trigger = _authorized_by(data.get("trigger"))
    payload = _base("Updated", data["timestamp"], trigger, seq_no, offline, transaction_id)
    payload["idToken"] = _id_token(
        data.get("id_tag"), trigger == "RemoteStart", data.get("id_token_type")
    )
    if data.get("reservation_id") is not None:  # the reservation this start used (H03)
        payload["reservationId"] = int(data["reservation_id"])
    return payload


def updated_charging_ended(
    data: dict[str, Any], *, seq_no: int, transaction_id: str, offline: bool
) -> dict[str, Any]:
    """eventType Updated from a TransactionChargingEnded event (charging ended with its
    signed End, the transaction stays open until its stop point): triggerReason from the
    stop reason, chargingState EVConnected, the idToken that stopped it if any, and the
    reading at the end as a plain Sample.Periodic value (the signed End goes in the Ended)."""
    trigger, _ = stop_reasons(data["reason"])
    payload = _base("Updated", data["timestamp"], trigger, seq_no, offline, transaction_id)
    payload["transactionInfo"]["chargingState"] = "EVConnected"
    if data.get("id_tag"):
        payload["idToken"] = _id_token(data["id_tag"], central=False)
    if data.get("meter_stop_wh") is not None:
        value = energy_sampled_value(data["meter_stop_wh"], "Sample.Periodic", None, False)
        payload["meterValue"] = [{"timestamp": data["timestamp"], "sampledValue": [value]}]
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

    triggerReason and stoppedReason from data["reason"] (`STOP_REASONS`); a
    data["close_trigger"] (what closed a transaction whose charging had ended, or never
    began) overrides the triggerReason (`CLOSE_TRIGGERS`). chargingState Idle when the EV
    leaving ended it, otherwise left out (see the module notes).

    With data["sign_readings"]: a meterValue at the Begin timestamp with the signed Begin
    (Transaction.Begin) and, at the stop timestamp, the signed End (Transaction.End) when
    the meter gave one. The key follows data["public_key_mode"]: Never: none;
    OncePerTransaction: on the first signed value here, only if not `key_already_sent`;
    EveryMeterValue: on each. The Transaction.End energy value is sent whenever there is a
    reading (meter_stop_wh, or the signed End's); the stop samples follow it, their plain
    energy sample dropped as a duplicate. An End the meter did not sign
    (data["unsigned_reason"]) goes as a plain value: 2.0.1 has no field for the reason. A
    transaction closed before the meter signed anything (begin and meter_stop_wh None) has
    no meterValue at all.
    """
    reason = data["reason"]
    trigger, stopped = stop_reasons(reason)
    close_trigger = data.get("close_trigger")
    if close_trigger:
        trigger = CLOSE_TRIGGERS.get(close_trigger, trigger)
    payload = _base("Ended", data["timestamp"], trigger, seq_no, offline, transaction_id)
    payload["transactionInfo"]["stoppedReason"] = stopped
    if "EVDisconnected" in (reason, close_trigger):
        payload["transactionInfo"]["chargingState"] = "Idle"
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
    begin: events.SignedValue | None = data.get("begin")
    if sign and begin is not None:
        meter_values.append(
            {
                "timestamp": begin["timestamp"],
                "sampledValue": [
                    energy_sampled_value(begin["energy_wh"], "Transaction.Begin", begin, with_key())
                ],
            }
        )
    end: events.SignedValue | None = data.get("end") if sign else None
    end_values: list[dict[str, Any]] = []
    if end is not None:
        end_values.append(
            energy_sampled_value(end["energy_wh"], "Transaction.End", end, with_key())
        )
    elif data.get("meter_stop_wh") is not None:
        end_values.append(
            energy_sampled_value(data["meter_stop_wh"], "Transaction.End", None, False)
        )
    end_values.extend(
        plain_sampled_value(s, "Transaction.End")
        for s in data.get("stop_samples", [])
        if not end_values or s["measurand"] != ENERGY
    )
    if end_values:
        meter_values.append({"timestamp": data["timestamp"], "sampledValue": end_values})
    if meter_values:
        payload["meterValue"] = meter_values
    return payload


def meter_values(
    connector_id: int, timestamp: str, context: str, samples: list[events.Sample]
) -> dict[str, Any]:
    """A MeterValuesRequest outside transactions (clock-aligned values, TriggerMessage):
    EVSE id = connector id."""
    values = [plain_sampled_value(s, context) for s in samples]
    return {
        "evseId": int(connector_id),
        "meterValue": [{"timestamp": timestamp, "sampledValue": values}],
    }
