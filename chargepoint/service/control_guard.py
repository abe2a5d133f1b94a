"""Who may use the control interface: the checks every request passes before it is read.

A web page open in a browser on the controller can send requests to loopback (a form POST
needs no CORS preflight) and, by DNS rebinding, under a name of its own. So the interface
refuses, in this order:

    403  any request with an Origin header (browsers send one with every cross-site request
         and with every POST), or with a Host that is not a loopback name (localhost,
         127.0.0.1, [::1], any port): a rebound name is not one
    401  on TCP, a request without `Authorization: Bearer <token>` from control.token
    415  a POST whose Content-Type is not application/json (a form cannot send that type
         without a preflight, which the Origin check refuses)

Each refusal is one WARNING line (the token never appears in it); a burst of refusals of one
kind is logged once per REFUSAL_LOG_INTERVAL_S with the number left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chargepoint.service.control_token import token_matches

log = logging.getLogger("chargepoint.service.control")

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
REFUSAL_LOG_INTERVAL_S = 60.0
_SHOWN = 80  # characters of a header value quoted in the log


@dataclass(frozen=True)
class Refusal:
    status: int
    kind: str  # what the log line counts by
    error: str  # what the client is told

    def body(self) -> dict[str, str]:
        return {"error": self.error}


def loopback_host(host: str) -> bool:
    """A loopback name, with or without a port."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, port = host.partition("]")
        name += bracket
        if port and not port.startswith(":"):
            return False
        port = port[1:]
    else:
        name, colon, port = host.partition(":")
        if colon and not port:
            return False
    return name in LOOPBACK_HOSTS and (not port or (port.isascii() and port.isdigit()))


def _bearer(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, credential = value.strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" and credential.strip() else None


def refusal(method: str, headers: Mapping[str, str], token: str | None) -> Refusal | None:
    """Why this request is refused, or None. `token` is None on the Unix socket."""
    origin = headers.get("Origin")
    if origin is not None:
        return Refusal(
            403,
            "origin",
            "refused: a request with an Origin header (from a web page) is not accepted; "
            "the control interface is for local programs",
        )
    host = headers.get("Host")
    if host is None or not loopback_host(host):
        return Refusal(
            403,
            "host",
            f"refused: Host {host!r:.{_SHOWN}} is not a loopback name "
            f"({', '.join(sorted(LOOPBACK_HOSTS))})",
        )
    if token is not None:
        presented = _bearer(headers.get("Authorization"))
        if presented is None:
            return Refusal(401, "token", "refused: no token (Authorization: Bearer, control.token)")
        if not token_matches(presented, token):
            return Refusal(
                401, "token", "refused: wrong token (Authorization: Bearer, control.token)"
            )
    if method == "POST":
        media = headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if media != "application/json":
            return Refusal(
                415,
                "content-type",
                f"refused: Content-Type {media or 'missing'!r:.{_SHOWN}}, "
                "a POST needs application/json",
            )
    return None


class RefusalLog:
    """One WARNING per refusal; per kind at most one every `interval` seconds."""

    def __init__(
        self,
        interval: float = REFUSAL_LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def note(self, what: Refusal, method: str, path: str, origin: str | None) -> None:
        now = self.clock()
        last = self._last.get(what.kind)
        if last is not None and now - last < self.interval:
            self._left_out[what.kind] = self._left_out.get(what.kind, 0) + 1
            return
        self._last[what.kind] = now
        left_out = self._left_out.pop(what.kind, 0)
        log.warning(
            "control interface: %d for %s %r: %s%s%s",
            what.status,
            method,
            path[:_SHOWN],
            what.error,
            f" (Origin {origin!r:.{_SHOWN}})" if origin is not None else "",
            f"; {left_out} more refused like it since the last line" if left_out else "",
        )
