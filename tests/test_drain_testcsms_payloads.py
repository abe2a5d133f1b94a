"""The test CSMS's per-frame shortcuts (issue 19's drain) give what the library's slow path gave:
the handler's arguments and the answer on the wire, and a recorded payload that nothing but the
test that reads it can change."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.charge_point import (  # type: ignore[import-untyped, unused-ignore]
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.v16 import call_result as result16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import datatypes as datatypes16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as result201  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import datatypes as datatypes201  # type: ignore[import-untyped, unused-ignore]
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from chargepoint.testcsms import Received, TestCsms
from chargepoint.testcsms.payload_keys import answer_payload, snake_keys

# Keys the library renames in unusual ways, and the keys of a signed 2.0.1 meter value.
TRICKY_KEYS = [
    "ocppCSMSURL",
    "chargingStationCertificateV2X",
    "evseSoCLimitReached",
    "V2GCertificateChain",
    "stateOfCharge",
    "minSoC",
    "signedMeterValue",
    "encodingMethod",
    "publicKey",
    "transactionInfo",
    "idToken",
    "ID",
    "X2",
    "customData",
    "vendorId",
    "remoteStartId",
    "seqNo",
    "meterValue",
    "sampledValue",
]


def tree() -> dict[str, Any]:
    """A payload with every tricky key at three depths, in dicts and lists."""
    leaf: dict[str, Any] = {key: f"v-{key}" for key in TRICKY_KEYS}
    leaf["numbers"] = [1, 2.5, None, True]
    middle = {key: [dict(leaf), "text", 3] for key in TRICKY_KEYS[:5]}
    return {key: middle if i % 2 else [middle, leaf] for i, key in enumerate(TRICKY_KEYS)}


def test_handler_arguments_are_the_librarys() -> None:
    payload = tree()
    assert snake_keys(payload) == camel_to_snake_case(payload)
    assert snake_keys(payload) != payload  # something was renamed
    assert snake_keys("text") == "text"
    assert snake_keys([{"idTag": "A"}]) == [{"id_tag": "A"}]


def filled(cls: type) -> Any:
    """An instance of the result dataclass `cls`, every field set (nested ones too)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        hint = str(hints[field.name])
        nested = next(
            (
                t
                for name in ("IdTagInfo", "IdTokenInfoType", "StatusInfoType", "IdTokenType")
                if name in hint
                for t in (getattr(datatypes16, name, None), getattr(datatypes201, name, None))
                if t is not None
            ),
            None,
        )
        if nested is not None and dataclasses.is_dataclass(nested):
            values[field.name] = filled(nested)  # type: ignore[arg-type]
        elif "List" in hint or "list" in hint:
            values[field.name] = ["a", "b"]
        elif "int" in hint:
            values[field.name] = 7
        else:
            values[field.name] = "x"
    return cls(**values)


def result_classes() -> list[type]:
    found = []
    for module in (result16, result201):
        for value in vars(module).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value):
                found.append(value)
    return found


@pytest.mark.parametrize("cls", result_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_answers_are_the_librarys(cls: type) -> None:
    """Every answer class, all fields set, and with only what is required."""
    full = filled(cls)
    expected = snake_to_camel_case(remove_nones(serialize_as_dict(full)))
    assert answer_payload(full) == expected
    assert json.dumps(answer_payload(full)) == json.dumps(expected)
    required = [
        f
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    sparse = cls(**{f.name: getattr(full, f.name) for f in required})
    assert answer_payload(sparse) == snake_to_camel_case(remove_nones(serialize_as_dict(sparse)))


def test_an_answer_that_is_no_dataclass_fails_as_in_the_library() -> None:
    with pytest.raises(TypeError):
        serialize_as_dict({"status": "Accepted"})
    with pytest.raises(TypeError):
        answer_payload({"status": "Accepted"})


# ---- the recorded payload, against a station that speaks raw OCPP-J ------------------------


@pytest.fixture
async def csms() -> AsyncIterator[TestCsms]:
    server = TestCsms(accept_id_tags={"GOOD"})
    await server.start()
    yield server
    await server.stop()


async def call(ws: ClientConnection, uid: str, action: str, payload: dict[str, Any]) -> Any:
    await ws.send(json.dumps([2, uid, action, payload]))
    return json.loads(await ws.recv())


START = {"connectorId": 1, "idTag": "GOOD", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"}


async def test_a_listener_changing_the_record_does_not_change_the_answer(csms: TestCsms) -> None:
    """The record and the CALL the handler answers are separate: a listener that rewrites the
    recorded idTag (to one the CSMS refuses) changes neither the answer nor the check."""

    def rewrite(rec: Received) -> None:
        rec.payload["idTag"] = "BAD"
        rec.payload.pop("meterStart", None)  # would fail the schema, were it checked

    csms.add_listener(rewrite)
    async with connect(f"{csms.url}/CP-1", subprotocols=[Subprotocol("ocpp1.6")]) as ws:
        answer = await call(ws, "u1", "StartTransaction", dict(START))
    assert answer[0] == 3, answer
    assert answer[2]["idTagInfo"] == {"status": "Accepted"}
    assert csms.sent_errors == []
    (rec,) = csms.messages("StartTransaction")
    assert rec.payload == {"connectorId": 1, "idTag": "BAD", "timestamp": START["timestamp"]}


async def test_the_record_is_what_was_on_the_wire_after_the_answer(csms: TestCsms) -> None:
    """Answering a CALL (checks, key renaming, the handler) leaves its record as it arrived,
    nested objects included, and records of two CALLs share nothing."""
    event = {
        "eventType": "Started",
        "timestamp": "2026-01-01T00:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "T-1"},
        "idToken": {"idToken": "GOOD", "type": "ISO14443"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": "2026-01-01T00:00:00Z",
                "sampledValue": [{"value": 1.5, "signedMeterValue": None}],
            }
        ],
    }
    event["meterValue"][0]["sampledValue"][0].pop("signedMeterValue")  # type: ignore[index]
    wire = json.dumps(event)
    async with connect(f"{csms.url}/CP-2", subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
        first = await call(ws, "e1", "TransactionEvent", json.loads(wire))
        second = await call(ws, "e2", "TransactionEvent", json.loads(wire))
    assert first[0] == 3 and second[0] == 3, (first, second)
    assert first[2] == {"idTokenInfo": {"status": "Accepted"}}
    one, two = csms.messages("TransactionEvent")
    assert one.payload == json.loads(wire) == two.payload
    one.payload["meterValue"][0]["sampledValue"][0]["value"] = 99
    one.payload["idToken"]["idToken"] = "CHANGED"
    assert two.payload == json.loads(wire)
    inbound = [f.text for f in csms.frames if f.direction == "in"]
    assert json.loads(inbound[0])[3] == json.loads(wire)  # the frames log keeps the wire text
