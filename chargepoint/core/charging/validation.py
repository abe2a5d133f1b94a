"""May a charging profile be installed? Every rule the specifications give for a profile on
its own (OCPP 1.6 3.13 and 5.16/7.x, 2.0.1 K01.FR.*), each refusal with a reason a person can
read; the rules that depend on the profiles already installed (how many) are in `book`.

`strict` is OCPP 2.0.1: a TxProfile names its transaction (K01.FR.03), an Absolute or
Recurring schedule has a startSchedule (K01.FR.40), a Relative one has none (K01.FR.41).
OCPP 1.6 allows a TxProfile without transactionId (the transaction on its connector) and an
Absolute schedule without startSchedule (it runs from the start of charging).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chargepoint.core.charging.profiles import (
    ChargingProfile,
    Kind,
    LimitSource,
    Purpose,
    RateUnit,
)

# What this station supports (1.6 ChargeProfileMaxStackLevel, ChargingScheduleMaxPeriods,
# MaxChargingProfilesInstalled; 2.0.1 SmartChargingCtrlr.ProfileStackLevel,
# PeriodsPerSchedule, EntriesChargingProfiles).
MAX_STACK_LEVEL = 16
MAX_PERIODS = 96  # a day in quarter hours
MAX_PROFILES = 32


class ProfileRejected(Exception):
    """The profile is refused; `str()` says why (for the log and statusInfo)."""


@dataclass(frozen=True)
class Capabilities:
    connectors: frozenset[int]
    max_stack_level: int = MAX_STACK_LEVEL
    max_periods: int = MAX_PERIODS
    max_profiles: int = MAX_PROFILES
    rate_units: frozenset[RateUnit] = frozenset(RateUnit)


def check_profile(
    profile: ChargingProfile,
    caps: Capabilities,
    open_transaction: Callable[[int], int | None],
    now: datetime,
    *,
    strict: bool = False,
    for_start: bool = False,
) -> None:
    """Raise ProfileRejected unless `profile` may be installed now. `open_transaction`
    gives the local id of the transaction open on a connector; `for_start` is the TxProfile
    of a remote start, for the transaction that start opens."""
    p = profile
    if p.connector_id != 0 and p.connector_id not in caps.connectors:
        raise ProfileRejected(f"connector {p.connector_id} does not exist")
    if not 0 <= p.stack_level <= caps.max_stack_level:
        raise ProfileRejected(f"stackLevel {p.stack_level} is outside 0..{caps.max_stack_level}")
    _check_purpose(p, open_transaction, strict=strict, for_start=for_start)
    _check_schedule(p, caps, strict=strict)
    if p.valid_from is not None and p.valid_to is not None and p.valid_to <= p.valid_from:
        raise ProfileRejected("validTo is not after validFrom")
    if p.valid_to is not None and p.valid_to <= now:
        raise ProfileRejected("validTo has passed already")


def _check_purpose(
    p: ChargingProfile,
    open_transaction: Callable[[int], int | None],
    *,
    strict: bool,
    for_start: bool,
) -> None:
    if p.purpose is Purpose.EXTERNAL and p.source is LimitSource.CSO:
        raise ProfileRejected(
            "ChargingStationExternalConstraints come from the charge controller, not the CSMS"
        )
    if p.transaction is not None and p.purpose is not Purpose.TX:
        raise ProfileRejected("a transaction may be named only by a TxProfile")
    if p.purpose is Purpose.STATION_MAX:
        if p.connector_id != 0:
            raise ProfileRejected("a station maximum profile belongs to connector/EVSE 0")
        if p.kind is Kind.RELATIVE:
            raise ProfileRejected("a station maximum profile cannot be Relative")
    elif p.purpose is Purpose.TX:
        if p.connector_id == 0:
            raise ProfileRejected("a TxProfile needs a connector/EVSE > 0")
        if for_start:
            if p.transaction is not None:
                raise ProfileRejected("the profile of a remote start names no transaction")
            return
        running = open_transaction(p.connector_id)
        if running is None:
            raise ProfileRejected(f"no transaction is running on connector {p.connector_id}")
        if p.transaction is None and strict:
            raise ProfileRejected("a TxProfile must name its transactionId")
        if p.transaction is not None and p.transaction != running:
            raise ProfileRejected(
                f"the transaction named is not the one running on connector {p.connector_id}"
            )


def _check_schedule(p: ChargingProfile, caps: Capabilities, *, strict: bool) -> None:
    s = p.schedule
    if s.unit not in caps.rate_units:
        raise ProfileRejected(f"chargingRateUnit {s.unit.value} is not supported here")
    if not s.periods:
        raise ProfileRejected("the schedule has no periods")
    if len(s.periods) > caps.max_periods:
        raise ProfileRejected(
            f"{len(s.periods)} schedule periods, at most {caps.max_periods} are supported"
        )
    if s.periods[0].start != 0:
        raise ProfileRejected("the first schedule period must start at 0")
    for before, after in itertools.pairwise(s.periods):
        if after.start <= before.start:
            raise ProfileRejected(f"startPeriod {after.start} does not come after {before.start}")
    for period in s.periods:
        if not math.isfinite(period.limit) or period.limit < 0:
            raise ProfileRejected(f"limit {period.limit} is not a number >= 0")
        if period.phases is not None and period.phases not in (1, 2, 3):
            raise ProfileRejected(f"numberPhases {period.phases} is not 1, 2 or 3")
    if s.duration is not None and s.duration <= 0:
        raise ProfileRejected(f"duration {s.duration} is not a positive number of seconds")
    if s.min_rate is not None and (not math.isfinite(s.min_rate) or s.min_rate < 0):
        raise ProfileRejected(f"minChargingRate {s.min_rate} is not a number >= 0")
    if p.kind is Kind.RECURRING:
        if p.recurrency is None:
            raise ProfileRejected("a Recurring profile needs recurrencyKind")
        if s.start is None:
            raise ProfileRejected("a Recurring profile needs startSchedule")
        length = p.recurrency.seconds
        if s.periods[-1].start >= length:
            raise ProfileRejected(
                f"startPeriod {s.periods[-1].start} lies beyond one {p.recurrency.value.lower()}"
                f" recurrence ({length} s)"
            )
        if s.duration is not None and s.duration > length:
            raise ProfileRejected(
                f"duration {s.duration} s is longer than one recurrence ({length} s)"
            )
    elif strict and p.kind is Kind.ABSOLUTE and s.start is None:
        raise ProfileRejected("an Absolute profile needs startSchedule")
    elif strict and p.kind is Kind.RELATIVE and s.start is not None:
        raise ProfileRejected("a Relative profile must not have startSchedule")
