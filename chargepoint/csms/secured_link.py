"""Opening the CSMS websocket with the connection profiles of the core (security profile,
password, network profile, installed CSMS roots and station certificate), and what both OCPP
adapters send for the security extension (SecurityEventNotification, SignCertificate)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection

from chargepoint.core.security import StationSecurity
from chargepoint.core.security_events import OUTBOX_KIND, SecurityEvent
from chargepoint.csms.link import CsmsCredentialsRefused, CsmsLinkError, open_link

__all__ = ["OUTBOX_KIND", "csr_sender", "open_secured", "security_event_message"]


async def open_secured(
    security: StationSecurity, station_id: str, subprotocol: str, ping: float | None
) -> ClientConnection:
    """The next connection attempt of the connection profiles; a trial that fails is counted
    (and given up after its attempts), one that opens becomes the connection in force."""
    connection = security.connection
    attempt = await asyncio.to_thread(connection.next_attempt)
    try:
        ws = await open_link(attempt.csms, station_id, subprotocol, ping, attempt.tls)
    except CsmsLinkError as exc:
        refused = isinstance(exc, CsmsCredentialsRefused)
        await connection.failed(attempt, exc, credentials_refused=refused)
        raise
    await connection.connected(attempt)
    return ws


def security_event_message(data: dict[str, Any], version: str) -> tuple[str, dict[str, Any]]:
    """The SecurityEventNotification of an outbox message of kind OUTBOX_KIND."""
    payload = SecurityEvent.from_data(data).payload(version)
    if version == "1.6":
        # ocpp.v16.call.SecurityEventNotification requires tech_info (the schema does not);
        # a None is left out of the frame by the library
        payload.setdefault("techInfo", None)
    return "SecurityEventNotification", payload


Send = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def csr_sender(send: Send, extra: dict[str, Any] | None = None) -> Callable[[str], Awaitable[bool]]:
    """`signing.send_csr` over an adapter's `send`: SignCertificate, True when Accepted."""

    async def send_csr(csr: str) -> bool:
        answer = await send("SignCertificate", {"csr": csr, **(extra or {})})
        return answer.get("status") == "Accepted"

    return send_csr
