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

TRANSACTION_KINDS = frozenset(
    {TRANSACTION_STARTED, TRANSACTION_BEGIN_SIGNED, TRANSACTION_METER_VALUES, TRANSACTION_ENDED}
)


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
    meter_start_wh: int,
    begin: SignedValue,
    trigger: str,
) -> dict[str, Any]:
    return {
        "connector_id": connector_id,
        "evse_id": evse_id,
        "id_tag": id_tag,
        "timestamp": timestamp,
        "meter_start_wh": meter_start_wh,
        "begin": dict(begin),
        "trigger": trigger,
    }


def begin_signed(
    *, connector_id: int, begin: SignedValue, signed: bool, samples: list[Sample]
) -> dict[str, Any]:
    """The values at the start (StartTxnSampledData), the signed Begin value among them when
    SampledDataSignStartedReadings is set."""
    return {
        "connector_id": connector_id,
        "begin": dict(begin),
        "signed": signed,
        "samples": [dict(s) for s in samples],
    }


def meter_values(
    *, connector_id: int, timestamp: str, context: str, samples: list[Sample]
) -> dict[str, Any]:
    return {
        "connector_id": connector_id,
        "timestamp": timestamp,
        "context": context,
        "samples": [dict(s) for s in samples],
    }


def ended(
    *,
    connector_id: int,
    id_tag: str | None,
    timestamp: str,
    meter_stop_wh: int,
    reason: str,
    begin: SignedValue,
    end: SignedValue | None,
    unsigned_reason: str | None,
    stop_samples: list[Sample],
    sign_readings: bool,
    public_key_mode: str,
) -> dict[str, Any]:
    """`sign_readings` and `public_key_mode` are the settings when the session ended: a resend
    carries exactly the same content."""
    return {
        "connector_id": connector_id,
        "id_tag": id_tag,
        "timestamp": timestamp,
        "meter_stop_wh": meter_stop_wh,
        "reason": reason,
        "begin": dict(begin),
        "end": dict(end) if end is not None else None,
        "unsigned_reason": unsigned_reason,
        "stop_samples": [dict(s) for s in stop_samples],
        "sign_readings": sign_readings,
        "public_key_mode": public_key_mode,
    }
