"""Properties of the composite schedule and of the limits the load follows, on random
profiles (hypothesis): the schedule never exceeds any limit that applies, agrees with the
limit evaluated at any single moment, and the connectors together never draw more than the
station maximum."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargepoint.config import ConnectorConfig
from chargepoint.config.smart_charging import SmartChargingConfig
from chargepoint.core.charging.book import ProfileBook
from chargepoint.core.charging.composite import composite_schedule, evaluate
from chargepoint.core.charging.controller import SmartCharging
from chargepoint.core.charging.load import FollowingEv
from chargepoint.core.charging.profiles import (
    ChargingProfile,
    Electrical,
    Kind,
    LimitSource,
    Purpose,
    RateUnit,
    Recurrency,
    Schedule,
    SchedulePeriod,
)
from chargepoint.core.charging.sharing import share
from chargepoint.core.meters import ConnectorMeter
from chargepoint.core.status import ConnectorStateMachine
from chargepoint.core.transaction import ActiveTransaction, Connector
from tests.charging_profiles import at

E = Electrical()
BASE = at("2024-05-02T00:00:00Z")
FALLBACK_W = 32 * 230 * 3
SESSION = 1


@st.composite
def schedules(draw: st.DrawFn, unit: RateUnit, recurring: bool) -> Schedule:
    count = draw(st.integers(1, 5))
    starts = sorted(draw(st.sets(st.integers(1, 20_000), min_size=count - 1, max_size=count - 1)))
    top = 64.0 if unit is RateUnit.AMPS else 44_000.0
    limits = draw(
        st.lists(st.floats(0, top).map(lambda x: round(x, 1)), min_size=count, max_size=count)
    )
    phases = draw(st.lists(st.sampled_from([None, 1, 3]), min_size=count, max_size=count))
    periods = tuple(
        SchedulePeriod(start, limit, ph)
        for start, limit, ph in zip([0, *starts], limits, phases, strict=True)
    )
    duration = draw(st.one_of(st.none(), st.integers(1, 86_400 if recurring else 200_000)))
    start = BASE + timedelta(seconds=draw(st.integers(-100_000, 100_000)))
    return Schedule(unit=unit, periods=periods, start=start, duration=duration)


@st.composite
def profiles(draw: st.DrawFn, profile_id: int) -> ChargingProfile:
    purpose = draw(st.sampled_from(list(Purpose)))
    kind = draw(st.sampled_from(list(Kind)))
    if purpose is Purpose.STATION_MAX and kind is Kind.RELATIVE:
        kind = Kind.ABSOLUTE
    connector = 0 if purpose is Purpose.STATION_MAX else 1
    if purpose in (Purpose.TX_DEFAULT, Purpose.EXTERNAL):
        connector = draw(st.sampled_from([0, 1]))
    unit = draw(st.sampled_from(list(RateUnit)))
    schedule = draw(schedules(unit, kind is Kind.RECURRING))
    valid_from = draw(st.one_of(st.none(), st.integers(-100_000, 150_000)))
    valid_len = draw(st.one_of(st.none(), st.integers(1, 200_000)))
    return ChargingProfile(
        profile_id=profile_id,
        connector_id=connector,
        purpose=purpose,
        stack_level=draw(st.integers(0, 3)),
        kind=kind,
        recurrency=Recurrency.DAILY if kind is Kind.RECURRING else None,
        valid_from=BASE + timedelta(seconds=valid_from) if valid_from is not None else None,
        valid_to=BASE + timedelta(seconds=(valid_from or 0) + valid_len)
        if valid_len is not None
        else None,
        transaction=SESSION if purpose is Purpose.TX else None,
        source=LimitSource.EMS if purpose is Purpose.EXTERNAL else LimitSource.CSO,
        schedule=schedule,
    )


@st.composite
def profile_sets(draw: st.DrawFn) -> list[ChargingProfile]:
    count = draw(st.integers(0, 6))
    return [draw(profiles(i + 1)) for i in range(count)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile_sets(),
    st.integers(-50_000, 150_000),
    st.integers(1, 100_000),
    st.integers(-50_000, 0),
)
def test_composite_never_exceeds_an_applicable_limit(
    installed: list[ChargingProfile], offset: int, duration: int, session_offset: int
) -> None:
    cp = ProfileBook(installed).for_connector(1, SESSION)
    start = BASE + timedelta(seconds=offset)
    session = start + timedelta(seconds=session_offset)
    result = composite_schedule(
        cp, start, duration, RateUnit.WATTS, E, session_start=session, fallback_w=FALLBACK_W
    )
    periods = result.periods
    assert periods and periods[0].start == 0
    assert all(a.start < b.start for a, b in itertools.pairwise(periods))
    bounds = [p.start for p in periods[1:]] + [duration]
    for period, end in zip(periods, bounds, strict=True):
        for moment in {period.start, (period.start + end) // 2, end - 1}:
            if not period.start <= moment < end:
                continue
            t = start.timestamp() + moment
            ev = evaluate(cp, t, session.timestamp(), E)
            applicable = ev.parts()
            # never above any limit that applies at that moment ...
            for part in applicable:
                assert period.limit <= round(part.watts(E), 1) + 0.05
            # ... and exactly the lowest of them (what the connector can do where none)
            expected = min((p.watts(E) for p in applicable), default=FALLBACK_W)
            assert math.isclose(period.limit, round(expected, 1), abs_tol=0.051)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 100_000),
    st.dictionaries(st.integers(1, 6), st.floats(0, 50_000) | st.just(math.inf), max_size=6),
)
def test_sharing_never_gives_more_than_the_total_or_the_demand(
    total: float, demands: dict[int, float]
) -> None:
    given = share(total, demands)
    assert set(given) == set(demands)
    assert sum(given.values()) <= total + 1e-6
    for key, amount in given.items():
        assert 0 <= amount <= demands[key] + 1e-9
    if sum(demands.values()) <= total:
        assert all(math.isclose(given[k], demands[k]) for k in demands)


# ---- the controller: what the connectors may draw together ------------------------------


class _Sim:
    def __init__(self) -> None:
        self.watts = 0.0

    def set_power(self, watts: float) -> None:
        self.watts = watts


class _Store:
    async def charging_profiles(self) -> list[Any]:
        return []


def _station(connectors: int, ev_power: float, evs: bool) -> Any:
    conns = {}
    for n in range(1, connectors + 1):
        cfg = ConnectorConfig.model_validate(
            {"id": n, "evse_id": f"E{n}", "meter": {"bus": "sim"}, "ev": {"power_w": ev_power}}
        )
        meter = ConnectorMeter(n, driver=None, configured_key=None, sim=_Sim() if evs else None)  # type: ignore[arg-type]
        conns[n] = Connector(cfg, meter, ConnectorStateMachine(n))
    config = SimpleNamespace(smart_charging=SmartChargingConfig(ev_ramp_seconds=0))
    return SimpleNamespace(config=config, connectors=conns, store=_Store())


@settings(max_examples=150, deadline=None)
@given(
    profile_sets(),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.integers(0, 100_000),
    st.booleans(),
)
def test_connectors_together_stay_under_the_station_maximum(
    installed: list[ChargingProfile], sessions: list[bool], offset: int, evs: bool
) -> None:
    station = _station(3, 22_000.0, evs)
    charging = SmartCharging(station)
    now = BASE + timedelta(seconds=offset)
    charging.clock = SimpleNamespace(now=lambda: now, real_seconds=lambda s: s)
    for c, active in zip(station.connectors.values(), sessions, strict=True):
        if active:
            c.tx = ActiveTransaction(SESSION if c.id == 1 else 100 + c.id, "TAG", "x")
    for p in installed:
        charging.book.install(p, charging.book.replaced_by(p))
    limits = charging.evaluate()
    t = now.timestamp()
    holding = [c for c in station.connectors.values() if c.tx is not None]
    for c in station.connectors.values():
        cp = charging.book.for_connector(c.id, c.tx.local_id if c.tx else None)
        ev = evaluate(cp, t, t, E)
        for part in ev.parts():  # never above a limit that applies to this connector
            got = limits[c.id].watts
            assert got is not None and got <= part.watts(E) + 1e-6
        if evs and limits[c.id].watts is not None:
            assert isinstance(c.meter.ev, FollowingEv)
            assert c.meter.ev.limit == limits[c.id].watts
    station_parts = evaluate(charging.book.station_profiles(), t, t, E).station_parts()
    if station_parts and holding:
        total = min(p.watts(E) for p in station_parts)
        drawn = sum(limits[c.id].watts or 0.0 for c in holding)
        assert drawn <= total + 1e-6
