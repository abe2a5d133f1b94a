"""Local control interface for the charge controller and the HMI.

A tiny HTTP/1.1 JSON API on a Unix socket (default) or a loopback TCP port:

    GET  /status                         every connector, the open sessions, the outbox
    POST /connectors/N/plug              EV plugged in          (charge controller)
    POST /connectors/N/unplug            EV unplugged
    POST /connectors/N/fault   {"info"}  hardware fault (RCM tripped, lock broken, ...)
    POST /connectors/N/clear-fault
    POST /connectors/N/stop              end the session here (HMI stop button)
    POST /connectors/N/unavailable       take the connector out of service (after its session)
    POST /connectors/N/available         back in service
    POST /connectors/N/unlock            release the cable: ends the session there (UnlockCommand)
    POST /id-tag {"id_tag": "...", "connector": N?}   RFID card / app token presented
    GET  /events                         charging limit changes, streamed (control_charging)
    POST /charging-limit, /charging-limit/clear   external limits (control_charging)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chargepoint.core.station import Station
from chargepoint.core.transaction import StopReason
from chargepoint.service.control_charging import (
    EVENTS_STREAM,
    LimitStreams,
    charging_limit_request,
)

log = logging.getLogger("chargepoint.service.control")

MAX_BODY = 64 * 1024
_ACTIONS = "plug|unplug|fault|clear-fault|stop|available|unavailable|unlock"
_ROUTE = re.compile(rf"^/connectors/(\d+)/({_ACTIONS})$")
_CONNECTOR_ROUTE = re.compile(rf"^/connectors/[^/]*/({_ACTIONS})$")


class ControlAddress:
    """`unix:PATH` (relative to the state dir) or `http://127.0.0.1:PORT`."""

    def __init__(self, listen: str, state_dir: Path) -> None:
        self.unix_path: Path | None = None
        self.host = ""
        self.port = 0
        if listen.startswith("unix:"):
            path = Path(listen[len("unix:") :])
            self.unix_path = path if path.is_absolute() else state_dir / path
        else:
            parts = urlsplit(listen)
            if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1", "localhost"):
                raise ValueError(f"control interface must be unix:PATH or loopback http: {listen}")
            self.host = parts.hostname
            self.port = parts.port or 8088

    def describe(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"http://{self.host}:{self.port}"


class ControlServer:
    def __init__(self, station: Station, address: ControlAddress) -> None:
        self.station = station
        self.address = address
        self._server: asyncio.Server | None = None
        self._streams = LimitStreams(station.charging)

    async def start(self) -> None:
        if self.address.unix_path is not None:
            path = self.address.unix_path
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._server = await asyncio.start_unix_server(self._serve, path=str(path))
            os.chmod(path, 0o660)
        else:
            self._server = await asyncio.start_server(
                self._serve, self.address.host, self.address.port
            )
        log.info("control interface on %s", self.address.describe())

    async def stop(self) -> None:
        await self._streams.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.address.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.address.unix_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._handle(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            status, body = 400, {"error": str(exc)}
        if body is EVENTS_STREAM:
            await self._streams.serve(reader, writer)
            return
        payload = json.dumps(body).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}.get(status, "")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
        request_line = (await reader.readline()).decode("latin-1").strip()
        parts = request_line.split()
        if len(parts) != 3:
            raise ValueError("malformed request line")
        method, target = parts[0], parts[1]
        length = 0
        while True:
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length > MAX_BODY:
            raise ValueError("request body too large")
        raw = await reader.readexactly(length) if length else b""
        body: dict[str, Any] = json.loads(raw) if raw.strip() else {}
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return await self.dispatch(method, target, body)

    async def dispatch(
        self, method: str, target: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        station = self.station
        if method == "GET" and target == "/events":
            return 200, EVENTS_STREAM
        if method == "POST" and target in ("/charging-limit", "/charging-limit/clear"):
            return await charging_limit_request(
                station.charging, target, body, len(station.connectors)
            )
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


async def request(
    address: ControlAddress,
    method: str,
    target: str,
    body: dict[str, Any] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, Any]]:
    """Client side, for `chargepoint status` / `chargepoint control`."""
    if address.unix_path is not None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(address.unix_path)), timeout
        )
    else:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address.host, address.port), timeout
        )
    payload = json.dumps(body or {}).encode()
    writer.write(
        f"{method} {target} HTTP/1.1\r\nHost: chargepoint\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout)
    writer.close()
    head, _, content = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    data: dict[str, Any] = json.loads(content) if content else {}
    return status, data
