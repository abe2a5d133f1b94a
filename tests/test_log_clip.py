"""A logged OCPP message longer than the log limit is cut with a visible marker."""

from __future__ import annotations

import json

from chargepoint.csms.ocpp16.adapter import redacted as redacted16
from chargepoint.csms.ocpp201.adapter import redacted as redacted201
from chargepoint.csms.session import LOG_PAYLOAD_CHARS, clip


def test_short_text_is_logged_whole() -> None:
    assert clip("abc") == "abc"
    assert clip("x" * LOG_PAYLOAD_CHARS) == "x" * LOG_PAYLOAD_CHARS


def test_long_text_says_how_much_is_left_out() -> None:
    text = "y" * (LOG_PAYLOAD_CHARS + 123)
    shown = clip(text)
    assert shown.startswith("y" * LOG_PAYLOAD_CHARS)
    assert shown.endswith("... [123 more characters not logged]")


def test_long_ocpp_payloads_are_marked_in_both_versions() -> None:
    payload = {"data": "z" * 1000}
    for line in (redacted16("DataTransfer", payload), redacted201("DataTransfer", payload)):
        assert line.endswith(
            f"[{len(json.dumps(payload)) - LOG_PAYLOAD_CHARS} more characters not logged]"
        )
