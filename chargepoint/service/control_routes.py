"""What each control request does to the station: the routes of the control interface (the
list is in chargepoint.service.control), once a request has passed control_guard."""

from __future__ import annotations

import logging
import re
from typing import Any

from chargepoint.core.station import Station
from chargepoint.core.transaction import StopReason
from chargepoint.service.control_charging import EVENTS_STREAM, charging_limit_request

log = logging.getLogger("chargepoint.service.control")

_ACTIONS = "plug|unplug|fault|clear-fault|stop|available|unavailable|unlock"
_ROUTE = re.compile(rf"^/connectors/(\d+)/({_ACTIONS})$")
_CONNECTOR_ROUTE = re.compile(rf"^/connectors/[^/]*/({_ACTIONS})$")


async def dispatch(
    station: Station, method: str, target: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body); GET /events answers EVENTS_STREAM (the server streams)."""
    if method == "GET" and target == "/events":
        return 200, EVENTS_STREAM
    if method == "POST" and target in ("/charging-limit", "/charging-limit/clear"):
        return await charging_limit_request(station.charging, target, body, len(station.connectors))
    if method == "GET" and target == "/status":
        return 200, await station.status()
    if method != "POST":
        return 404, {"error": f"no route {method} {target}"}
    if target == "/id-tag":
        id_tag = body.get("id_tag")
        if not isinstance(id_tag, str) or not 1 <= len(id_tag) <= 20:
            return 400, {"error": "id_tag must be a string of 1..20 characters"}
        connector = body.get("connector")
        result = await station.present_id_tag(id_tag, int(connector) if connector else None)
        return (409 if result.startswith("rejected") else 200), {"result": result}
    match = _ROUTE.match(target)
    if match is None:
        if _CONNECTOR_ROUTE.match(target):
            return 404, {"error": f"connector must be a number 1..{len(station.connectors)}"}
        return 404, {"error": f"no route {method} {target}"}
    cid, action = int(match.group(1)), match.group(2)
    if cid not in station.connectors:
        return 404, {"error": f"connector must be a number 1..{len(station.connectors)}"}
    result = "ok"
    if action == "plug":
        station.plug_in(cid)
    elif action == "unplug":
        station.unplug(cid)
    elif action == "fault":
        station.report_fault(cid, str(body.get("info", "")))
    elif action == "clear-fault":
        station.clear_fault(cid)
    elif action in ("available", "unavailable"):
        answer = await station.change_availability(cid, action == "available")
        result = "scheduled" if answer == "Scheduled" else "ok"
    elif action == "unlock":
        # no lock actuator of its own: as OCPP 1.6 UnlockConnector, the session ends
        log.info("control interface: unlock requested on connector %d", cid)
        stopping = station.stop_transaction(cid, StopReason.UNLOCK_COMMAND)
        result = "stopping" if stopping else "unlocked"
    else:
        log.info("control interface: stop requested on connector %d", cid)
        if not station.stop_transaction(cid, StopReason.LOCAL):
            return 409, {"error": f"no session on connector {cid}"}
        result = "stopping"
    return 200, {"result": result}
