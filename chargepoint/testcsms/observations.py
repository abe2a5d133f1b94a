"""Reading what the test CSMS saw: the CALLs received (now or awaited), which stations are
connected and how."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from chargepoint.testcsms.records import Received
from chargepoint.testcsms.state import CsmsState


class Observations(CsmsState):
    def add_listener(self, listener: Callable[[Received], None]) -> None:
        """Call `listener` with every received CALL as it arrives."""
        self._listeners.append(listener)

    # -- what was received -----------------------------------------------------------------
    def messages(self, action: str, station_id: str | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if r.action == action and (station_id is None or r.station_id == station_id)
        ]

    async def wait_for(
        self,
        action: str,
        predicate: Callable[[Received], bool] | None = None,
        timeout: float = 10.0,
        after: int = 0,
    ) -> Received:
        """The first `action` CALL at index >= `after` in `received` that matches `predicate`.

        Already received ones count. Raises TimeoutError listing what was received.
        """
        index = after
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while index < len(self.received):
                rec = self.received[index]
                index += 1
                if rec.action == action and (predicate is None or predicate(rec)):
                    return rec
            if not await self._wait_change(deadline):
                raise TimeoutError(self._timeout_text(action, predicate, timeout, after))

    async def wait_connected(self, station_id: str, timeout: float = 10.0) -> None:
        if not await self._wait_until(lambda: self.is_connected(station_id), timeout):
            raise TimeoutError(
                f"station {station_id!r} did not connect within {timeout} s; "
                f"connected: {sorted(self._sessions)}; "
                f"last handshakes: {self.handshakes[-5:]}"
            )

    async def wait_disconnected(self, station_id: str, timeout: float = 10.0) -> None:
        if not await self._wait_until(lambda: not self.is_connected(station_id), timeout):
            raise TimeoutError(f"station {station_id!r} still connected after {timeout} s")

    def is_connected(self, station_id: str) -> bool:
        return station_id in self._sessions

    def connected_stations(self) -> list[str]:
        return sorted(self._sessions)

    def connection_info(self, station_id: str) -> dict[str, Any]:
        """The station's last accepted connection: subprotocol, auth user, client certificate.

        Keys: station_id, subprotocol (the negotiated one: "ocpp1.6" or "ocpp2.0.1"),
        ocpp_version ("1.6" or "2.0.1"), offered_subprotocols (the station's list, in its
        order), basic_auth_user, client_cert_subject, client_cert_cn, tls, path, remote,
        connections (how many were accepted so far), connected.
        Raises KeyError for a station that never connected.
        """
        info = dict(self._info[station_id])
        info["connected"] = self.is_connected(station_id)
        return info

    def ocpp_version(self, station_id: str) -> str:
        """ "1.6" or "2.0.1": the version of the station's last accepted connection (KeyError)."""
        return str(self._info[station_id]["ocpp_version"])

    def _timeout_text(
        self,
        action: str,
        predicate: Callable[[Received], bool] | None,
        timeout: float,
        after: int,
    ) -> str:
        seen = self.received[after:]
        shown = [f"#{after + i} {r.station_id} {r.action} {r.payload}" for i, r in enumerate(seen)]
        if len(shown) > 30:
            shown = [f"... {len(shown) - 30} earlier", *shown[-30:]]
        what = "matching " + action if predicate is not None else action
        listing = "\n  ".join(shown) if shown else "(nothing)"
        return (
            f"no {what} within {timeout} s (from index {after}); "
            f"connected: {sorted(self._sessions)}; received:\n  {listing}"
        )
