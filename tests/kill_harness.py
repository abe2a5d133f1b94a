"""Power loss at random points: the daemon (with its embedded simulated meters, which lose
power with it) runs sessions on two connectors against the test CSMS, which also starts
firmware updates, log uploads and certificate renewals at seeded moments (tests/kill_jobs.py);
the daemon is killed with SIGKILL at seeded instants and restarted. Each kill is recorded with
the steps it landed in (session steps per connector, tests/kill_steps.py, and job steps: what
the CSMS last saw). Afterwards the CSMS's log is audited (tests/delivery_audit.py for the
transaction messages, tests/kill_jobs.py for the jobs and the certificate files). Used by
tests/test_fault_kills.py (a CI sample) and benchmarks/faults.py (the full run)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chargepoint.service.control import ControlAddress, request
from chargepoint.service.daemon import EXIT_RESTART
from chargepoint.testcsms import CallErrorReply, StationNotConnected, TestCsms
from tests.delivery_audit import Audit, audit
from tests.file_servers import FileServer
from tests.kill_jobs import JOB_KINDS, JOB_STEPS, Job, JobAudit, Jobs
from tests.kill_steps import SESSION_STEPS, SessionSteps
from tests.ocpp_views import VIEWS, View
from tests.station_harness import STATION_ID, StationProcess, station_yaml

BOOT_TIMEOUT_S: Final = 30.0
QUIET_TIMEOUT_S: Final = 60.0
JOBS_TIMEOUT_S: Final = 40.0
JOB_CHANCE: Final = 0.25  # per kill and job kind not running
AIM_CHANCE: Final = 0.6  # a kill aimed at a running job
AIM_TIMEOUT_S: Final = 1.5
COVER_SPARE: Final = 2  # kills kept per job kind that no kill has landed in yet
CONNECTORS: Final = (1, 2)
ALL_STEPS: Final = (*(f"session: {s}" for s in SESSION_STEPS), *JOB_STEPS)


@dataclass
class Kill:
    index: int
    steps: list[str]
    boot_s: float = 0.0


@dataclass
class KillRun:
    version: str
    seed: int
    kills: int = 0
    starts_requested: int = 0
    stops_requested: int = 0
    firmware_restarts: int = 0  # the daemon exited after an installation and was started again
    boot_seconds: list[float] = field(default_factory=list)
    settle_seconds: float = 0.0
    cycle_seconds: float = 0.0  # wall time of the kill cycles (without the final settling)
    crashes: list[str] = field(default_factory=list)  # the daemon exited by itself, unasked
    kill_log: list[Kill] = field(default_factory=list)
    audit: Audit = field(default_factory=Audit)
    jobs: JobAudit = field(default_factory=JobAudit)

    @property
    def worst_recovery_s(self) -> float:
        return max(self.boot_seconds, default=0.0)

    @property
    def mean_recovery_s(self) -> float:
        return sum(self.boot_seconds) / len(self.boot_seconds) if self.boot_seconds else 0.0

    @property
    def per_kill_s(self) -> float:
        return self.cycle_seconds / self.kills if self.kills else 0.0

    def steps(self) -> Counter[str]:
        """Kills per step (a kill lands in one step per connector and running job)."""
        counts: Counter[str] = Counter(dict.fromkeys(ALL_STEPS, 0))
        for kill in self.kill_log:
            counts.update(kill.steps)
        return counts

    def problems(self) -> list[str]:
        return [*self.crashes, *self.audit.problems, *self.jobs.problems]

    def kinds_without_kill(self) -> list[str]:
        """The job kinds no kill has landed in yet."""
        landed = {step.split(": ")[0] for kill in self.kill_log for step in kill.steps}
        return [kind for kind in JOB_KINDS if kind not in landed]


class KillBench:
    def __init__(
        self, version: str, seed: int, tmp: Path, server: FileServer, sign_delay: float = 0.2
    ) -> None:
        self.version = version
        self.rng = random.Random(seed)
        self.tmp = tmp
        self.sign_delay = sign_delay
        self.run = KillRun(version, seed)
        self.csms = TestCsms(heartbeat_interval=300)
        self.view: View = VIEWS[version](self.csms)
        self.steps = SessionSteps(self.csms, version, CONNECTORS)
        self.jobs = Jobs(self.csms, version, self.rng, tmp, server)
        self.proc: StationProcess | None = None
        self.state_dir = tmp / "state"
        self.address = ControlAddress("unix:control.sock", self.state_dir)
        self._tags = 0

    async def __aenter__(self) -> KillBench:
        await self.csms.start()
        cfg = station_yaml(
            self.tmp / "station.yaml",
            self.csms.url,
            self.state_dir,
            sign_delay=self.sign_delay,
            connectors=len(CONNECTORS),
            csms={"ocpp_version": self.version, "call_timeout": 3},
            ev={"plug_in_delay": 0.1},
        )
        self.jobs.configure(cfg, self.state_dir)
        self.proc = StationProcess(cfg, self.tmp / "daemon.log")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.jobs.close()
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
            code = self.proc.proc.poll() if self.proc.proc is not None else None
            if code is not None and code != EXIT_RESTART:
                raise RuntimeError(f"the daemon exited with {code} at start\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no boot within {BOOT_TIMEOUT_S} s\n{self.log_tail()}")
            await asyncio.sleep(0.02)

    def log_tail(self) -> str:
        return self.proc.log_text()[-3000:] if self.proc is not None else ""

    async def ensure_running(self) -> None:
        """A daemon that exited by itself is started again, as systemd would: after a
        firmware installation (EXIT_RESTART) that is its job; any other exit is a crash."""
        assert self.proc is not None and self.proc.proc is not None
        code = self.proc.proc.poll()
        if code is not None:
            await self.exited(code)

    async def exited(self, code: int) -> None:
        if code == EXIT_RESTART:
            self.run.firmware_restarts += 1
        else:
            self.run.crashes.append(
                f"the daemon exited by itself with {code} (seed {self.run.seed})\n{self.log_tail()}"
            )
        self.run.boot_seconds.append(await self.boot())

    async def pause(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            await self.ensure_running()
            await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))

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
            if await self._call(self.view.remote_stop(session.tx_id)) == "Accepted":
                connector = self.steps.connector_of(session.payloads)
                if connector is not None:
                    self.steps.command(connector, "stop requested")
        else:
            self._tags += 1
            self.run.starts_requested += 1
            connector = self.rng.choice(CONNECTORS)
            answer = await self._call(self.view.remote_start(connector, f"KILL-{self._tags}"))
            if answer == "Accepted":
                self.steps.command(connector, "start requested")

    async def aim(self, started: list[Job], must: str | None = None) -> None:
        """Often the kill goes for a running job (one just started first, seeded): at once,
        in the step it is in, or when it reaches its next step, so that every step of the
        jobs, however short, gets kills. A kill that `must` land in a job of that kind
        comes at once, in the step that job is in."""
        if must is not None and any(j.kind == must for j in self.jobs.open_jobs()):
            return
        jobs = [j for j in started if j.waiting()] or self.jobs.open_jobs()
        if not jobs or self.rng.random() >= AIM_CHANCE:
            return
        job = self.rng.choice(jobs)
        if self.rng.random() < 0.5:
            loop = asyncio.get_running_loop()
            # its next step, or the one after (a certificate round always the one after: a
            # round never outlives a kill, so only this reaches "CertificateSigned sent")
            steps = 2 if job.kind == "certificate" else self.rng.randint(1, 2)
            deadline = loop.time() + steps * self.rng.uniform(0.1, AIM_TIMEOUT_S)
            for _ in range(steps):
                now = job.step()
                if now is None:
                    break
                # CertificateSigned is stored within milliseconds: watch at every turn
                tick = 0.0 if now == "CSR received" else 0.005
                while job.step() == now and loop.time() < deadline:
                    await self.ensure_running()
                    await asyncio.sleep(tick)
                if job.step() in ("CertificateSigned sent", "Downloaded"):
                    # a step of milliseconds (storing the certificate, verifying the file): now
                    return
        await asyncio.sleep(self.rng.uniform(0.0, 0.03))

    def kind_to_cover(self, kills_left: int) -> str | None:
        """Near the end of the run, a job kind no kill has landed in yet: the next kill must
        land in one (kills to spare, in case the station refuses the job then). The seeded
        chances alone left the short log uploads a single kill in 5 of 20 runs of 16 kills,
        and none in one CI run."""
        missing = self.run.kinds_without_kill()
        if missing and kills_left <= COVER_SPARE * len(missing):
            return missing[0]
        return None

    async def kill_cycle(self, kills_left: int = 1) -> None:
        """A few operations, maybe jobs, a kill at a seeded instant, a restart."""
        assert self.proc is not None and self.proc.proc is not None
        must = self.kind_to_cover(kills_left)
        acts = self.rng.randint(1, 3)
        for n in range(acts):
            await self.ensure_running()
            await self.act()
            # often the kill comes right after the last request: in its first steps
            short = n == acts - 1 and self.rng.random() < 0.4
            await self.pause(self.rng.uniform(0.0, 0.12 if short else 0.35))
        await self.ensure_running()
        started = await self.jobs.maybe_start(JOB_CHANCE)
        if must is not None:
            started += await self.jobs.ensure_open(must)
        await self.aim(started, must)
        await self.ensure_running()
        steps = [*self.steps.labels(), *self.jobs.steps()]
        self.proc.kill()
        if self.proc.proc.returncode != -signal.SIGKILL:  # it had exited by itself just now
            await self.exited(self.proc.proc.returncode)
            return
        self.jobs.killed()
        self.run.kills += 1
        kill = Kill(self.run.kills, steps)
        self.run.kill_log.append(kill)
        await asyncio.sleep(self.rng.uniform(0.0, 0.05))  # the controller is off
        kill.boot_s = await self.boot()
        self.run.boot_seconds.append(kill.boot_s)

    async def status(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, TimeoutError):
            _, data = await request(self.address, "GET", "/status")
            return data
        return {}

    async def settle(self) -> None:
        """Stop what still runs, let every job end, and wait until every message reached the
        CSMS."""
        t0 = time.monotonic()
        deadline = t0 + QUIET_TIMEOUT_S
        jobs = asyncio.create_task(self.jobs.finish(JOBS_TIMEOUT_S))
        try:
            while True:
                await self.ensure_running()
                data = await self.status()
                running = [c for c in data.get("connectors", []) if c["transaction"] is not None]
                for c in running:
                    with contextlib.suppress(OSError, TimeoutError):
                        await request(self.address, "POST", f"/connectors/{c['id']}/stop", {})
                quiet = data and not running and data["outbox"] == 0 and data["online"]
                if quiet and jobs.done():
                    self.run.settle_seconds = time.monotonic() - t0
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"station not quiet: {data}\n{self.log_tail()}")
                await asyncio.sleep(0.2)
        finally:
            if not jobs.done():
                jobs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await jobs


async def run_kills(
    version: str, seed: int, kills: int, tmp: Path, sign_delay: float = 0.2
) -> KillRun:
    (tmp / "www").mkdir(parents=True, exist_ok=True)
    server = FileServer(tmp / "www").start()
    try:
        async with KillBench(version, seed, tmp, server, sign_delay) as bench:
            bench.run.boot_seconds.append(await bench.boot())
            keys = {n: await bench.view.meter_key(n) for n in CONNECTORS}
            t0 = time.monotonic()
            while bench.run.kills < kills:
                await bench.kill_cycle(kills - bench.run.kills)
            bench.run.cycle_seconds = time.monotonic() - t0
            await bench.settle()
            await asyncio.sleep(0.3)  # late duplicates would show now
            bench.run.audit = audit(bench.view, keys)
            bench.run.jobs = bench.jobs.audit(bench.state_dir, seed)
            return bench.run
    finally:
        server.stop()
