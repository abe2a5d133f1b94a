"""Finding, checking and creating the store file without ever damaging what is there.

Opening never damages what is there: a file that is not SQLite, is corrupt, belongs to
another application or to another station raises :class:`StoreError` and is left exactly
as it was (it is inspected through its header and a read-only connection first). A new
file is built under a temporary name and linked into place only when complete.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sqlite3
import tempfile
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from chargepoint.store import schema
from chargepoint.store.errors import StoreDamaged, StoreError
from chargepoint.store.schema import APPLICATION_ID, apply_migrations
from chargepoint.store.values import utc_now

log = logging.getLogger("chargepoint.store")

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100
APPLICATION_ID_OFFSET = 68
BUSY_TIMEOUT_S = 10.0

# The modes of every file and directory the daemon writes, whatever the umask: secrets (keys,
# passwords, tokens) and the store are the service user's alone, the rest may be read by its
# group (logs, certificates, job files, exports), nothing by others.
SECRET_MODE: Final = 0o600
FILE_MODE: Final = 0o640
PRIVATE_DIR_MODE: Final = 0o700
DIR_MODE: Final = 0o750
STORE_MODE: Final = SECRET_MODE


def make_directory(path: Path, mode: int = DIR_MODE) -> Path:
    """`path` as a directory: the directories created here (parents too) get `mode`
    exactly; an existing one keeps its mode less what `mode` does not grant (narrowed,
    never widened)."""
    missing: list[Path] = []
    probe_path = path
    while not probe_path.exists() and probe_path != probe_path.parent:
        missing.append(probe_path)
        probe_path = probe_path.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in missing:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(created, mode)
    if not missing:
        narrow(path, mode)
    return path


def narrow(path: Path, mode: int) -> None:
    """Take away the permission bits of `path` that `mode` does not grant (never adds any;
    a file of another user is left as it is)."""
    try:
        current = os.stat(path).st_mode & 0o7777
        extra = current & 0o777 & ~mode  # setuid/setgid/sticky bits are kept
        if extra:
            os.chmod(path, current & ~extra)
    except PermissionError:
        pass


def open_fd(path: Path, mode: int = FILE_MODE, *, append: bool = False) -> int:
    """A descriptor of `path` for writing (truncated, or appended to with `append`) with
    exactly `mode`, whatever the umask and whatever mode an existing file had."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_text(
    path: Path, mode: int = FILE_MODE, *, append: bool = False, encoding: str = "utf-8"
) -> io.TextIOWrapper:
    """`path` opened for writing text, with exactly `mode` (see open_fd)."""
    return os.fdopen(open_fd(path, mode, append=append), "a" if append else "w", encoding=encoding)


def open_binary(path: Path, mode: int = FILE_MODE, *, append: bool = False) -> io.BufferedWriter:
    """`path` opened for writing bytes, with exactly `mode` (see open_fd)."""
    return os.fdopen(open_fd(path, mode, append=append), "ab" if append else "wb")


def restrict_store_files(path: Path) -> None:
    """The store and its -wal/-shm files readable by the service user only (STORE_MODE);
    for stores an older version left wider. Call it before the store is opened for
    writing: SQLite gives new -wal/-shm files the mode of the database."""
    for each in [path, *_side_files(path)]:
        with contextlib.suppress(FileNotFoundError):
            narrow(each, STORE_MODE)


def _read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(HEADER_SIZE)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the store: {exc.strerror or exc}") from exc


def _check_header(path: Path, header: bytes) -> None:
    """Refuse what is not one of our SQLite files, before SQLite touches it."""
    if not header:
        raise StoreError(
            f"{path} is empty (0 bytes), not a chargepoint store; "
            "refusing to use it (move it away to start a new store)"
        )
    if len(header) < HEADER_SIZE or not header.startswith(SQLITE_MAGIC):
        raise StoreError(
            f"{path} is not an SQLite database (corrupt or another kind of file); "
            "refusing to use it"
        )
    app_id = int.from_bytes(header[APPLICATION_ID_OFFSET : APPLICATION_ID_OFFSET + 4], "big")
    if app_id != APPLICATION_ID:
        raise StoreError(
            f"{path} is an SQLite database of another application "
            f"(application_id 0x{app_id:08x}, expected 0x{APPLICATION_ID:08x}); refusing to use it"
        )


def uri(path: Path, mode: str) -> str:
    return f"file:{urllib.parse.quote(str(path.absolute()))}?mode={mode}"


def _side_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]


def probe(path: Path, station_id: str, *, current_only: bool = False) -> int:
    """Inspect an existing file read-only; return its schema version or raise StoreError.
    `current_only`: an older schema is refused too (for a reader that must not migrate).

    Nothing is written to the file. A read-only connection may create empty -wal and -shm
    files next to it; when the file is refused, those it created are removed again.
    """
    _check_header(path, _read_header(path))
    existed = {p: p.exists() for p in _side_files(path)}
    refused = True
    try:
        version = _probe_sqlite(path, station_id)
        if current_only and version != schema.SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}, this software reads "
                f"{schema.SCHEMA_VERSION}; start the daemon once to migrate it"
            )
        refused = False
        return version
    finally:
        if refused:
            for side, was_there in existed.items():
                try:
                    if not was_there and side.exists():
                        side.unlink()
                except OSError:
                    pass


def _probe_sqlite(path: Path, station_id: str) -> int:
    try:
        conn = sqlite3.connect(uri(path, "ro"), uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the store read-only: {exc}") from exc
    try:
        try:
            problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(f"{path} is corrupt ({exc}); refusing to use it") from exc
        if problems != ["ok"]:
            first = problems[0] if problems else "no answer"
            raise StoreDamaged(
                f"{path} is corrupt (quick_check: {first}"
                f"{f' and {len(problems) - 1} more' if len(problems) > 1 else ''}); "
                "refusing to use it"
            )
        try:
            app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot read the store's identity: {exc}") from exc
        if app_id != APPLICATION_ID:
            raise StoreError(
                f"{path} is an SQLite database of another application "
                f"(application_id 0x{app_id:08x}); refusing to use it"
            )
        if version < 1:
            raise StoreError(f"{path} has no chargepoint schema (version 0); refusing to use it")
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}, newer than this software knows "
                f"({schema.SCHEMA_VERSION}); refusing to use it (update the software)"
            )
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'station_id'").fetchone()
        except sqlite3.Error as exc:
            raise StoreDamaged(
                f"{path}: cannot read the station id ({exc}); damaged store"
            ) from exc
        if row is None:
            raise StoreDamaged(f"{path} records no station id; damaged store, refusing to use it")
        if row[0] != station_id:
            raise StoreError(
                f"{path} belongs to station {row[0]!r}, not {station_id!r}; refusing to use it "
                "(use that station's config or another state directory)"
            )
        return version
    finally:
        conn.close()


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` survive a power loss (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _set_aside_orphans(path: Path) -> None:
    """-wal/-shm files without their database would be replayed into a new file of the
    same name and corrupt it: rename them out of the way (never delete them)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for side in _side_files(path):
        if side.exists():
            aside = side.with_name(f"{side.name}.orphan-{stamp}")
            os.rename(side, aside)
            log.warning("%s has no database next to it; moved it to %s", side, aside)


def create(path: Path, station_id: str) -> bool:
    """Build a new store under a temporary name and link it into place.

    Returns False when another file appeared at `path` meanwhile (it is then left alone).
    """
    try:
        if not path.parent.is_dir():
            make_directory(path.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store: {exc}") from exc
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: the file system does not support WAL ({mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                apply_migrations(conn, 0)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("station_id", station_id), ("created_at", utc_now())],
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()  # last connection: checkpoints the WAL into the file, removes it
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        header = _read_header(tmp)
        if int.from_bytes(header[APPLICATION_ID_OFFSET : APPLICATION_ID_OFFSET + 4], "big") != (
            APPLICATION_ID
        ):
            raise StoreError(f"{path}: the new store was not written completely")
        _set_aside_orphans(path)
        try:
            os.link(tmp, path)  # never replaces an existing file
        except FileExistsError:
            return False
        except OSError:
            # File systems without hard links: rename, after checking once more.
            if path.exists() or path.is_symlink():
                return False
            os.rename(tmp, path)
        fsync_directory(path.parent)
        log.info(
            "created store %s for station %s (schema %d)", path, station_id, schema.SCHEMA_VERSION
        )
        return True
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot create the store: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store: {exc}") from exc
    finally:
        for leftover in [tmp, *_side_files(tmp)]:
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                log.warning("cannot remove the temporary file %s", leftover)
