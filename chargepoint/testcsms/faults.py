"""Fault injection: refused handshakes and CALLs answered broken, with a CALLERROR, late or
with a test's own payload."""

from __future__ import annotations

from chargepoint.testcsms.records import ResponseHandler
from chargepoint.testcsms.state import CsmsState


class FaultInjection(CsmsState):
    def __init__(self) -> None:
        super().__init__()
        self._failures: dict[str, list[str]] = {}
        self._garbage: dict[str, list[str]] = {}
        self._delays: dict[str, float] = {}
        self._overrides: dict[str, ResponseHandler] = {}

    def refuse_connections(self, refuse: bool) -> None:
        """While True, opening handshakes get HTTP 503 (open connections stay)."""
        self._refuse = refuse

    def garble_next(self, action: str, frames: list[str]) -> None:
        """Answer the next CALLs of `action` with these raw frames instead of a CALLRESULT, one
        each (still recorded as received, not as answered); "{id}" becomes the CALL's unique
        id as a JSON string."""
        self._garbage.setdefault(action, []).extend(frames)

    def fail_next(self, action: str, count: int = 1, error_code: str = "InternalError") -> None:
        """Answer the next `count` CALLs of `action` with a CALLERROR (still recorded)."""
        self._failures.setdefault(action, []).extend([error_code] * count)

    def delay(self, action: str, seconds: float) -> None:
        """Answer `action` `seconds` late from now on (0 = on time again)."""
        if seconds > 0:
            self._delays[action] = seconds
        else:
            self._delays.pop(action, None)

    def respond_with(self, action: str, handler: ResponseHandler | None) -> None:
        """Answer `action` with handler(received) -> camelCase payload (None = the default).

        The request and the answer are still validated against the schemas.
        """
        if handler is None:
            self._overrides.pop(action, None)
        else:
            self._overrides[action] = handler

    # -- read by the sessions ---------------------------------------------------------------
    def _take_garbage(self, action: str) -> str | None:
        queue = self._garbage.get(action)
        return queue.pop(0) if queue else None

    def _take_failure(self, action: str) -> str | None:
        queue = self._failures.get(action)
        if not queue:
            return None
        return queue.pop(0)

    def _delay_for(self, action: str) -> float:
        return self._delays.get(action, 0.0)

    def _override_for(self, action: str) -> ResponseHandler | None:
        return self._overrides.get(action)
