"""Power loss at random points: the daemon (with its embedded simulated meters, which lose
power with it) runs sessions on two connectors against the test CSMS, and is killed with
SIGKILL at seeded random instants and restarted. Afterwards the CSMS's log is audited
(tests/delivery_audit.py). Used by tests/test_fault_kills.py (a CI sample) and
benchmarks/faults.py (the full run)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chargepoint.service.control import ControlAddress, request
from chargepoint.testcsms import CallErrorReply, StationNotConnected, TestCsms
from tests.delivery_audit import Audit, audit
from tests.ocpp_views import VIEWS, View
from tests.station_harness import STATION_ID, StationProcess, station_yaml

BOOT_TIMEOUT_S = 30.0
QUIET_TIMEOUT_S = 60.0


@dataclass
class KillRun:
    version: str
    seed: int
    kills: int = 0
    starts_requested: int = 0
    stops_requested: int = 0
    boot_seconds: list[float] = field(default_factory=list)
    settle_seconds: float = 0.0
    audit: Audit = field(default_factory=Audit)

    @property
    def worst_recovery_s(self) -> float:
        return max(self.boot_seconds, default=0.0)


class KillBench:
    def __init__(self, version: str, seed: int, tmp: Path, sign_delay: float = 0.2) -> None:
        self.version = version
        self.rng = random.Random(seed)
        self.tmp = tmp
        self.sign_delay = sign_delay
        self.run = KillRun(version, seed)
        self.csms = TestCsms(heartbeat_interval=300)
        self.view: View = VIEWS[version](self.csms)
        self.proc: StationProcess | None = None
        self.address = ControlAddress("unix:control.sock", tmp / "state")
        self._tags = 0

    async def __aenter__(self) -> KillBench:
        await self.csms.start()
        cfg = station_yaml(
            self.tmp / "station.yaml",
            self.csms.url,
            self.tmp / "state",
            sign_delay=self.sign_delay,
            connectors=2,
            csms={"ocpp_version": self.version, "call_timeout": 3},
            ev={"plug_in_delay": 0.1},
        )
        self.proc = StationProcess(cfg, self.tmp / "daemon.log")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.proc is not None and self.proc.proc.poll() is None:
            self.proc.terminate()
        await self.csms.stop()

    async def boot(self) -> float:
        """Start the daemon; seconds until the CSMS accepted its boot."""
        assert self.proc is not None
        boots = len(self.csms.messages("BootNotification"))
        t0 = time.monotonic()
        self.proc.start()
        deadline = t0 + BOOT_TIMEOUT_S
        while True:
            booted = [
                r for r in self.csms.messages("BootNotification")[boots:] if self.csms.answered(r)
            ]
            if booted and self.csms.is_connected(STATION_ID):
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise TimeoutError(f"no boot within {BOOT_TIMEOUT_S} s\n{self.log_tail()}")
            await asyncio.sleep(0.02)

    def log_tail(self) -> str:
        return self.proc.log_text()[-3000:] if self.proc is not None else ""

    async def _call(self, coro: Any) -> str:
        try:
            return str(await coro)
        except (StationNotConnected, TimeoutError, CallErrorReply, ConnectionError) as exc:
            return type(exc).__name__

    async def act(self) -> None:
        """One random operation of a CSMS: start a session somewhere, or stop one."""
        open_sessions = [s for s in self.view.sessions() if s.ends == 0]
        if open_sessions and self.rng.random() < 0.45:
            session = self.rng.choice(open_sessions)
            self.run.stops_requested += 1
            await self._call(self.view.remote_stop(session.tx_id))
        else:
            self._tags += 1
            self.run.starts_requested += 1
            connector = self.rng.choice((1, 2))
            await self._call(self.view.remote_start(connector, f"KILL-{self._tags}"))

    async def kill_cycle(self) -> None:
        """A few operations, a kill at a random instant, a restart."""
        assert self.proc is not None
        for _ in range(self.rng.randint(1, 3)):
            await self.act()
            await asyncio.sleep(self.rng.uniform(0.0, 0.7))
        self.proc.kill()
        self.run.kills += 1
        await asyncio.sleep(self.rng.uniform(0.0, 0.2))  # the controller is off
        self.run.boot_seconds.append(await self.boot())

    async def status(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, TimeoutError):
            _, data = await request(self.address, "GET", "/status")
            return data
        return {}

    async def settle(self) -> None:
        """Stop what still runs and wait until every message reached the CSMS."""
        t0 = time.monotonic()
        deadline = t0 + QUIET_TIMEOUT_S
        while True:
            data = await self.status()
            running = [c for c in data.get("connectors", []) if c["transaction"] is not None]
            for c in running:
                with contextlib.suppress(OSError, TimeoutError):
                    await request(self.address, "POST", f"/connectors/{c['id']}/stop", {})
            if data and not running and data["outbox"] == 0 and data["online"]:
                self.run.settle_seconds = time.monotonic() - t0
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"station not quiet: {data}\n{self.log_tail()}")
            await asyncio.sleep(0.2)


async def run_kills(
    version: str, seed: int, kills: int, tmp: Path, sign_delay: float = 0.2
) -> KillRun:
    async with KillBench(version, seed, tmp, sign_delay) as bench:
        bench.run.boot_seconds.append(await bench.boot())
        keys = {n: await bench.view.meter_key(n) for n in (1, 2)}
        for _ in range(kills):
            await bench.kill_cycle()
        await bench.settle()
        await asyncio.sleep(0.3)  # late duplicates would show now
        bench.run.audit = audit(bench.view, keys)
        return bench.run
