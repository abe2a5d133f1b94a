"""The store as the daemon relies on it: nothing lost, nothing rewritten, nothing foreign
touched."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    AsyncStore,
    Store,
    StoreError,
    utc_now,
)
from chargepoint.store import schema as store_schema

ROOT = Path(__file__).resolve().parent.parent
STATION = "CP-TEST-1"
BEGIN_OCMF = (
    'OCMF|{"FV":"1.0","GI":"BAUER BSM-WS36A-H01-1311-0000","GS":"ZÄHLER-1","PG":"T12",'
    '"RD":[{"TM":"2026-11-21T10:00:00,000+0000 S","RV":1234.5,"RI":"01-00:98.08.00.FF",'
    '"RU":"kWh","ST":"G"}]}|{"SA":"ECDSA-secp256r1-SHA256","SD":"3045022100ab"}'
)
END_OCMF = BEGIN_OCMF.replace("T12", "T13").replace("1234.5", "1240.1")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "chargepoint.sqlite"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    s = Store(path, STATION)
    yield s
    s.close()


def start(store: Store, connector_id: int = 1, messages: Any = None, **overrides: Any) -> int:
    args: dict[str, Any] = {
        "connector_id": connector_id,
        "evse_id": f"DE*EXA*E00{connector_id}",
        "id_tag": "TAG-0001",
        "meter_serial": "1311000042",
        "public_key_hex": "3059301306072a8648ce3d020106082a8648ce3d03010703420004aa",
        "started_at": "2026-11-21T10:00:00.000Z",
        "meter_start_wh": 1234500,
        "begin_ocmf": BEGIN_OCMF,
        "begin_fields": json.dumps({"rcnt": 12, "serial": "1311000042"}),
        "messages": [("transaction_started", {"connector_id": connector_id})]
        if messages is None
        else messages,
    }
    args.update(overrides)
    return store.start_transaction(**args)


def end(store: Store, local_id: int, messages: Any = None, **overrides: Any) -> None:
    args: dict[str, Any] = {
        "stopped_at": "2026-11-21T11:00:00.000Z",
        "meter_stop_wh": 1240100,
        "end_ocmf": END_OCMF,
        "end_fields": json.dumps({"rcnt": 13}),
        "stop_reason": "Local",
        "stop_id_tag": "TAG-0001",
        "unsigned_end_reason": None,
        "messages": [("transaction_ended", {"local_id": local_id})]
        if messages is None
        else messages,
    }
    args.update(overrides)
    store.end_transaction(local_id, **args)


def files(directory: Path) -> dict[str, bytes]:
    """Every file in a directory with its bytes: to prove nothing was touched."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# ---- basics ----------------------------------------------------------------------------


def test_utc_now_is_iso_utc_with_milliseconds() -> None:
    now = utc_now()
    assert len(now) == len("2026-11-21T10:00:00.123Z")
    assert now.endswith("Z") and now[10] == "T" and now[19] == "."


def test_new_store_is_created_with_its_directory_and_identity(path: Path) -> None:
    assert not path.parent.exists()
    with Store(path, STATION) as s:
        conn = s._connection()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    header = path.read_bytes()[:100]
    assert header[18] == header[19] == 2  # WAL, recorded in the file itself
    # no temporary files left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["chargepoint.sqlite"]


def test_store_refuses_an_empty_station_id(path: Path) -> None:
    with pytest.raises(StoreError):
        Store(path, "")


# ---- sessions --------------------------------------------------------------------------


def test_session_round_trip(store: Store) -> None:
    local_id = start(store)
    row = store.transaction(local_id)
    assert row is not None and row.open
    assert row.begin_ocmf == BEGIN_OCMF  # byte for byte, non-ASCII included
    assert row.connector_id == 1 and row.meter_start_wh == 1234500
    assert json.loads(row.begin_fields or "") == {"rcnt": 12, "serial": "1311000042"}
    assert store.open_transactions() == [row]

    store.set_csms_transaction_id(local_id, 4711)
    end(store, local_id)
    row = store.transaction(local_id)
    assert row is not None and not row.open
    assert row.csms_transaction_id == 4711
    assert row.end_ocmf == END_OCMF and row.meter_stop_wh == 1240100
    assert row.stop_reason == "Local" and row.unsigned_end_reason is None
    assert store.open_transactions() == []
    assert store.transaction(999) is None


def test_session_without_signed_end_keeps_the_reason(store: Store) -> None:
    local_id = start(store)
    end(
        store,
        local_id,
        end_ocmf=None,
        end_fields=None,
        stop_reason="PowerLoss",
        stop_id_tag=None,
        unsigned_end_reason="meter unreachable after power loss",
    )
    row = store.transaction(local_id)
    assert row is not None
    assert row.end_ocmf is None and row.unsigned_end_reason == "meter unreachable after power loss"
    assert row.begin_ocmf == BEGIN_OCMF


def test_transactions_newest_first_with_filters(store: Store) -> None:
    ids = []
    for day, connector in ((20, 1), (21, 2), (22, 1)):
        local_id = start(store, connector, started_at=f"2026-11-{day}T10:00:00.000Z")
        end(store, local_id, stopped_at=f"2026-11-{day}T11:00:00.000Z")
        ids.append(local_id)
    assert [r.local_id for r in store.transactions()] == ids[::-1]
    assert [r.local_id for r in store.transactions(limit=1)] == [ids[2]]
    assert [r.local_id for r in store.transactions(since="2026-11-21")] == [ids[2], ids[1]]
    assert [r.local_id for r in store.transactions(connector_id=1)] == [ids[2], ids[0]]
    assert [r.local_id for r in store.transactions(since="2026-11-21", connector_id=1)] == [ids[2]]


def test_ending_twice_or_an_unknown_session_is_refused(store: Store) -> None:
    local_id = start(store)
    end(store, local_id)
    before = store.transaction(local_id)
    with pytest.raises(StoreError, match="already ended"):
        end(store, local_id, meter_stop_wh=1, end_ocmf="OCMF|forged", stop_reason="Other")
    assert store.transaction(local_id) == before
    assert len(store.pending()) == 2  # the refused end appended no message
    with pytest.raises(StoreError, match="does not exist"):
        end(store, 42)
    with pytest.raises(StoreError, match="does not exist"):
        store.set_csms_transaction_id(42, 1)


def test_one_open_session_per_connector(store: Store) -> None:
    first = start(store, 1)
    start(store, 2)
    with pytest.raises(StoreError, match="already has an open session"):
        start(store, 1)
    end(store, first)
    start(store, 1)


def test_bad_input_is_refused_before_anything_is_stored(store: Store) -> None:
    with pytest.raises(StoreError, match="started_at"):
        start(store, started_at="2026-11-21 10:00:00")
    with pytest.raises(StoreError, match="begin_fields"):
        start(store, begin_fields="{not json")
    local_id = start(store)
    with pytest.raises(StoreError, match="both or neither"):
        end(store, local_id, end_fields=None)
    assert store.transaction(local_id) is not None
    assert store.transactions() == store.open_transactions()


def test_start_and_its_messages_are_one_transaction(store: Store) -> None:
    messages = [
        ("transaction_started", {"connector_id": 1}),
        ("begin_signed", {"value": object()}),  # fails after the session and one message
    ]
    with pytest.raises(StoreError, match="begin_signed"):
        start(store, messages=messages)
    assert store.transactions() == []
    assert store.pending() == [] and store.outbox_length() == 0
    # the next session and message get the numbers the failed write would have used
    local_id = start(store)
    assert local_id == 1
    assert [m.seq for m in store.pending()] == [1]


def test_end_and_its_messages_are_one_transaction(store: Store) -> None:
    local_id = start(store)
    messages = [("transaction_ended", {"ok": 1}), ("meter_values", {"nan": float("nan")})]
    with pytest.raises(StoreError, match="meter_values"):
        end(store, local_id, messages=messages)
    row = store.transaction(local_id)
    assert row is not None and row.open and row.end_ocmf is None
    assert [m.kind for m in store.pending()] == ["transaction_started"]
    end(store, local_id)  # still possible, exactly once
    assert [m.kind for m in store.pending()] == ["transaction_started", "transaction_ended"]


def test_signed_rows_are_never_rewritten(store: Store) -> None:
    local_id = start(store)
    conn = store._connection()
    with pytest.raises(sqlite3.IntegrityError, match="never rewritten"):
        conn.execute(
            "UPDATE transactions SET begin_ocmf = 'OCMF|x' WHERE local_id = ?", (local_id,)
        )
    with pytest.raises(sqlite3.IntegrityError, match="never rewritten"):
        conn.execute("UPDATE transactions SET meter_start_wh = 0 WHERE local_id = ?", (local_id,))
    end(store, local_id)
    with pytest.raises(sqlite3.IntegrityError, match="written once"):
        conn.execute("UPDATE transactions SET end_ocmf = 'OCMF|x' WHERE local_id = ?", (local_id,))
    with pytest.raises(sqlite3.IntegrityError, match="never rewritten"):
        conn.execute("UPDATE outbox SET data = '{}' WHERE seq = 1")
    row = store.transaction(local_id)
    assert row is not None and row.begin_ocmf == BEGIN_OCMF and row.end_ocmf == END_OCMF


# ---- outbox ----------------------------------------------------------------------------


def test_outbox_keeps_order_and_state(store: Store) -> None:
    local_id = start(store, messages=[("started", {"n": 0})])
    seqs = [store.enqueue("meter_values", {"n": n}, local_id) for n in range(1, 6)]
    seqs.append(store.enqueue("status", {"n": 6}))
    assert seqs == list(range(2, 8))
    assert [m.data["n"] for m in store.pending()] == list(range(7))
    assert [m.seq for m in store.pending(limit=3)] == [1, 2, 3]
    head = store.next_pending()
    assert head is not None and head.seq == 1 and head.kind == "started"
    assert head.local_tx_id == local_id and head.status == "pending" and head.attempts == 0
    assert store.outbox_length() == 7

    store.mark_sent(1, response={"transactionId": 4711, "idTagInfo": {"status": "Accepted"}})
    sent = store.message(1)
    assert sent is not None and sent.status == "sent" and sent.sent_at is not None
    assert sent.response == {"transactionId": 4711, "idTagInfo": {"status": "Accepted"}}
    assert store.next_pending() is not None and store.next_pending().seq == 2  # type: ignore[union-attr]

    assert store.record_attempt(2, "timeout") == 1
    assert store.record_attempt(2, "connection closed") == 2
    msg = store.message(2)
    assert msg is not None and msg.attempts == 2 and msg.last_error == "connection closed"
    assert msg.status == "pending"

    store.mark_failed(2, "gave up after 2 attempts")
    failed = store.failed_messages()
    assert [(m.seq, m.status, m.last_error) for m in failed] == [
        (2, "failed", "gave up after 2 attempts")
    ]
    assert failed[0].data == {"n": 1}
    assert [m.seq for m in store.pending()] == [3, 4, 5, 6, 7]
    assert store.outbox_length() == 5
    for unknown in (store.mark_sent, lambda seq: store.mark_failed(seq, "x")):
        with pytest.raises(StoreError, match="does not exist"):
            unknown(99)
    with pytest.raises(StoreError, match="does not exist"):
        store.record_attempt(99, "x")


def test_enqueue_refuses_an_unknown_session_and_bad_data(store: Store) -> None:
    with pytest.raises(StoreError):
        store.enqueue("meter_values", {}, local_tx_id=12)
    with pytest.raises(StoreError):
        store.enqueue("meter_values", {"when": time})
    with pytest.raises(StoreError):
        store.enqueue("", {})
    assert store.outbox_length() == 0


# ---- settings and the authorization cache ------------------------------------------------


def test_settings_round_trip(store: Store) -> None:
    assert store.get_setting("ocpp.HeartbeatInterval") is None
    store.set_setting("ocpp.HeartbeatInterval", "300")
    store.set_setting("ocpp.HeartbeatInterval", "600")
    store.set_setting("ocpp.MeterValueSampleInterval", "60")
    store.set_setting("availability.1", "Inoperative")
    store.set_setting("ocpp%x", "like-wildcards are not special")
    assert store.get_setting("ocpp.HeartbeatInterval") == "600"
    assert store.settings("ocpp.") == {
        "ocpp.HeartbeatInterval": "600",
        "ocpp.MeterValueSampleInterval": "60",
    }
    assert len(store.settings()) == 4


def test_authorization_cache_round_trip(store: Store) -> None:
    assert store.cache_get("TAG-1") is None
    store.cache_put("TAG-1", "Accepted", "2027-01-01T00:00:00.000Z", "PARENT")
    store.cache_put("TAG-2", "Blocked", None, None)
    store.cache_put("TAG-1", "Expired", None, "PARENT")
    entry = store.cache_get("TAG-1")
    assert entry is not None
    assert (entry.id_tag, entry.status, entry.expiry, entry.parent_id_tag) == (
        "TAG-1",
        "Expired",
        None,
        "PARENT",
    )
    assert entry.updated_at.endswith("Z")
    store.cache_clear()
    assert store.cache_get("TAG-1") is None and store.cache_get("TAG-2") is None


# ---- reopening ---------------------------------------------------------------------------


def test_reopen_after_close_keeps_everything(path: Path) -> None:
    with Store(path, STATION) as s:
        done = start(s, 1)
        end(s, done)
        running = start(s, 2)
        s.set_csms_transaction_id(running, 7)
        s.mark_sent(1, response={"transactionId": 6})
        s.mark_failed(2, "rejected")
        s.enqueue("status", {"connector_id": 2})
        s.set_setting("ocpp.HeartbeatInterval", "300")
        s.cache_put("TAG-1", "Accepted", None, None)
        before = (
            s.transactions(),
            s.open_transactions(),
            s.pending(),
            s.failed_messages(),
            s.message(1),
            s.settings(),
            s.cache_get("TAG-1"),
        )
    with Store(path, STATION) as s:
        after = (
            s.transactions(),
            s.open_transactions(),
            s.pending(),
            s.failed_messages(),
            s.message(1),
            s.settings(),
            s.cache_get("TAG-1"),
        )
        assert after == before
        assert s.enqueue("status", {}) == 5  # numbering goes on


def test_closed_store_refuses_calls(path: Path) -> None:
    s = Store(path, STATION)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.outbox_length()


# ---- refusing files that are not ours ----------------------------------------------------


def _refused(path: Path, station: str = STATION, match: str = "") -> None:
    before = files(path.parent)
    with pytest.raises(StoreError, match=match) as info:
        Store(path, station)
    assert "\n" not in str(info.value)
    assert files(path.parent) == before  # byte for byte, and no new side files


def test_foreign_sqlite_file_is_refused_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    conn = raw(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE photos (name TEXT)")
    conn.execute("INSERT INTO photos VALUES ('holiday.jpg')")
    conn.close()
    _refused(path, match="another application")


def test_plain_sqlite_file_without_application_id_is_refused_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    conn = raw(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.close()
    _refused(path, match="another application")


def test_random_bytes_are_refused_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(8192))
    _refused(path, match="not an SQLite database")


def test_empty_file_is_refused_untouched(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.touch()
    _refused(path, match="empty")


def _filled_store(path: Path) -> None:
    with Store(path, STATION) as s:
        for n in range(60):
            local_id = start(s, messages=[("started", {"n": n, "pad": "x" * 400})])
            end(s, local_id)


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1, 0.002])
def test_truncated_store_is_refused_untouched(path: Path, keep: float) -> None:
    _filled_store(path)
    data = path.read_bytes()
    assert len(data) > 40_000
    path.write_bytes(data[: int(len(data) * keep)])
    _refused(path, match="corrupt|not an SQLite")


def test_store_with_a_damaged_page_is_refused_untouched(path: Path) -> None:
    _filled_store(path)
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page : 4 * page] = os.urandom(page)
    path.write_bytes(bytes(data))
    _refused(path, match="corrupt")


def test_another_stations_store_is_refused_untouched(path: Path) -> None:
    _filled_store(path)
    _refused(path, station="CP-OTHER", match="belongs to station 'CP-TEST-1', not 'CP-OTHER'")
    with Store(path, STATION) as s:  # and it still works for its own station
        assert len(s.transactions(limit=1000)) == 60


def test_another_stations_store_with_a_hot_wal_is_refused_untouched(path: Path) -> None:
    """A file left by a power loss (committed data only in the WAL) stays as it is."""
    path.parent.mkdir(parents=True)
    copy = path.parent / "copy"
    copy.mkdir()
    with Store(path, STATION) as s:
        start(s)
        for name in ("chargepoint.sqlite", "chargepoint.sqlite-wal"):
            (copy / name).write_bytes((path.parent / name).read_bytes())
    _refused(copy / "chargepoint.sqlite", station="CP-OTHER", match="belongs to station")
    with Store(copy / "chargepoint.sqlite", STATION) as s:  # its own station finds the session
        assert len(s.open_transactions()) == 1


def test_newer_schema_is_refused_untouched(path: Path) -> None:
    Store(path, STATION).close()
    conn = raw(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    _refused(path, match="newer than this software")


# ---- migrations ------------------------------------------------------------------------


def _add_version_2(
    monkeypatch: pytest.MonkeyPatch, migration: Callable[[sqlite3.Connection], None]
) -> None:
    monkeypatch.setattr(store_schema, "MIGRATIONS", (*store_schema.MIGRATIONS, migration))
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)


def test_older_schema_is_migrated_forward(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(path, STATION) as s:
        local_id = start(s)

    def to_2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE transactions ADD COLUMN verification TEXT")
        conn.execute("UPDATE transactions SET verification = 'unchecked'")

    _add_version_2(monkeypatch, to_2)
    with Store(path, STATION) as s:
        conn = s._connection()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert conn.execute("SELECT verification FROM transactions").fetchall() == [("unchecked",)]
        row = s.transaction(local_id)
        assert row is not None and row.begin_ocmf == BEGIN_OCMF  # added columns do not disturb


def test_failed_migration_leaves_the_old_schema(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(path, STATION) as s:
        start(s)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE transactions ADD COLUMN verification TEXT")
        conn.execute("THIS IS NOT SQL")

    _add_version_2(monkeypatch, broken)
    with pytest.raises(StoreError):
        Store(path, STATION)
    monkeypatch.undo()
    with Store(path, STATION) as s:
        conn = s._connection()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [r[1] for r in conn.execute("PRAGMA table_info(transactions)")]
        assert "verification" not in columns
        assert len(s.open_transactions()) == 1


def test_orphaned_wal_is_set_aside_not_replayed(path: Path) -> None:
    with Store(path, STATION) as s:
        start(s)
        wal = (path.parent / "chargepoint.sqlite-wal").read_bytes()
    path.unlink()
    (path.parent / "chargepoint.sqlite-wal").write_bytes(wal)
    with Store(path, STATION) as s:
        assert s.transactions() == []
        assert s._connection().execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert [p.name for p in path.parent.glob("chargepoint.sqlite-wal.orphan-*")]


# ---- the async facade --------------------------------------------------------------------


def test_async_store_mirrors_every_store_method() -> None:
    public = {
        name
        for name, member in inspect.getmembers(Store, inspect.isfunction)
        if not name.startswith("_") and name not in ("open", "close")
    }
    for name in public:
        sync = inspect.signature(getattr(Store, name))
        mirrored = getattr(AsyncStore, name)
        assert inspect.iscoroutinefunction(mirrored), name
        assert inspect.signature(mirrored).parameters == sync.parameters, name


async def test_async_round_trip_and_close(path: Path) -> None:
    store = await AsyncStore.open(path, STATION)
    local_id = await store.start_transaction(
        connector_id=1,
        evse_id="DE*EXA*E001",
        id_tag="TAG",
        meter_serial="1311000042",
        public_key_hex="aa",
        started_at=utc_now(),
        meter_start_wh=10,
        begin_ocmf=BEGIN_OCMF,
        begin_fields="{}",
        messages=[("started", {"a": 1})],
    )
    await store.end_transaction(
        local_id,
        stopped_at=utc_now(),
        meter_stop_wh=20,
        end_ocmf=END_OCMF,
        end_fields="{}",
        stop_reason="Remote",
        stop_id_tag=None,
        unsigned_end_reason=None,
        messages=[("ended", {"b": 2})],
    )
    row = await store.transaction(local_id)
    assert row is not None and row.end_ocmf == END_OCMF
    head = await store.next_pending()
    assert head is not None and head.kind == "started"
    await store.mark_sent(head.seq, response={"transactionId": 1})
    assert await store.outbox_length() == 1
    with pytest.raises(StoreError, match="already ended"):
        await store.end_transaction(
            local_id,
            stopped_at=utc_now(),
            meter_stop_wh=20,
            end_ocmf=None,
            end_fields=None,
            stop_reason="Other",
            stop_id_tag=None,
            unsigned_end_reason="x",
            messages=[],
        )
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.outbox_length()
    async with await AsyncStore.open(path, STATION) as again:
        assert [r.local_id for r in await again.transactions()] == [local_id]


async def test_async_open_refusal_raises_store_error(path: Path) -> None:
    await asyncio.to_thread(path.parent.mkdir, parents=True)
    await asyncio.to_thread(path.write_bytes, b"not a database at all" * 10)
    with pytest.raises(StoreError, match="not an SQLite database"):
        await AsyncStore.open(path, STATION)


async def test_async_calls_keep_their_order_under_gather(path: Path) -> None:
    async with await AsyncStore.open(path, STATION) as store:
        seqs = await asyncio.gather(*(store.enqueue("meter_values", {"n": n}) for n in range(300)))
        assert seqs == list(range(1, 301))
        pending = await store.pending(limit=1000)
        assert [m.data["n"] for m in pending] == list(range(300))
        # a mix of writes and reads keeps its order too
        results = await asyncio.gather(
            store.set_setting("k", "1"),
            store.get_setting("k"),
            store.set_setting("k", "2"),
            store.get_setting("k"),
        )
        assert list(results) == [None, "1", None, "2"]


async def test_async_writes_do_not_block_the_event_loop(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every write takes 3 ms longer, as on a slow SD card: 200 writes take at least 0.6 s.
    threads: set[int] = set()
    original = Store._write

    def slow_write(self: Store, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        threads.add(threading.get_ident())
        time.sleep(0.003)
        return original(self, fn)

    monkeypatch.setattr(Store, "_write", slow_write)
    async with await AsyncStore.open(path, STATION) as store:
        ticks: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        began = time.monotonic()
        await asyncio.gather(*(store.enqueue("meter_values", {"n": n}) for n in range(200)))
        elapsed = time.monotonic() - began
        stop.set()
        await task
        assert await store.outbox_length() == 200
    assert elapsed >= 0.6
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) >= elapsed / 0.005 / 3  # kept ticking all along
    assert max(gaps) < elapsed / 2  # never stalled (a blocked loop would wait out all writes)
    assert len(threads) == 1 and threading.get_ident() not in threads  # one worker thread


# ---- power loss --------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from chargepoint.store import Store, utc_now

    store = Store(sys.argv[1], sys.argv[2])
    n = 0
    while True:
        local_id = store.start_transaction(
            connector_id=1, evse_id="E1", id_tag="TAG", meter_serial="S", public_key_hex="aa",
            started_at=utc_now(), meter_start_wh=n, begin_ocmf="OCMF|{}|{}", begin_fields="{}",
            messages=[("started", {"n": n}), ("begin_signed", {"n": n, "pad": "x" * 300})],
        )
        store.enqueue("meter_values", {"n": n}, local_id)
        store.end_transaction(
            local_id, stopped_at=utc_now(), meter_stop_wh=n + 1, end_ocmf="OCMF|{}|{}",
            end_fields="{}", stop_reason="Local", stop_id_tag=None, unsigned_end_reason=None,
            messages=[("ended", {"n": n})],
        )
        n += 1
        print(n, flush=True)
    """
)


def test_sigkill_during_a_burst_of_writes_leaves_a_consistent_store(
    path: Path, tmp_path: Path
) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    confirmed = 0
    recovered: set[int] = set()
    # The kill lands at different points of a session's three writes: before, inside, after
    # a commit (a write cycle takes about a millisecond).
    for kill_after, delay in ((25, 0.0), (30, 0.0004), (35, 0.0009), (40, 0.0015), (45, 0.0025)):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path), STATION],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        seen = 0
        while seen < kill_after:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"writer stopped: {proc.communicate()[1]}")
            seen = int(line)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)  # in the middle of the next session's writes
        proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        confirmed += seen

        with Store(path, STATION) as s:  # opens: identity and quick_check pass
            conn = s._connection()
            assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            seqs = [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
            assert seqs == list(range(1, len(seqs) + 1))  # contiguous: no torn rows
            sessions = s.transactions(limit=100_000)
            ended = [r for r in sessions if not r.open]
            assert len(ended) >= confirmed  # everything a call returned for is there
            kinds: dict[int, list[str]] = {}
            for local_id, kind in conn.execute("SELECT local_tx_id, kind FROM outbox ORDER BY seq"):
                kinds.setdefault(local_id, []).append(kind)
            for row in sessions:
                got = kinds[row.local_id]
                if row.open:  # killed after the start, maybe after the enqueue
                    assert got in (
                        ["started", "begin_signed"],
                        ["started", "begin_signed", "meter_values"],
                    )
                elif row.local_id in recovered:
                    assert got in (
                        ["started", "begin_signed", "ended"],
                        ["started", "begin_signed", "meter_values", "ended"],
                    )
                else:
                    assert got == ["started", "begin_signed", "meter_values", "ended"]
            # a session the kill left open is ended once, as the daemon does on boot
            for row in s.open_transactions():
                recovered.add(row.local_id)
                end(
                    s,
                    row.local_id,
                    messages=[("ended", {"recovered": True})],
                    stop_reason="PowerLoss",
                    end_ocmf=None,
                    end_fields=None,
                    unsigned_end_reason="killed",
                )
            confirmed = len(s.transactions(limit=100_000))


# ---- transactions that open before their signed Begin or close after their End ----------


def open_tx(store: Store, connector_id: int = 1, id_tag: str = "") -> int:
    return store.open_transaction(
        connector_id=connector_id,
        evse_id=f"DE*EXA*E00{connector_id}",
        id_tag=id_tag,
        opened_at="2026-11-21T09:59:00.000Z",
        messages=[("TransactionStarted", {"connector_id": connector_id, "begin": None})],
    )


def begin(store: Store, local_id: int) -> None:
    store.begin_transaction(
        local_id,
        meter_serial="1311000042",
        public_key_hex="3059301306072a8648ce3d020106082a8648ce3d03010703420004aa",
        started_at="2026-11-21T10:00:00.000Z",
        meter_start_wh=1234500,
        begin_ocmf=BEGIN_OCMF,
        begin_fields=json.dumps({"rcnt": 12}),
        messages=[("TransactionBeginSigned", {"connector_id": 1})],
    )


def test_transaction_opened_at_plug_in_is_authorized_begun_and_ended(store: Store) -> None:
    local_id = open_tx(store)
    row = store.transaction(local_id)
    assert row is not None and row.open and not row.signed and row.id_tag == ""
    assert start_fails(store)  # one open transaction per connector, begun or not
    store.authorize_transaction(local_id, "TAG-0001", [("TransactionAuthorized", {})])
    with pytest.raises(StoreError, match="already has the id tag"):
        store.authorize_transaction(local_id, "TAG-0002", [])
    begin(store, local_id)
    with pytest.raises(StoreError, match="already has its signed begin"):
        begin(store, local_id)
    end(store, local_id)
    row = store.transaction(local_id)
    assert row is not None and not row.open and row.signed and row.id_tag == "TAG-0001"
    assert row.opened_at == "2026-11-21T09:59:00.000Z" and row.closed_at == row.stopped_at
    kinds = [m.kind for m in store.pending() if m.local_tx_id == local_id]
    assert kinds == [
        "TransactionStarted",
        "TransactionAuthorized",
        "TransactionBeginSigned",
        "transaction_ended",
    ]
    assert [store.message_index(m.seq, local_id) for m in store.pending()] == [0, 1, 2, 3]


def start_fails(store: Store) -> bool:
    try:
        start(store)
    except StoreError:
        return True
    return False


def test_transaction_closed_before_charging_keeps_its_reason_and_no_values(store: Store) -> None:
    local_id = open_tx(store, id_tag="TAG-0001")
    with pytest.raises(StoreError, match="never began"):
        end(store, local_id)
    store.close_transaction(
        local_id,
        closed_at="2026-11-21T10:01:00.000Z",
        stop_reason="Timeout",
        stop_id_tag=None,
        messages=[("TransactionEnded", {"begin": None})],
    )
    row = store.transaction(local_id)
    assert row is not None and not row.open and row.stop_reason == "Timeout"
    assert row.begin_ocmf is None and row.stopped_at is None and row.meter_stop_wh is None
    assert store.open_transactions() == []
    with pytest.raises(StoreError, match="already closed"):
        begin(store, local_id)
    start(store)  # the connector is free again


def test_transaction_outliving_its_charging_is_closed_once(store: Store) -> None:
    local_id = start(store)
    end(store, local_id, close=False, stop_reason="Local")
    row = store.transaction(local_id)
    assert row is not None and row.open and not row.charging and row.stop_reason == "Local"
    assert start_fails(store)  # the EV is still plugged in: no second transaction
    store.close_transaction(
        local_id,
        closed_at="2026-11-21T11:05:00.000Z",
        stop_reason="EVDisconnected",
        stop_id_tag=None,
        messages=[("TransactionEnded", {})],
    )
    row = store.transaction(local_id)
    assert row is not None and not row.open and row.closed_at == "2026-11-21T11:05:00.000Z"
    assert row.stop_reason == "Local"  # why charging stopped is kept
    assert row.end_ocmf == END_OCMF
    with pytest.raises(StoreError, match="already closed"):
        store.close_transaction(
            local_id,
            closed_at="2026-11-21T11:06:00.000Z",
            stop_reason="Other",
            stop_id_tag=None,
            messages=[],
        )


def test_closing_a_charging_transaction_is_refused(store: Store) -> None:
    local_id = start(store)
    with pytest.raises(StoreError, match="is charging"):
        store.close_transaction(
            local_id,
            closed_at="2026-11-21T11:06:00.000Z",
            stop_reason="Other",
            stop_id_tag=None,
            messages=[],
        )


def test_signed_begin_and_identity_cannot_be_rewritten_in_sql(store: Store) -> None:
    local_id = open_tx(store)
    begin(store, local_id)
    conn = store._connection()
    for statement in (
        "UPDATE transactions SET begin_ocmf = 'x'",
        "UPDATE transactions SET opened_at = '2026-01-01T00:00:00.000Z'",
        "UPDATE transactions SET connector_id = 2",
    ):
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute(statement)
    store.authorize_transaction(local_id, "TAG-1", [])
    with pytest.raises(sqlite3.DatabaseError, match="written once"):
        conn.execute("UPDATE transactions SET id_tag = 'TAG-2'")


def test_version_1_store_is_migrated_with_its_sessions_and_ids(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:1])
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", 1)
    Store(path, STATION).close()
    conn = sqlite3.connect(path)
    columns = (
        "connector_id, evse_id, id_tag, meter_serial, public_key_hex, started_at,"
        " meter_start_wh, begin_ocmf, begin_fields"
    )
    values = "1, 'E1', 'TAG', '1311', '3059aa', '2026-11-21T10:00:00.000Z', 100, ?, '{}'"
    with conn:
        conn.execute(f"INSERT INTO transactions ({columns}) VALUES ({values})", (BEGIN_OCMF,))
        conn.execute(
            "UPDATE transactions SET stopped_at = '2026-11-21T11:00:00.000Z', "
            "meter_stop_wh = 200, stop_reason = 'Local' WHERE local_id = 1"
        )
        conn.execute(f"INSERT INTO transactions ({columns}) VALUES ({values})", (BEGIN_OCMF,))
        conn.execute(
            "INSERT INTO outbox (kind, local_tx_id, data, created_at) "
            "VALUES ('TransactionStarted', 2, '{}', '2026-11-21T10:00:00.000Z')"
        )
        conn.execute(
            "INSERT INTO transactions (connector_id, evse_id, id_tag, meter_serial, "
            "public_key_hex, started_at, meter_start_wh, begin_ocmf, begin_fields, stopped_at, "
            "meter_stop_wh, stop_reason) VALUES (2, 'E2', 'T', 'S', 'K', "
            "'2026-11-21T10:00:00.000Z', 1, 'O', '{}', '2026-11-21T10:00:01.000Z', 1, 'Local')"
        )
        conn.execute("DELETE FROM transactions WHERE local_id = 3")
    conn.close()
    monkeypatch.undo()
    with Store(path, STATION) as s:
        conn = s._connection()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        ended, running = s.transaction(1), s.transaction(2)
        assert ended is not None and not ended.open
        assert ended.closed_at == ended.stopped_at and ended.opened_at == ended.started_at
        assert running is not None and running.open and running.begin_ocmf == BEGIN_OCMF
        assert [r.local_id for r in s.open_transactions()] == [2]
        assert s.pending()[0].local_tx_id == 2
        end(s, 2)
        assert start(s) == 4  # the id of a removed session is never handed out again
