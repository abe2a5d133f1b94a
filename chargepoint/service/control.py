"""Local control interface for the charge controller and the HMI: where it is, and the client
`chargepoint status` / `control` / `health` and the web page use. The server is in
control_server (aiohttp, imported only by the daemon).

An HTTP/1.1 JSON API on a Unix socket (default) or a loopback TCP port:

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

Every request needs a loopback Host (localhost, 127.0.0.1, [::1]) and no Origin header; every
POST needs `Content-Type: application/json`; on TCP every request needs
`Authorization: Bearer <the token in <state_dir>/control.token>` (control_guard).

    curl --unix-socket /run/chargepoint/control.sock -H 'Content-Type: application/json' \
         -d '{"id_tag": "04A1B2C3"}' http://localhost/id-tag
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chargepoint.service.control_token import read_token


class ControlAddress:
    """`unix:PATH` (relative to the state dir) or `http://127.0.0.1:PORT`."""

    def __init__(self, listen: str, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.token: str | None = None  # on TCP: the token last read (request() keeps it)
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
        return f"unix:{self.unix_path}" if self.unix_path else f"http://{self.host_header()}"

    def host_header(self) -> str:
        """The Host a client sends: a loopback name the daemon accepts."""
        if self.unix_path is not None:
            return "localhost"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


async def request(
    address: ControlAddress,
    method: str,
    target: str,
    body: dict[str, Any] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, Any]]:
    """Client side, for `chargepoint status` / `control` / `health` and the web page: one
    connection per request. On TCP the token is read from the state dir once per address and
    again after a 401 (the daemon writes a new one at each start; a refused request did
    nothing, so it is sent once more). Raises OSError (TokenUnreadable among them) or
    TimeoutError when the daemon cannot be asked, ValueError when its answer is not HTTP with
    a JSON body."""
    if address.unix_path is not None:
        return await _exchange(address, method, target, body, None, timeout)
    known = address.token
    token = known or await asyncio.to_thread(read_token, address.state_dir)
    status, data = await _exchange(address, method, target, body, token, timeout)
    if status == 401 and known is not None:
        token = await asyncio.to_thread(read_token, address.state_dir)
        if token != known:
            status, data = await _exchange(address, method, target, body, token, timeout)
    address.token = token if status != 401 else None
    return status, data


async def _exchange(
    address: ControlAddress,
    method: str,
    target: str,
    body: dict[str, Any] | None,
    token: str | None,
    timeout: float,
) -> tuple[int, dict[str, Any]]:
    headers = [
        f"{method} {target} HTTP/1.1",
        f"Host: {address.host_header()}",
        "Connection: close",
        "Accept: application/json",
    ]
    if token is not None:
        headers.append(f"Authorization: Bearer {token}")
    payload = b""
    if method != "GET":
        payload = json.dumps(body or {}).encode()
        headers.append("Content-Type: application/json")
    headers.append(f"Content-Length: {len(payload)}")
    if address.unix_path is not None:
        connecting = asyncio.open_unix_connection(str(address.unix_path))
    else:
        connecting = asyncio.open_connection(address.host, address.port)
    reader, writer = await asyncio.wait_for(connecting, timeout)
    try:
        writer.write("\r\n".join(headers).encode("latin-1") + b"\r\n\r\n" + payload)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if (
        len(status_line) < 2
        or not status_line[0].startswith(b"HTTP/")
        or not status_line[1].isdigit()
    ):
        raise ValueError(f"not an HTTP answer: {head[:80]!r}")
    data: dict[str, Any] = json.loads(content) if content.strip() else {}
    return int(status_line[1]), data
