"""Version-free transaction events, as they are kept in the durable outbox.

The core writes one of these for every transaction-related message, before anything is
sent; each OCPP adapter turns an event into its own message at send time. Signed values
are carried as the meter's OCMF text, never re-serialised.
"""

from __future__ import annotations

import base64
from typing import Any, TypedDict

TRANSACTION_STARTED = "TransactionStarted"
TRANSACTION_BEGIN_SIGNED = "TransactionBeginSigned"  # signed Begin value right after the start
TRANSACTION_METER_VALUES = "TransactionMeterValues"
TRANSACTION_ENDED = "TransactionEnded"
# Only with a transaction start point before the signed Begin (OCPP 2.0.1 TxStartPoint
# EVConnected): the id token arrived after the transaction was opened.
TRANSACTION_AUTHORIZED = "TransactionAuthorized"
# Only with a transaction stop point after the signed End (OCPP 2.0.1 TxStopPoint EVConnected
# alone): charging ended with its signed End, the transaction stays open until the EV leaves.
TRANSACTION_CHARGING_ENDED = "TransactionChargingEnded"

TRANSACTION_KINDS = frozenset(
    {
        TRANSACTION_STARTED,
        TRANSACTION_BEGIN_SIGNED,
        TRANSACTION_METER_VALUES,
        TRANSACTION_ENDED,
        TRANSACTION_AUTHORIZED,
        TRANSACTION_CHARGING_ENDED,
    }
)

# Where a transaction can start and end (the OCPP 2.0.1 TxStartPoint/TxStopPoint names; OCPP
# 1.6 behaves as start = stop = {POWER_PATH_CLOSED}: a session is its signed charging period).
EV_CONNECTED = "EVConnected"
AUTHORIZED = "Authorized"
DATA_SIGNED = "DataSigned"
POWER_PATH_CLOSED = "PowerPathClosed"
ENERGY_TRANSFER = "EnergyTransfer"


def oca_public_key(public_key_hex: str) -> str:
    """A meter key as the OCA note "Signed Meter Values in OCPP" composes it for every OCPP
    version: base64 of "oca:base16:asn1:<key hex>"; "" without a key."""
    if not public_key_hex:
        return ""
    return base64.b64encode(f"oca:base16:asn1:{public_key_hex}".encode()).decode()


class SignedValue(TypedDict):
    ocmf: str  # the meter's record, byte for byte
    timestamp: str  # when the meter was asked to sign (UTC, Z)
    energy_wh: int  # the absolute register value it proves
    public_key_hex: str  # the meter's (pinned) key, DER hex


class Sample(TypedDict):
    measurand: str
    value: str
    unit: str


def started(
    *,
    connector_id: int,
    evse_id: str,
    id_tag: str,
    timestamp: str,
    meter_start_wh: int | None,
    begin: SignedValue | None,
    trigger: str,
    start_point: str = POWER_PATH_CLOSED,
    remote_start_id: int | None = None,
    plugged: bool = True,
    offline: bool = False,
    sign_started: bool | None = None,
    public_key_mode: str | None = None,
    id_token_type: str | None = None,
    reservation_id: int | None = None,
) -> dict[str, Any]:
    """The transaction opened. `trigger` is how it was authorized ("Authorized" at the
    station, "RemoteStart" from the CSMS, "" when not yet authorized); `start_point` which
    start point opened it. `begin` and `meter_start_wh` are None when it opened before the
    meter signed (start point EVConnected or Authorized): the signed Begin then follows in a
    TransactionBeginSigned event. `offline`: the CSMS was not reachable when it happened.
    `sign_started` and `public_key_mode` freeze the signing settings, so a resend carries the
    same content. `reservation_id`: the reservation the start used (only then present)."""
    data: dict[str, Any] = {
        "connector_id": connector_id,
        "evse_id": evse_id,
        "id_tag": id_tag,
        "timestamp": timestamp,
        "meter_start_wh": meter_start_wh,
        "begin": dict(begin) if begin is not None else None,
        "trigger": trigger,
        "start_point": start_point,
        "remote_start_id": remote_start_id,
        "plugged": plugged,
        "offline": offline,
        "sign_started": sign_started,
        "public_key_mode": public_key_mode,
        "id_token_type": id_token_type,
    }
    if reservation_id is not None:
        data["reservation_id"] = reservation_id
    return data


def authorized(
    *,
    connector_id: int,
    id_tag: str,
    timestamp: str,
    trigger: str,
    offline: bool = False,
    id_token_type: str | None = None,
    reservation_id: int | None = None,
) -> dict[str, Any]:
    """The id token of a transaction that opened without one (start point EVConnected);
    `reservation_id`: the reservation the start used (only then present)."""
    data: dict[str, Any] = {
        "connector_id": connector_id,
        "id_tag": id_tag,
        "timestamp": timestamp,
        "trigger": trigger,
        "offline": offline,
        "id_token_type": id_token_type,
    }
    if reservation_id is not None:
        data["reservation_id"] = reservation_id
    return data


def charging_ended(
    *,
    connector_id: int,
    timestamp: str,
    reason: str,
    id_tag: str | None,
    meter_stop_wh: int,
    offline: bool = False,
) -> dict[str, Any]:
    """Charging stopped with its signed End, the transaction stays open (stop point not
    reached yet); the TransactionEnded that follows carries the signed values."""
    return {
        "connector_id": connector_id,
        "timestamp": timestamp,
        "reason": reason,
        "id_tag": id_tag,
        "meter_stop_wh": meter_stop_wh,
        "offline": offline,
    }


def begin_signed(
    *,
    connector_id: int,
    begin: SignedValue,
    signed: bool,
    samples: list[Sample],
    opened_earlier: bool = False,
    offline: bool = False,
    public_key_mode: str | None = None,
) -> dict[str, Any]:
    """The values at the start (StartTxnSampledData), the signed Begin value among them when
    SampledDataSignStartedReadings is set. `opened_earlier`: the transaction opened before
    the meter signed (its TransactionStarted had no Begin); charging starts now."""
    return {
        "connector_id": connector_id,
        "begin": dict(begin),
        "signed": signed,
        "samples": [dict(s) for s in samples],
        "opened_earlier": opened_earlier,
        "offline": offline,
        "public_key_mode": public_key_mode,
    }


def meter_values(
    *,
    connector_id: int,
    timestamp: str,
    context: str,
    samples: list[Sample],
    offline: bool = False,
) -> dict[str, Any]:
    return {
        "connector_id": connector_id,
        "timestamp": timestamp,
        "context": context,
        "samples": [dict(s) for s in samples],
        "offline": offline,
    }


def ended(
    *,
    connector_id: int,
    id_tag: str | None,
    timestamp: str,
    meter_stop_wh: int | None,
    reason: str,
    begin: SignedValue | None,
    end: SignedValue | None,
    unsigned_reason: str | None,
    stop_samples: list[Sample],
    sign_readings: bool,
    public_key_mode: str,
    close_trigger: str | None = None,
    offline: bool = False,
) -> dict[str, Any]:
    """`sign_readings` and `public_key_mode` are the settings when the session ended: a resend
    carries exactly the same content. `begin` (and `meter_stop_wh`) is None for a transaction
    that closed before the meter signed anything (nothing was charged). `close_trigger` names
    what closed a transaction after its charging had ended ("EVDisconnected": the EV left;
    "Restart": the station restarted) or before it began ("EVConnectTimeout"); None when the
    stop `reason` itself closed it."""
    return {
        "connector_id": connector_id,
        "id_tag": id_tag,
        "timestamp": timestamp,
        "meter_stop_wh": meter_stop_wh,
        "reason": reason,
        "begin": dict(begin) if begin is not None else None,
        "end": dict(end) if end is not None else None,
        "unsigned_reason": unsigned_reason,
        "stop_samples": [dict(s) for s in stop_samples],
        "sign_readings": sign_readings,
        "public_key_mode": public_key_mode,
        "close_trigger": close_trigger,
        "offline": offline,
    }
