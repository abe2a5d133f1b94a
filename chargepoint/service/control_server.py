"""The control interface's HTTP server (aiohttp, as the web page): on the Unix socket
(control_socket: who may connect) or on loopback TCP (control_token: who holds the token).
Every request passes control_guard first; control_routes says what it does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web

from chargepoint.core.station import Station
from chargepoint.service.control import ControlAddress
from chargepoint.service.control_charging import EVENTS_STREAM, LimitStreams
from chargepoint.service.control_guard import RefusalLog, refusal
from chargepoint.service.control_routes import dispatch
from chargepoint.service.control_socket import prepare_directory, secure_socket
from chargepoint.service.control_token import write_new_token

log = logging.getLogger("chargepoint.service.control")

MAX_BODY = 64 * 1024
# requests still running when the daemon stops get this long (the /events streams end at once)
SHUTDOWN_TIMEOUT_S = 2.0
_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="chargepoint control"'}


def _answer(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(
        body, status=status, headers=_BEARER_CHALLENGE if status == 401 else None
    )


class ControlServer:
    def __init__(self, station: Station, address: ControlAddress) -> None:
        self.station = station
        self.address = address
        self.group = station.config.control.group
        self._runner: web.AppRunner | None = None
        self._streams = LimitStreams(station.charging)
        self._token: str | None = None  # None on the Unix socket
        self._refusals = RefusalLog()

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        try:
            site: web.BaseSite
            if self.address.unix_path is not None:
                path = self.address.unix_path
                gid = await asyncio.to_thread(prepare_directory, path.parent, self.group)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                site = web.UnixSite(runner, str(path))
                await site.start()
                await asyncio.to_thread(secure_socket, path, gid)
            else:
                self._token = await asyncio.to_thread(write_new_token, self.address.state_dir)
                site = web.TCPSite(runner, self.address.host, self.address.port)
                await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("control interface on %s", self.address.describe())

    async def stop(self) -> None:
        self._streams.close()  # the /events responses end; cleanup waits for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.address.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.address.unix_path.unlink()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        refused = refusal(request.method, request.headers, self._token)
        if refused is not None:
            self._refusals.note(
                refused, request.method, request.raw_path, request.headers.get("Origin")
            )
            return _answer(refused.status, refused.body())
        body: dict[str, Any] = {}
        if request.method == "POST":
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return _answer(400, {"error": "request body too large"})
            try:
                parsed = json.loads(raw) if raw.strip() else {}
            except ValueError as exc:
                return _answer(400, {"error": str(exc)})
            if not isinstance(parsed, dict):
                return _answer(400, {"error": "body must be a JSON object"})
            body = parsed
        try:
            status, answer = await dispatch(self.station, request.method, request.raw_path, body)
        except (ValueError, TypeError) as exc:
            return _answer(400, {"error": str(exc)})
        if answer is EVENTS_STREAM:
            return await self._streams.serve(request)
        return _answer(status, answer)
