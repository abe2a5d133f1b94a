"""Every file the daemon writes gets its mode from the daemon, not from the umask: a full
session (tests/full_session.py) with umask 000 leaves nothing under the state directory that
others may read or anyone but the service user may write; secrets, keys and the store are the
service user's alone; a CLI export gets an explicit mode too."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from chargepoint.core.security_events import SecurityEvents
from chargepoint.service.logsetup import LogFileHandler
from chargepoint.store.files import make_directory, open_binary, restrict_store_files
from tests.full_session import run_full_session, umask

FILE_MODES = {0o600, 0o640}
DIRECTORY_MODES = {0o700, 0o750}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_a_full_session_with_umask_000_leaves_no_file_open_to_others(
    tmp_path: Path,
) -> None:
    session = await run_full_session(tmp_path, "2.0.1", mask=0o000)
    state = session.state
    assert mode(state) == 0o750
    found: dict[str, int] = {}
    wrong: list[str] = []
    # what is there while the daemon runs (the store's -wal and -shm, the control socket)
    # and what it leaves behind
    after = {p: p.lstat().st_mode for p in state.rglob("*")}
    for path, st_mode in sorted({**session.live, **after}.items()):
        rel = str(path.relative_to(state))
        found[rel] = stat.S_IMODE(st_mode)
        if stat.S_ISSOCK(st_mode):
            if found[rel] & 0o007:
                wrong.append(f"{rel} (socket) {found[rel]:o}")
            continue
        allowed = DIRECTORY_MODES if stat.S_ISDIR(st_mode) else FILE_MODES
        if found[rel] not in allowed:
            wrong.append(f"{rel} {found[rel]:o}")
    assert not wrong, wrong
    # the session wrote what the issue lists: store, keys, certificates, logs, job files
    expected = {
        "chargepoint.sqlite": 0o600,
        "chargepoint.sqlite-wal": 0o600,
        "chargepoint.sqlite-shm": 0o600,
        "security.log": 0o640,
        "logs/chargepoint.log": 0o640,
        "secrets/csms-password": 0o600,
        "certificates/station/credentials.pem": 0o600,
        "firmware/history.jsonl": 0o640,
    }
    seen = {rel: found.get(rel) for rel in expected}
    missing = [rel for rel, m in seen.items() if m is None]
    assert not missing, (missing, sorted(found))
    assert seen == expected
    for rel, m in found.items():
        if rel.startswith("chargepoint.sqlite") or rel.endswith(".key"):
            assert m == 0o600, (rel, oct(m))
        if rel.startswith(("secrets", "certificates/station", "simulated-meters")):
            assert m in (0o600, 0o700), (rel, oct(m))
    assert any(rel.startswith("certificates/csms-root/") for rel in found), sorted(found)
    assert any(rel.startswith("firmware/installed/") for rel in found), sorted(found)
    assert session.export is not None and mode(session.export) == 0o640


def test_the_helpers_set_modes_whatever_the_umask(tmp_path: Path) -> None:
    with umask(0):
        deep = make_directory(tmp_path / "a" / "b" / "c")
        with open_binary(deep / "f") as f:
            f.write(b"x")
        existing = deep / "secret"
        existing.write_bytes(b"old")
        existing.chmod(0o666)
        with open_binary(existing, 0o600) as f:
            f.write(b"y")
        wide = tmp_path / "wide"
        wide.mkdir(mode=0o777)
        wide.chmod(0o777)
        make_directory(wide, 0o700)
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o750] * 3
    assert mode(deep / "f") == 0o640 and mode(existing) == 0o600  # an existing file too
    assert mode(wide) == 0o700  # an existing directory is narrowed, never widened


def test_an_older_store_and_its_side_files_are_narrowed(tmp_path: Path) -> None:
    store = tmp_path / "chargepoint.sqlite"
    for p in (store, tmp_path / "chargepoint.sqlite-wal", tmp_path / "chargepoint.sqlite-shm"):
        p.write_bytes(b"")
        p.chmod(0o664)
    restrict_store_files(store)
    assert {mode(p) for p in tmp_path.iterdir()} == {0o600}


@pytest.mark.parametrize("existing", [False, True])
async def test_logs_and_the_security_log_get_their_mode(tmp_path: Path, existing: bool) -> None:
    log_file = tmp_path / "chargepoint.log"
    if existing:
        log_file.write_text("old\n")
        log_file.chmod(0o666)
    with umask(0):
        handler = LogFileHandler(log_file, maxBytes=100, backupCount=2, encoding="utf-8")
        for n in range(20):
            handler.emit(_record(f"line {n} " + "x" * 20))
        handler.close()

        class Outbox:
            async def enqueue(self, kind: str, data: object, local_tx_id: int | None = None) -> int:
                return 1

        events = SecurityEvents(tmp_path / "sec", Outbox())
        await events.record("StartupOfTheDevice")
    assert log_modes(tmp_path) == [0o640] * 3  # the current file and two rotated ones
    assert mode(tmp_path / "sec") == 0o750 and mode(tmp_path / "sec" / "security.log") == 0o640


def log_modes(directory: Path) -> list[int]:
    return [mode(p) for p in sorted(directory.glob("chargepoint.log*"))]


def _record(text: str) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, text, None, None)
