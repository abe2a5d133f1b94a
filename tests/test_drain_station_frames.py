"""The station's CALL frame (chargepoint.csms.session.call_frame) is the library's: None values
left out at every depth, whether the payload had any or not (issue 19's drain sends most
payloads without the copy that leaves them out)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ocpp.charge_point import remove_nones  # type: ignore[import-untyped, unused-ignore]

from chargepoint.csms.session import call_frame

PAYLOADS: list[dict[str, Any]] = [
    {},
    {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
    {"idTag": None, "meterStop": 5},
    {"meterValue": [{"sampledValue": [{"value": "1", "unit": None}, None]}], "x": [None, 1]},
    {"data": "null", "vendorId": "V"},  # the word in a string, no None anywhere
    {"data": "null", "messageId": None},
    {"nested": {"deeper": {"deepest": None, "kept": False}}, "zero": 0, "empty": ""},
    {"signedMeterValue": {"signedMeterData": "T0NNRnx7fQ==", "publicKey": None}},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_call_frame_leaves_out_none_as_the_library(payload: dict[str, Any]) -> None:
    before = json.dumps(payload)
    frame, text = call_frame(payload)
    expected = remove_nones(payload)
    assert frame == expected
    assert text == json.dumps(expected, separators=(",", ":"))
    assert json.loads(text) == expected
    assert "null" not in json.dumps(frame).replace('"null"', "")
    assert json.dumps(payload) == before  # the payload itself is left as it was
