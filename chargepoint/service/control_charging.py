"""Smart charging on the control interface: the limit events the charge controller
subscribes to, and the external limits it sets.

    GET  /events                   a stream of JSON lines, one per change of a connector's
                                   limit (first the current limit of every connector):
        {"event": "charging_limit", "connector": 1, "limit_w": 5520.0, "limit_a": 8.0,
         "phases": 3, "source": "TxProfile 7 (stack 1)", "since": "2026-05-02T10:00:00Z"}
        limit_w/limit_a are null when nothing limits the connector (source "none"). The
        response is HTTP/1.1 200, Content-Type application/x-ndjson, without a length and
        not chunked; it ends when the client closes the connection or the daemon stops.
        A client that reads slowly is never dropped and never left with an old limit: it
        gets each connector's newest limit, skipping those replaced while it was not reading.
    POST /charging-limit {"connector": 0, "limit": 16, "unit": "A", "source": "EMS",
                          "phases": 3, "duration": 3600, "grid_critical": false}
                                   an external limit (a building energy manager, the grid
                                   operator): ChargingStationExternalConstraints on the
                                   connector (0: the whole station) until cleared or for
                                   `duration` seconds; OCPP 2.0.1 reports it to the CSMS
                                   (NotifyChargingLimit). source: EMS (default), SO, Other.
    POST /charging-limit/clear {"connector": 0, "source": "EMS"}
                                   remove it (both keys optional: all connectors, all
                                   sources); 2.0.1 sends ClearedChargingLimit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from chargepoint.core.charging.controller import ConnectorLimit, SmartCharging
from chargepoint.core.charging.profiles import LimitSource, RateUnit
from chargepoint.core.charging.validation import ProfileRejected

log = logging.getLogger("chargepoint.service.control")

# dispatch() answers GET /events with this body: the server then streams instead of answering
EVENTS_STREAM: dict[str, Any] = {}
CLIENT_CHECK_S = 0.5  # how often a quiet stream looks whether its client is still there


class LimitFeed(Protocol):
    """Where the connectors' limits come from (the station's SmartCharging)."""

    def subscribe(self, listener: Callable[[ConnectorLimit], None]) -> Callable[[], None]: ...

    def limits(self) -> dict[int, ConnectorLimit]: ...


class _CloseDelimited(web.StreamResponse):
    """A response that ends when the connection closes: no length, no chunked framing, so a
    client reads plain JSON lines (as before the server was aiohttp)."""

    _length_check = False


class _Pending:
    """What one subscriber has not been sent yet: the newest limit of each connector whose
    limit changed since, in the order they first changed. A subscriber that reads slowly
    (or not at all for a while) skips the limits that were replaced meanwhile, never the
    one in force, and what waits for it is bounded by the number of connectors."""

    def __init__(self) -> None:
        self.limits: dict[int, ConnectorLimit] = {}
        self.changed = asyncio.Event()
        self.closing = False

    def put(self, limit: ConnectorLimit) -> None:
        self.limits[limit.connector_id] = limit
        self.changed.set()

    def take(self) -> list[ConnectorLimit]:
        limits = list(self.limits.values())
        self.limits.clear()
        self.changed.clear()
        return limits

    def close(self) -> None:
        self.closing = True
        self.changed.set()


class LimitStreams:
    """The open GET /events responses."""

    def __init__(self, charging: LimitFeed) -> None:
        self.charging = charging
        self._subscribers: set[_Pending] = set()
        self._closing = False

    async def serve(self, request: web.Request) -> web.StreamResponse:
        response = _CloseDelimited(
            headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache"}
        )
        response.force_close()
        pending = _Pending()
        for limit in self.charging.limits().values():  # first the current limit of each
            pending.put(limit)
        unsubscribe = self.charging.subscribe(pending.put)
        self._subscribers.add(pending)
        try:
            await response.prepare(request)
            while not (self._closing or pending.closing):
                try:
                    await asyncio.wait_for(pending.changed.wait(), CLIENT_CHECK_S)
                except TimeoutError:
                    if _client_gone(request):
                        break
                    continue
                if pending.closing:  # the daemon stops
                    break
                for limit in pending.take():
                    await response.write(_line(limit))
        except ConnectionError:
            pass
        finally:
            unsubscribe()
            self._subscribers.discard(pending)
        return response

    def close(self) -> None:
        """Every stream ends (the server's cleanup waits for them)."""
        self._closing = True
        for pending in self._subscribers:
            pending.close()


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _line(limit: ConnectorLimit) -> bytes:
    return json.dumps(limit.as_dict()).encode() + b"\n"


def _source(value: Any) -> LimitSource:
    if value is None:
        return LimitSource.EMS
    if value not in ("EMS", "SO", "Other"):
        raise ValueError("source must be EMS, SO or Other")
    return LimitSource(value)


def _connector(value: Any, count: int, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= count:
        raise ValueError(f"connector must be a number 0..{count} (0: the whole station)")
    return value


async def charging_limit_request(
    charging: SmartCharging, target: str, body: dict[str, Any], connectors: int
) -> tuple[int, dict[str, Any]]:
    """POST /charging-limit and /charging-limit/clear."""
    try:
        if target == "/charging-limit/clear":
            connector = _connector(body.get("connector"), connectors, None)
            source = _source(body["source"]) if "source" in body else None
            gone = await charging.clear_external_limit(connector, source)
            return 200, {"result": f"{len(gone)} limits cleared"}
        connector = _connector(body.get("connector"), connectors, 0)
        assert connector is not None
        limit = body.get("limit")
        if isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 0:
            raise ValueError("limit must be a number >= 0")
        unit = body.get("unit", "A")
        if unit not in ("A", "W"):
            raise ValueError("unit must be A or W")
        phases = body.get("phases")
        if phases is not None and phases not in (1, 2, 3):
            raise ValueError("phases must be 1, 2 or 3")
        duration = body.get("duration")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            raise ValueError("duration must be a positive number of seconds")
        profile = await charging.set_external_limit(
            connector,
            float(limit),
            RateUnit(unit),
            _source(body.get("source")),
            phases=phases,
            duration=duration,
            grid_critical=bool(body.get("grid_critical", False)),
        )
    except (ValueError, ProfileRejected) as exc:
        return 400, {"error": str(exc)}
    log.info("control interface: external limit %s", profile.describe())
    return 200, {"result": f"limit set: {profile.describe()}"}
