"""One daemon per station: a second `chargepoint run` on the same state dir refuses to start,
names the running one and leaves it untouched; a SIGKILLed daemon leaves no stale lock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chargepoint.service.control import ControlAddress, request
from chargepoint.service.instance_lock import EXIT_ALREADY_RUNNING, AlreadyRunning, InstanceLock
from chargepoint.testcsms import TestCsms
from tests.station_harness import StationProcess, station_yaml, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def csms() -> AsyncIterator[TestCsms]:
    async with TestCsms() as server:
        yield server


def boots(csms: TestCsms) -> int:
    return len(csms.messages("BootNotification"))


def accepted_handshakes(csms: TestCsms) -> int:
    return sum(1 for h in csms.handshakes if h.status == 101)


async def test_second_daemon_on_the_same_state_dir_refuses_and_touches_nothing(
    csms: TestCsms, tmp_path: Path
) -> None:
    config = station_yaml(tmp_path / "station.yaml", csms.url, tmp_path / "state", connectors=1)
    first = StationProcess(config, tmp_path / "first.log")
    first.start()
    try:
        await wait_until(lambda: boots(csms) == 1, timeout=30, what="the first daemon's boot")
        socket = tmp_path / "state" / "control.sock"
        assert socket.exists()
        inode = socket.stat().st_ino
        connections = accepted_handshakes(csms)

        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "chargepoint", "run", "--config", str(config)],
            check=False,
            capture_output=True,
            text=True,
            timeout=20,
            cwd=REPO_ROOT,
        )
        output = second.stdout + second.stderr
        assert second.returncode == EXIT_ALREADY_RUNNING, output
        assert first.proc is not None
        assert f"pid {first.proc.pid}" in output
        assert "control.sock" in output
        assert "Traceback" not in output

        # the running daemon is untouched: same socket, still answering, one CSMS connection
        assert socket.stat().st_ino == inode
        code, status = await request(
            ControlAddress("unix:control.sock", tmp_path / "state"), "GET", "/status"
        )
        assert code == 200 and status["online"]
        await asyncio.sleep(0.5)
        assert accepted_handshakes(csms) == connections
        assert boots(csms) == 1
        assert first.proc.poll() is None
    finally:
        first.kill()

    # SIGKILL leaves no stale lock: the next daemon starts at once
    third = StationProcess(config, tmp_path / "third.log")
    third.start()
    try:
        await wait_until(lambda: boots(csms) == 2, timeout=30, what="a boot after the kill")
    finally:
        assert third.terminate() == 0, third.log_text()


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path)
    first.acquire("control unix:/x/control.sock")
    second = InstanceLock(tmp_path)
    with pytest.raises(AlreadyRunning) as refused:
        second.acquire()
    assert refused.value.holder.startswith("pid ")
    assert "control unix:/x/control.sock" in str(refused.value)
    assert not second.held
    first.release()
    second.acquire()  # free again once released
    assert second.held
    second.release()
    assert (tmp_path / "chargepoint.lock").stat().st_mode & 0o777 == 0o600
