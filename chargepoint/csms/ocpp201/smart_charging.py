"""OCPP 2.0.1 block K (General and External Charging Limit based Smart Charging) over the
version-free engine (chargepoint.core.charging).

- SetChargingProfile (K01): ChargingStationMaxProfile on EVSE 0, TxDefaultProfile on 0 or an
  EVSE, TxProfile on an EVSE with its running transaction's transactionId; Accepted, or
  Rejected with statusInfo (reasonCode InvalidProfile, the reason in additionalInfo).
  ChargingStationExternalConstraints are not settable by the CSMS. One chargingSchedule per
  profile (the three of ISO 15118 schedule offers are not supported).
- GetChargingProfiles (K09): Accepted / NoProfiles, then the matching profiles in
  ReportChargingProfiles, one message per EVSE and chargingLimitSource (tbc on all but the
  last).
- ClearChargingProfile (K10): by chargingProfileId or by criteria (evseId, purpose,
  stackLevel); Accepted / Unknown. External constraints are not cleared by the CSMS.
- GetCompositeSchedule (K08): for evseId (0: the station) over `duration` from now.
- RequestStartTransaction.chargingProfile (K05): a TxProfile without transactionId, for the
  transaction that start opens; an invalid one rejects the start.
- External limits from the charge controller (K12/K13): NotifyChargingLimit (with the
  schedule when SmartChargingCtrlr.NotifyChargingLimitWithSchedules) and ClearedChargingLimit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any, Protocol, TypeVar, cast

from ocpp import routing
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from chargepoint.config import StationConfig
from chargepoint.core.charging.book import ClearCriteria
from chargepoint.core.charging.controller import ExternalLimitNotice
from chargepoint.core.charging.profiles import (
    ChargingProfile,
    Kind,
    LimitSource,
    Purpose,
    RateUnit,
    format_time,
)
from chargepoint.core.charging.validation import ProfileRejected
from chargepoint.core.station import Station
from chargepoint.csms.ocpp201 import messages as m
from chargepoint.csms.ocpp201.device_model import DeviceModel
from chargepoint.csms.profile_wire import (
    field,
    recurrency_of,
    refusal_reason,
    schedule_from_wire,
    wire_time,
)
from chargepoint.csms.routing import on

log = logging.getLogger("chargepoint.csms.ocpp201")

_F = TypeVar("_F", bound=Callable[..., Any])
MAX_COMPOSITE_S = 31 * 86_400
REASON_CODE = "InvalidProfile"


def _after(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], routing.after(action))


class _Adapter(Protocol):
    station: Station
    config: StationConfig
    device_model: DeviceModel
    registration: str

    def _requested(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None: ...


def profile_from_201(raw: dict[str, Any], evse_id: int, station_id: str) -> ChargingProfile:
    """ChargingProfileType -> the core's profile (ProfileRejected: not one this station
    can take)."""
    schedules = field(raw, "charging_schedule", "chargingSchedule") or []
    if len(schedules) != 1:
        raise ProfileRejected(
            f"{len(schedules)} chargingSchedules; this station takes exactly one "
            "(several are ISO 15118 schedule offers)"
        )
    schedule = schedules[0]
    kind = Kind(str(field(raw, "charging_profile_kind", "chargingProfileKind")))
    tid = field(raw, "transaction_id", "transactionId")
    transaction = None
    if tid is not None:
        transaction = m.local_id_of(str(tid), station_id)
        if transaction is None:
            raise ProfileRejected(f"transactionId {tid} is not a transaction of this station")
    return ChargingProfile(
        profile_id=int(raw["id"]),
        connector_id=evse_id,
        purpose=Purpose(str(field(raw, "charging_profile_purpose", "chargingProfilePurpose"))),
        stack_level=int(field(raw, "stack_level", "stackLevel")),
        kind=kind,
        recurrency=recurrency_of(raw, kind),
        valid_from=wire_time(field(raw, "valid_from", "validFrom"), "validFrom"),
        valid_to=wire_time(field(raw, "valid_to", "validTo"), "validTo"),
        transaction=transaction,
        schedule=schedule_from_wire(
            schedule, kind, schedule_id=int(schedule.get("id", 0)), relative_ignores_start=False
        ),
    )


def schedule_201(profile: ChargingProfile) -> dict[str, Any]:
    """ChargingScheduleType on the wire (camelCase)."""
    s = profile.schedule
    out: dict[str, Any] = {
        "id": s.schedule_id,
        "chargingRateUnit": s.unit.value,
        "chargingSchedulePeriod": [
            {"startPeriod": p.start, "limit": p.limit}
            | ({"numberPhases": p.phases} if p.phases else {})
            for p in s.periods
        ],
    }
    if s.start is not None:
        out["startSchedule"] = format_time(s.start)
    if s.duration is not None:
        out["duration"] = s.duration
    if s.min_rate is not None:
        out["minChargingRate"] = s.min_rate
    return out


def profile_201(profile: ChargingProfile, station_id: str) -> dict[str, Any]:
    """ChargingProfileType on the wire (camelCase), for ReportChargingProfiles."""
    out: dict[str, Any] = {
        "id": profile.profile_id,
        "stackLevel": profile.stack_level,
        "chargingProfilePurpose": profile.purpose.value,
        "chargingProfileKind": profile.kind.value,
        "chargingSchedule": [schedule_201(profile)],
    }
    if profile.recurrency is not None:
        out["recurrencyKind"] = profile.recurrency.value
    if profile.valid_from is not None:
        out["validFrom"] = format_time(profile.valid_from)
    if profile.valid_to is not None:
        out["validTo"] = format_time(profile.valid_to)
    if profile.transaction is not None:
        out["transactionId"] = m.transaction_id(profile.transaction, station_id)
    return out


def remote_start_profile(
    adapter: _Adapter, raw: Any, evse_id: int | None
) -> ChargingProfile | None:
    """The TxProfile of a RequestStartTransaction, or None (logged) when it is not one."""
    try:
        if not isinstance(raw, dict):
            raise ProfileRejected("chargingProfile is not an object")
        profile = profile_from_201(raw, evse_id or 1, adapter.config.station.id)
        if profile.purpose is not Purpose.TX:
            raise ProfileRejected("the profile of a remote start must be a TxProfile")
        adapter.station.charging.check(profile, strict=True, for_start=True)
    except (ProfileRejected, KeyError, ValueError, TypeError) as exc:
        log.warning("RequestStartTransaction rejected: chargingProfile %s", refusal_reason(exc))
        return None
    return profile


def _matches(p: ChargingProfile, criterion: dict[str, Any], evse_id: int | None) -> bool:
    """GetChargingProfiles: every criterion given must hold (K09)."""
    if evse_id is not None and p.connector_id != evse_id:
        return False
    purpose = field(criterion, "charging_profile_purpose", "chargingProfilePurpose")
    if purpose is not None and p.purpose.value != purpose:
        return False
    stack_level = field(criterion, "stack_level", "stackLevel")
    if stack_level is not None and p.stack_level != stack_level:
        return False
    ids = field(criterion, "charging_profile_id", "chargingProfileId")
    if ids and p.profile_id not in ids:
        return False
    sources = field(criterion, "charging_limit_source", "chargingLimitSource")
    return not sources or p.source.value in sources


def attach_smart_charging(adapter: _Adapter) -> None:
    """External limits reported to the CSMS; the installed-profile count in the device model."""
    charging = adapter.station.charging
    adapter.device_model.live.charging_profiles = lambda: len(charging.installed())

    def notify(notice: ExternalLimitNotice) -> None:
        if not adapter.device_model.flag("SmartChargingCtrlr", "ExternalControlSignalsEnabled"):
            return
        if notice.profile is None:
            payload: dict[str, Any] = {"chargingLimitSource": notice.source.value}
            if notice.connector_id:
                payload["evseId"] = notice.connector_id
            adapter._requested([("ClearedChargingLimit", payload)])
            return
        payload = {
            "chargingLimit": {
                "chargingLimitSource": notice.source.value,
                "isGridCritical": notice.grid_critical,
            }
        }
        if notice.connector_id:
            payload["evseId"] = notice.connector_id
        if adapter.device_model.flag("SmartChargingCtrlr", "NotifyChargingLimitWithSchedules"):
            payload["chargingSchedule"] = [schedule_201(notice.profile)]
        adapter._requested([("NotifyChargingLimit", payload)])

    charging.subscribe_external(notify)


class SmartChargingHandlers201:
    """Mixin for the 2.0.1 StationChargePoint (`self.adapter` is its adapter)."""

    @property
    def _charging_adapter(self) -> _Adapter:
        adapter: _Adapter = self.adapter  # type: ignore[attr-defined]
        return adapter

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        adapter = self._charging_adapter
        try:
            if evse_id != 0 and evse_id not in adapter.station.connectors:
                raise ProfileRejected(f"EVSE {evse_id} does not exist")
            profile = profile_from_201(charging_profile, evse_id, adapter.config.station.id)
            installed = await adapter.station.charging.set_profile(profile, strict=True)
        except (ProfileRejected, KeyError, ValueError, TypeError) as exc:
            reason = refusal_reason(exc)
            log.warning("SetChargingProfile on EVSE %d rejected: the profile %s", evse_id, reason)
            return call_result.SetChargingProfile(
                status="Rejected",
                status_info={"reason_code": REASON_CODE, "additional_info": reason[:512]},
            )
        log.info("SetChargingProfile: %s accepted", installed.describe())
        return call_result.SetChargingProfile(status="Accepted")

    def _reported(
        self, charging_profile: dict[str, Any], evse_id: int | None
    ) -> list[ChargingProfile]:
        charging = self._charging_adapter.station.charging
        return [p for p in charging.installed() if _matches(p, charging_profile, evse_id)]

    @on(Action.get_charging_profiles)
    def on_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: dict[str, Any],
        evse_id: int | None = None,
        **_: Any,
    ) -> call_result.GetChargingProfiles:
        found = self._reported(charging_profile, evse_id)
        return call_result.GetChargingProfiles(status="Accepted" if found else "NoProfiles")

    @_after(Action.get_charging_profiles)
    def after_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: dict[str, Any],
        evse_id: int | None = None,
        **_: Any,
    ) -> None:
        adapter = self._charging_adapter
        found = self._reported(charging_profile, evse_id)
        station_id = adapter.config.station.id
        key = lambda p: (p.connector_id, p.source.value)  # noqa: E731
        groups = [(k, list(g)) for k, g in groupby(sorted(found, key=key), key=key)]
        reports = []
        for n, ((evse, source), profiles) in enumerate(groups):
            payload: dict[str, Any] = {
                "requestId": request_id,
                "chargingLimitSource": source,
                "evseId": evse,
                "chargingProfile": [profile_201(p, station_id) for p in profiles],
            }
            if n < len(groups) - 1:
                payload["tbc"] = True
            reports.append(("ReportChargingProfiles", payload))
        adapter._requested(reports)

    @on(Action.clear_charging_profile)
    async def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        criteria = charging_profile_criteria or {}
        purpose = field(criteria, "charging_profile_purpose", "chargingProfilePurpose")
        gone = await self._charging_adapter.station.charging.clear(
            ClearCriteria(
                profile_id=charging_profile_id,
                connector_id=field(criteria, "evse_id", "evseId"),
                purpose=Purpose(purpose) if purpose else None,
                stack_level=field(criteria, "stack_level", "stackLevel"),
                sources=frozenset({LimitSource.CSO}),
            )
        )
        return call_result.ClearChargingProfile(status="Accepted" if gone else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        charging = self._charging_adapter.station.charging
        if not 0 < duration <= MAX_COMPOSITE_S:
            return call_result.GetCompositeSchedule(
                status="Rejected",
                status_info={
                    "reason_code": "InvalidValue",
                    "additional_info": f"duration must be 1..{MAX_COMPOSITE_S} s",
                },
            )
        unit = RateUnit(charging_rate_unit) if charging_rate_unit else None
        schedule = charging.composite(evse_id, duration, unit)
        if schedule is None:
            return call_result.GetCompositeSchedule(
                status="Rejected",
                status_info={"reason_code": "UnknownEVSE", "additional_info": f"EVSE {evse_id}"},
            )
        periods = []
        for p in schedule.periods:
            period: dict[str, Any] = {"start_period": p.start, "limit": p.limit}
            if p.phases is not None:
                period["number_phases"] = p.phases
            periods.append(period)
        return call_result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": schedule.duration,
                "schedule_start": format_time(schedule.start),
                "charging_rate_unit": schedule.unit.value,
                "charging_schedule_period": periods,
            },
        )
