"""Smart charging on the CSMS side, for OCPP 1.6J and 2.0.1 alike.

A `ProfileSpec` describes a charging profile once; each command builds the station's version
of the message from it and `call()`s it (both directions schema-checked) and returns the
station's answer as on the wire:

- `set_charging_profile(station, connector, spec)`: 1.6 SetChargingProfile (connectorId,
  csChargingProfiles) / 2.0.1 SetChargingProfile (evseId, chargingProfile);
- `clear_charging_profile(station, profile_id=..., connector=..., purpose=..., stack_level=...)`;
- `get_composite_schedule(station, connector, duration, unit=None)`;
- `get_charging_profiles(station, request_id, ...)` (2.0.1; the reports arrive as
  ReportChargingProfiles, see `reported_profiles`);
- `profile_payload(station, spec)`: the version's ChargingProfile, for RemoteStartTransaction /
  RequestStartTransaction.

Purposes are named version-free: "StationMax" (1.6 ChargePointMaxProfile, 2.0.1
ChargingStationMaxProfile), "TxDefault", "Tx".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chargepoint.testcsms.commands import Commands

PURPOSES = {
    "1.6": {
        "StationMax": "ChargePointMaxProfile",
        "TxDefault": "TxDefaultProfile",
        "Tx": "TxProfile",
    },
    "2.0.1": {
        "StationMax": "ChargingStationMaxProfile",
        "TxDefault": "TxDefaultProfile",
        "Tx": "TxProfile",
        "External": "ChargingStationExternalConstraints",
    },
}


def time_text(when: datetime | str) -> str:
    if isinstance(when, str):
        return when
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ProfileSpec:
    """A charging profile, version-free. `periods`: (startPeriod, limit) or (startPeriod,
    limit, numberPhases)."""

    profile_id: int
    purpose: str
    periods: Sequence[tuple[int, float] | tuple[int, float, int]]
    unit: str = "A"
    stack_level: int = 0
    kind: str = "Absolute"
    recurrency: str | None = None
    start: datetime | str | None = None
    duration: int | None = None
    valid_from: datetime | str | None = None
    valid_to: datetime | str | None = None
    transaction_id: int | str | None = None  # 1.6: the CSMS's number; 2.0.1: the station's id
    schedule_id: int = 1


def _periods(spec: ProfileSpec) -> list[dict[str, Any]]:
    out = []
    for period in spec.periods:
        item: dict[str, Any] = {"startPeriod": period[0], "limit": period[1]}
        if len(period) > 2:
            item["numberPhases"] = period[2]
        out.append(item)
    return out


def profile_16(spec: ProfileSpec) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": spec.unit,
        "chargingSchedulePeriod": _periods(spec),
    }
    if spec.start is not None:
        schedule["startSchedule"] = time_text(spec.start)
    if spec.duration is not None:
        schedule["duration"] = spec.duration
    profile: dict[str, Any] = {
        "chargingProfileId": spec.profile_id,
        "stackLevel": spec.stack_level,
        "chargingProfilePurpose": PURPOSES["1.6"][spec.purpose],
        "chargingProfileKind": spec.kind,
        "chargingSchedule": schedule,
    }
    _common(profile, spec)
    return profile


def profile_201(spec: ProfileSpec) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "id": spec.schedule_id,
        "chargingRateUnit": spec.unit,
        "chargingSchedulePeriod": _periods(spec),
    }
    if spec.start is not None:
        schedule["startSchedule"] = time_text(spec.start)
    if spec.duration is not None:
        schedule["duration"] = spec.duration
    profile: dict[str, Any] = {
        "id": spec.profile_id,
        "stackLevel": spec.stack_level,
        "chargingProfilePurpose": PURPOSES["2.0.1"][spec.purpose],
        "chargingProfileKind": spec.kind,
        "chargingSchedule": [schedule],
    }
    _common(profile, spec)
    return profile


def _common(profile: dict[str, Any], spec: ProfileSpec) -> None:
    if spec.recurrency is not None:
        profile["recurrencyKind"] = spec.recurrency
    if spec.valid_from is not None:
        profile["validFrom"] = time_text(spec.valid_from)
    if spec.valid_to is not None:
        profile["validTo"] = time_text(spec.valid_to)
    if spec.transaction_id is not None:
        profile["transactionId"] = spec.transaction_id


class SmartChargingCommands(Commands):
    """The `TestCsms` part for charging profiles and composite schedules."""

    def _ocpp_version(self, station_id: str) -> str:
        return str(self._info[station_id]["ocpp_version"])

    def profile_payload(self, station_id: str, spec: ProfileSpec) -> dict[str, Any]:
        if self._ocpp_version(station_id) == "1.6":
            return profile_16(spec)
        return profile_201(spec)

    async def set_charging_profile(
        self, station_id: str, connector: int, spec: ProfileSpec, timeout: float = 30
    ) -> dict[str, Any]:
        if self._ocpp_version(station_id) == "1.6":
            payload = {"connectorId": connector, "csChargingProfiles": profile_16(spec)}
        else:
            payload = {"evseId": connector, "chargingProfile": profile_201(spec)}
        return await self.call(station_id, "SetChargingProfile", payload, timeout)

    async def clear_charging_profile(
        self,
        station_id: str,
        *,
        profile_id: int | None = None,
        connector: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        version = self._ocpp_version(station_id)
        payload: dict[str, Any] = {}
        if version == "1.6":
            if profile_id is not None:
                payload["id"] = profile_id
            if connector is not None:
                payload["connectorId"] = connector
            if purpose is not None:
                payload["chargingProfilePurpose"] = PURPOSES[version][purpose]
            if stack_level is not None:
                payload["stackLevel"] = stack_level
        else:
            if profile_id is not None:
                payload["chargingProfileId"] = profile_id
            criteria: dict[str, Any] = {}
            if connector is not None:
                criteria["evseId"] = connector
            if purpose is not None:
                criteria["chargingProfilePurpose"] = PURPOSES[version][purpose]
            if stack_level is not None:
                criteria["stackLevel"] = stack_level
            if criteria:
                payload["chargingProfileCriteria"] = criteria
        return await self.call(station_id, "ClearChargingProfile", payload, timeout)

    async def get_composite_schedule(
        self,
        station_id: str,
        connector: int,
        duration: int,
        unit: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        key = "connectorId" if self._ocpp_version(station_id) == "1.6" else "evseId"
        payload: dict[str, Any] = {key: connector, "duration": duration}
        if unit is not None:
            payload["chargingRateUnit"] = unit
        return await self.call(station_id, "GetCompositeSchedule", payload, timeout)

    async def get_charging_profiles(
        self,
        station_id: str,
        request_id: int,
        *,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
        profile_ids: Sequence[int] = (),
        sources: Sequence[str] = (),
        timeout: float = 30,
    ) -> dict[str, Any]:
        """OCPP 2.0.1 only."""
        criterion: dict[str, Any] = {}
        if purpose is not None:
            criterion["chargingProfilePurpose"] = PURPOSES["2.0.1"][purpose]
        if stack_level is not None:
            criterion["stackLevel"] = stack_level
        if profile_ids:
            criterion["chargingProfileId"] = list(profile_ids)
        if sources:
            criterion["chargingLimitSource"] = list(sources)
        payload: dict[str, Any] = {"requestId": request_id, "chargingProfile": criterion}
        if evse_id is not None:
            payload["evseId"] = evse_id
        return await self.call(station_id, "GetChargingProfiles", payload, timeout)

    def reported_profiles(self, station_id: str, request_id: int) -> list[dict[str, Any]]:
        """The ReportChargingProfiles payloads received for `request_id`, in order."""
        return [
            r.payload
            for r in self.received
            if r.station_id == station_id
            and r.action == "ReportChargingProfiles"
            and r.payload.get("requestId") == request_id
        ]
