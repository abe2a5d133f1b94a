"""Charging-profile fields as both OCPP versions put them on the wire, read into the core's
model: the parts 1.6 `csChargingProfiles` and 2.0.1 `ChargingProfileType` share (the schedule,
its periods, dates, recurrency) and the reason a refused profile is logged with."""

from __future__ import annotations

from typing import Any

from chargepoint.core.charging.profiles import (
    Kind,
    RateUnit,
    Recurrency,
    Schedule,
    SchedulePeriod,
    parse_time,
)
from chargepoint.core.charging.validation import ProfileRejected


def field(data: dict[str, Any], snake: str, camel: str) -> Any:
    """A field as the library hands it over (snake_case) or as on the wire (camelCase)."""
    return data[snake] if snake in data else data.get(camel)


def wire_time(value: Any, name: str) -> Any:
    """A date-time field, None when absent; ProfileRejected when it is not one."""
    if value is None:
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        raise ProfileRejected(f"{name} {value!r} is not a date-time") from None


def recurrency_of(raw: dict[str, Any], kind: Kind) -> Recurrency | None:
    recurrency = field(raw, "recurrency_kind", "recurrencyKind")
    return Recurrency(recurrency) if recurrency and kind is Kind.RECURRING else None


def schedule_from_wire(
    schedule: dict[str, Any],
    kind: Kind,
    schedule_id: int | None = None,
    relative_ignores_start: bool = True,
) -> Schedule:
    """A chargingSchedule. In 1.6 a Relative schedule runs from the start of charging,
    whatever its startSchedule says (`relative_ignores_start`); 2.0.1 keeps the field."""
    periods = field(schedule, "charging_schedule_period", "chargingSchedulePeriod") or []
    duration = schedule.get("duration")
    min_rate = field(schedule, "min_charging_rate", "minChargingRate")
    start = field(schedule, "start_schedule", "startSchedule")
    extra = {} if schedule_id is None else {"schedule_id": schedule_id}
    return Schedule(
        unit=RateUnit(str(field(schedule, "charging_rate_unit", "chargingRateUnit"))),
        periods=tuple(
            SchedulePeriod(
                int(field(p, "start_period", "startPeriod")),
                float(p["limit"]),
                field(p, "number_phases", "numberPhases"),
            )
            for p in periods
        ),
        start=None
        if relative_ignores_start and kind is Kind.RELATIVE
        else wire_time(start, "startSchedule"),
        duration=int(duration) if duration is not None else None,
        min_rate=float(min_rate) if min_rate is not None else None,
        **extra,
    )


def refusal_reason(exc: Exception) -> str:
    """Why a profile was refused, for the log (after "chargingProfile ...")."""
    if isinstance(exc, ProfileRejected):
        return str(exc)
    if isinstance(exc, KeyError):
        return f"lacks {exc}"
    return f"is malformed: {exc}"
