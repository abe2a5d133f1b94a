"""What the test CSMS raises to a test: the station refused, a payload broke the schema, no
connection."""

from __future__ import annotations

from typing import Any


class CallErrorReply(Exception):
    """The station answered a CSMS CALL with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any] | None) -> None:
        self.code = code
        self.description = description
        self.details = details or {}
        super().__init__(f"{code}: {description} {self.details}")


class SchemaViolation(ValueError):
    """A payload failed the OCPP JSON schema: ours before sending, or the station's answer."""

    def __init__(self, action: str, what: str, cause: str) -> None:
        self.action = action
        self.what = what
        self.cause = cause
        super().__init__(f"{action} {what} violates the schema: {cause}")


class StationNotConnected(ConnectionError):
    """The station has no connection to the CSMS (or lost it while a CALL was outstanding)."""
