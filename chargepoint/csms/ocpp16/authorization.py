"""OCPP 1.6 Local Auth List Management and Reservation profiles: SendLocalList,
GetLocalListVersion, ReserveNow and CancelReservation, over the version-free core
(chargepoint.core.authorization).

- GetLocalListVersion answers the list's version (0 when empty), -1 while
  LocalAuthListEnabled is false.
- SendLocalList answers Accepted, Failed, NotSupported (list disabled) or VersionMismatch
  (chargepoint.core.authorization.local_list has the rules).
- ReserveNow answers Accepted, Faulted, Occupied, Rejected or Unavailable; connectorId 0
  reserves any connector (ReserveConnectorZeroSupported). StartTransaction then carries the
  reservationId of the reservation it used.
- CancelReservation: Accepted for an active reservation, Rejected otherwise.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from chargepoint.core.auth import Authorizer
from chargepoint.core.authorization.local_list import ListEntry, UpdateStatus, UpdateType
from chargepoint.core.authorization.reservations import ReserveRequest, ReserveStatus
from chargepoint.core.authorization.tokens import IdTagInfo, parse_time, status_of
from chargepoint.core.station import Station
from chargepoint.csms.routing import on

log = logging.getLogger("chargepoint.ocpp")


class _Adapter(Protocol):
    station: Station
    authorizer: Authorizer


def field(data: dict[str, Any], camel: str, snake: str) -> Any:
    """A field of a nested object, as the library hands it over (snake_case) or as on the
    wire (camelCase)."""
    return data[snake] if snake in data else data.get(camel)


def list_entry(raw: dict[str, Any]) -> ListEntry:
    """One AuthorizationData: idTag and, unless the entry is to be deleted, idTagInfo."""
    info = field(raw, "idTagInfo", "id_tag_info")
    tag_info = None
    if isinstance(info, dict):
        tag_info = IdTagInfo(
            status_of(info.get("status")),
            field(info, "expiryDate", "expiry_date"),
            field(info, "parentIdTag", "parent_id_tag"),
        )
    return ListEntry(str(field(raw, "idTag", "id_tag") or ""), tag_info)


class AuthorizationHandlers16:
    """Mixin for the 1.6 StationChargePoint (`self.adapter` is its adapter)."""

    @property
    def _authz(self) -> _Adapter:
        adapter: _Adapter = self.adapter  # type: ignore[attr-defined]
        return adapter

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        authorizer = self._authz.authorizer
        if not authorizer.local_list_enabled():
            return call_result.GetLocalListVersion(list_version=-1)
        return call_result.GetLocalListVersion(list_version=authorizer.local_list.version)

    @on(Action.send_local_list)
    async def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.SendLocalList:
        authorizer = self._authz.authorizer
        entries = [list_entry(e) for e in local_authorization_list or []]
        try:
            kind = UpdateType(update_type)
        except ValueError:
            return call_result.SendLocalList(status=UpdateStatus.FAILED.value)
        result = await authorizer.local_list.update(
            kind, int(list_version), entries, authorizer.list_limits()
        )
        return call_result.SendLocalList(status=result.status.value)

    @on(Action.reserve_now)
    async def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
        **_: Any,
    ) -> call_result.ReserveNow:
        station = self._authz.station
        try:
            expiry = parse_time(expiry_date)
        except ValueError:
            expiry = None
        if expiry is None:
            return call_result.ReserveNow(status=ReserveStatus.REJECTED.value)
        if connector_id != 0 and connector_id not in station.connectors:
            return call_result.ReserveNow(status=ReserveStatus.REJECTED.value)
        status, _why = await station.reservations.reserve(
            ReserveRequest(
                reservation_id=int(reservation_id),
                connector_id=connector_id or None,
                id_tag=id_tag,
                expiry=expiry,
                parent_id_tag=parent_id_tag,
            )
        )
        return call_result.ReserveNow(status=status.value)

    @on(Action.cancel_reservation)
    async def on_cancel_reservation(
        self, reservation_id: int, **_: Any
    ) -> call_result.CancelReservation:
        cancelled = await self._authz.station.reservations.cancel(int(reservation_id))
        return call_result.CancelReservation(status="Accepted" if cancelled else "Rejected")
