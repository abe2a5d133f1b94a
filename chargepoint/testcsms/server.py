"""`TestCsms`: the websockets server that accepts stations, made of one part per job.

The parts (see state.py) are the opening handshake, fault injection, observations, transaction
logs and the commands; this module listens, accepts a connection (its session class chosen by
the negotiated subprotocol) and runs it until it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chargepoint.testcsms.authorization import AuthorizationCommands
from chargepoint.testcsms.faults import FaultInjection
from chargepoint.testcsms.handshake import HandshakeChecks
from chargepoint.testcsms.observations import Observations
from chargepoint.testcsms.ocppj import (
    OCPP_PATH,
    SUBPROTOCOL_16,
    SUBPROTOCOL_201,
    VERSION_SUBPROTOCOLS,
    log,
)
from chargepoint.testcsms.security import SecurityCommands
from chargepoint.testcsms.session import Session
from chargepoint.testcsms.smart_charging import SmartChargingCommands
from chargepoint.testcsms.transactions import Transactions
from chargepoint.testcsms.updates import UpdateCommands
from chargepoint.testcsms.v16 import Ocpp16Session
from chargepoint.testcsms.v201 import Ocpp201Session

# Every subprotocol the CSMS can speak and the session class of each. Which of them it offers is
# `TestCsms(versions=...)`; the station's order of preference picks among those.
SESSION_CLASSES: dict[str, type[Session]] = {
    SUBPROTOCOL_16: Ocpp16Session,
    SUBPROTOCOL_201: Ocpp201Session,
}


class TestCsms(
    SecurityCommands,
    AuthorizationCommands,
    UpdateCommands,
    SmartChargingCommands,
    Observations,
    Transactions,
    FaultInjection,
    HandshakeChecks,
):
    """An OCPP 1.6J / 2.0.1 CSMS on loopback for tests; see the package docstring.

    `versions` are the OCPP versions offered ("1.6", "2.0.1"); a station offering none of them
    gets HTTP 400 in the opening handshake.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        boot_status: str = "Accepted",
        heartbeat_interval: int = 300,
        accept_id_tags: set[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        basic_auth: dict[str, str] | None = None,
        require_client_cert: bool = False,
        versions: tuple[str, ...] = ("1.6", "2.0.1"),
    ) -> None:
        unknown = [v for v in versions if v not in VERSION_SUBPROTOCOLS]
        if unknown or not versions:
            raise ValueError(
                f"versions must be some of {sorted(VERSION_SUBPROTOCOLS)}, got {versions!r}"
            )
        self.versions = tuple(dict.fromkeys(versions))
        self.subprotocols = tuple(VERSION_SUBPROTOCOLS[v] for v in self.versions)
        # Answers; may be changed while running (e.g. Pending first, then Accepted).
        self.boot_status = boot_status
        self.heartbeat_interval = heartbeat_interval
        self.accept_id_tags = accept_id_tags
        self.ssl_context = ssl_context
        self.basic_auth = basic_auth
        self.require_client_cert = require_client_cert
        if require_client_cert:
            if ssl_context is None:
                raise ValueError("require_client_cert needs an ssl_context")
            ssl_context.verify_mode = ssl.CERT_REQUIRED

        super().__init__()

        self._server: Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 = a free port); returns the bound port."""
        if self._server is not None:
            raise RuntimeError("the test CSMS is already running")
        self._server = await serve(
            self._handle,
            host,
            port,
            subprotocols=[Subprotocol(p) for p in self.subprotocols],
            select_subprotocol=self._select_subprotocol,
            process_request=self._process_request,
            process_response=self._process_response,
            ssl=self.ssl_context,
        )
        self._host = host
        self._port = int(self._server.sockets[0].getsockname()[1])
        log.debug("test CSMS listening on %s", self.url)
        return self._port

    async def stop(self) -> None:
        """Close every connection (code 1001) and stop listening."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        for session in list(self._sessions.values()):
            session.closed()
        self._sessions.clear()
        self._notify()

    async def __aenter__(self) -> TestCsms:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """ws://HOST:PORT/ocpp (wss:// with TLS); a station appends "/" + its identity."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        host = self._host
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        return f"{scheme}://{host}:{self._port}{OCPP_PATH}"

    async def _handle(self, connection: ServerConnection) -> None:
        info = self._handshake_info.pop(connection, None) or {}
        station_id = str(info.get("station_id") or "")
        subprotocol = connection.subprotocol
        session_class = SESSION_CLASSES.get(str(subprotocol))
        # The handshake checks make this unreachable.
        if not station_id or session_class is None or subprotocol not in self.subprotocols:
            await connection.close(1002, "no station id or subprotocol")
            return
        session = session_class(station_id, connection, self)
        previous = self._sessions.get(station_id)
        self._sessions[station_id] = session
        count = int(self._info.get(station_id, {}).get("connections", 0)) + 1
        self._info[station_id] = {
            **info,
            "subprotocol": subprotocol,
            "ocpp_version": str(session._ocpp_version),
            "connections": count,
        }
        log.info("%s connected (%s, connection %d)", station_id, subprotocol, count)
        self._notify()
        if previous is not None:
            log.info("%s: a new connection replaces the open one", station_id)
            closing = asyncio.create_task(
                previous.connection.close(1000, "replaced by a new connection")
            )
            self._background.add(closing)
            closing.add_done_callback(self._background.discard)
        try:
            await session.start()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("%s: session failed", station_id)
        finally:
            session.closed()
            if self._sessions.get(station_id) is session:
                del self._sessions[station_id]
            log.info("%s disconnected", station_id)
            self._notify()
