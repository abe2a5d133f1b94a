"""The opening handshake: the station id from the path, refusals (503), HTTP Basic auth
(security profiles 1 and 2), the TLS client certificate (3) and the choice of subprotocol."""

from __future__ import annotations

import base64
import binascii
import hmac
import http
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from chargepoint.testcsms.ocppj import OCPP_PATH, log
from chargepoint.testcsms.records import Handshake
from chargepoint.testcsms.state import CsmsState


class HandshakeChecks(CsmsState):
    def __init__(self) -> None:
        super().__init__()
        # what the handshake learnt of a connection, for `_handle` once it is accepted
        self._handshake_info: dict[ServerConnection, dict[str, Any]] = {}

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        """The first subprotocol in the station's list (its preference) that the CSMS offers."""
        info = self._handshake_info.get(connection)
        if info is not None:
            info["offered_subprotocols"] = [str(p) for p in offered]
        if not offered:
            raise NegotiationError("missing subprotocol")
        for subprotocol in offered:
            if subprotocol in self.subprotocols:
                return subprotocol
        raise NegotiationError(
            "invalid subprotocol; expected one of " + ", ".join(self.subprotocols)
        )

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        prefix = OCPP_PATH + "/"
        segment = path[len(prefix) :] if path.startswith(prefix) else ""
        station_id = "" if "/" in segment else unquote(segment)
        info: dict[str, Any] = {
            "station_id": station_id,
            "path": request.path,
            "basic_auth_user": None,
            "client_cert_subject": None,
            "client_cert_cn": None,
            "tls": self.ssl_context is not None,
            "remote": connection.remote_address,
            "offered_subprotocols": [],  # filled in by _select_subprotocol, which runs later
        }
        self._handshake_info[connection] = info
        if not station_id:
            return connection.respond(
                http.HTTPStatus.NOT_FOUND, f"expected {prefix}<station id>, got {path}\n"
            )
        if self._refuse:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "CSMS unavailable\n")
        user, password = basic_credentials(request.headers)
        info["basic_auth_user"] = user
        if self.basic_auth is not None:
            expected = self.basic_auth.get(station_id)
            if (
                expected is None
                or user != station_id
                or password is None
                or not hmac.compare_digest(password.encode(), expected.encode())
            ):
                response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
                response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
                return response
        peercert = connection.transport.get_extra_info("peercert")
        if peercert:
            subject = peercert.get("subject", ())
            info["client_cert_subject"] = subject_text(subject)
            for rdn in subject:
                for name, value in rdn:
                    if name == "commonName":
                        info["client_cert_cn"] = value
        if self.require_client_cert and not peercert:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "client certificate required\n")
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        info = self._handshake_info.get(connection, {})
        status = int(response.status_code)
        reason = response.body.decode("utf-8", "replace").strip() if response.body else ""
        self.handshakes.append(
            Handshake(
                info.get("station_id") or None, request.path, status, reason, time.monotonic()
            )
        )
        if status != http.HTTPStatus.SWITCHING_PROTOCOLS:
            self._handshake_info.pop(connection, None)
            log.info("handshake %s refused: %s %s", request.path, status, reason)
        self._notify()


def basic_credentials(headers: Headers) -> tuple[str | None, str | None]:
    value = headers.get("Authorization")
    if not value:
        return None, None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return user, (password if sep else None)


def subject_text(subject: Iterable[Iterable[tuple[str, str]]]) -> str:
    short = {
        "commonName": "CN",
        "organizationName": "O",
        "organizationalUnitName": "OU",
        "countryName": "C",
        "localityName": "L",
        "stateOrProvinceName": "ST",
    }
    parts = [f"{short.get(name, name)}={value}" for rdn in subject for name, value in rdn]
    return ",".join(parts)
