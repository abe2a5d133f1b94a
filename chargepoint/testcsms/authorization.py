"""Authorization on the CSMS side: what the CSMS answers about id tokens, and the local list
and reservation commands, for OCPP 1.6J and 2.0.1 alike.

- `tag_answers`: id token -> `TagAnswer` (status, group / parent, expiry). A token listed here is
  answered so in Authorize, StartTransaction / StopTransaction (1.6) and TransactionEvent
  (2.0.1), before `accept_id_tags` is looked at. Keys compare case-insensitively.
- `send_local_list`, `get_local_list_version`, `reserve_now`, `cancel_reservation`: each builds
  the station's version of the message from version-free arguments and `call()`s it (both
  directions schema-checked); they return the station's answer as on the wire.
- `reservation_updates(station_id)`: the ReservationStatusUpdates received, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chargepoint.testcsms.commands import Commands


@dataclass(frozen=True)
class TagAnswer:
    status: str = "Accepted"
    parent: str | None = None  # 1.6 parentIdTag, 2.0.1 groupIdToken
    expiry: str | None = None  # 1.6 expiryDate, 2.0.1 cacheExpiryDateTime


@dataclass(frozen=True)
class ListItem:
    """One entry of a SendLocalList; `answer` None deletes the token (Differential)."""

    id_tag: str
    answer: TagAnswer | None = TagAnswer()


def _time_text(when: datetime | str) -> str:
    if isinstance(when, str):
        return when
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


class AuthorizationCommands(Commands):
    """The `TestCsms` part for id token answers, local lists and reservations."""

    def __init__(self) -> None:
        super().__init__()
        self.tag_answers: dict[str, TagAnswer] = {}

    def _tag_answer(self, id_tag: str) -> tuple[str, str | None, str | None] | None:
        """(status, parent, expiry) for a token in `tag_answers`, else None."""
        wanted = id_tag.casefold()
        for tag, answer in self.tag_answers.items():
            if tag.casefold() == wanted:
                return answer.status, answer.parent, answer.expiry
        return None

    def _version_of(self, station_id: str) -> str:
        return str(self._info[station_id]["ocpp_version"])

    # -- local list --------------------------------------------------------------------

    async def send_local_list(
        self,
        station_id: str,
        version: int,
        items: Sequence[ListItem],
        *,
        full: bool = True,
        timeout: float = 60,
    ) -> dict[str, Any]:
        """SendLocalList (Full, or Differential) with these entries; the station's answer."""
        update_type = "Full" if full else "Differential"
        if self._version_of(station_id) == "1.6":
            entries16 = [self._entry16(i) for i in items]
            payload: dict[str, Any] = {"listVersion": version, "updateType": update_type}
            if entries16:
                payload["localAuthorizationList"] = entries16
            return await self.call(station_id, "SendLocalList", payload, timeout)
        entries201 = [self._entry201(i) for i in items]
        payload = {"versionNumber": version, "updateType": update_type}
        if entries201:
            payload["localAuthorizationList"] = entries201
        return await self.call(station_id, "SendLocalList", payload, timeout)

    @staticmethod
    def _entry16(item: ListItem) -> dict[str, Any]:
        entry: dict[str, Any] = {"idTag": item.id_tag}
        if item.answer is not None:
            info: dict[str, Any] = {"status": item.answer.status}
            if item.answer.parent:
                info["parentIdTag"] = item.answer.parent
            if item.answer.expiry:
                info["expiryDate"] = item.answer.expiry
            entry["idTagInfo"] = info
        return entry

    @staticmethod
    def _entry201(item: ListItem) -> dict[str, Any]:
        entry: dict[str, Any] = {"idToken": {"idToken": item.id_tag, "type": "ISO14443"}}
        if item.answer is not None:
            info: dict[str, Any] = {"status": item.answer.status}
            if item.answer.parent:
                info["groupIdToken"] = {"idToken": item.answer.parent, "type": "Central"}
            if item.answer.expiry:
                info["cacheExpiryDateTime"] = item.answer.expiry
            entry["idTokenInfo"] = info
        return entry

    async def get_local_list_version(self, station_id: str) -> int:
        answer = await self.call(station_id, "GetLocalListVersion", {})
        key = "listVersion" if self._version_of(station_id) == "1.6" else "versionNumber"
        return int(answer[key])

    # -- reservations ------------------------------------------------------------------

    async def reserve_now(
        self,
        station_id: str,
        reservation_id: int,
        id_tag: str,
        expiry: datetime | str,
        *,
        connector: int | None = None,
        group: str | None = None,
        connector_type: str | None = None,
    ) -> str:
        """ReserveNow; `connector` None reserves any connector (1.6 connectorId 0, 2.0.1 no
        evseId). The station's status."""
        if self._version_of(station_id) == "1.6":
            payload: dict[str, Any] = {
                "connectorId": connector or 0,
                "expiryDate": _time_text(expiry),
                "idTag": id_tag,
                "reservationId": reservation_id,
            }
            if group:
                payload["parentIdTag"] = group
        else:
            payload = {
                "id": reservation_id,
                "expiryDateTime": _time_text(expiry),
                "idToken": {"idToken": id_tag, "type": "ISO14443"},
            }
            if connector is not None:
                payload["evseId"] = connector
            if group:
                payload["groupIdToken"] = {"idToken": group, "type": "Central"}
            if connector_type:
                payload["connectorType"] = connector_type
        answer = await self.call(station_id, "ReserveNow", payload)
        return str(answer["status"])

    async def cancel_reservation(self, station_id: str, reservation_id: int) -> str:
        answer = await self.call(station_id, "CancelReservation", {"reservationId": reservation_id})
        return str(answer["status"])

    def reservation_updates(self, station_id: str) -> list[tuple[int, str]]:
        """(reservationId, reservationUpdateStatus) of every ReservationStatusUpdate."""
        return [
            (int(r.payload["reservationId"]), str(r.payload["reservationUpdateStatus"]))
            for r in self.received
            if r.action == "ReservationStatusUpdate" and r.station_id == station_id
        ]
