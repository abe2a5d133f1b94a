"""OCPP 2.0.1 blocks D (Local Authorization List) and H (Reservation), and the AuthCacheCtrlr /
TxCtrlr variables the core's authorization reads, over the version-free core
(chargepoint.core.authorization).

- SendLocalList answers Accepted, Failed or VersionMismatch (a disabled list, LocalAuthListCtrlr.
  Enabled false, is Failed); GetLocalListVersion the list's version, 0 when there is none or
  it is disabled (D02).
- ReserveNow with or without evseId (ReservationCtrlr.NonEvseSpecific), connectorType
  (cType2 or Unknown here) and groupIdToken; Rejected while ReservationCtrlr.Enabled is false.
  CancelReservation: Accepted / Rejected (H02). TransactionEvent carries the reservationId a
  start used.
- ReservationStatusUpdate Expired / Removed for every reservation that ended so (H01.FR.16/17,
  H04): kept in the store until the CSMS answered, so an end while offline or before a
  restart is reported once connected.
- AuthCacheCtrlr.LifeTime drops cache entries unused for that long; TxCtrlr.
  MaxEnergyOnInvalidId lets a session whose token the CSMS rejected charge on up to that many Wh
  (with StopTxOnInvalidId false).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from ocpp.v201 import call_result
from ocpp.v201.enums import Action
from websockets.exceptions import ConnectionClosed

from chargepoint.core.auth import Authorizer
from chargepoint.core.authorization.local_list import ListEntry, UpdateStatus, UpdateType
from chargepoint.core.authorization.reservations import (
    Reservation,
    ReservationState,
    ReserveRequest,
    ReserveStatus,
)
from chargepoint.core.authorization.tokens import IdTagInfo, parse_time, status_of
from chargepoint.core.station import Station
from chargepoint.csms.ocpp201.device_model import DeviceModel
from chargepoint.csms.ocpp201.device_variables import CONNECTOR_TYPE
from chargepoint.csms.routing import on
from chargepoint.csms.session import CsmsCallError

log = logging.getLogger("chargepoint.csms.ocpp201")

RETRY_S = 1.0  # a ReservationStatusUpdate that could not go out is tried again after this
UPDATE_STATUS = {ReservationState.EXPIRED: "Expired", ReservationState.REMOVED: "Removed"}


class _Adapter(Protocol):
    station: Station
    authorizer: Authorizer
    device_model: DeviceModel
    accepted: asyncio.Event

    async def send(self, action: str, payload: dict[str, Any]) -> dict[str, Any]: ...


def field(data: dict[str, Any], camel: str, snake: str) -> Any:
    """A field of a nested object, as the library hands it over (snake_case) or as on the
    wire (camelCase)."""
    return data[snake] if snake in data else data.get(camel)


def token_value(token: Any) -> tuple[str, str | None]:
    """(idToken, type) of an IdTokenType."""
    if not isinstance(token, dict):
        return "", None
    kind = token.get("type")
    return str(field(token, "idToken", "id_token") or ""), str(kind) if kind else None


def list_entry(raw: dict[str, Any]) -> ListEntry:
    """One AuthorizationData: idToken and, unless the entry is to be deleted, idTokenInfo."""
    id_tag, kind = token_value(field(raw, "idToken", "id_token"))
    info = field(raw, "idTokenInfo", "id_token_info")
    tag_info = None
    if isinstance(info, dict):
        group = token_value(field(info, "groupIdToken", "group_id_token"))[0]
        tag_info = IdTagInfo(
            status_of(info.get("status")),
            field(info, "cacheExpiryDateTime", "cache_expiry_date_time"),
            group or None,
        )
    return ListEntry(id_tag, tag_info, kind)


class AuthorizationHandlers201:
    """Mixin for the 2.0.1 StationChargePoint (`self.adapter` is its adapter)."""

    @property
    def _authz(self) -> _Adapter:
        adapter: _Adapter = self.adapter  # type: ignore[attr-defined]
        return adapter

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        authorizer = self._authz.authorizer
        version = authorizer.local_list.version if authorizer.local_list_enabled() else 0
        return call_result.GetLocalListVersion(version_number=version)

    @on(Action.send_local_list)
    async def on_send_local_list(
        self,
        version_number: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.SendLocalList:
        authorizer = self._authz.authorizer
        entries = [list_entry(e) for e in local_authorization_list or []]
        try:
            kind = UpdateType(update_type)
        except ValueError:
            return call_result.SendLocalList(status="Failed")
        result = await authorizer.local_list.update(
            kind, int(version_number), entries, authorizer.list_limits()
        )
        status = "Failed" if result.status is UpdateStatus.NOT_SUPPORTED else result.status.value
        info = {"reason_code": status, "additional_info": result.reason[:512]}
        return call_result.SendLocalList(status=status, status_info=info if result.reason else None)

    @on(Action.reserve_now)
    async def on_reserve_now(
        self,
        id: int,  # the field's name in the message
        expiry_date_time: str,
        id_token: dict[str, Any],
        connector_type: str | None = None,
        evse_id: int | None = None,
        group_id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ReserveNow:
        adapter = self._authz
        station = adapter.station
        rejected = call_result.ReserveNow(status=ReserveStatus.REJECTED.value)
        if not adapter.device_model.flag("ReservationCtrlr", "Enabled"):
            return rejected
        if evse_id is not None and evse_id not in station.connectors:
            return rejected
        if connector_type not in (None, "Unknown", CONNECTOR_TYPE):
            return rejected
        try:
            expiry = parse_time(expiry_date_time)
        except ValueError:
            expiry = None
        id_tag, kind = token_value(id_token)
        if expiry is None or not id_tag:
            return rejected
        group = token_value(group_id_token)[0]
        status, _why = await station.reservations.reserve(
            ReserveRequest(
                reservation_id=int(id),
                connector_id=evse_id,
                id_tag=id_tag,
                expiry=expiry,
                parent_id_tag=group or None,
                token_type=kind,
                connector_type=connector_type,
            )
        )
        return call_result.ReserveNow(status=status.value)

    @on(Action.cancel_reservation)
    async def on_cancel_reservation(
        self, reservation_id: int, **_: Any
    ) -> call_result.CancelReservation:
        cancelled = await self._authz.station.reservations.cancel(int(reservation_id))
        return call_result.CancelReservation(status="Accepted" if cancelled else "Rejected")


class ReservationReporter:
    """Sends ReservationStatusUpdate for every reservation that expired or was removed,
    once connected and accepted, and marks it reported only when the CSMS answered."""

    def __init__(self, adapter: _Adapter) -> None:
        self.adapter = adapter
        self.reservations = adapter.station.reservations
        self._wake = asyncio.Event()
        self.reservations.report_ends = True
        self.reservations.subscribe(self._ended)

    def _ended(self, reservation: Reservation) -> None:
        if reservation.state in UPDATE_STATUS:
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self.adapter.accepted.wait()
            self._wake.clear()
            if not await self._send_pending():
                await asyncio.sleep(RETRY_S)
                continue
            await self._wake.wait()

    async def _send_pending(self) -> bool:
        """True when every pending update went out (or was refused for good)."""
        for reservation in await self.reservations.unreported():
            status = UPDATE_STATUS.get(reservation.state)
            if status is not None:
                payload = {
                    "reservationId": reservation.reservation_id,
                    "reservationUpdateStatus": status,
                }
                try:
                    await self.adapter.send("ReservationStatusUpdate", payload)
                except CsmsCallError as exc:  # refused: trying again would not help
                    log.warning(
                        "ReservationStatusUpdate %d refused: %s", reservation.reservation_id, exc
                    )
                except (TimeoutError, ConnectionError, ConnectionClosed) as exc:
                    log.info(
                        "ReservationStatusUpdate %d not sent yet: %s",
                        reservation.reservation_id,
                        exc,
                    )
                    return False
            await self.reservations.reported(reservation.reservation_id)
        return True


def attach_authorization(adapter: _Adapter) -> ReservationReporter:
    """Connect the 2.0.1 variables the core's authorization reads, and the
    ReservationStatusUpdate reporter (run it as one of the adapter's tasks)."""
    dm = adapter.device_model
    local_list = adapter.authorizer.local_list
    adapter.authorizer.cache_lifetime_s = lambda: dm.number("AuthCacheCtrlr", "LifeTime")
    adapter.station.max_energy_on_invalid_id = lambda: (
        dm.number("TxCtrlr", "MaxEnergyOnInvalidId") or None
    )
    live = dm.live
    if live.local_list_entries is None:
        live.local_list_entries = lambda: len(local_list)
    if live.local_list_bytes is None:
        live.local_list_bytes = local_list.storage_bytes
    return ReservationReporter(adapter)
