"""Building charging profiles for the smart charging tests, in few words."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from chargepoint.core.charging.profiles import (
    ChargingProfile,
    Kind,
    LimitSource,
    Purpose,
    RateUnit,
    Recurrency,
    Schedule,
    SchedulePeriod,
    parse_time,
)


def at(text: str) -> datetime:
    return parse_time(text)


def profile(
    profile_id: int,
    purpose: Purpose,
    periods: Sequence[tuple[int, float] | tuple[int, float, int | None]],
    *,
    connector: int = 1,
    stack: int = 0,
    kind: Kind = Kind.ABSOLUTE,
    unit: RateUnit = RateUnit.AMPS,
    start: str | None = None,
    duration: int | None = None,
    recurrency: Recurrency | None = None,
    valid_from: str | None = None,
    valid_to: str | None = None,
    transaction: int | None = None,
    source: LimitSource = LimitSource.CSO,
) -> ChargingProfile:
    return ChargingProfile(
        profile_id=profile_id,
        connector_id=connector,
        purpose=purpose,
        stack_level=stack,
        kind=kind,
        recurrency=recurrency,
        valid_from=at(valid_from) if valid_from else None,
        valid_to=at(valid_to) if valid_to else None,
        transaction=transaction,
        source=source,
        schedule=Schedule(
            unit=unit,
            periods=tuple(
                SchedulePeriod(p[0], float(p[1]), p[2] if len(p) > 2 else None) for p in periods
            ),
            start=at(start) if start else None,
            duration=duration,
        ),
    )
