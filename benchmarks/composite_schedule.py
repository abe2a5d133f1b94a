"""How long the composite schedule takes: 20 charging profiles of 48 periods each.

The profiles: a station maximum, TxDefaultProfiles on connector 0 and on the connector (daily
and weekly recurring, absolute, on stack levels 0-15 with validity windows) and a TxProfile of
the running transaction, every schedule 48 half-hour periods. Printed: the composite schedule
of one connector over a day and over a week (GetCompositeSchedule), and the limit at one
moment (what the station recomputes at every period boundary), best of several runs.

    .venv/bin/python benchmarks/composite_schedule.py [--runs 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from chargepoint.core.charging.book import ProfileBook
from chargepoint.core.charging.composite import composite_schedule, evaluate
from chargepoint.core.charging.profiles import (
    ChargingProfile,
    Electrical,
    Kind,
    Purpose,
    RateUnit,
    Recurrency,
    Schedule,
    SchedulePeriod,
)

PROFILES = 20
PERIODS = 48
START = datetime(2024, 5, 2, 6, 0, tzinfo=UTC)


def build(rng: random.Random) -> list[ChargingProfile]:
    profiles = []
    for i in range(PROFILES):
        if i == 0:
            purpose, connector, kind = Purpose.STATION_MAX, 0, Kind.ABSOLUTE
        elif i == PROFILES - 1:
            purpose, connector, kind = Purpose.TX, 1, Kind.RELATIVE
        else:
            purpose = Purpose.TX_DEFAULT
            connector = rng.choice([0, 1])
            kind = rng.choice([Kind.ABSOLUTE, Kind.RECURRING])
        recurrency = rng.choice(list(Recurrency)) if kind is Kind.RECURRING else None
        step = 1800 if recurrency is not Recurrency.WEEKLY else 12_600
        periods = tuple(
            SchedulePeriod(n * step, float(rng.randint(6, 32)), 3) for n in range(PERIODS)
        )
        valid_from = START + timedelta(hours=rng.randint(-48, 24)) if i % 3 == 0 else None
        profiles.append(
            ChargingProfile(
                profile_id=i + 1,
                connector_id=connector,
                purpose=purpose,
                stack_level=i % 16,
                kind=kind,
                recurrency=recurrency,
                valid_from=valid_from,
                valid_to=valid_from + timedelta(days=3) if valid_from is not None else None,
                transaction=7 if purpose is Purpose.TX else None,
                schedule=Schedule(
                    unit=RateUnit.AMPS,
                    periods=periods,
                    start=None
                    if kind is Kind.RELATIVE
                    else START - timedelta(minutes=rng.randint(0, 3000)),
                ),
            )
        )
    return profiles


def best(runs: int, fn: object) -> tuple[float, float]:
    assert callable(fn)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    profiles = build(random.Random(args.seed))
    book = ProfileBook(profiles)
    cp = book.for_connector(1, 7)
    electrical = Electrical()
    session = START - timedelta(minutes=20)
    print(
        f"{len(cp.all())} profiles apply to connector 1 "
        f"({len(profiles)} installed, {PERIODS} periods each)"
    )
    for label, duration in (("a day", 86_400), ("a week", 7 * 86_400)):
        result = composite_schedule(
            cp,
            START,
            duration,
            RateUnit.AMPS,
            electrical,
            session_start=session,
            fallback_w=22_080,
        )
        low, median = best(
            args.runs,
            lambda d=duration: composite_schedule(
                cp, START, d, RateUnit.AMPS, electrical, session_start=session, fallback_w=22_080
            ),
        )
        print(
            f"composite schedule over {label}: {len(result.periods)} periods, "
            f"best {low * 1000:.1f} ms, median {median * 1000:.1f} ms"
        )
    t = START.timestamp()
    low, median = best(args.runs * 10, lambda: evaluate(cp, t, session.timestamp(), electrical))
    print(f"limit at one moment: best {low * 1e6:.0f} us, median {median * 1e6:.0f} us")


if __name__ == "__main__":
    main()
