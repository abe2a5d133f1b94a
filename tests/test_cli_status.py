"""`chargepoint status` on a store it cannot read says so in one line, with no traceback;
with the daemon not running it reads the store: the outbox, open sessions, the local list and
the active reservations, as the daemon would find them at its next start."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chargepoint.core.authorization.local_list import (
    ListEntry,
    ListLimits,
    LocalList,
    UpdateStatus,
    UpdateType,
)
from chargepoint.core.authorization.reservations import Reservation
from chargepoint.core.authorization.tokens import AuthStatus, IdTagInfo, clock_text
from chargepoint.service.daemon import SETTING_PREFIX, STORE_FILE
from chargepoint.store import AsyncStore, ReservationRow
from tests.station_harness import STATION_ID, station_yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


def chargepoint(*args: str) -> subprocess.CompletedProcess[str]:
    """`chargepoint ARGS...` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "chargepoint", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )


def status(config: Path) -> subprocess.CompletedProcess[str]:
    return chargepoint("status", "--config", str(config))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty (0 bytes)"),
        (b"\x13\x37" * 2000, "is not an SQLite database"),
    ],
    ids=["empty", "corrupt"],
)
def test_status_on_an_unreadable_store(tmp_path: Path, content: bytes, reason: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    store = state / "chargepoint.sqlite"
    store.write_bytes(content)
    config = station_yaml(tmp_path / "station.yaml", "ws://127.0.0.1:9/ocpp", state)
    done = status(config)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"store unreadable: {store}: {reason}"), done.stderr
    assert store.read_bytes() == content  # left exactly as it was


@pytest.mark.parametrize(
    "command",
    [["run"], ["status"], ["transactions", "list"], ["control", "plug", "1"]],
    ids=["run", "status", "transactions", "control"],
)
def test_a_state_dir_that_is_a_file_is_one_line_and_exit_78(
    tmp_path: Path, command: list[str]
) -> None:
    state = tmp_path / "state"
    state.write_text("not a directory\n")
    config = station_yaml(tmp_path / "station.yaml", "ws://127.0.0.1:9/ocpp", state)
    done = chargepoint(*command, "--config", str(config))
    assert done.returncode == 78, done.stderr
    assert done.stderr == f"state directory {state}: not a directory\n"
    assert state.read_text() == "not a directory\n"


def status_json(config: Path) -> dict[str, object]:
    done = chargepoint("status", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def store_files(state: Path) -> dict[str, bytes]:
    """The store and its side files, byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(state.glob(f"{STORE_FILE}*"))}


async def active_rows(store_path: Path) -> list[ReservationRow]:
    store = await AsyncStore.open(store_path, STATION_ID)
    try:
        return await store.reservations_active()
    finally:
        await store.close()


async def a_station_that_stopped(
    store_path: Path, active_until: datetime, list_enabled: str | None
) -> None:
    """A store as the daemon leaves it: a local list version 7 with 3 entries (SendLocalList
    Full), reservation 11 on connector 2 still active, reservation 12 for any connector whose
    expiry passed while the station was down (still Accepted in the store), and
    LocalAuthListEnabled as the CSMS set it (None: never set)."""
    store = await AsyncStore.open(store_path, STATION_ID)
    try:
        accepted = IdTagInfo(AuthStatus.ACCEPTED)
        entries = [
            ListEntry("AA01", accepted),
            ListEntry("BB02", IdTagInfo(AuthStatus.BLOCKED)),
            ListEntry("CC03", IdTagInfo(AuthStatus.ACCEPTED, parent_id_tag="FLEET")),
        ]
        result = await LocalList(store).update(
            UpdateType.FULL, 7, entries, ListLimits(True, 50_000, 10_000)
        )
        assert result.status is UpdateStatus.ACCEPTED, result
        now = datetime.now(UTC)
        for reservation in (
            Reservation(11, 2, "AA01", active_until, parent_id_tag="FLEET"),
            Reservation(12, None, "CC03", now - timedelta(minutes=5)),
        ):
            await store.reservation_put(reservation.row(reported=True))
        if list_enabled is not None:  # what the daemon's Settings keep of a change
            await store.set_setting(SETTING_PREFIX + "LocalAuthListEnabled", list_enabled)
    finally:
        await store.close()


def test_status_without_the_daemon_shows_the_local_list_and_active_reservations(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    # days ahead: the line shows the date, the same in this process and in the CLI's
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    asyncio.run(a_station_that_stopped(state / STORE_FILE, until, None))
    config = station_yaml(tmp_path / "station.yaml", "ws://127.0.0.1:9/ocpp", state)
    before = store_files(state)

    done = status(config)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "daemon not running; outbox 0 waiting, 0 failed"
    assert "  local list: version 7, 3 entries" in lines
    assert f"  reservation 11: connector 2 for AA01 (group FLEET) until {clock_text(until)}" in (
        lines
    )
    assert not any("reservation 12" in line for line in lines), lines  # expired meanwhile

    data = status_json(config)
    assert data["local_list"] == {"enabled": True, "version": 7, "entries": 3}
    reservations = data["reservations"]
    assert isinstance(reservations, list)
    assert [r["id"] for r in reservations] == [11]
    assert reservations[0]["connector"] == 2
    assert reservations[0]["id_tag"] == "AA01"
    assert reservations[0]["expiry"] == until.isoformat().replace("+00:00", "Z")
    # read only: the expired reservation stays Accepted until the daemon starts and ends it
    assert store_files(state) == before
    assert [r.reservation_id for r in asyncio.run(active_rows(state / STORE_FILE))] == [12, 11]


def test_status_without_the_daemon_shows_a_local_list_the_csms_disabled(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    until = datetime.now(UTC) + timedelta(days=3)
    asyncio.run(a_station_that_stopped(state / STORE_FILE, until, "false"))
    config = station_yaml(tmp_path / "station.yaml", "ws://127.0.0.1:9/ocpp", state)

    done = status(config)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  local list: disabled (LocalAuthListEnabled false)" in lines
    assert not any(line.startswith("  local list: version") for line in lines), lines
    assert f"  reservation 11: connector 2 for AA01 (group FLEET) until {clock_text(until)}" in (
        lines
    )
    data = status_json(config)
    assert data["local_list"] == {"enabled": False, "version": 7, "entries": 3}


def test_status_without_the_daemon_when_every_reservation_expired_says_none(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    asyncio.run(a_station_that_stopped(state / STORE_FILE, datetime.now(UTC), "true"))
    config = station_yaml(tmp_path / "station.yaml", "ws://127.0.0.1:9/ocpp", state)

    done = status(config)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  local list: version 7, 3 entries" in lines
    assert "  reservations: none" in lines
    assert not any(line.startswith("  reservation ") for line in lines), lines


def test_status_without_the_daemon_leaves_an_older_store_for_the_daemon_to_migrate(
    tmp_path: Path,
) -> None:
    """A store an older version left (the software was updated while the daemon was stopped):
    `status` says so and changes nothing; migrating it is the daemon's job at its start."""
    state = tmp_path / "state"
    state.mkdir()
    store_path = state / STORE_FILE
    asyncio.run(a_station_that_stopped(store_path, datetime.now(UTC) + timedelta(days=1), None))
    with sqlite3.connect(store_path) as conn:  # as the previous schema version marks it
        older = conn.execute("PRAGMA user_version").fetchone()[0] - 1
        conn.execute(f"PRAGMA user_version = {older}")
    conn.close()
    config = station_yaml(tmp_path / "station.yaml", "ws://127.0.0.1:9/ocpp", state)
    before = store_files(state)

    done = status(config)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"store unreadable: {store_path}: ")
    assert f"schema version {older}" in done.stderr
    assert "start the daemon once to migrate it" in done.stderr
    assert store_files(state) == before
