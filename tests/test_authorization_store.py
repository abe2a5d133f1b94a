"""The local list, the reservations and the cache rules over a real store file: what the
CSMS's SendLocalList / ReserveNow leave behind, across a reopen (restart), and what a driver is
then told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from chargepoint.config import ConnectorConfig, MeterRef, OcppSettings
from chargepoint.core.auth import Authorizer
from chargepoint.core.authorization.decision import Source
from chargepoint.core.authorization.local_list import (
    ListEntry,
    ListLimits,
    LocalList,
    UpdateStatus,
    UpdateType,
)
from chargepoint.core.authorization.reservations import (
    Reservation,
    Reservations,
    ReservationState,
    ReserveRequest,
    ReserveStatus,
)
from chargepoint.core.authorization.tokens import AuthStatus, IdTagInfo
from chargepoint.core.meters import ConnectorMeter
from chargepoint.core.settings import Settings, station_specs
from chargepoint.core.status import ConnectorStateMachine, ConnectorStatus
from chargepoint.core.transaction import Connector
from chargepoint.store import AsyncStore, Store
from tests.station_harness import STATION_ID

S = ConnectorStatus
LIMITS = ListLimits(enabled=True, max_length=100, max_per_message=50)
OK = IdTagInfo(AuthStatus.ACCEPTED)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    s = await AsyncStore.open(tmp_path / "cp.sqlite", STATION_ID)
    try:
        yield s
    finally:
        await s.close()


async def reopened(store: AsyncStore) -> AsyncStore:
    path = store.path
    await store.close()
    return await AsyncStore.open(path, STATION_ID)


def entries(*tags: str, info: IdTagInfo | None = OK) -> list[ListEntry]:
    return [ListEntry(t, info) for t in tags]


# ---- the local list ------------------------------------------------------------------------


async def test_full_then_differential_updates_and_the_list_survives_a_restart(
    store: AsyncStore,
) -> None:
    ll = LocalList(store)
    await ll.load()
    assert ll.version == 0 and len(ll) == 0
    result = await ll.update(UpdateType.FULL, 1, entries("A", "B", "C"), LIMITS)
    assert result.status is UpdateStatus.ACCEPTED
    blocked = IdTagInfo(AuthStatus.BLOCKED, parent_id_tag="FLEET")
    diff = [ListEntry("b", blocked), ListEntry("C", None), ListEntry("D", OK)]
    assert (await ll.update(UpdateType.DIFFERENTIAL, 2, diff, LIMITS)).status.value == "Accepted"
    store = await reopened(store)
    try:
        again = LocalList(store)
        await again.load()
        assert again.version == 2 and len(again) == 3
        assert again.lookup("a") == OK  # case-insensitive
        assert again.lookup("B") == blocked
        assert again.lookup("C") is None and again.lookup("D") == OK
    finally:
        await store.close()


async def test_version_and_content_rules_refuse_and_change_nothing(store: AsyncStore) -> None:
    ll = LocalList(store)
    await ll.load()
    await ll.update(UpdateType.FULL, 5, entries("A"), LIMITS)
    cases = [
        (UpdateType.DIFFERENTIAL, 5, entries("X"), LIMITS, UpdateStatus.VERSION_MISMATCH),
        (UpdateType.DIFFERENTIAL, 4, entries("X"), LIMITS, UpdateStatus.VERSION_MISMATCH),
        (UpdateType.FULL, 0, entries("X"), LIMITS, UpdateStatus.FAILED),
        (UpdateType.FULL, 6, [*entries("X"), *entries("x")], LIMITS, UpdateStatus.FAILED),
        (UpdateType.FULL, 6, entries("X", info=None), LIMITS, UpdateStatus.FAILED),
        (
            UpdateType.FULL,
            6,
            entries(*(f"T{i}" for i in range(51))),
            LIMITS,
            UpdateStatus.FAILED,
        ),
        (
            UpdateType.DIFFERENTIAL,
            6,
            entries("X", "Y"),
            ListLimits(True, max_length=2, max_per_message=50),
            UpdateStatus.FAILED,
        ),
        (UpdateType.FULL, 6, entries("X"), ListLimits(False, 100, 50), UpdateStatus.NOT_SUPPORTED),
    ]
    for kind, version, items, limits, expected in cases:
        result = await ll.update(kind, version, items, limits)
        assert result.status is expected, (kind, version, result)
        assert result.reason
    assert ll.version == 5 and len(ll) == 1 and ll.lookup("X") is None
    # an empty Full clears the list (version 0 is the empty list's)
    assert (await ll.update(UpdateType.FULL, 0, [], LIMITS)).status is UpdateStatus.ACCEPTED
    assert ll.version == 0 and len(ll) == 0


def test_a_differential_of_one_writes_one_row_and_a_full_is_one_transaction(
    tmp_path: Path,
) -> None:
    from chargepoint.store.local_list import LocalListRow

    store = Store.open(tmp_path / "cp.sqlite", STATION_ID)
    try:
        rows = [LocalListRow(f"t{i}", f"T{i}", "Accepted", None, None, None) for i in range(5000)]
        conn = store._connection()
        before = conn.total_changes
        store.local_list_replace(1, rows)
        assert conn.total_changes - before == 5000 + 1  # the rows and the version
        before = conn.total_changes
        store.local_list_update(2, [LocalListRow("t7", "T7", "Blocked", None, None, None)], [])
        assert conn.total_changes - before == 2  # one entry and the version, nothing else
        version, loaded = store.local_list_load()
        assert version == 2 and len(loaded) == 5000
        assert next(r for r in loaded if r.key == "t7").status == "Blocked"
    finally:
        store.close()


# ---- the cache rules -----------------------------------------------------------------------


def settings(**values: str) -> Settings:
    async def persist(key: str, value: str) -> None:
        return None

    return Settings(station_specs(OcppSettings(), 2), dict(values), persist)


async def _offline(_: str) -> IdTagInfo | None:
    return None


async def test_csms_answers_go_to_the_cache_but_never_change_the_local_list(
    store: AsyncStore,
) -> None:
    auth = Authorizer(settings(), store, _offline)
    await auth.start()
    await auth.local_list.update(UpdateType.FULL, 1, entries("LISTED"), LIMITS)
    await auth.remember("LISTED", IdTagInfo(AuthStatus.BLOCKED))
    await auth.remember("OTHER", IdTagInfo(AuthStatus.BLOCKED))
    assert await auth.cached("LISTED") is None
    assert await auth.cached("OTHER") == IdTagInfo(AuthStatus.BLOCKED)
    listed = await auth.decide("LISTED", online=False)
    assert listed.accepted and listed.source is Source.LOCAL_LIST
    other = await auth.decide("OTHER", online=False)
    assert not other.accepted and other.reason == "blocked in the authorization cache"


async def test_cache_lifetime_drops_unused_entries_and_use_renews_them(
    store: AsyncStore,
) -> None:
    auth = Authorizer(settings(), store, _offline)
    await auth.start()
    auth.cache_lifetime_s = lambda: 1
    await auth.remember("CARD", OK)
    await asyncio.sleep(0.6)
    assert (await auth.decide("CARD", online=False)).source is Source.CACHE  # used: renewed
    await asyncio.sleep(0.6)
    assert (await auth.decide("CARD", online=False)).accepted
    await asyncio.sleep(1.2)
    gone = await auth.decide("CARD", online=False)
    assert not gone.accepted and await store.cache_get("CARD") is None


async def test_the_cache_keeps_its_size_dropping_refused_then_least_recently_used(
    store: AsyncStore,
) -> None:
    for i in range(4):
        await store.cache_put(f"OK{i}", "Accepted", None, None)
        await asyncio.sleep(0.002)
    await store.cache_put("BAD", "Blocked", None, None)
    assert await store.cache_prune(3) == 2
    kept = [t for t in ("OK0", "OK1", "OK2", "OK3", "BAD") if await store.cache_get(t)]
    assert kept == ["OK1", "OK2", "OK3"]


async def test_clear_cache_is_rejected_while_the_cache_is_disabled(store: AsyncStore) -> None:
    auth = Authorizer(settings(**{"AuthorizationCacheEnabled": "false"}), store, _offline)
    assert await auth.clear() is False
    auth = Authorizer(settings(), store, _offline)
    assert await auth.clear() is True


# ---- reservations --------------------------------------------------------------------------


def connectors(n: int = 2) -> dict[int, Connector]:
    out = {}
    for i in range(1, n + 1):
        config = ConnectorConfig(id=i, evse_id=f"DE*X*E{i}", meter=MeterRef(bus="sim", unit=41 + i))
        out[i] = Connector(config, cast(ConnectorMeter, None), ConnectorStateMachine(i))
    return out


def shown(c: Connector) -> ConnectorStatus:
    """The connector's status now (a call, so that type narrowing does not stick)."""
    return c.status


def request(rid: int, connector: int | None, tag: str, seconds: float = 3600) -> ReserveRequest:
    return ReserveRequest(rid, connector, tag, datetime.now(UTC) + timedelta(seconds=seconds))


async def test_reserve_shows_reserved_and_survives_a_restart(store: AsyncStore) -> None:
    cs = connectors()
    res = Reservations(cs, store)
    await res.start()
    try:
        assert await res.reserve(request(7, 1, "ALICE")) == (ReserveStatus.ACCEPTED, "")
        assert cs[1].status is S.RESERVED and cs[2].status is S.AVAILABLE
    finally:
        await res.stop()
    store = await reopened(store)
    try:
        cs = connectors()
        again = Reservations(cs, store)
        await again.start()
        try:
            assert [r.reservation_id for r in again.active()] == [7]
            assert cs[1].status is S.RESERVED
            assert await again.cancel(7) is True
            assert await again.cancel(7) is False
            assert shown(cs[1]) is S.AVAILABLE
        finally:
            await again.stop()
    finally:
        await store.close()


async def test_reserve_now_answers_from_the_connectors_state(store: AsyncStore) -> None:
    cs = connectors(3)
    res = Reservations(cs, store)
    await res.start()
    try:
        cs[1].sm.go(S.FAULTED)
        cs[2].operative = False
        cs[2].sm.go(S.UNAVAILABLE)
        cs[3].plugged = True
        cs[3].sm.go(S.PREPARING)
        assert (await res.reserve(request(1, 1, "A")))[0] is ReserveStatus.FAULTED
        assert (await res.reserve(request(2, 2, "A")))[0] is ReserveStatus.UNAVAILABLE
        assert (await res.reserve(request(3, 3, "A")))[0] is ReserveStatus.OCCUPIED
        assert (await res.reserve(request(4, 9, "A")))[0] is ReserveStatus.REJECTED
        assert (await res.reserve(request(5, None, "A", -1)))[0] is ReserveStatus.REJECTED
        assert (await res.reserve(request(6, None, "A")))[0] is ReserveStatus.OCCUPIED
        assert not res.active()
    finally:
        await res.stop()


async def test_n_reservations_for_any_connector_keep_n_connectors(store: AsyncStore) -> None:
    cs = connectors(2)
    res = Reservations(cs, store)
    await res.start()
    try:
        assert (await res.reserve(request(1, None, "A")))[0] is ReserveStatus.ACCEPTED
        assert {c.status for c in cs.values()} == {S.AVAILABLE}  # one spare connector
        assert (await res.reserve(request(2, None, "B")))[0] is ReserveStatus.ACCEPTED
        assert {c.status for c in cs.values()} == {S.RESERVED}  # both needed now
        assert (await res.reserve(request(3, None, "C")))[0] is ReserveStatus.OCCUPIED
        assert (await res.reserve(request(4, 1, "C")))[0] is ReserveStatus.OCCUPIED
        facts = res.facts(1)
        assert facts.free_connectors == 2 and len(facts.unspecified) == 2
        await res.used(1)
        assert {c.status for c in cs.values()} == {S.AVAILABLE}
        # a reservation for any connector is refused while not supported
        res.allow_any_connector = lambda: False
        assert (await res.reserve(request(5, None, "D")))[0] is ReserveStatus.REJECTED
    finally:
        await res.stop()


async def test_a_reservation_id_again_replaces_the_reservation(store: AsyncStore) -> None:
    cs = connectors(2)
    res = Reservations(cs, store)
    await res.start()
    try:
        await res.reserve(request(9, 1, "A"))
        assert (await res.reserve(request(9, 2, "A")))[0] is ReserveStatus.ACCEPTED
        assert cs[1].status is S.AVAILABLE and cs[2].status is S.RESERVED
        assert [r.connector_id for r in res.active()] == [2]
    finally:
        await res.stop()


async def test_expiry_frees_the_connector_and_is_reported_once(store: AsyncStore) -> None:
    cs = connectors(1)
    res = Reservations(cs, store)
    res.report_ends = True
    ended: list[Reservation] = []
    res.subscribe(ended.append)
    await res.start()
    try:
        await res.reserve(request(3, 1, "A", seconds=0.3))
        assert cs[1].status is S.RESERVED
        await asyncio.sleep(0.6)
        assert shown(cs[1]) is S.AVAILABLE and not res.active()
        assert [(r.reservation_id, r.state) for r in ended] == [(3, ReservationState.EXPIRED)]
        pending = await res.unreported()
        assert [r.reservation_id for r in pending] == [3]
        await res.reported(3)
        assert await res.unreported() == []
    finally:
        await res.stop()


async def test_a_reservation_that_expired_while_the_station_was_down_ends_at_start(
    store: AsyncStore,
) -> None:
    cs = connectors(1)
    res = Reservations(cs, store)
    await res.start()
    await res.reserve(request(4, 1, "A", seconds=0.2))
    await res.stop()
    await asyncio.sleep(0.4)
    cs = connectors(1)
    again = Reservations(cs, store)
    again.report_ends = True
    await again.start()
    try:
        assert not again.active() and cs[1].status is S.AVAILABLE
        assert [r.state for r in await again.unreported()] == [ReservationState.EXPIRED]
    finally:
        await again.stop()


async def test_a_faulted_connector_removes_its_reservation(store: AsyncStore) -> None:
    cs = connectors(2)
    res = Reservations(cs, store)
    ended: list[Reservation] = []
    res.subscribe(ended.append)
    await res.start()
    try:
        await res.reserve(request(5, 1, "A"))
        cs[1].sm.go(S.FAULTED)
        for _ in range(50):
            if ended:
                break
            await asyncio.sleep(0.02)
        assert [(r.reservation_id, r.state) for r in ended] == [(5, ReservationState.REMOVED)]
        assert not res.active()
    finally:
        await res.stop()
