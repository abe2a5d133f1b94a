"""Authorization figures: the decision time with a 10,000-entry Local Authorization List, and
the time to apply a 10,000-entry Full SendLocalList and a Differential of one entry (core and
store, the SQLite file with WAL and synchronous=FULL as the daemon runs it); then the same
SendLocalList end to end over OCPP 1.6J and 2.0.1 (test CSMS on loopback -> the daemon,
schema validation both ways).

Usage: python benchmarks/authorization.py [--entries 10000] [--rounds 5] [--no-ocpp]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the station harness lives with the tests

from chargepoint.config import OcppSettings  # noqa: E402
from chargepoint.core.auth import Authorizer  # noqa: E402
from chargepoint.core.authorization.local_list import ListEntry, UpdateType  # noqa: E402
from chargepoint.core.authorization.tokens import AuthStatus, IdTagInfo  # noqa: E402
from chargepoint.core.settings import Settings, station_specs  # noqa: E402
from chargepoint.store import AsyncStore  # noqa: E402
from chargepoint.testcsms import TestCsms  # noqa: E402
from chargepoint.testcsms.authorization import ListItem  # noqa: E402
from tests.station_harness import STATION_ID, InProcessStation, station_yaml, wait_until  # noqa: E402


async def _no_csms(_: str) -> IdTagInfo | None:
    return None


async def _persist(_: str, __: str) -> None:
    return None


def _ms(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds) * 1000:8.2f} ms, max {max(seconds) * 1000:8.2f} ms"


async def _timed(fn: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


async def core(entries: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await AsyncStore.open(Path(tmp) / "bench.sqlite", STATION_ID)
        try:
            settings = Settings(station_specs(OcppSettings(), 2), {}, _persist)
            auth = Authorizer(settings, store, _no_csms)
            await auth.start()
            limits = auth.list_limits()
            ok = IdTagInfo(AuthStatus.ACCEPTED, "2099-01-01T00:00:00Z", "FLEET")
            full = [ListEntry(f"TAG-{i:06d}", ok) for i in range(entries)]
            version = 0

            async def apply_full() -> None:
                nonlocal version
                version += 1
                result = await auth.local_list.update(UpdateType.FULL, version, full, limits)
                assert result.status.value == "Accepted", result

            async def apply_one() -> None:
                nonlocal version
                version += 1
                one = [ListEntry(f"TAG-{version % entries:06d}", IdTagInfo(AuthStatus.BLOCKED))]
                result = await auth.local_list.update(UpdateType.DIFFERENTIAL, version, one, limits)
                assert result.status.value == "Accepted", result

            full_times = await _timed(apply_full, rounds)
            one_times = await _timed(apply_one, rounds * 4)
            print(f"core + store, {entries} entries in the list:")
            print(f"  SendLocalList Full ({entries} entries)   {_ms(full_times)}")
            print(f"  SendLocalList Differential (1 entry)  {_ms(one_times)}")

            async def decide_offline() -> None:
                d = await auth.decide(f"tag-{entries // 2:06d}", online=False)
                assert d.accepted

            async def decide_unknown() -> None:
                d = await auth.decide("NOT-IN-THE-LIST", online=False)
                assert not d.accepted

            hit = await _timed(decide_offline, 200)
            miss = await _timed(decide_unknown, 200)
            print(f"  decision, offline, list hit          {_ms(hit)}")
            print(f"  decision, offline, unknown id        {_ms(miss)}  (cache looked up)")
        finally:
            await store.close()


async def over_ocpp(version: str, entries: int) -> None:
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    with tempfile.TemporaryDirectory() as tmp:
        config = station_yaml(
            Path(tmp) / "station.yaml",
            csms.url,
            Path(tmp) / "state",
            csms={"ocpp_version": version, "call_timeout": 60},
        )
        station = InProcessStation(config)
        daemon = await station.start()
        try:
            await csms.wait_connected(STATION_ID, timeout=10)
            await wait_until(
                lambda: daemon.adapter is not None and daemon.adapter.accepted.is_set(),
                what="boot",
            )
            items = [ListItem(f"TAG-{i:06d}") for i in range(entries)]
            t0 = time.perf_counter()
            answer = await csms.send_local_list(STATION_ID, 1, items, timeout=120)
            full = time.perf_counter() - t0
            assert answer["status"] == "Accepted", answer
            t0 = time.perf_counter()
            answer = await csms.send_local_list(STATION_ID, 2, [ListItem("NEW")], full=False)
            one = time.perf_counter() - t0
            assert answer["status"] == "Accepted", answer
            print(
                f"OCPP {version:5} end to end: Full of {entries} {full * 1000:8.1f} ms, "
                f"Differential of 1 {one * 1000:6.1f} ms"
            )
        finally:
            await station.stop()
            await csms.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-ocpp", action="store_true", help="core and store only")
    args = parser.parse_args()
    asyncio.run(core(args.entries, args.rounds))
    if not args.no_ocpp:
        for version in ("1.6", "2.0.1"):
            asyncio.run(over_ocpp(version, args.entries))


if __name__ == "__main__":
    main()
