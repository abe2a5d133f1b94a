"""A damaged store: finding out what is wrong with it, and salvaging every readable row.

Neither touches the damaged file. Both read a snapshot, a copy of the file and its WAL in a
scratch directory (unless a running daemon holds the file: then :func:`check_store` reads the
live file read-only). :func:`salvage` builds a new store through the store's own create path
(the schema the damaged file had, migrated forward afterwards by opening it as the daemon
does) and copies each table row by row: rows are read in rowid windows that are split in
halves around an unreadable page, so one bad page costs only the rows on it. Signed records
are copied as the text they were stored as, never re-serialised. :func:`install` puts the new
store in place and keeps the damaged file beside it, byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chargepoint.store import files, schema
from chargepoint.store.errors import StoreDamaged, StoreError
from chargepoint.store.sync import Store
from chargepoint.store.values import utc_now
from chargepoint.store.wal import read_wal
from meter.proof.ocmf import OcmfFormatError, parse_ocmf

__all__ = [
    "CheckReport",
    "SalvageReport",
    "TableSalvage",
    "check_store",
    "install",
    "publish",
    "salvage",
]

SESSIONS = "transactions"
WINDOW = 256  # rowids read per query; a failing window is split in halves
MAX_LISTED = 10  # problems named one by one; the rest are counted


@dataclass
class CheckReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    version: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    signed_records: int = 0  # records that parse as OCMF
    wal_checked: bool = True

    @property
    def healthy(self) -> bool:
        return not self.problems


@dataclass
class TableSalvage:
    name: str
    copied: int = 0
    unreadable_ids: list[int] = field(default_factory=list)  # rowids that could not be read
    unreadable_unknown: bool = False  # a keyed table lost rows it cannot count
    refused: int = 0  # read, but refused by the schema (a damaged value)


@dataclass
class SalvageReport:
    source: Path
    built: Path
    version: int
    tables: dict[str, TableSalvage] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self, name: str) -> TableSalvage:
        return self.tables.get(name) or TableSalvage(name)


def _side(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


# ---- reading a damaged file ----


@contextlib.contextmanager
def _snapshot(path: Path, scratch_parent: Path | None = None) -> Iterator[sqlite3.Connection]:
    """A connection on a copy of `path` and its WAL (the -shm is rebuilt from the WAL)."""
    with tempfile.TemporaryDirectory(prefix=".chargepoint-salvage-", dir=scratch_parent) as tmp:
        copy = Path(tmp) / path.name
        try:
            shutil.copyfile(path, copy)
            if _side(path, "-wal").exists():
                shutil.copyfile(_side(path, "-wal"), _side(copy, "-wal"))
        except OSError as exc:
            raise StoreError(f"{path}: cannot copy it to read it: {exc}") from exc
        conn = _connect(files.uri(copy, "rw"), path)
        try:
            # A file shorter than its header says is refused outright unless the schema is
            # "writable": on this copy, which is only read, it lets the pages still there
            # be read and checked.
            conn.execute("PRAGMA writable_schema = ON")
            yield conn
        finally:
            conn.close()


@contextlib.contextmanager
def _live(path: Path) -> Iterator[sqlite3.Connection]:
    conn = _connect(files.uri(path, "ro"), path)
    try:
        conn.execute("PRAGMA query_only = ON")
        yield conn
    finally:
        conn.close()


def _connect(uri: str, path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=files.BUSY_TIMEOUT_S)
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA cell_size_check = ON")
    except sqlite3.Error as exc:
        raise StoreDamaged(f"{path}: SQLite cannot open it: {exc}") from exc
    return conn


def _listed(problems: list[str], what: str, items: list[str]) -> None:
    if not items:
        return
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    problems.append(f"{what}: {'; '.join(items[:MAX_LISTED])}{more}")


def _pragma_check(conn: sqlite3.Connection, pragma: str) -> list[str]:
    try:
        answer = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if answer == ["ok"] else answer


def _count(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def _cut_short(path: Path) -> str | None:
    """The file is shorter than its header says it is (when the header's size is valid)."""
    header = files._read_header(path)
    pages = int.from_bytes(header[28:32], "big")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if header[24:28] != header[92:96] or not page_size:
        return None
    held = path.stat().st_size // page_size
    if held >= pages:
        return None
    return f"the file is cut short: it holds {held} of the {pages} pages its header counts"


def _check_contents(conn: sqlite3.Connection, report: CheckReport, station_id: str) -> None:
    problems = report.problems
    quick = _pragma_check(conn, "quick_check")
    _listed(problems, "quick_check", quick)
    if quick:
        cut = _cut_short(report.path)
        if cut:
            problems.append(cut)
    if not quick:  # integrity_check repeats quick_check's work and adds the indexes
        _listed(problems, "integrity_check", _pragma_check(conn, "integrity_check(100)"))
    try:
        app_id = _count(conn, "PRAGMA application_id")
        report.version = _count(conn, "PRAGMA user_version")
        row = conn.execute("SELECT value FROM meta WHERE key = 'station_id'").fetchone()
    except sqlite3.DatabaseError as exc:
        problems.append(f"its identity is unreadable ({exc})")
        return
    if app_id != schema.APPLICATION_ID:
        problems.append(f"application_id 0x{app_id:08x} is not a chargepoint store's")
    if not 1 <= report.version <= schema.SCHEMA_VERSION:
        problems.append(
            f"schema version {report.version} (this software knows 1..{schema.SCHEMA_VERSION})"
        )
    if row is None or row[0] != station_id:
        problems.append(f"it records station {row[0] if row else None!r}, not {station_id!r}")
    counts = {
        "sessions": f"SELECT count(*) FROM {SESSIONS}",
        "outbox pending": "SELECT count(*) FROM outbox WHERE status = 'pending'",
        "settings": "SELECT count(*) FROM settings",
    }
    for name, sql in counts.items():
        try:
            report.counts[name] = _count(conn, sql)
        except sqlite3.DatabaseError as exc:
            problems.append(f"{name} unreadable ({exc})")
    bad: list[str] = []
    try:
        for local_id, begin, end in conn.execute(
            f"SELECT local_id, begin_ocmf, end_ocmf FROM {SESSIONS} ORDER BY local_id"
        ):
            for which, record in (("Begin", begin), ("End", end)):
                if record is None:
                    continue
                try:
                    parse_ocmf(record)
                except OcmfFormatError as exc:
                    bad.append(f"session {local_id}'s signed {which} ({exc})")
                else:
                    report.signed_records += 1
    except sqlite3.DatabaseError as exc:
        problems.append(f"sessions unreadable after {report.signed_records} signed records ({exc})")
    _listed(problems, "not OCMF", bad)


def check_store(path: Path, station_id: str, *, live: bool = False) -> CheckReport:
    """What is wrong with the store file `path`, without changing it. `live`: a daemon has it
    open; read it in place, read-only (its WAL is in use and is not walked)."""
    report = CheckReport(path, wal_checked=not live)
    if not path.exists():
        raise StoreError(f"no store at {path}")
    try:
        files._check_header(path, files._read_header(path))
    except StoreError as exc:
        report.problems.append(str(exc).removeprefix(f"{path} ").removeprefix(f"{path}: "))
        return report
    if not live:
        wal = read_wal(_side(path, "-wal"))
        if wal.problem is not None:
            report.problems.append(f"write-ahead log: {wal.problem}")
    try:
        with _live(path) if live else _snapshot(path) as conn:
            _check_contents(conn, report, station_id)
    except StoreDamaged as exc:
        report.problems.append(str(exc).removeprefix(f"{path}: "))
    return report


# ---- salvaging ----


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, int]]:
    """(name, position in the primary key) of each column."""
    return [(str(r[1]), int(r[5])) for r in conn.execute(f'PRAGMA table_info("{table}")')]


def _names(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _tables(conn: sqlite3.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY rowid"
    ).fetchall()
    return {str(name): str(sql or "") for name, sql in rows}


def _sequence(conn: sqlite3.Connection) -> dict[str, int]:
    try:
        return {str(n): int(s) for n, s in conn.execute("SELECT name, seq FROM sqlite_sequence")}
    except sqlite3.DatabaseError:
        return {}


def _rowid_bounds(old: sqlite3.Connection, table: str, seq: int | None) -> tuple[int, int]:
    """The rowids to look at: from the lowest readable to the highest any source names."""
    lo, hi = 1, seq or 0
    with contextlib.suppress(sqlite3.DatabaseError):
        lo = min(lo, int(old.execute(f'SELECT min(rowid) FROM "{table}"').fetchone()[0] or 1))
    try:
        hi = max(hi, int(old.execute(f'SELECT max(rowid) FROM "{table}"').fetchone()[0] or 0))
    except sqlite3.DatabaseError:
        if seq is None:  # nothing names the last row: as many as the file could hold
            pages = _count(old, "PRAGMA page_count")
            hi = lo + pages * (_count(old, "PRAGMA page_size") // 8)
    return lo, hi


def _window(old: sqlite3.Connection, select: str, a: int, b: int) -> tuple[list[Any], list[int]]:
    """Rows with rowid a..b, splitting the range around what cannot be read."""
    try:
        rows = old.execute(f"{select} WHERE rowid BETWEEN ? AND ? ORDER BY rowid", (a, b))
        return rows.fetchall(), []
    except sqlite3.DatabaseError:
        if a == b:
            return [], [a]
        mid = (a + b) // 2
        rows1, bad1 = _window(old, select, a, mid)
        rows2, bad2 = _window(old, select, mid + 1, b)
        return rows1 + rows2, bad1 + bad2


def _rowid_rows(
    old: sqlite3.Connection, table: str, cols: list[str], seq: int | None, lost: list[int]
) -> Iterator[list[Any]]:
    """Batches of (rowid, *cols) rows; rowids that could not be read are added to `lost`."""
    select = f'SELECT rowid, {_names(cols)} FROM "{table}"'
    lo, hi = _rowid_bounds(old, table, seq)
    after = lo - 1
    while after < hi:
        try:
            rows = old.execute(
                f"{select} WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, WINDOW)
            ).fetchall()
        except sqlite3.DatabaseError:
            end = min(after + WINDOW, hi)
            rows, bad = _window(old, select, after + 1, end)
            lost.extend(bad)
            yield rows
            after = end
            continue
        if not rows:
            break
        yield rows
        after = int(rows[-1][0])


def _keyed_rows(
    old: sqlite3.Connection, table: str, cols: list[str], key: list[str]
) -> tuple[list[Any], bool]:
    """All readable rows of a WITHOUT ROWID table: read from both ends up to the damage.
    Returns the rows and whether some could not be read."""
    select = f'SELECT {_names(cols)} FROM "{table}"'
    try:
        return old.execute(select).fetchall(), False
    except sqlite3.DatabaseError:
        pass
    found: dict[tuple[Any, ...], Any] = {}
    for direction in ("ASC", "DESC"):
        order = ", ".join(f'"{k}" {direction}' for k in key)
        with contextlib.suppress(sqlite3.DatabaseError):
            for row in old.execute(f"{select} ORDER BY {order}"):
                found[tuple(row[cols.index(k)] for k in key)] = row
    return list(found.values()), True


def _build(path: Path, station_id: str, version: int) -> None:
    """A new, empty store at `path` with the schema `version` the damaged file has."""
    if version == schema.SCHEMA_VERSION:
        if not files.create(path, station_id):
            raise StoreError(f"{path} appeared while the new store was being built")
        return
    os.close(files.open_fd(path, files.STORE_MODE))  # SQLite takes an empty file as new
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
        for migration in schema.MIGRATIONS[:version]:
            migration(conn)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("station_id", station_id), ("created_at", utc_now())],
        )
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    finally:
        conn.close()


def _copy_table(
    old: sqlite3.Connection,
    new: sqlite3.Connection,
    table: str,
    old_sql: str,
    sequence: dict[str, int],
    report: SalvageReport,
) -> None:
    tally = report.tables.setdefault(table, TableSalvage(table))
    old_cols = [name for name, _ in _columns(old, table)]
    new_cols = _columns(new, table)
    cols = [name for name, _ in new_cols if name in old_cols]
    dropped = [c for c in old_cols if c not in cols]
    if dropped:
        report.notes.append(f"{table}: columns {', '.join(dropped)} have no place in the new store")
    verb = "INSERT OR REPLACE" if table == "meta" else "INSERT"
    insert = f'{verb} INTO "{table}" ({_names(cols)}) VALUES '
    insert += f"({', '.join('?' * len(cols))})"

    def put(row: Any) -> None:
        try:
            new.execute(insert, tuple(row))
            tally.copied += 1
        except sqlite3.IntegrityError:
            tally.refused += 1

    if "WITHOUT ROWID" in old_sql.upper():
        key = [name for name, pk in sorted(new_cols, key=lambda c: c[1]) if pk and name in cols]
        rows, partial = _keyed_rows(old, table, cols, key or cols[:1])
        tally.unreadable_unknown = partial
        for row in rows:
            put(row)
        return
    for batch in _rowid_rows(old, table, cols, sequence.get(table), tally.unreadable_ids):
        for row in batch:
            put(row[1:])  # an INTEGER PRIMARY KEY is among the columns; others get new rowids


def salvage(source: Path, station_id: str, built: Path) -> SalvageReport:
    """Build at `built` (must not exist) a store with every readable row of `source`.

    `source` and its WAL are read from a copy and never changed. The new store is complete,
    migrated to this software's schema and checked when this returns.
    """
    files._check_header(source, files._read_header(source))  # not ours at all: refuse
    if built.exists() or built.is_symlink():
        raise StoreError(f"{built} exists; refusing to overwrite it")
    wal = read_wal(_side(source, "-wal"))
    with _snapshot(source, built.parent) as old:
        try:
            old_tables = _tables(old)
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(
                f"{source}: its table list is unreadable ({exc}); nothing can be salvaged"
            ) from exc
        try:
            version = _count(old, "PRAGMA user_version")
        except sqlite3.DatabaseError:
            version = int.from_bytes(files._read_header(source)[60:64], "big")
        if not 1 <= version <= schema.SCHEMA_VERSION:
            raise StoreError(
                f"{source} has schema version {version}; this software salvages "
                f"1..{schema.SCHEMA_VERSION} (use the software that wrote it)"
            )
        with contextlib.suppress(sqlite3.DatabaseError):
            row = old.execute("SELECT value FROM meta WHERE key = 'station_id'").fetchone()
            if row is not None and row[0] != station_id:
                raise StoreError(f"{source} belongs to station {row[0]!r}, not {station_id!r}")
        report = SalvageReport(source, built, version)
        if wal.problem is not None:
            report.notes.append(
                f"write-ahead log: {wal.problem}; the {wal.valid_frames} frames before the "
                "damage were read"
            )
        _build(built, station_id, version)
        try:
            _fill(old, old_tables, built, report)
            Store.open(built, station_id).close()  # migrates forward, checks, checkpoints
        except BaseException:
            for leftover in (built, _side(built, "-wal"), _side(built, "-shm")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            raise
    return report


def _fill(
    old: sqlite3.Connection, old_tables: dict[str, str], built: Path, report: SalvageReport
) -> None:
    sequence = _sequence(old)
    new = sqlite3.connect(built, isolation_level=None)
    try:
        new.execute("PRAGMA synchronous = FULL")
        new.execute("BEGIN IMMEDIATE")
        for table in _tables(new):
            if table.startswith("sqlite_"):
                continue
            if table not in old_tables:
                report.notes.append(f"{table}: not in the damaged store")
                continue
            _copy_table(old, new, table, old_tables[table], sequence, report)
        for table in old_tables:
            if not table.startswith("sqlite_") and table not in report.tables:
                report.notes.append(f"{table}: no such table in the new store; not copied")
        if "session_proofs" in report.tables:  # proofs of sessions that were lost
            new.execute(
                "DELETE FROM session_proofs WHERE local_id NOT IN (SELECT local_id FROM "
                f"{SESSIONS})"
            )
        for table, tally in report.tables.items():
            if "AUTOINCREMENT" not in old_tables[table].upper():
                continue
            # ids are never reused, not even those of rows that could not be read
            top = max([sequence.get(table, 0), *tally.unreadable_ids])
            new.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (top, table))
            new.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE ? > 0 AND NOT EXISTS "
                "(SELECT 1 FROM sqlite_sequence WHERE name = ?)",
                (table, top, top, table),
            )
        new.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("recovered_at", utc_now()), ("recovered_from", report.source.name)],
        )
        new.execute("COMMIT")
    except BaseException:
        if new.in_transaction:
            new.execute("ROLLBACK")
        raise
    finally:
        new.close()


# ---- putting the new store in place ----


def _keep(src: Path, dst: Path) -> None:
    """`src` also as `dst`, byte for byte (a hard link, or a copy where there are none)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        shutil.copy2(src, dst)
        with dst.open("rb") as f:
            os.fsync(f.fileno())


def publish(built: Path, output: Path) -> None:
    """The new store `built` appears at `output` (which must not exist)."""
    try:
        os.link(built, output)
    except FileExistsError:
        raise StoreError(f"{output} exists; refusing to overwrite it") from None
    except OSError:
        if output.exists():
            raise StoreError(f"{output} exists; refusing to overwrite it") from None
        os.rename(built, output)
    else:
        built.unlink()
    files.fsync_directory(output.parent)


def install(built: Path, path: Path) -> Path:
    """Replace the damaged store `path` with `built`; return where the damaged file (with
    its -wal and -shm) is kept. At every moment `path` is either the damaged file or the new
    one, and the damaged one's WAL is never next to the new file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    try:
        was = path.stat()  # the new file gets the store's mode and, as root, the old owner
        os.chmod(built, files.STORE_MODE)
        if os.geteuid() == 0:
            os.chown(built, was.st_uid, was.st_gid)
        _keep(path, aside)
        for suffix in ("-wal", "-shm"):
            if _side(path, suffix).exists():
                _keep(_side(path, suffix), _side(aside, suffix))
        files.fsync_directory(path.parent)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                _side(path, suffix).unlink()
        os.replace(built, path)
        files.fsync_directory(path.parent)
    except OSError as exc:
        raise StoreError(f"{path}: cannot put the recovered store in place: {exc}") from exc
    return aside
