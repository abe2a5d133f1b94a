"""Charging profiles as the core sees them, the same for OCPP 1.6 and 2.0.1.

A profile is a schedule of limits (periods, each from `start` seconds after the schedule's
anchor) with a purpose, a stack level, a kind (Absolute, Recurring Daily/Weekly, Relative to
the session start) and an optional validity window. The adapters translate their version's
messages to and from this model: 1.6 ChargePointMaxProfile is `Purpose.STATION_MAX`, a 1.6
transactionId or a 2.0.1 transactionId becomes the core's local transaction id.

Units: a limit is in A (per phase) or W. They convert with the nominal voltage (230 V per
phase) and the number of phases (the period's `phases`, or 3).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

NOMINAL_VOLTAGE = 230.0  # V per phase (EN 50160 low voltage)
DEFAULT_PHASES = 3  # OCPP: numberPhases absent means 3 on AC
DAY_S = 86_400
WEEK_S = 7 * DAY_S


class Purpose(enum.StrEnum):
    """What a profile is for. 1.6 names STATION_MAX "ChargePointMaxProfile"."""

    STATION_MAX = "ChargingStationMaxProfile"
    EXTERNAL = "ChargingStationExternalConstraints"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Kind(enum.StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(enum.StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"

    @property
    def seconds(self) -> int:
        return DAY_S if self is Recurrency.DAILY else WEEK_S


class RateUnit(enum.StrEnum):
    AMPS = "A"
    WATTS = "W"


class LimitSource(enum.StrEnum):
    """Who set a limit (2.0.1 ChargingLimitSourceEnumType): the CSMS (CSO) or, for external
    constraints, an energy management system, a system operator or something else."""

    CSO = "CSO"
    EMS = "EMS"
    SO = "SO"
    OTHER = "Other"


@dataclass(frozen=True)
class Electrical:
    """How A and W convert on this station."""

    voltage: float = NOMINAL_VOLTAGE
    default_phases: int = DEFAULT_PHASES

    def watts(self, limit: float, unit: RateUnit, phases: int | None) -> float:
        if unit is RateUnit.WATTS:
            return limit
        return limit * self.voltage * (phases or self.default_phases)

    def convert(self, watts: float, unit: RateUnit, phases: int | None) -> float:
        if unit is RateUnit.WATTS:
            return watts
        return watts / (self.voltage * (phases or self.default_phases))


@dataclass(frozen=True)
class SchedulePeriod:
    start: int  # seconds from the schedule's anchor
    limit: float  # in the schedule's unit
    phases: int | None = None


@dataclass(frozen=True)
class Schedule:
    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    start: datetime | None = None  # startSchedule (Absolute, Recurring)
    duration: int | None = None  # seconds; None: until the next occurrence / open-ended
    min_rate: float | None = None
    schedule_id: int = 0  # 2.0.1 ChargingScheduleType.id


@dataclass(frozen=True)
class ChargingProfile:
    profile_id: int
    connector_id: int  # 0: the whole station (STATION_MAX, TX_DEFAULT for all connectors)
    purpose: Purpose
    stack_level: int
    kind: Kind
    schedule: Schedule
    recurrency: Recurrency | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction: int | None = None  # the core's local id of the transaction (TX)
    source: LimitSource = LimitSource.CSO
    grid_critical: bool = False  # external constraints only
    installed_at: datetime | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, int]:
        """Profiles are identified by id within their source: the CSMS's ids and the charge
        controller's never collide."""
        return (self.source.value, self.profile_id)

    def describe(self) -> str:
        """Short name for logs and `status`: "TxProfile 7 (stack 1)"."""
        text = f"{self.purpose.value} {self.profile_id} (stack {self.stack_level})"
        if self.purpose is Purpose.EXTERNAL:
            text += f" from {self.source.value}"
        return text

    def with_transaction(self, local_id: int | None) -> ChargingProfile:
        return replace(self, transaction=local_id)


# ---- times ---------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """An ISO 8601 date-time as OCPP sends it (Z or an offset, fractions allowed), in UTC.
    A time without an offset is taken as UTC (OCPP recommends UTC). Raises ValueError."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """UTC, seconds (and milliseconds when there are any), with Z."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the stored form -----------------------------------------------------------------------


def _time_or_none(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) else None


def to_json(profile: ChargingProfile) -> str:
    """The profile as the store keeps it (the core's own form, not an OCPP message)."""
    s = profile.schedule
    data: dict[str, Any] = {
        "id": profile.profile_id,
        "connector": profile.connector_id,
        "purpose": profile.purpose.value,
        "stack_level": profile.stack_level,
        "kind": profile.kind.value,
        "recurrency": profile.recurrency.value if profile.recurrency else None,
        "valid_from": format_time(profile.valid_from) if profile.valid_from else None,
        "valid_to": format_time(profile.valid_to) if profile.valid_to else None,
        "transaction": profile.transaction,
        "source": profile.source.value,
        "grid_critical": profile.grid_critical,
        "installed_at": format_time(profile.installed_at) if profile.installed_at else None,
        "schedule": {
            "id": s.schedule_id,
            "unit": s.unit.value,
            "start": format_time(s.start) if s.start else None,
            "duration": s.duration,
            "min_rate": s.min_rate,
            "periods": [[p.start, p.limit, p.phases] for p in s.periods],
        },
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def from_json(text: str) -> ChargingProfile:
    """The inverse of `to_json`; raises ValueError (or KeyError/TypeError) on a bad record."""
    data = json.loads(text)
    s = data["schedule"]
    recurrency = data.get("recurrency")
    return ChargingProfile(
        profile_id=int(data["id"]),
        connector_id=int(data["connector"]),
        purpose=Purpose(data["purpose"]),
        stack_level=int(data["stack_level"]),
        kind=Kind(data["kind"]),
        recurrency=Recurrency(recurrency) if recurrency else None,
        valid_from=_time_or_none(data.get("valid_from")),
        valid_to=_time_or_none(data.get("valid_to")),
        transaction=data.get("transaction"),
        source=LimitSource(data.get("source", "CSO")),
        grid_critical=bool(data.get("grid_critical", False)),
        installed_at=_time_or_none(data.get("installed_at")),
        schedule=Schedule(
            unit=RateUnit(s["unit"]),
            periods=tuple(
                SchedulePeriod(int(start), float(limit), int(phases) if phases else None)
                for start, limit, phases in s["periods"]
            ),
            start=_time_or_none(s.get("start")),
            duration=int(s["duration"]) if s.get("duration") is not None else None,
            min_rate=float(s["min_rate"]) if s.get("min_rate") is not None else None,
            schedule_id=int(s.get("id", 0)),
        ),
    )
