"""OCPP-J basics every part of the test CSMS shares: subprotocol names, the logger, a typed `@on`,
OCPP timestamps and reading frames."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ocpp import routing as ocpp_routing  # type: ignore[import-untyped, unused-ignore]
from ocpp.exceptions import OCPPError  # type: ignore[import-untyped, unused-ignore]

# One logger for the whole test CSMS (`chargepoint test-csms` raises it to INFO).
log = logging.getLogger("chargepoint.testcsms")

SUBPROTOCOL_16 = "ocpp1.6"
SUBPROTOCOL_201 = "ocpp2.0.1"
# `TestCsms(versions=...)` names versions; each is offered as this subprotocol.
VERSION_SUBPROTOCOLS: dict[str, str] = {"1.6": SUBPROTOCOL_16, "2.0.1": SUBPROTOCOL_201}
OCPP_PATH = "/ocpp"

_F = TypeVar("_F", bound=Callable[..., Any])


def on(action: str) -> Callable[[_F], _F]:
    """`ocpp.routing.on` with a type (the library has none). The library's own schema check of
    the CALL and its answer is left out: the session checks both (schemas.check_payload)."""
    return cast(Callable[[_F], _F], ocpp_routing.on(action, skip_schema_validation=True))


def utc_now_text() -> str:
    """The current UTC time as OCPP wants it: ISO 8601 with milliseconds and a `Z`."""
    now = dt.datetime.now(dt.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ocpp_error_text(error: Exception) -> str:
    if isinstance(error, OCPPError):
        details = error.details if isinstance(error.details, dict) else {}
        cause = details.get("cause", "")
        return f"{error.code}: {error.description} {cause}".strip()
    return repr(error)


def unique_id_of(text: str) -> str | None:
    """The unique id of a frame, when it parses as an OCPP-J array with one."""
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    if (
        isinstance(frame, list)
        and len(frame) >= 2
        and isinstance(frame[1], str | int)
        and not isinstance(frame[1], bool)
    ):
        return str(frame[1])
    return None
