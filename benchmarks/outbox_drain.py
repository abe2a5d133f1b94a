"""Backlog drain: how fast the outbox empties once the CSMS is back, and what of that is local.

A station on the embedded simulator queues a backlog while no CSMS is reachable
(tests/test_outbox_drain.py `queue_backlog`: sessions on both connectors through the core, so
StartTransaction / TransactionEvent Started, the signed Begin and the signed End with their OCMF
records, meter values of those sessions and critical security events). Then `chargepoint run`
starts against a CSMS on loopback and the run measures from its BootNotification to the last
queued message, as the CSMS received them.

Printed, per OCPP version:
- against the project's test CSMS (which checks every frame against the OCPP schema): messages,
  seconds, msg/s; the round-trip floor measured in the same run (the same frames sent one at a
  time over a bare websocket to an echo server on loopback: OCPP's one outstanding CALL); the
  local overhead per message beyond that floor, split into the test CSMS's time (from each
  CALL's arrival to its answer) and the station's; the station process's CPU time per message;
  the store's size; and the verdict: every queued message delivered, in order, once;
- against a CSMS that does no work (canned answers): msg/s and the station's overhead;
- with `--old DIR` (a `git archive` of an older commit): the same figures for that code,
  draining a copy of the same backlog.

Usage: python benchmarks/outbox_drain.py [--messages 10000] [--version 1.6|2.0.1|both]
       [--old DIR] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the harness lives with the tests

import yaml  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import Server, ServerConnection, serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.typing import Subprotocol  # noqa: E402

from chargepoint.service.control import ControlAddress, request  # noqa: E402
from chargepoint.service.daemon import STORE_FILE  # noqa: E402
from chargepoint.testcsms import Received, TestCsms  # noqa: E402
from tests.delivery_audit import Audit, audit  # noqa: E402
from tests.ocpp_views import VIEWS  # noqa: E402
from tests.station_harness import StationProcess  # noqa: E402
from tests.test_outbox_drain import (  # noqa: E402
    DURABLE_ACTIONS,
    Backlog,
    Delivery,
    delivery,
    queue_backlog,
    use_csms,
)

# ---- the round-trip floor ------------------------------------------------------------------


async def echo_floor(frames: list[str]) -> float:
    """Seconds per frame for `frames` sent one at a time over a bare websocket on loopback
    to a server that answers each with a frame of the same size (no OCPP, no store)."""

    async def echo(ws: ServerConnection) -> None:
        async for frame in ws:
            await ws.send(frame)

    async with serve(echo, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", max_size=None) as ws:
            for frame in frames[:50]:  # warm up
                await ws.send(frame)
                await ws.recv()
            t0 = time.perf_counter()
            for frame in frames:
                await ws.send(frame)
                await ws.recv()
            return (time.perf_counter() - t0) / len(frames)


# ---- one run -------------------------------------------------------------------------------


@dataclass
class Drain:
    version: str
    backlog: Backlog
    drained: int
    seconds: float
    floor_s: float  # per message
    csms_s: float  # per message: the test CSMS's own work
    station_cpu_s: float  # per message: CPU time of the daemon process during the drain
    store_bytes_before: int
    store_bytes_after: int
    frames: list[str]
    delivery: Delivery  # what the CSMS received against what the store queued
    audit: Audit | None = None  # tests/delivery_audit.py, when asked for

    @property
    def rate(self) -> float:
        return self.drained / self.seconds if self.seconds else 0.0

    @property
    def overhead_ms(self) -> float:
        """Per message, beyond the round trip: the station's and the test CSMS's work."""
        return (self.seconds / max(self.drained, 1) - self.floor_s) * 1000

    @property
    def station_ms(self) -> float:
        """Per message, beyond the round trip and the test CSMS's work."""
        return self.overhead_ms - self.csms_s * 1000


def store_bytes(state: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            total += (state / f"{STORE_FILE}{suffix}").stat().st_size
    return total


def make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def move_state(cfg: Path, state: Path) -> None:
    doc = yaml.safe_load(cfg.read_text())
    doc["store"]["state_dir"] = str(state)
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))


def state_dir_of(cfg: Path) -> Path:
    return Path(yaml.safe_load(cfg.read_text())["store"]["state_dir"])


class LeanCsms:
    """A CSMS that does no work: every CALL answered at once with a canned CALLRESULT (no
    schema checks, no records but the arrival time of each CALL). Against it the drain rate
    is the station's work plus the round trip."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []  # (time.monotonic(), action)
        self.durable: list[float] = []  # arrival times of the queued kinds of message
        self._tx = 0
        self._server: Server | None = None

    async def start(self) -> str:
        self._server = await serve(
            self._session,
            "127.0.0.1",
            0,
            subprotocols=[Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")],
            max_size=None,
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ocpp"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _answer(self, action: str) -> dict[str, Any]:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if action == "BootNotification":
            return {"currentTime": now, "interval": 300, "status": "Accepted"}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action == "StartTransaction":
            self._tx += 1
            return {"transactionId": self._tx, "idTagInfo": {"status": "Accepted"}}
        return {}

    async def _session(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                frame = json.loads(text)
                if frame[0] != 2:
                    continue
                self.calls.append((time.monotonic(), frame[2]))
                if frame[2] in DURABLE_ACTIONS:
                    self.durable.append(time.monotonic())
                await ws.send(json.dumps([3, frame[1], self._answer(frame[2])]))


async def drain_lean(
    cfg: Path, backlog: Backlog, version: str, *, code: Path | None = None
) -> tuple[float, float]:
    """The drain of `cfg`'s backlog against LeanCsms: (seconds, station CPU s per message)."""
    lean = LeanCsms()
    use_csms(cfg, await lean.start())
    proc = StationProcess(cfg, cfg.parent / "daemon-lean.log")
    try:
        start_daemon(proc, code, None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 600
        cpu_at_boot = 0.0

        while len(lean.durable) < backlog.messages:
            if loop.time() > deadline or (proc.proc is not None and proc.proc.poll() is not None):
                raise TimeoutError(f"lean drain stalled\n{proc.log_text()[-3000:]}")
            if not cpu_at_boot and lean.calls:
                cpu_at_boot = cpu_seconds(proc)
            await asyncio.sleep(0.05)
        cpu = cpu_seconds(proc) - cpu_at_boot
        return lean.durable[backlog.messages - 1] - lean.calls[0][0], cpu / backlog.messages
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.terminate()
        await lean.stop()


async def drain(
    cfg: Path,
    backlog: Backlog,
    version: str,
    *,
    code: Path | None = None,
    profile: Path | None = None,
    timeout: float = 600.0,
    audit_sessions: bool = False,
) -> Drain:
    """Start `chargepoint run` on `cfg` (from the checkout `code`, else this one) against a
    test CSMS on loopback and time the drain of its backlog: from the BootNotification to the
    last queued message, as the CSMS received them."""
    state = state_dir_of(cfg)
    before = store_bytes(state)
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    use_csms(cfg, csms.url)
    proc = StationProcess(cfg, cfg.parent / "daemon.log")
    try:
        start_daemon(proc, code, profile)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        arrived: list[Received] = []
        csms.add_listener(lambda r: arrived.append(r) if r.action in DURABLE_ACTIONS else None)

        def durable() -> list[Received]:
            return arrived

        cpu_at_boot = 0.0
        while len(arrived) < backlog.messages:
            if loop.time() > deadline or (proc.proc is not None and proc.proc.poll() is not None):
                raise TimeoutError(
                    f"{len(durable())} of {backlog.messages} delivered\n{proc.log_text()[-3000:]}"
                )
            if not cpu_at_boot and csms.messages("BootNotification"):
                cpu_at_boot = cpu_seconds(proc)
            await asyncio.sleep(0.005)
        cpu = cpu_seconds(proc) - cpu_at_boot
        address = ControlAddress("unix:control.sock", state)
        while await outbox_length(address) != 0 and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # what the restart itself queued
        keys: dict[int, str] = {}
        if audit_sessions:  # the meters' keys, as the station reports them
            keys = {n: await VIEWS[version](csms).meter_key(n) for n in (1, 2)}
        got = durable()
        boot = csms.messages("BootNotification")[0].at
        seconds = got[backlog.messages - 1].at - boot
        frames = [json.dumps([2, r.unique_id, r.action, r.payload]) for r in got]
        csms_s = csms_time(csms, got[0].at, got[backlog.messages - 1].at) / len(got)
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.terminate()
        await csms.stop()
    after = store_bytes(state)
    floor = await echo_floor(frames)
    check = delivery(csms, cfg, version)
    sessions = audit(VIEWS[version](csms), keys) if audit_sessions else None
    return Drain(
        version,
        backlog,
        backlog.messages,
        seconds,
        floor,
        csms_s,
        cpu / backlog.messages,
        before,
        after,
        frames,
        check,
        sessions,
    )


async def outbox_length(address: ControlAddress) -> int | None:
    with contextlib.suppress(OSError, TimeoutError, KeyError):
        _, data = await request(address, "GET", "/status")
        return int(data["outbox"])
    return None


def cpu_seconds(proc: StationProcess) -> float:
    """CPU time (user + system) the daemon process used so far (Linux /proc)."""
    assert proc.proc is not None
    fields = Path(f"/proc/{proc.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def csms_time(csms: TestCsms, start: float, end: float) -> float:
    """Seconds the test CSMS spent between receiving a CALL and sending its answer (it runs
    in this process: parsing, schema checks, records), summed over [start, end]."""
    total = 0.0
    received: float | None = None
    for frame in csms.frames:
        if frame.at < start or frame.at > end + 1.0:
            continue
        if frame.direction == "in" and frame.text.startswith("[2"):
            received = frame.at
        elif frame.direction == "out" and received is not None:
            total += frame.at - received
            received = None
    return total


def start_daemon(proc: StationProcess, code: Path | None, profile: Path | None) -> None:
    """`chargepoint run`, from another checkout (PYTHONPATH) and under cProfile if asked."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if code is not None:
        env["PYTHONPATH"] = str(code)
    command = [sys.executable]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile)]
        command += ["-m", "chargepoint.cli.main"]
    else:
        command += ["-m", "chargepoint"]
    command += ["run", "--config", str(proc.config_path)]
    with proc.log_path.open("ab") as log:
        proc.proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=code or REPO, env=env
        )


def report(d: Drain) -> None:
    b = d.backlog
    print(
        f"OCPP {d.version}: {d.drained} queued messages ({b.sessions} sessions, "
        f"{b.meter_values} meter values, {b.security_events} security events; queued in "
        f"{b.fill_seconds:.1f} s) drained in {d.seconds:.2f} s = {d.rate:,.0f} msg/s; "
        f"round-trip floor (bare websocket echo of the same {len(d.frames)} frames) "
        f"{d.floor_s * 1000:.3f} ms/msg; local overhead {d.overhead_ms:.3f} ms/msg, of which "
        f"the test CSMS {d.csms_s * 1000:.3f} ms and the station {d.station_ms:.3f} ms "
        f"(station CPU {d.station_cpu_s * 1000:.3f} ms/msg); "
        f"store {d.store_bytes_before / 2**20:.1f} MiB (db + wal); {delivered(d.delivery)}"
    )


def delivered(d: Delivery) -> str:
    verdict = "in order, exactly once" if d.in_order_exactly_once and not d.problems else "NOT"
    return (
        f"delivered {verdict} ({len(d.received)} of {len(d.expected)} messages, "
        f"{d.lost} lost, {d.duplicates} duplicates, {len(d.problems)} problems)"
    )


def lean_report(label: str, seconds: float, cpu_s: float, messages: int, floor_s: float) -> str:
    per = seconds / messages
    return (
        f"  {label}: against a CSMS that does no work (canned answers, no checks): "
        f"{messages / seconds:,.0f} msg/s, station overhead {(per - floor_s) * 1000:.3f} ms/msg "
        f"beyond the round-trip floor (station CPU {cpu_s * 1000:.3f} ms/msg)"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--version", choices=("1.6", "2.0.1", "both"), default="both")
    parser.add_argument(
        "--old",
        type=Path,
        help="also drain the same backlog with the daemon of this checkout (e.g. a "
        "`git archive` of the commit before)",
    )
    parser.add_argument("--profile", type=Path, help="cProfile the daemon into this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    versions = ("1.6", "2.0.1") if args.version == "both" else (args.version,)
    ok = True
    for version in versions:
        with tempfile.TemporaryDirectory(prefix=f"chargepoint-drain-{version}-") as name:
            tmp = Path(name)
            make_dir(tmp / "new")
            cfg, backlog = await queue_backlog(version, args.messages, tmp / "new")
            runs = ["lean"] + (["old", "old-lean"] if args.old is not None else [])
            configs = {}
            for run in runs:
                copy_station(tmp / "new", tmp / run)
                configs[run] = tmp / run / "station.yaml"
            d = await drain(cfg, backlog, version, profile=args.profile)
            report(d)
            seconds, cpu = await drain_lean(configs["lean"], backlog, version)
            print(lean_report("this code", seconds, cpu, backlog.messages, d.floor_s))
            ok = ok and d.delivery.in_order_exactly_once and backlog.messages / seconds >= 1000
            if args.old is not None:
                o = await drain(configs["old"], backlog, version, code=args.old)
                print(f"  old code ({args.old}): ", end="")
                report(o)
                seconds, cpu = await drain_lean(
                    configs["old-lean"], backlog, version, code=args.old
                )
                print(lean_report("old code", seconds, cpu, backlog.messages, d.floor_s))
    return 0 if ok else 1


def copy_station(source: Path, target: Path) -> None:
    """A copy of a station's config and state dir (the store with its backlog)."""
    shutil.copytree(source, target)
    move_state(target / "station.yaml", target / "state")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
