"""CSMS -> station: CALLs (schema-checked both ways), raw frames and dropping a connection.

A capability that adds commands (firmware, logs, certificates, local lists, reservations, smart
charging) gets a module of its own next to this one: a class over `Commands` whose methods build
the payload and `call()` it, added to `TestCsms`'s bases in server.py.
"""

from __future__ import annotations

from typing import Any

from chargepoint.testcsms.state import CsmsState


class Commands(CsmsState):
    async def call(
        self,
        station_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float = 30,
        *,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Send a CALL (camelCase payload as on the wire) and return the CALLRESULT payload.

        Raises CallErrorReply on a CALLERROR, TimeoutError, StationNotConnected, and
        SchemaViolation when `validate` and our payload or the station's answer fails the schema.
        """
        return await self._session(station_id).send_call(action, payload, timeout, validate)

    async def send_raw(self, station_id: str, text: str, timeout: float = 10) -> str | None:
        """Send any text frame; return the station's CALLRESULT/CALLERROR to it, or None.

        The reply is matched by unique id when `text` parses as an array with one, otherwise it
        is the first CALLERROR the station sends.
        """
        return await self._session(station_id).send_raw(text, timeout)

    async def disconnect(self, station_id: str, *, abrupt: bool = False) -> None:
        """Drop the station's connection: a close frame, or (abrupt) a TCP abort."""
        session = self._sessions.get(station_id)
        if session is None:
            return
        if abrupt:
            session.connection.transport.abort()
        else:
            await session.connection.close(1000, "test CSMS disconnect")
        await self._wait_until(lambda: self._sessions.get(station_id) is not session, 10)
