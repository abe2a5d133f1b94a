"""The test CSMS's compiled schema check (chargepoint/testcsms/schemas.py): the library's verdict
and the library's error on every payload, and a frame of either direction checked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ocpp.exceptions import OCPPError  # type: ignore[import-untyped, unused-ignore]
from ocpp.messages import (  # type: ignore[import-untyped, unused-ignore]
    Call,
    CallResult,
    validate_payload,
)
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from chargepoint.ocppschema.compiled import compiled_check
from chargepoint.testcsms import TestCsms
from chargepoint.testcsms.schemas import check_payload

TX_INFO = {"transactionId": "tx-1"}
EVENT = {
    "eventType": "Updated",
    "timestamp": "2026-01-01T00:00:00Z",
    "triggerReason": "MeterValuePeriodic",
    "seqNo": 3,
    "transactionInfo": TX_INFO,
}
# (version, action, is a CALLRESULT, payload): valid ones and every kind of fault, some
# payloads with several faults at once (which one is named is the library's choice)
CASES: list[tuple[str, str, bool, Any]] = [
    (
        "1.6",
        "StatusNotification",
        False,
        {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    ),
    (
        "1.6",
        "StatusNotification",
        False,
        {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
    ),
    (
        "1.6",
        "StatusNotification",
        False,
        {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
    ),
    ("1.6", "StatusNotification", False, {"connectorId": 1.0, "errorCode": "NoError"}),
    (
        "1.6",
        "StatusNotification",
        False,
        {"connectorId": True, "errorCode": "NoError", "status": "Available", "extra": 1},
    ),
    (
        "1.6",
        "MeterValues",
        False,
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}],
        },
    ),
    (
        "1.6",
        "MeterValues",
        False,
        {"connectorId": 1, "meterValue": [{"timestamp": "x", "sampledValue": [{"value": 1}]}]},
    ),
    (
        "1.6",
        "StartTransaction",
        False,
        {"connectorId": 1, "idTag": "T" * 21, "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
    ),
    ("1.6", "BootNotification", True, {"currentTime": "t", "interval": 60, "status": "Accepted"}),
    ("1.6", "BootNotification", True, {"currentTime": "t", "interval": 60, "status": "Sometimes"}),
    ("1.6", "GetConfiguration", True, {"unknownKey": "HeartbeatInterval"}),
    (
        "1.6",
        "SetChargingProfile",
        False,
        {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.45}],
                },
            },
        },
    ),
    ("1.6", "NoSuchAction", False, {}),
    ("2.0.1", "TransactionEvent", False, EVENT),
    ("2.0.1", "TransactionEvent", False, {**EVENT, "seqNo": "3"}),
    ("2.0.1", "TransactionEvent", False, {k: v for k, v in EVENT.items() if k != "seqNo"}),
    ("2.0.1", "TransactionEvent", False, {**EVENT, "seqNo": "3", "extra": True}),
    ("2.0.1", "TransactionEvent", False, {**EVENT, "transactionInfo": {"transactionId": 7}}),
    ("2.0.1", "TransactionEvent", False, {**EVENT, "transactionInfo": {"id": "x"}}),
    ("2.0.1", "TransactionEvent", False, {**EVENT, "transactionInfo": {"transactionId": "t" * 37}}),
    ("2.0.1", "TransactionEvent", True, {"totalCost": "1"}),
    ("2.0.1", "TransactionEvent", True, {}),
    ("2.0.1", "BootNotification", False, []),
]


def message(action: str, result: bool, payload: Any) -> Call | CallResult:
    return CallResult("u-1", payload, action) if result else Call("u-1", action, payload)


async def outcome(check: Any, msg: Call | CallResult, version: str) -> tuple[str, ...]:
    try:
        await check(msg, version)
    except OCPPError as error:
        cause = error.details.get("cause") if isinstance(error.details, dict) else None
        return (type(error).__name__, str(error.code), str(error.description), str(cause))
    return ("valid",)


@pytest.mark.parametrize(("version", "action", "result", "payload"), CASES)
async def test_the_verdict_and_the_error_are_the_librarys(
    version: str, action: str, result: bool, payload: Any
) -> None:
    ours = await outcome(
        check_payload, message(action, result, json.loads(json.dumps(payload))), version
    )
    library = await outcome(
        validate_payload, message(action, result, json.loads(json.dumps(payload))), version
    )
    assert ours == library


async def test_the_frames_of_a_drain_are_checked_by_compiled_schemas() -> None:
    for version, action, result in (
        ("1.6", "MeterValues", False),
        ("1.6", "MeterValues", True),
        ("1.6", "StartTransaction", True),
        ("2.0.1", "TransactionEvent", False),
        ("2.0.1", "TransactionEvent", True),
    ):
        assert await compiled_check(version, action, result) is not None


async def test_an_answer_breaking_its_schema_becomes_a_callerror() -> None:
    """The test CSMS's own answer is checked before it is sent, as the library did."""
    async with TestCsms(boot_status="Sometimes", versions=("1.6",)) as csms:
        async with connect(f"{csms.url}/CP-1", subprotocols=[Subprotocol("ocpp1.6")]) as ws:
            boot = {"chargePointVendor": "V", "chargePointModel": "M"}
            await ws.send(json.dumps([2, "boot-1", "BootNotification", boot]))
            reply = json.loads(await ws.recv())
        assert reply[:3] == [4, "boot-1", "FormationViolation"]
        assert [(e.action, e.code) for e in csms.sent_errors] == [
            ("BootNotification", "FormationViolation")
        ]
