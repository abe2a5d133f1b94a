"""A store damaged on disk (cut short, a page zeroed, garbage in its write-ahead log): the
daemon refuses to start on it and names the way out, `store check` says what is wrong,
`store recover` salvages every readable session with its signed records byte for byte and
keeps the damaged file aside, untouched."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from chargepoint.cli.main import main
from chargepoint.config import EXIT_CONFIG
from chargepoint.proof.sessions import proven_sessions
from chargepoint.service.daemon import STORE_FILE
from chargepoint.service.instance_lock import EXIT_ALREADY_RUNNING, InstanceLock
from chargepoint.store import Store
from chargepoint.store.wal import read_wal
from tests.signed_store import METER_SERIAL, STATION_ID, SignedStation, signed_station

REPO_ROOT = Path(__file__).resolve().parent.parent
SESSIONS = 120
PENDING = 5
PAGE = 4096


@dataclass(frozen=True)
class Built:
    config: Path
    state: Path
    records: dict[int, tuple[str, str | None]]  # local id -> signed Begin, End as stored


def _records(db: Path) -> dict[int, tuple[str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT local_id, begin_ocmf, end_ocmf FROM transactions").fetchall()
    finally:
        conn.close()
    return {int(i): (b, e) for i, b, e in rows}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[SignedStation, Path]:
    """120 signed sessions on two connectors, their proofs, a pinned key, settings and
    pending messages; closed cleanly (no WAL)."""
    tmp = tmp_path_factory.mktemp("template")
    station = signed_station(tmp, SESSIONS, connectors=(1, 2))
    db = tmp / "state" / STORE_FILE
    store = Store.open(db, STATION_ID)
    try:
        store.pin_meter_key(1, METER_SERIAL, station.key_hex, "test")
        for n in range(3):
            store.set_setting(f"ocpp.Key{n}", f"value {n}")
        for n in range(PENDING):
            store.enqueue("MeterValues", {"n": n, "pad": "x" * 500}, station.ids[n])
        assert len(list(proven_sessions(store, store.transactions(limit=SESSIONS)))) == SESSIONS
    finally:
        store.close()
    return station, tmp


def _copy(template: tuple[SignedStation, Path], tmp: Path) -> Built:
    station, src = template
    shutil.copytree(src, tmp, dirs_exist_ok=True)
    config = tmp / "station.yaml"
    config.write_text(station.config.read_text().replace(str(src), str(tmp)))
    state = tmp / "state"
    return Built(config, state, _records(state / STORE_FILE))


def _truncate(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: (len(data) // PAGE // 2) * PAGE])


def _zero_a_session_page(db: Path) -> None:
    """Zero one leaf page of the sessions table, in the middle of it."""
    conn = sqlite3.connect(db)
    try:
        pages = [
            int(p)
            for (p,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'transactions' AND pagetype = 'leaf' "
                "ORDER BY pageno"
            )
        ]
    finally:
        conn.close()
    page = pages[len(pages) // 2]
    data = bytearray(db.read_bytes())
    data[(page - 1) * PAGE : page * PAGE] = bytes(PAGE)
    db.write_bytes(bytes(data))


def _with_wal(built: Built, garbage_frame: int | None) -> int:
    """Leave the store as a SIGKILL would, with 10 committed messages still in its WAL, and
    garbage over one frame's page (counted from 0; -1: the last). Returns the frames."""
    db = built.state / STORE_FILE
    keep = built.state.parent / "killed"
    keep.mkdir()
    store = Store.open(db, STATION_ID)
    try:
        for n in range(10):
            store.enqueue("StatusNotification", {"n": n}, None)
        shutil.copyfile(db, keep / STORE_FILE)
        shutil.copyfile(db.with_name(STORE_FILE + "-wal"), keep / (STORE_FILE + "-wal"))
    finally:
        store.close()
    for name in (STORE_FILE, STORE_FILE + "-wal"):
        shutil.copyfile(keep / name, built.state / name)
    wal = built.state / (STORE_FILE + "-wal")
    frames = read_wal(wal).frames
    assert read_wal(wal).valid_frames == frames >= 20
    if garbage_frame is not None:
        frame = garbage_frame % frames
        data = bytearray(wal.read_bytes())
        at = 32 + frame * (24 + PAGE) + 24 + 100
        data[at : at + 200] = bytes(range(200))
        wal.write_bytes(bytes(data))
    return frames


def _files(state: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in sorted(state.iterdir()) if p.name.startswith(STORE_FILE)
    }


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def _run_daemon(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chargepoint", "run", "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )


def _assert_refused(built: Built, problem: str) -> None:
    before = _files(built.state)
    result = _run_daemon(built.config)
    output = result.stdout + result.stderr
    assert result.returncode == EXIT_CONFIG, output
    lines = [line for line in output.splitlines() if "store recover" in line]
    assert len(lines) == 1, output
    assert str(built.state / STORE_FILE) in lines[0]
    assert problem in lines[0]
    assert f"chargepoint store recover --config {built.config}" in lines[0]
    assert "Traceback" not in output
    # nothing touched, nothing new: no empty store was started in its place
    assert _files(built.state) == before


DAMAGE = {"truncated": _truncate, "zeroed page": _zero_a_session_page}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_file_is_refused_checked_and_salvaged(
    damage: str,
    template: tuple[SignedStation, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built = _copy(template, tmp_path)
    db = built.state / STORE_FILE
    code, out = _cli(["store", "check", "--config", str(built.config)], capsys)
    assert code == 0, out
    assert f"sessions {SESSIONS}, outbox pending {PENDING}, settings 3" in out
    assert f"{2 * SESSIONS} signed records parse as OCMF" in out

    DAMAGE[damage](db)
    damaged = db.read_bytes()
    _assert_refused(built, "corrupt")

    code, out = _cli(["store", "check", "--config", str(built.config)], capsys)
    assert code == 1, out
    assert "DAMAGED" in out and "malformed" in out
    assert f"chargepoint store recover --config {built.config}" in out
    assert db.read_bytes() == damaged

    code, out = _cli(["store", "recover", "--config", str(built.config)], capsys)
    assert code == 0, out
    asides = sorted(built.state.glob(f"{STORE_FILE}.damaged-*"))
    assert [p.name for p in asides] == [asides[0].name]
    assert asides[0].read_bytes() == damaged  # kept byte for byte
    assert f"the damaged file is kept as {asides[0]}" in out

    salvaged = _records(db)
    lost = sorted(set(built.records) - set(salvaged))
    assert set(salvaged) <= set(built.records)
    for local_id, records in salvaged.items():  # the signed records, byte for byte
        assert records == built.records[local_id]
    verified = len(salvaged)
    lost_part = f"{len(lost)} lost"
    assert f"sessions: {len(salvaged)} salvaged ({verified} verified), {lost_part}" in out
    assert "every salvaged session's signed records prove what they proved before" in out
    if damage == "zeroed page":  # one page of sessions, nothing else
        assert 0 < len(lost) < 15 and len(salvaged) + len(lost) == SESSIONS
        assert f"messages: {PENDING} salvaged, 0 lost" in out
        assert "settings 3" in out and "meter_keys 1" in out
    else:  # the second half of the file is gone
        assert salvaged and lost

    # the new store is healthy, opens as the daemon opens it, and exports what it salvaged
    code, out = _cli(["store", "check", "--config", str(built.config)], capsys)
    assert code == 0, out
    assert f"sessions {len(salvaged)}," in out
    target = tmp_path / "log.csv"
    export = ["transactions", "export", "--config", str(built.config), "--format", "csv"]
    code, out = _cli([*export, "-o", str(target)], capsys)
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == len(salvaged)
    assert {r["verification"] for r in rows} == {"verified"}
    # a new session never takes the id of one that was lost
    store = Store.open(db, STATION_ID)
    try:
        conn = sqlite3.connect(db)
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'transactions'")
        assert int(seq.fetchone()[0]) >= max(built.records)
        conn.close()
    finally:
        store.close()


def test_garbage_in_the_wal_is_refused_and_the_rest_salvaged(
    template: tuple[SignedStation, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = _copy(template, tmp_path)
    _with_wal(built, garbage_frame=1)
    before = _files(built.state)
    # what happened before: SQLite read the WAL up to the garbage and dropped the rest
    _assert_refused(built, "write-ahead log")

    code, out = _cli(["store", "check", "--config", str(built.config)], capsys)
    assert code == 1, out
    assert "write-ahead log: frame 2 of" in out and "commits after it would be lost" in out

    code, out = _cli(["store", "recover", "--config", str(built.config)], capsys)
    assert code == 0, out
    aside = next(built.state.glob(f"{STORE_FILE}.damaged-*[0-9Z]"))
    assert aside.read_bytes() == before[STORE_FILE]
    assert aside.with_name(aside.name + "-wal").read_bytes() == before[STORE_FILE + "-wal"]
    assert (
        not (built.state / (STORE_FILE + "-wal")).exists()
        or read_wal(built.state / (STORE_FILE + "-wal")).problem is None
    )
    assert f"sessions: {SESSIONS} salvaged ({SESSIONS} verified), 0 lost" in out
    assert "write-ahead log: frame 2 of" in out
    assert _records(built.state / STORE_FILE) == built.records
    code, out = _cli(["store", "check", "--config", str(built.config)], capsys)
    assert code == 0, out


def test_a_torn_last_frame_is_a_crash_not_damage(
    template: tuple[SignedStation, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A write cut short by a power loss leaves a broken frame at the WAL's end: SQLite
    rightly ignores that uncommitted tail, and so does the check."""
    built = _copy(template, tmp_path)
    _with_wal(built, garbage_frame=-1)
    code, out = _cli(["store", "check", "--config", str(built.config)], capsys)
    assert code == 0, out
    store = Store.open(built.state / STORE_FILE, STATION_ID)
    try:
        assert store.outbox_length() == PENDING + 9
    finally:
        store.close()


def test_recover_refuses_while_the_daemon_runs_and_can_write_elsewhere(
    template: tuple[SignedStation, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = _copy(template, tmp_path)
    db = built.state / STORE_FILE
    _zero_a_session_page(db)
    damaged = db.read_bytes()
    lock = InstanceLock(built.state)
    lock.acquire("test daemon")
    try:
        code, out = _cli(["store", "recover", "--config", str(built.config)], capsys)
        # while it runs, check reads the live file read-only
        check_code, check_out = _cli(["store", "check", "--config", str(built.config)], capsys)
    finally:
        lock.release()
    assert code == EXIT_ALREADY_RUNNING, out
    assert "another chargepoint daemon is running" in out
    assert check_code == 1 and "DAMAGED" in check_out and "malformed" in check_out
    assert db.read_bytes() == damaged and not list(built.state.glob("*.damaged-*"))

    output = tmp_path / "salvaged.sqlite"
    code, out = _cli(
        ["store", "recover", "--config", str(built.config), "--output", str(output)], capsys
    )
    assert code == 0, out
    assert f"{db} was left as it is" in out
    assert db.read_bytes() == damaged and not list(built.state.glob("*.damaged-*"))
    salvaged = _records(output)
    assert 0 < len(salvaged) < SESSIONS
    assert all(built.records[i] == r for i, r in salvaged.items())
    code, out = _cli(
        ["store", "recover", "--config", str(built.config), "--output", str(output)], capsys
    )
    assert code == 1 and "exists; refusing to overwrite it" in out
