"""The charging profile engine against the specifications' own examples.

- OCPP 1.6 3.13.7 "Example data structure for smart charging" (also the example profile of
  OCPP 2.0.1 Part 2 K): a daily TxDefaultProfile, 11 kW, 6 kW from 08:00 to 20:00.
- OCPP 1.6 3.13.2 "Stacking charging profiles": a weekly TxDefaultProfile with full power at
  night and at weekends, and a holiday exception on a higher stack level; a higher level
  without a duration never falls back.
- OCPP 1.6 3.13.1 / 3.13.3: a TxProfile overrules the TxDefaultProfile for its transaction
  only; a connector's own TxDefaultProfile replaces connector 0's for that connector only;
  the ChargePointMaxProfile caps the result.
- OCPP 2.0.1 K08, the OCA test tool's TC_K_41_CS: station maximum 10 A, a TxDefaultProfile
  (304 s, 5 periods) and a TxProfile (264 s, 5 periods); where the TxProfile's schedule ended
  the TxDefaultProfile applies again, and where that ended the station maximum.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from chargepoint.core.charging.book import ClearCriteria, ProfileBook
from chargepoint.core.charging.composite import CompositePeriod, composite_schedule
from chargepoint.core.charging.profiles import (
    ChargingProfile,
    Electrical,
    Kind,
    LimitSource,
    Purpose,
    RateUnit,
    Recurrency,
    from_json,
    to_json,
)
from chargepoint.core.charging.sharing import share
from chargepoint.core.charging.validation import Capabilities, ProfileRejected, check_profile
from tests.charging_profiles import at, profile

A, W = RateUnit.AMPS, RateUnit.WATTS
E = Electrical()
MAX_32A_W = 32 * 230 * 3


def composite(
    profiles: list[ChargingProfile],
    start: str,
    duration: int,
    unit: RateUnit,
    *,
    connector: int = 1,
    transaction: int | None = None,
    session_start: str | None = None,
) -> list[tuple[int, float, int | None]]:
    book = ProfileBook(profiles)
    result = composite_schedule(
        book.for_connector(connector, transaction),
        at(start),
        duration,
        unit,
        E,
        session_start=at(session_start) if session_start else None,
        fallback_w=MAX_32A_W,
    )
    assert result.duration == duration and result.unit is unit
    return [(p.start, p.limit, p.phases) for p in result.periods]


# ---- OCPP 1.6 3.13.7 / 2.0.1 Part 2 K: the daily default profile -----------------------

DAILY_100 = profile(
    100,
    Purpose.TX_DEFAULT,
    [(0, 11000, 3), (28800, 6000, 3), (72000, 11000, 3)],
    connector=0,
    kind=Kind.RECURRING,
    recurrency=Recurrency.DAILY,
    unit=W,
    start="2013-01-01T00:00Z",
    duration=86400,
)


def test_daily_default_profile_limits_to_6_kw_between_8_and_20() -> None:
    assert composite([DAILY_100], "2024-05-02T06:00:00Z", 86400, W) == [
        (0, 11000.0, 3),
        (7200, 6000.0, 3),  # 08:00
        (50400, 11000.0, 3),  # 20:00, and on through midnight until 08:00 the next day
    ]


def test_daily_default_profile_in_amps_uses_its_three_phases() -> None:
    # 11000 W / (230 V x 3) = 15.94 A, 6000 W -> 8.70 A
    assert composite([DAILY_100], "2024-05-02T07:00:00Z", 7200, A) == [
        (0, 15.9, 3),
        (3600, 8.7, 3),
    ]


def test_daily_profile_applies_to_every_connector_from_connector_0() -> None:
    for connector in (1, 2):
        assert composite([DAILY_100], "2024-05-02T19:00:00Z", 7200, W, connector=connector) == [
            (0, 6000.0, 3),
            (3600, 11000.0, 3),
        ]


def test_charge_point_max_profile_caps_the_composite() -> None:
    """1.6 3.13.3: the composite is the minimum of ChargePointMaxProfile and the
    TxDefaultProfile; 10 A on 3 phases is 6900 W."""
    station_max = profile(1, Purpose.STATION_MAX, [(0, 10)], connector=0, start="2024-05-01T00:00Z")
    assert composite([DAILY_100, station_max], "2024-05-02T06:00:00Z", 86400, W) == [
        (0, 6900.0, 3),
        (7200, 6000.0, 3),
        (50400, 6900.0, 3),
    ]


# ---- OCPP 1.6 3.13.2: stacking -----------------------------------------------------------

# full power weekdays 23:00-06:00 and all weekend, reduced otherwise (week from Monday)
_DAY = 86400
_WEEKDAY_NIGHTS: list[tuple[int, float]] = [(0, 32)]
for _d in range(5):
    _WEEKDAY_NIGHTS += [(_d * _DAY + 6 * 3600, 10), (_d * _DAY + 23 * 3600, 32)]
WEEKLY = profile(
    10,
    Purpose.TX_DEFAULT,
    _WEEKDAY_NIGHTS,
    connector=0,
    kind=Kind.RECURRING,
    recurrency=Recurrency.WEEKLY,
    start="2024-04-29T00:00Z",  # a Monday
    duration=7 * _DAY,
)
HOLIDAY = profile(
    11,
    Purpose.TX_DEFAULT,
    [(0, 32)],
    connector=0,
    stack=1,
    start="2024-05-01T00:00Z",
    duration=_DAY,
)


def test_weekly_profile_full_power_at_night_and_weekends() -> None:
    assert composite([WEEKLY], "2024-04-30T00:00:00Z", _DAY, A) == [
        (0, 32.0, None),
        (6 * 3600, 10.0, None),
        (23 * 3600, 32.0, None),
    ]
    # from Friday noon: Friday 23:00 to Monday 06:00 at full power, Monday's day reduced
    assert composite([WEEKLY], "2024-05-03T12:00:00Z", 4 * _DAY, A) == [
        (0, 10.0, None),
        (11 * 3600, 32.0, None),  # Friday 23:00
        (66 * 3600, 10.0, None),  # Monday 06:00 (the next recurrence)
        (83 * 3600, 32.0, None),  # Monday 23:00
        (90 * 3600, 10.0, None),  # Tuesday 06:00
    ]


def test_holiday_exception_on_a_higher_stack_level() -> None:
    profiles = [WEEKLY, HOLIDAY]
    # Wednesday 1 May: the holiday profile prevails all day
    assert composite(profiles, "2024-05-01T00:00:00Z", _DAY, A) == [(0, 32.0, None)]
    # Thursday: its duration is over, the weekly profile applies again
    assert composite(profiles, "2024-05-02T00:00:00Z", _DAY, A) == [
        (0, 32.0, None),
        (6 * 3600, 10.0, None),
        (23 * 3600, 32.0, None),
    ]


def test_higher_stack_level_ends_with_its_validity() -> None:
    holiday = profile(
        11,
        Purpose.TX_DEFAULT,
        [(0, 32)],
        connector=0,
        stack=1,
        start="2024-05-01T00:00Z",
        valid_to="2024-05-02T00:00Z",
    )
    assert composite([WEEKLY, holiday], "2024-05-01T12:00:00Z", _DAY, A) == [
        (0, 32.0, None),
        (18 * 3600, 10.0, None),  # Thursday 06:00: back to the weekly profile
    ]


def test_stacking_without_duration_never_falls_back() -> None:
    """1.6 3.13.2: "If you use Stacking without a duration, on the highest stack level, the
    Charge Point will never fall back to a lower stack level profile." """
    forever = profile(
        11, Purpose.TX_DEFAULT, [(0, 20)], connector=0, stack=1, start="2024-05-01T00:00Z"
    )
    assert composite([WEEKLY, forever], "2024-05-02T00:00:00Z", 7 * _DAY, A) == [(0, 20.0, None)]


def test_valid_from_in_the_future_applies_from_then() -> None:
    later = profile(
        12,
        Purpose.TX_DEFAULT,
        [(0, 6)],
        connector=0,
        stack=1,
        start="2024-05-02T00:00Z",
        valid_from="2024-05-02T12:00Z",
    )
    base = profile(13, Purpose.TX_DEFAULT, [(0, 16)], connector=0, start="2024-05-02T00:00Z")
    assert composite([base, later], "2024-05-02T11:00:00Z", 7200, A) == [
        (0, 16.0, None),
        (3600, 6.0, None),
    ]


# ---- OCPP 1.6 3.13.1: purposes -----------------------------------------------------------

TX_DEFAULT_16A = profile(20, Purpose.TX_DEFAULT, [(0, 16)], connector=0, start="2024-01-01T00:00Z")


def test_tx_profile_overrules_the_default_for_its_transaction_only() -> None:
    tx = profile(21, Purpose.TX, [(0, 8)], kind=Kind.RELATIVE, transaction=5)
    profiles = [TX_DEFAULT_16A, tx]
    start = "2024-05-02T10:00:00Z"
    assert composite(profiles, start, 600, A, transaction=5, session_start=start) == [
        (0, 8.0, None)
    ]
    assert composite(profiles, start, 600, A, transaction=None) == [(0, 16.0, None)]
    assert composite(profiles, start, 600, A, transaction=6) == [(0, 16.0, None)]
    assert composite(profiles, start, 600, A, connector=2, transaction=5) == [(0, 16.0, None)]


def test_connector_default_replaces_connector_0_default_there_only() -> None:
    own = profile(22, Purpose.TX_DEFAULT, [(0, 10)], connector=1, start="2024-01-01T00:00Z")
    profiles = [TX_DEFAULT_16A, own]
    assert composite(profiles, "2024-05-02T10:00:00Z", 60, A, connector=1) == [(0, 10.0, None)]
    assert composite(profiles, "2024-05-02T10:00:00Z", 60, A, connector=2) == [(0, 16.0, None)]


def test_relative_profile_runs_from_the_start_of_charging() -> None:
    relative = profile(23, Purpose.TX, [(0, 16), (600, 8)], kind=Kind.RELATIVE, transaction=1)
    got = composite(
        [relative],
        "2024-05-02T10:05:00Z",
        900,
        A,
        transaction=1,
        session_start="2024-05-02T10:00:00Z",
    )
    assert got == [(0, 16.0, None), (300, 8.0, None)]


def test_absolute_without_start_schedule_runs_from_the_start_of_charging_16() -> None:
    """1.6 ChargingSchedule.startSchedule: "If absent the schedule will be relative to start
    of charging"."""
    no_start = profile(24, Purpose.TX, [(0, 12), (120, 6)], transaction=1)
    got = composite(
        [no_start],
        "2024-05-02T10:01:00Z",
        300,
        A,
        transaction=1,
        session_start="2024-05-02T10:00:00Z",
    )
    assert got == [(0, 12.0, None), (60, 6.0, None)]


def test_units_convert_with_the_nominal_voltage_and_phases() -> None:
    one_phase = profile(25, Purpose.TX_DEFAULT, [(0, 2300, 1)], unit=W, start="2024-01-01T00:00Z")
    assert composite([one_phase], "2024-05-02T10:00:00Z", 60, A) == [(0, 10.0, 1)]
    amps = profile(26, Purpose.TX_DEFAULT, [(0, 16)], start="2024-01-01T00:00Z")
    assert composite([amps], "2024-05-02T10:00:00Z", 60, W) == [(0, 11040.0, None)]


def test_no_profile_the_connector_maximum() -> None:
    assert composite([], "2024-05-02T10:00:00Z", 3600, A) == [(0, 32.0, None)]


# ---- OCPP 2.0.1 K08: the OCA test tool's TC_K_41_CS ------------------------------------

TC_K_41_STATION_MAX = profile(
    1,
    Purpose.STATION_MAX,
    [(0, 10, 3)],
    connector=0,
    start="2024-08-21T12:24:36Z",
    duration=86404,
)
TC_K_41_TX_DEFAULT = profile(
    2,
    Purpose.TX_DEFAULT,
    [(0, 6, 3), (60, 10, 3), (120, 8, 3), (180, 15, 3), (260, 8, 3)],
    start="2024-08-21T12:24:36Z",
    duration=304,
    valid_from="2024-08-21T12:24:36Z",
    valid_to="2024-08-21T12:31:25Z",
)
TC_K_41_TX = profile(
    3,
    Purpose.TX,
    [(0, 8, 3), (50, 11, 3), (140, 16, 3), (200, 6, 3), (240, 12, 3)],
    start="2024-08-21T12:24:36Z",
    duration=264,
    transaction=7,
)


def test_tc_k_41_composite_schedule() -> None:
    got = composite(
        [TC_K_41_STATION_MAX, TC_K_41_TX_DEFAULT, TC_K_41_TX],
        "2024-08-21T12:24:40Z",
        400,
        A,
        transaction=7,
        session_start="2024-08-21T12:24:36Z",
    )
    assert got == [
        (0, 8.0, 3),  # TxProfile 8 A
        (46, 10.0, 3),  # TxProfile 11 A, then 16 A: the station maximum 10 A
        (196, 6.0, 3),  # TxProfile 6 A
        (236, 10.0, 3),  # TxProfile 12 A capped
        (260, 8.0, 3),  # the TxProfile ended: TxDefaultProfile's last period, 8 A
        (300, 10.0, 3),  # the TxDefaultProfile ended: the station maximum
    ]


def test_station_composite_is_the_station_limit() -> None:
    book = ProfileBook([TC_K_41_STATION_MAX, TC_K_41_TX_DEFAULT])
    result = composite_schedule(
        book.station_profiles(),
        at("2024-08-21T12:30:00Z"),
        60,
        A,
        E,
        fallback_w=2 * MAX_32A_W,
    )
    assert result.periods == (CompositePeriod(0, 10.0, 3),)


# ---- the installed set: replacement, clearing, expiry --------------------------------------


def test_same_id_replaces() -> None:
    book = ProfileBook()
    first = profile(1, Purpose.TX_DEFAULT, [(0, 16)], start="2024-01-01T00:00Z")
    book.install(first, book.check_room(first, 32))
    second = profile(1, Purpose.TX_DEFAULT, [(0, 6)], stack=3, start="2024-01-01T00:00Z")
    assert book.check_room(second, 32) == [first]
    book.install(second, book.check_room(second, 32))
    assert book.all() == [second]


def test_same_stack_level_and_purpose_replaces_on_the_same_connector_only() -> None:
    book = ProfileBook()
    a = profile(1, Purpose.TX_DEFAULT, [(0, 16)], connector=1, start="2024-01-01T00:00Z")
    b = profile(2, Purpose.TX_DEFAULT, [(0, 10)], connector=1, start="2024-01-01T00:00Z")
    c = profile(3, Purpose.TX_DEFAULT, [(0, 8)], connector=0, start="2024-01-01T00:00Z")
    d = profile(4, Purpose.STATION_MAX, [(0, 8)], connector=0, start="2024-01-01T00:00Z")
    for p in (a, b, c, d):
        book.install(p, book.check_room(p, 32))
    assert [p.profile_id for p in book.all()] == [3, 4, 2]


def test_tx_profiles_of_different_transactions_do_not_replace_each_other() -> None:
    book = ProfileBook()
    for pid, tx in ((1, 5), (2, 6), (3, 5)):
        p = profile(pid, Purpose.TX, [(0, 8)], kind=Kind.RELATIVE, transaction=tx)
        book.install(p, book.check_room(p, 32))
    assert sorted(p.profile_id for p in book.all()) == [2, 3]


def test_at_most_max_profiles() -> None:
    book = ProfileBook()
    for pid in range(3):
        p = profile(pid, Purpose.TX_DEFAULT, [(0, 8)], stack=pid, start="2024-01-01T00:00Z")
        book.install(p, book.check_room(p, 3))
    extra = profile(9, Purpose.TX_DEFAULT, [(0, 8)], stack=9, start="2024-01-01T00:00Z")
    with pytest.raises(ProfileRejected, match="3 charging profiles are installed already"):
        book.check_room(extra, 3)
    same_slot = profile(9, Purpose.TX_DEFAULT, [(0, 8)], stack=2, start="2024-01-01T00:00Z")
    assert [p.profile_id for p in book.check_room(same_slot, 3)] == [2]


def test_clear_by_id_and_by_criteria() -> None:
    profiles = [
        profile(1, Purpose.TX_DEFAULT, [(0, 8)], connector=0, start="2024-01-01T00:00Z"),
        profile(2, Purpose.TX_DEFAULT, [(0, 8)], connector=1, stack=2, start="2024-01-01T00:00Z"),
        profile(3, Purpose.STATION_MAX, [(0, 8)], connector=0, start="2024-01-01T00:00Z"),
        profile(4, Purpose.EXTERNAL, [(0, 8)], connector=0, source=LimitSource.EMS),
    ]
    book = ProfileBook(profiles)

    def ids(criteria: ClearCriteria) -> list[int]:
        return sorted(p.profile_id for p in book.matching(criteria))

    assert ids(ClearCriteria(profile_id=2)) == [2]
    assert ids(ClearCriteria(purpose=Purpose.TX_DEFAULT)) == [1, 2]
    assert ids(ClearCriteria(connector_id=0)) == [1, 3]
    assert ids(ClearCriteria(purpose=Purpose.TX_DEFAULT, stack_level=2)) == [2]
    assert ids(ClearCriteria()) == [1, 2, 3]  # the CSMS's own, not the external limit
    assert ids(ClearCriteria(profile_id=4)) == []


def test_expired_profiles() -> None:
    now = at("2024-05-02T12:00:00Z")
    profiles = [
        profile(
            1, Purpose.TX_DEFAULT, [(0, 8)], start="2024-01-01T00:00Z", valid_to="2024-05-02T11:00Z"
        ),
        profile(2, Purpose.TX_DEFAULT, [(0, 8)], stack=1, start="2024-05-02T10:00Z", duration=3600),
        profile(3, Purpose.TX, [(0, 8)], kind=Kind.RELATIVE, transaction=4),
        profile(4, Purpose.TX_DEFAULT, [(0, 8)], stack=2, start="2024-05-02T10:00Z", duration=9000),
        profile(5, Purpose.TX, [(0, 8)], kind=Kind.RELATIVE, connector=2, transaction=9),
    ]
    book = ProfileBook(profiles)
    open_tx = {1: 5, 2: 9}
    assert sorted(p.profile_id for p in book.expired(now, open_tx.get)) == [1, 2, 3]


def test_stored_form_round_trips() -> None:
    for p in (DAILY_100, WEEKLY, TC_K_41_TX, HOLIDAY):
        assert from_json(to_json(p)) == p


# ---- validation: every refusal says why ----------------------------------------------------

CAPS = Capabilities(connectors=frozenset({1, 2}), max_periods=4, rate_units=frozenset({A, W}))
NOW = at("2024-05-02T12:00:00Z")


def reject(p: ChargingProfile, *, strict: bool = False, open_tx: int | None = 5) -> str:
    with pytest.raises(ProfileRejected) as info:
        check_profile(p, CAPS, lambda c: open_tx if c == 1 else None, NOW, strict=strict)
    return str(info.value)


def test_invalid_profiles_are_rejected_with_the_reason() -> None:
    tx = Kind.RELATIVE
    assert "first schedule period must start at 0" in reject(
        profile(1, Purpose.TX, [(10, 8)], kind=tx)
    )
    assert "does not come after" in reject(profile(1, Purpose.TX, [(0, 8), (0, 6)], kind=tx))
    assert "not a number >= 0" in reject(profile(1, Purpose.TX, [(0, -1)], kind=tx))
    assert "numberPhases 4" in reject(profile(1, Purpose.TX, [(0, 8, 4)], kind=tx))
    assert "at most 4" in reject(profile(1, Purpose.TX, [(i, 8) for i in range(5)], kind=tx))
    assert "no transaction is running on connector 2" in reject(
        profile(1, Purpose.TX, [(0, 8)], connector=2, kind=tx)
    )
    assert "not the one running" in reject(profile(1, Purpose.TX, [(0, 8)], transaction=4, kind=tx))
    assert "must name its transactionId" in reject(
        profile(1, Purpose.TX, [(0, 8)], kind=tx), strict=True
    )
    assert "connector/EVSE > 0" in reject(profile(1, Purpose.TX, [(0, 8)], connector=0, kind=tx))
    assert "belongs to connector/EVSE 0" in reject(profile(1, Purpose.STATION_MAX, [(0, 8)]))
    assert "cannot be Relative" in reject(
        profile(1, Purpose.STATION_MAX, [(0, 8)], connector=0, kind=Kind.RELATIVE)
    )
    assert "connector 3 does not exist" in reject(
        profile(1, Purpose.TX_DEFAULT, [(0, 8)], connector=3)
    )
    assert "stackLevel 17" in reject(profile(1, Purpose.TX_DEFAULT, [(0, 8)], stack=17))
    assert "needs recurrencyKind" in reject(
        profile(1, Purpose.TX_DEFAULT, [(0, 8)], kind=Kind.RECURRING, start="2024-01-01T00:00Z")
    )
    assert "needs startSchedule" in reject(
        profile(1, Purpose.TX_DEFAULT, [(0, 8)], kind=Kind.RECURRING, recurrency=Recurrency.DAILY)
    )
    assert "beyond one daily recurrence" in reject(
        profile(
            1,
            Purpose.TX_DEFAULT,
            [(0, 8), (90000, 6)],
            kind=Kind.RECURRING,
            recurrency=Recurrency.DAILY,
            start="2024-01-01T00:00Z",
        )
    )
    assert "an Absolute profile needs startSchedule" in reject(
        profile(1, Purpose.TX_DEFAULT, [(0, 8)]), strict=True
    )
    assert "must not have startSchedule" in reject(
        profile(1, Purpose.TX_DEFAULT, [(0, 8)], kind=Kind.RELATIVE, start="2024-01-01T00:00Z"),
        strict=True,
    )
    assert "validTo is not after validFrom" in reject(
        profile(
            1,
            Purpose.TX_DEFAULT,
            [(0, 8)],
            valid_from="2024-06-01T00:00Z",
            valid_to="2024-05-31T00:00Z",
        )
    )
    assert "validTo has passed" in reject(
        profile(1, Purpose.TX_DEFAULT, [(0, 8)], valid_to="2024-05-01T00:00Z")
    )
    assert "not the CSMS" in reject(profile(1, Purpose.EXTERNAL, [(0, 8)], connector=0))
    only_amps = Capabilities(connectors=frozenset({1}), rate_units=frozenset({A}))
    with pytest.raises(ProfileRejected, match="chargingRateUnit W is not supported"):
        check_profile(
            profile(1, Purpose.TX_DEFAULT, [(0, 8)], unit=W), only_amps, lambda c: None, NOW
        )


def test_valid_profile_passes() -> None:
    check_profile(DAILY_100, CAPS, lambda c: None, NOW, strict=True)
    check_profile(
        profile(1, Purpose.TX, [(0, 8)], kind=Kind.RELATIVE, transaction=5),
        CAPS,
        lambda c: 5,
        NOW,
        strict=True,
    )


# ---- sharing a station-wide limit ---------------------------------------------------------


def test_station_limit_is_shared_max_min_fair() -> None:
    inf = float("inf")
    assert share(11040, {1: inf, 2: inf}) == {1: 5520, 2: 5520}
    assert share(11040, {1: 3000, 2: inf}) == {1: 3000, 2: 8040}
    assert share(11040, {1: 3000, 2: 4000}) == {1: 3000, 2: 4000}
    assert share(0, {1: inf}) == {1: 0}


def test_time_parsing_accepts_what_ocpp_sends() -> None:
    assert at("2024-05-02T10:00:00.5+02:00") == datetime.fromisoformat(
        "2024-05-02T08:00:00.5+00:00"
    )
    assert at("2024-05-02T10:00:00") == at("2024-05-02T10:00:00Z")
