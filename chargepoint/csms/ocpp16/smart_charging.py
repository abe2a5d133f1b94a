"""OCPP 1.6 Smart Charging feature profile over the version-free engine
(chargepoint.core.charging).

- SetChargingProfile: ChargePointMaxProfile on connector 0, TxDefaultProfile on 0 or a
  connector, TxProfile only on a connector with a running transaction (its transactionId, or
  none: the one running there); Accepted, or Rejected with the reason in the log. A profile is
  stored before it is Accepted; replacement by id and by stackLevel + purpose (3.13.2).
- ClearChargingProfile by id, or by any of connectorId / chargingProfilePurpose / stackLevel:
  Accepted when something was cleared, Unknown otherwise.
- GetCompositeSchedule (connectorId 0: the station's limit) for `duration` seconds from now,
  in chargingRateUnit (converted with 230 V and numberPhases) or the profiles' own unit.
- RemoteStartTransaction.chargingProfile (a TxProfile without transactionId) applies to the
  transaction that start opens; an invalid one rejects the start (TC_060).
- Read-only configuration keys: ChargeProfileMaxStackLevel, ChargingScheduleAllowedChargingRateUnit
  (Current,Power), ChargingScheduleMaxPeriods, MaxChargingProfilesInstalled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from chargepoint.core.charging.book import ClearCriteria
from chargepoint.core.charging.profiles import (
    ChargingProfile,
    Kind,
    Purpose,
    RateUnit,
    format_time,
)
from chargepoint.core.charging.validation import ProfileRejected
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.csms.profile_wire import (
    field,
    recurrency_of,
    refusal_reason,
    schedule_from_wire,
    wire_time,
)
from chargepoint.csms.routing import on

log = logging.getLogger("chargepoint.ocpp")

MAX_COMPOSITE_S = 31 * 86_400  # GetCompositeSchedule longer than this is Rejected
PURPOSE_16 = {
    "ChargePointMaxProfile": Purpose.STATION_MAX,
    "TxDefaultProfile": Purpose.TX_DEFAULT,
    "TxProfile": Purpose.TX,
}
UNITS_16 = "Current,Power"


class _Adapter(Protocol):
    station: Station
    settings: Settings
    registration: str

    def local_id_for(self, csms_transaction_id: int) -> int | None: ...


def profile_from_16(
    raw: dict[str, Any], connector_id: int, local_id_for: Callable[[int], int | None]
) -> ChargingProfile:
    """csChargingProfiles (ChargingProfile) -> the core's profile; ProfileRejected when it
    names what the station does not know (a transaction, a date)."""
    schedule = field(raw, "charging_schedule", "chargingSchedule") or {}
    purpose = PURPOSE_16[str(field(raw, "charging_profile_purpose", "chargingProfilePurpose"))]
    kind = Kind(str(field(raw, "charging_profile_kind", "chargingProfileKind")))
    transaction = None
    csms_tx = field(raw, "transaction_id", "transactionId")
    if csms_tx is not None:
        transaction = local_id_for(int(csms_tx))
        if transaction is None:
            raise ProfileRejected(f"transactionId {csms_tx} is not a transaction of this station")
    return ChargingProfile(
        profile_id=int(field(raw, "charging_profile_id", "chargingProfileId")),
        connector_id=connector_id,
        purpose=purpose,
        stack_level=int(field(raw, "stack_level", "stackLevel")),
        kind=kind,
        recurrency=recurrency_of(raw, kind),
        valid_from=wire_time(field(raw, "valid_from", "validFrom"), "validFrom"),
        valid_to=wire_time(field(raw, "valid_to", "validTo"), "validTo"),
        transaction=transaction,
        schedule=schedule_from_wire(schedule, kind),
    )


def remote_start_profile(adapter: _Adapter, raw: Any) -> ChargingProfile | None:
    """The TxProfile of a RemoteStartTransaction, or None (logged) when it is not one."""
    try:
        if not isinstance(raw, dict):
            raise ProfileRejected("chargingProfile is not an object")
        profile = profile_from_16(raw, 1, adapter.local_id_for)
        if profile.purpose is not Purpose.TX:
            raise ProfileRejected("the profile of a remote start must be a TxProfile")
        adapter.station.charging.check(profile, strict=False, for_start=True)
    except (ProfileRejected, KeyError, ValueError, TypeError) as exc:
        log.warning("RemoteStartTransaction rejected: chargingProfile %s", refusal_reason(exc))
        return None
    return profile


def attach_smart_charging(adapter: _Adapter) -> None:
    """The read-only configuration keys of the Smart Charging profile."""
    caps = adapter.station.charging.capabilities
    adapter.settings.dynamic.update(
        {
            "ChargeProfileMaxStackLevel": lambda: str(caps.max_stack_level),
            "ChargingScheduleAllowedChargingRateUnit": lambda: UNITS_16,
            "ChargingScheduleMaxPeriods": lambda: str(caps.max_periods),
            "MaxChargingProfilesInstalled": lambda: str(caps.max_profiles),
        }
    )


class SmartChargingHandlers16:
    """Mixin for the 1.6 StationChargePoint (`self.adapter` is its adapter)."""

    @property
    def _charging_adapter(self) -> _Adapter:
        adapter: _Adapter = self.adapter  # type: ignore[attr-defined]
        return adapter

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        adapter = self._charging_adapter
        charging = adapter.station.charging
        try:
            profile = profile_from_16(cs_charging_profiles, connector_id, adapter.local_id_for)
            installed = await charging.set_profile(profile, strict=False)
        except (ProfileRejected, KeyError, ValueError, TypeError) as exc:
            log.warning(
                "SetChargingProfile on connector %d rejected: the profile %s",
                connector_id,
                refusal_reason(exc),
            )
            return call_result.SetChargingProfile(status="Rejected")
        log.info("SetChargingProfile: %s accepted", installed.describe())
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    async def on_clear_charging_profile(
        self,
        id: int | None = None,  # the field's name in the message
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        charging = self._charging_adapter.station.charging
        criteria = ClearCriteria(
            profile_id=id,
            connector_id=connector_id,
            purpose=PURPOSE_16[charging_profile_purpose] if charging_profile_purpose else None,
            stack_level=stack_level,
        )
        gone = await charging.clear(criteria)
        return call_result.ClearChargingProfile(status="Accepted" if gone else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self,
        connector_id: int,
        duration: int,
        charging_rate_unit: str | None = None,
        **_: Any,
    ) -> call_result.GetCompositeSchedule:
        charging = self._charging_adapter.station.charging
        rejected = call_result.GetCompositeSchedule(status="Rejected")
        if not 0 < duration <= MAX_COMPOSITE_S:
            log.warning("GetCompositeSchedule for %d s rejected", duration)
            return rejected
        unit = RateUnit(charging_rate_unit) if charging_rate_unit else None
        schedule = charging.composite(connector_id, duration, unit)
        if schedule is None:
            return rejected
        start = format_time(schedule.start)
        periods = []
        for p in schedule.periods:
            period: dict[str, Any] = {"start_period": p.start, "limit": p.limit}
            if p.phases is not None:
                period["number_phases"] = p.phases
            periods.append(period)
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=start,
            charging_schedule={
                "duration": schedule.duration,
                "start_schedule": start,
                "charging_rate_unit": schedule.unit.value,
                "charging_schedule_period": periods,
            },
        )
