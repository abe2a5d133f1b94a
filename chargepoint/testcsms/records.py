"""What the test CSMS records: CALLs received, CALLERRORs sent, frames, opening handshakes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Received:
    """One CALL a station sent."""

    station_id: str
    action: str
    payload: dict[str, Any]
    unique_id: str
    at: float  # time.monotonic()
    ocpp_version: str = "1.6"  # of the connection it came on: "1.6" or "2.0.1"


@dataclass(frozen=True)
class SentError:
    """A CALLERROR the CSMS answered a station's CALL with (injected, or a schema violation)."""

    station_id: str
    unique_id: str
    action: str | None
    code: str
    description: str
    at: float


@dataclass(frozen=True)
class Frame:
    """One websocket text frame, in (from the station) or out (to the station)."""

    station_id: str
    direction: Literal["in", "out"]
    text: str
    at: float


@dataclass(frozen=True)
class Handshake:
    """One opening handshake and the HTTP status it got (101 = accepted)."""

    station_id: str | None
    path: str
    status: int
    reason: str
    at: float


# `TestCsms.respond_with`: an answer (camelCase payload) made from the CALL, maybe asynchronously.
ResponseHandler = Callable[[Received], dict[str, Any] | Awaitable[dict[str, Any]]]
