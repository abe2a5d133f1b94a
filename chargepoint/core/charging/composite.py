"""The composite schedule of a connector, as OCPP 1.6 3.13 and 2.0.1 K describe it.

1. Per purpose the leading profile at a moment is the one with the highest stack level among
   those valid then (validFrom/validTo) whose schedule has a period at that moment (a
   schedule whose duration ended, or a recurrence outside its duration, leads nowhere: the
   next lower stack level applies; 1.6 3.13.2, 2.0.1 3.5).
2. A TxProfile of the connector's transaction overrules the TxDefaultProfiles wherever it has
   a period (1.6 3.13.1 TxProfile; 2.0.1 3.6).
3. The composite is, at each moment, the lowest limit of the leading profiles of the
   purposes: ChargingStationMaxProfile, ChargingStationExternalConstraints (station-wide and
   the connector's own) and Tx/TxDefault (1.6 3.13.3, 2.0.1 3.6). Limits in different units
   compare in W (nominal voltage x phases); the result is given in the unit asked for.
4. Consecutive intervals with the same limit and phases are merged; intervals may have any
   length.

Kinds: Absolute runs from startSchedule (1.6: without one, from the start of charging);
Relative from the start of charging; Recurring restarts every day/week at startSchedule's
time of day/week and runs for its duration (at most one recurrence), never before its first
startSchedule. Without a session the start of charging is the schedule's start (what a
session starting now would get).

Times are POSIX seconds (floats) inside; the results carry datetimes.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chargepoint.core.charging.book import ConnectorProfiles
from chargepoint.core.charging.profiles import ChargingProfile, Electrical, Kind, RateUnit

INF = math.inf


@dataclass(frozen=True)
class Active:
    """The period of one profile in force at a moment."""

    profile: ChargingProfile
    limit: float  # in the profile's unit
    phases: int | None
    until: float  # when this period stops applying (INF: open-ended)

    def watts(self, electrical: Electrical) -> float:
        return electrical.watts(self.limit, self.profile.schedule.unit, self.phases)


def _bounds(p: ChargingProfile) -> tuple[float, float]:
    vf = p.valid_from.timestamp() if p.valid_from is not None else -INF
    vt = p.valid_to.timestamp() if p.valid_to is not None else INF
    return vf, vt


def _fixed_anchor(p: ChargingProfile, session_start: float) -> float:
    s = p.schedule
    if p.kind is Kind.ABSOLUTE and s.start is not None:
        return s.start.timestamp()
    return session_start  # Relative, or a 1.6 Absolute schedule without startSchedule


def _occurrence(p: ChargingProfile, t: float, session_start: float) -> tuple[float, float] | None:
    """(anchor, end) of the run of `p`'s schedule that covers `t` or last began before it."""
    s = p.schedule
    if p.kind is Kind.RECURRING:
        assert p.recurrency is not None and s.start is not None
        every = p.recurrency.seconds
        first = s.start.timestamp()
        if t < first:
            return None
        anchor = first + math.floor((t - first) / every) * every
        return anchor, anchor + min(s.duration or every, every)
    anchor = _fixed_anchor(p, session_start)
    return anchor, anchor + s.duration if s.duration is not None else INF


def active_at(p: ChargingProfile, t: float, session_start: float) -> Active | None:
    """The period of `p` in force at `t`, or None."""
    vf, vt = _bounds(p)
    if not vf <= t < vt:
        return None
    occurrence = _occurrence(p, t, session_start)
    if occurrence is None:
        return None
    anchor, end = occurrence
    if not anchor <= t < end:
        return None
    periods = p.schedule.periods
    starts = [period.start for period in periods]
    i = bisect_right(starts, t - anchor) - 1
    if i < 0:
        return None
    period_end = anchor + starts[i + 1] if i + 1 < len(starts) else INF
    return Active(p, periods[i].limit, periods[i].phases, min(period_end, end, vt))


def next_start(p: ChargingProfile, t: float, session_start: float) -> float:
    """The earliest moment after `t` at which `p` may come into force (INF: never)."""
    vf, vt = _bounds(p)
    if t >= vt:
        return INF
    if t < vf:
        return vf
    if p.kind is Kind.RECURRING:
        assert p.recurrency is not None and p.schedule.start is not None
        every = p.recurrency.seconds
        first = p.schedule.start.timestamp()
        candidate = first if t < first else first + (math.floor((t - first) / every) + 1) * every
    else:
        anchor = _fixed_anchor(p, session_start)
        candidate = anchor if t < anchor else INF
    return candidate if candidate < vt else INF


def leading(
    profiles: Sequence[ChargingProfile], t: float, session_start: float, electrical: Electrical
) -> Active | None:
    """The highest stack level in force at `t` (equal levels: the lower limit)."""
    best: Active | None = None
    for p in profiles:
        a = active_at(p, t, session_start)
        if a is None:
            continue
        if (
            best is None
            or p.stack_level > best.profile.stack_level
            or (
                p.stack_level == best.profile.stack_level
                and a.watts(electrical) < best.watts(electrical)
            )
        ):
            best = a
    return best


@dataclass(frozen=True)
class Evaluation:
    """The leading period of each role at one moment."""

    tx: Active | None  # TxProfile, else TxDefaultProfile
    external: Active | None  # the connector's own external constraint
    station_max: Active | None
    station_external: Active | None
    next_change: float  # when any of the connector's profiles may change

    def connector_parts(self) -> list[Active]:
        return [a for a in (self.tx, self.external) if a is not None]

    def station_parts(self) -> list[Active]:
        return [a for a in (self.station_max, self.station_external) if a is not None]

    def parts(self) -> list[Active]:
        return [*self.connector_parts(), *self.station_parts()]


def evaluate(
    cp: ConnectorProfiles, t: float, session_start: float, electrical: Electrical
) -> Evaluation:
    tx = leading(cp.tx, t, session_start, electrical) or leading(
        cp.tx_default, t, session_start, electrical
    )
    changes = [INF]
    for p in cp.all():
        a = active_at(p, t, session_start)
        changes.append(a.until if a is not None else next_start(p, t, session_start))
    return Evaluation(
        tx=tx,
        external=leading(cp.external, t, session_start, electrical),
        station_max=leading(cp.station_max, t, session_start, electrical),
        station_external=leading(cp.station_external, t, session_start, electrical),
        next_change=min(changes),
    )


def binding(parts: Sequence[Active], electrical: Electrical) -> Active | None:
    """The part with the lowest limit (compared in W)."""
    return min(parts, key=lambda a: a.watts(electrical), default=None)


@dataclass(frozen=True)
class CompositePeriod:
    start: int  # seconds from the composite's start
    limit: float  # in the composite's unit, one decimal
    phases: int | None = None


@dataclass(frozen=True)
class CompositeSchedule:
    start: datetime
    duration: int
    unit: RateUnit
    periods: tuple[CompositePeriod, ...]


def composite_schedule(
    cp: ConnectorProfiles,
    start: datetime,
    duration: int,
    unit: RateUnit,
    electrical: Electrical,
    *,
    session_start: datetime | None = None,
    fallback_w: float,
) -> CompositeSchedule:
    """The composite over [start, start + duration). Where no profile limits the connector,
    the limit is `fallback_w` (what the connector can deliver)."""
    t0 = start.timestamp()
    end = t0 + duration
    anchor = session_start.timestamp() if session_start is not None else t0
    periods: list[CompositePeriod] = []
    t = t0
    while t < end:
        ev = evaluate(cp, t, anchor, electrical)
        parts = ev.parts()
        low = binding(parts, electrical)
        if low is None:
            phases = None
            watts = fallback_w
        else:
            # the phases of the connector's own schedule, where it says
            phases = ev.tx.phases if ev.tx is not None and ev.tx.phases else low.phases
            watts = low.watts(electrical)
        if low is not None and low.profile.schedule.unit is unit and low.phases == phases:
            value = low.limit  # no round trip through W
        else:
            value = electrical.convert(watts, unit, phases)
        periods.append(CompositePeriod(round(t - t0), round(value, 1), phases))
        step = ev.next_change
        if step <= t:  # never happens for valid profiles; guard against a stuck loop
            step = t + 1
        t = step
    return CompositeSchedule(start, duration, unit, merged(periods))


def merged(periods: Sequence[CompositePeriod]) -> tuple[CompositePeriod, ...]:
    """One period per start second (the last), none repeating the one before it."""
    by_start: dict[int, CompositePeriod] = {}
    for period in periods:
        by_start[period.start] = period
    out: list[CompositePeriod] = []
    for period in by_start.values():
        if out and (out[-1].limit, out[-1].phases) == (period.limit, period.phases):
            continue
        out.append(period)
    return tuple(out)


def schedule_end(start: datetime, duration: int) -> datetime:
    return start + timedelta(seconds=duration)
