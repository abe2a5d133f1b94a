"""OCPP 1.6J messages built from the core's version-free events.

Signed values follow the OCA application note "Signed Meter Values in OCPP" (field guide 3):
a sampledValue with format SignedData, measurand Energy.Active.Import.Register, context
Transaction.Begin / Transaction.End and as value the JSON text of
{"signedMeterData": base64(OCMF), "signingMethod": "", "encodingMethod": "OCMF",
"publicKey": "" | base64("oca:base16:asn1:<key hex>")}. Two legacy backend variants can be
chosen per station: the raw OCMF string as value, or the key named `signedMeterValue`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from chargepoint.core import events

# OCPP 1.6 Reason values (StopTransaction.req); the core's 2.0.1-only reasons become Other
REASONS_16 = frozenset(
    {
        "EmergencyStop",
        "EVDisconnected",
        "HardReset",
        "Local",
        "Other",
        "PowerLoss",
        "Reboot",
        "Remote",
        "SoftReset",
        "UnlockCommand",
        "DeAuthorized",
    }
)

FORMAT_OCA = "oca"
FORMAT_RAW_OCMF = "raw-ocmf"
FORMAT_SIGNED_METER_VALUE = "signed-meter-value"


def signed_value_text(signed: events.SignedValue, with_key: bool, value_format: str) -> str:
    ocmf = signed["ocmf"]
    if value_format == FORMAT_RAW_OCMF:
        return ocmf
    data_key = (
        "signedMeterValue" if value_format == FORMAT_SIGNED_METER_VALUE else "signedMeterData"
    )
    body = {
        data_key: base64.b64encode(ocmf.encode("utf-8")).decode(),
        "signingMethod": "",
        "encodingMethod": "OCMF",
        "publicKey": events.oca_public_key(signed["public_key_hex"]) if with_key else "",
    }
    return json.dumps(body, separators=(",", ":"))


def signed_sampled_value(
    signed: events.SignedValue, context: str, with_key: bool, value_format: str
) -> dict[str, Any]:
    return {
        "value": signed_value_text(signed, with_key, value_format),
        "context": context,
        "format": "SignedData",
        "measurand": "Energy.Active.Import.Register",
    }


def plain_sampled_values(samples: list[dict[str, Any]], context: str) -> list[dict[str, Any]]:
    return [
        {
            "value": s["value"],
            "context": context,
            "format": "Raw",
            "measurand": s["measurand"],
            "unit": s["unit"],
        }
        for s in samples
    ]


def start_transaction(data: dict[str, Any]) -> dict[str, Any]:
    payload = {
        "connectorId": data["connector_id"],
        "idTag": data["id_tag"],
        "meterStart": int(data["meter_start_wh"]),
        "timestamp": data["timestamp"],
    }
    if data.get("reservation_id") is not None:  # the reservation this start used
        payload["reservationId"] = int(data["reservation_id"])
    return payload


def begin_signed_meter_values(
    data: dict[str, Any], transaction_id: int, with_key: bool, value_format: str
) -> dict[str, Any]:
    """MeterValues after StartTransaction (StartTxnSampledData): the values at the start,
    with the signed Begin value when SampledDataSignStartedReadings was set."""
    begin = data["begin"]
    values: list[dict[str, Any]] = []
    if data.get("signed", True):
        values.append(signed_sampled_value(begin, "Transaction.Begin", with_key, value_format))
    values.extend(plain_sampled_values(data.get("samples", []), "Transaction.Begin"))
    return {
        "connectorId": data["connector_id"],
        "transactionId": transaction_id,
        "meterValue": [{"timestamp": begin["timestamp"], "sampledValue": values}],
    }


def payload_carries_key(payload: dict[str, Any]) -> bool:
    """True when a signed value in this MeterValues payload carries the public key."""
    for mv in payload.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            if sv.get("format") != "SignedData":
                continue
            try:
                body = json.loads(sv["value"])
            except ValueError:
                return False  # raw OCMF carries no key
            if isinstance(body, dict) and body.get("publicKey"):
                return True
    return False


def meter_values(data: dict[str, Any], transaction_id: int | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectorId": data["connector_id"],
        "meterValue": [
            {
                "timestamp": data["timestamp"],
                "sampledValue": plain_sampled_values(data["samples"], data["context"]),
            }
        ],
    }
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


def stop_transaction(
    data: dict[str, Any],
    transaction_id: int,
    *,
    sign_readings: bool,
    key_mode: str,
    key_already_sent: bool,
    value_format: str,
) -> dict[str, Any]:
    """StopTransaction.req; with SampledDataSignReadings the signed Begin and End values
    travel in transactionData (the End only when the meter signed one)."""
    payload: dict[str, Any] = {
        "transactionId": transaction_id,
        "meterStop": int(data["meter_stop_wh"]),
        "timestamp": data["timestamp"],
        "reason": data["reason"] if data["reason"] in REASONS_16 else "Other",
    }
    if data.get("id_tag"):
        payload["idTag"] = data["id_tag"]
    transaction_data: list[dict[str, Any]] = []
    if sign_readings:
        begin_key = key_mode == "EveryMeterValue" or (
            key_mode == "OncePerTransaction" and not key_already_sent
        )
        transaction_data.append(
            {
                "timestamp": data["begin"]["timestamp"],
                "sampledValue": [
                    signed_sampled_value(
                        data["begin"], "Transaction.Begin", begin_key, value_format
                    )
                ],
            }
        )
    end_values: list[dict[str, Any]] = []
    end = data.get("end")
    if sign_readings and end is not None:
        end_key = key_mode == "EveryMeterValue"
        end_values.append(signed_sampled_value(end, "Transaction.End", end_key, value_format))
    end_values.extend(plain_sampled_values(data.get("stop_samples", []), "Transaction.End"))
    if end_values:
        transaction_data.append({"timestamp": data["timestamp"], "sampledValue": end_values})
    if transaction_data:
        payload["transactionData"] = transaction_data
    return payload
