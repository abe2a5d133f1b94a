"""A full disk under the state dir, on a real tmpfs: the store says so (StoreFull), the
station refuses new sessions, holds the signed values it has in memory (nothing sent before
it is stored), reports it (status, log, MemoryExhaustion) and recovers by itself once space
returns.

The tmpfs needs root (as here and in CI); without it the tests skip, or fail with the reason
when CHARGEPOINT_REQUIRE_TOOLS is set. The simulated meters keep their state on a bind mount
outside the tmpfs: a real meter's memory is not the controller's disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.core.disk_space import REFUSAL, DiskSpace, SpaceState
from chargepoint.store import Store, StoreFull
from tests.station_env import Env, check_signed_pair, remote_session, running_env
from tests.station_harness import wait_until
from tests.tools import REQUIRE_ENV, tools_required

TMPFS_SIZE = "16m"  # room for the store's WAL; the filler takes the rest
CORE_LOGGERS = ("chargepoint.storage", "chargepoint.station", "chargepoint.security")
RECHECK_S = 0.1  # the tests' re-check interval (the daemon's default is RECHECK_INTERVAL_S)


def _unavailable(reason: str) -> None:
    if tools_required():
        pytest.fail(f"{reason}; {REQUIRE_ENV} is set, so the tmpfs tests must run")
    pytest.skip(reason)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


@contextlib.contextmanager
def mounted(target: Path, *options: str) -> Iterator[Path]:
    """`mount OPTIONS target` for the block, unmounted after (skip/fail when it cannot)."""
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        _unavailable("mounting a tmpfs needs root")
    if shutil.which("mount") is None:
        _unavailable("mount(8) is not installed")
    done = _run("mount", *options, str(target))
    if done.returncode != 0:
        reason = f"cannot mount {' '.join(options)} at {target}: {done.stderr.strip()}"
        if "permission denied" in done.stderr.lower() or "superuser" in done.stderr.lower():
            # a container without CAP_SYS_ADMIN: no tool to install would help there
            pytest.skip(reason)
        _unavailable(reason)
    try:
        yield target
    finally:
        _run("umount", "-l", str(target))


@contextlib.contextmanager
def small_state_dir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/state on its own small tmpfs; the simulated meters' files outside it."""
    state = tmp_path / "state"
    meters = tmp_path / "meter-memory"
    meters.mkdir()
    with (
        mounted(state, "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0750", "tmpfs"),
        mounted(state / "simulated-meters", "--bind", str(meters)),
    ):
        yield state


def fill(directory: Path) -> Path:
    """Fill the file system of `directory` with a file until not one byte more fits."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    st = os.statvfs(directory)
    assert st.f_bavail == 0, f"{st.f_bavail} blocks still free"
    return filler


# ---- the store on a full disk ---------------------------------------------------------------


def test_a_full_disk_is_a_typed_error_and_the_store_writes_again_after(tmp_path: Path) -> None:
    with small_state_dir(tmp_path) as state, Store.open(state / "s.sqlite", "CP-1") as store:
        store.enqueue("before", {"n": 0})
        filler = fill(state)
        with pytest.raises(StoreFull, match="full"):
            for n in range(1, 200):  # the WAL's last page may still take a small write
                store.enqueue("while full", {"n": n, "pad": "x" * 3000})
        filler.unlink()
        store.enqueue("after", {"n": -1})
        kinds = [m.kind for m in store.pending(1000)]
        assert kinds[0] == "before" and kinds[-1] == "after"
        # a failed write left nothing half-written: every stored message reads back whole
        assert all(m.data["n"] >= -1 for m in store.pending(1000))


# ---- the state machine on its own -----------------------------------------------------------


async def test_held_writes_keep_their_order_and_wait_for_space(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with small_state_dir(tmp_path) as state:
        space = DiskSpace(state, recheck_interval_s=RECHECK_S, min_free_bytes=64 * 1024)
        events: list[tuple[str, str | None]] = []
        space.security_event = lambda kind, info: events.append((kind, info))
        written: list[str] = []
        target = state / "log"

        def writer(name: str) -> Callable[[], Awaitable[str]]:
            async def write() -> str:
                def append() -> None:
                    with target.open("a") as fh:
                        fh.write(name * 8192)
                        fh.flush()
                        os.fsync(fh.fileno())

                await asyncio.to_thread(append)
                written.append(name)
                return name

            return write

        filler = await asyncio.to_thread(fill, state)
        loop = asyncio.create_task(space.run())
        try:
            end = asyncio.create_task(space.store("end", writer("E"), signed_values=1))
            await wait_until(lambda: space.held_writes == 1, what="the end held")
            assert space.state is SpaceState.FULL and space.refuses_sessions
            await space.store_or_hold("values", writer("V"), droppable=True)
            await space.store_or_hold("event", writer("S"))
            assert space.held_writes == 3 and space.held_signed_values == 1
            assert space.describe().startswith("full since ")
            assert "1 signed value held in memory (3 writes waiting)" in space.describe()
            assert [k for k, _ in events] == ["MemoryExhaustion"]
            await asyncio.sleep(5 * RECHECK_S)
            assert not end.done() and written == []  # still full: nothing lost, nothing written
            filler.unlink()
            assert await asyncio.wait_for(end, 5) == "E"
            await wait_until(lambda: space.state is SpaceState.OK, what="ok again")
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        assert written == ["E", "V", "S"]
        assert target.read_text() == "E" * 8192 + "V" * 8192 + "S" * 8192
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 2, errors  # one when it began, one when it ended
        assert errors[0].startswith("storage full: ")
        assert errors[1].startswith("storage full no more: ")
        assert "3 writes (1 signed value) held in memory now written" in errors[1]


# ---- a station whose state dir fills during a session ------------------------------------


async def settled(env: Env) -> None:
    """The writes of the start are done: both meter clocks set (SettingSystemTime), the
    outbox sent."""
    await wait_until(
        lambda: (
            sum(
                r.payload["type"] == "SettingSystemTime"
                for r in env.csms.messages("SecurityEventNotification")
            )
            >= 2
        ),
        what="both meter clocks set",
    )
    await env.outbox_drained()


async def refused(env: Env) -> None:
    """No new session: remotely or by card; nothing is signed or sent for them."""
    starts = len(env.view.starts())
    assert await env.view.remote_start(2, "TAG-2") == "Rejected"
    code, answer = await env.control("POST", "/id-tag", {"id_tag": "TAG-3"})
    assert code == 409 and answer["result"] == f"rejected: {REFUSAL}"
    assert len(env.view.starts()) == starts


@pytest.mark.parametrize("noticed_by", ["space check", "failed write"])
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_station_survives_a_full_disk_during_a_session(
    version: str, noticed_by: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`space check`: the periodic check sees the disk full while the session charges;
    `failed write`: nothing is noticed until the session's end cannot be stored."""
    caplog.set_level(logging.INFO)
    with small_state_dir(tmp_path) as state:
        async with running_env(version, tmp_path) as env:
            daemon = await env.start()
            assert daemon.station is not None
            space = daemon.station.disk_space
            space.recheck_interval_s = RECHECK_S
            if noticed_by == "failed write":
                space.min_free_bytes = 0  # the check never finds too little free space
            space.check_soon()
            key = await env.view.meter_key(1)
            assert await env.view.remote_start(1, "TAG-1") == "Accepted"
            started = await env.view.wait_started(1)
            connector = daemon.station.connectors[1]
            await wait_until(lambda: connector.load_released, what="charging on connector 1")
            assert connector.tx is not None
            started_local_id = connector.tx.local_id
            await settled(env)

            filler = await asyncio.to_thread(fill, state)
            if noticed_by == "space check":
                await wait_until(lambda: space.refuses_sessions, what="the storage seen full")
                _, status = await env.control("GET", "/status")
                assert status["storage"].startswith("full since "), status["storage"]
                await refused(env)
                # the running session kept charging
                assert connector.load_released and connector.tx is not None

            # it ends: the signed End waits in memory, its Stop is not sent
            assert await env.view.remote_stop(started.tx_id) == "Accepted"
            await wait_until(lambda: space.held_signed_values == 1, what="the signed End held")
            assert not connector.load_released
            await refused(env)
            _, status = await env.control("GET", "/status")
            assert status["storage"].startswith("full since "), status["storage"]
            assert "1 signed value held in memory" in status["storage"], status["storage"]
            assert status["storage_detail"]["held_signed_values"] == 1
            await asyncio.sleep(10 * RECHECK_S)
            assert env.view.ends() == [], "a Stop was sent before its signed End was stored"
            assert daemon.store is not None
            row = await daemon.store.transaction(started_local_id)
            assert row is not None and row.end_ocmf is None and row.stopped_at is None
            if noticed_by == "failed write":  # the event waits behind the session's end
                memory = env.csms.messages("SecurityEventNotification")
                assert not [r for r in memory if r.payload["type"] == "MemoryExhaustion"]

            # space returns: everything held is written and delivered, by itself
            await asyncio.to_thread(filler.unlink)
            session = await env.view.wait_ended(1)
            check_signed_pair(session, key, "TAG-1")
            assert session.ends == 1 and session.reason == env.view.reasons["Remote"]
            event = await env.csms.wait_for(
                "SecurityEventNotification", lambda r: r.payload["type"] == "MemoryExhaustion"
            )
            assert "state dir full" in event.payload.get("techInfo", "")
            await wait_until(lambda: not space.refuses_sessions, what="sessions accepted again")
            _, status = await env.control("GET", "/status")
            assert status["storage"] == "ok"
            logged = [
                json.loads(line)["type"]
                for line in (state / "security.log").read_text().splitlines()
            ]
            assert "MemoryExhaustion" in logged
            # one ERROR line when it began, one when it ended, none per failed write
            errors = [
                r.getMessage()
                for r in caplog.records
                if r.levelno >= logging.ERROR and r.name.startswith(CORE_LOGGERS)
            ]
            assert len(errors) == 2, errors
            assert errors[0].startswith("storage full: ")
            assert errors[1].startswith("storage full no more: ")
            assert "(1 signed value) held in memory now written" in errors[1]

            # and a new session runs as before
            second = await remote_session(env, connector=2, id_tag="TAG-2", n=2)
            check_signed_pair(second, await env.view.meter_key(2), "TAG-2")


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_start_the_disk_cannot_record_never_charges(version: str, tmp_path: Path) -> None:
    """The disk fills unnoticed, then a start comes: the meter signs the turn-on, the store
    cannot take it, so no load is released and nothing is sent; the turn-on is switched off
    again (RCnt pairing), and once space returns the next session is billed as usual."""
    with small_state_dir(tmp_path) as state:
        async with running_env(version, tmp_path) as env:
            daemon = await env.start()
            station = daemon.station
            assert station is not None
            space = station.disk_space
            space.recheck_interval_s = RECHECK_S
            space.min_free_bytes = 0  # nothing tells the station before the write fails
            connector = station.connectors[1]
            released: list[bool] = []
            await settled(env)
            filler = await asyncio.to_thread(fill, state)
            watching = asyncio.create_task(_watch_load(connector, released))
            try:
                assert await env.view.remote_start(1, "TAG-1") == "Accepted"
                await wait_until(lambda: space.refuses_sessions, what="the failed Begin seen")
                await wait_until(lambda: connector.tx is None and not station.busy())
                await station.idle()
            finally:
                watching.cancel()
            assert not any(released), "the load was released without a stored signed Begin"
            assert env.view.starts() == [] and env.view.ends() == []
            assert daemon.store is not None
            assert await daemon.store.open_transactions() == []
            await asyncio.to_thread(filler.unlink)
            await wait_until(lambda: not space.refuses_sessions, what="sessions accepted again")
            session = await remote_session(env, connector=1, id_tag="TAG-2")
            check_signed_pair(session, await env.view.meter_key(1), "TAG-2")


async def _watch_load(connector: Any, seen: list[bool]) -> None:
    while True:
        seen.append(bool(connector.load_released))
        await asyncio.sleep(0.005)
