"""Figures of the daemon on OCPP 1.6J and 2.0.1 with two connectors on the embedded simulator.

For each version:
- idle RSS and CPU of the daemon process (two connectors, booted, nothing happening);
- remote stop received (RemoteStopTransaction / RequestStopTransaction) -> end message sent
  (StopTransaction / TransactionEvent Ended), against the floor (the meter's signing delay +
  the wire time of the frames a turn-off snapshot needs on 19200 8E1);
- the same with both connectors stopped at once (the meters sign in parallel while one owner
  of the bus serves them: ideally one signing delay plus twice the bus time);
- the time to drain a backlog of 1,000 queued transaction messages once the CSMS is back.

Usage: python benchmarks/session.py [--sign-delay 2.0] [--idle-seconds 10] [--version 1.6]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from chargepoint.core import events
from chargepoint.store import Store, utc_now
from chargepoint.testcsms import Received, TestCsms
from meter.bsm import registers as regmap
from meter.modbus.sunspec import plan_reads
from meter.modbus.wiretime import LineSettings
from meter.snapshot import SnapshotKind

REPO = Path(__file__).resolve().parent.parent
STATION = "CP-BENCH-001"
LINE = LineSettings(19200, "E")
TICKS = os.sysconf("SC_CLK_TCK")


def write_config(path: Path, csms_url: str, state: Path, sign_delay: float, version: str) -> Path:
    doc: dict[str, Any] = {
        "station": {"id": STATION},
        "csms": {
            "url": csms_url,
            "reconnect_min_delay": 0.2,
            "reconnect_max_delay": 1,
            "ocpp_version": version,
        },
        "meter_buses": [{"name": "sim", "url": "simulator"}],
        "simulator": {"sign_delay": sign_delay, "wire_time_baud": LINE.baudrate},
        "connectors": [
            {
                "id": n,
                "evse_id": f"DE*XYZ*E0001*{n}",
                "meter": {"bus": "sim", "unit": 41 + n},
                "ev": {"power_w": 11000, "plug_in_delay": 0.1},
            }
            for n in (1, 2)
        ],
        "ocpp": {
            "heartbeat_interval": 300,
            "meter_value_sample_interval": 0,
            "transaction_message_retry_interval": 0,
        },
        "logging": {"level": "warning"},
        "store": {"state_dir": str(state)},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def turn_off_bus_seconds(signature_bytes: int = 71, ocmf_bytes: int = 700) -> float:
    """Wire time of the fewest frames that take and read one turn-off snapshot."""
    model = regmap.SNAPSHOT_MODELS[SnapshotKind.TURN_OFF]
    seconds = LINE.read_seconds(2) + LINE.read_seconds(1)  # RCnt baseline, pending check
    seconds += LINE.write_seconds(1) + LINE.read_seconds(1)  # trigger, status read
    needed = (*model.span("Typ", "BSig"), model.get("Sig"))
    for req in plan_reads(model, needed):
        end = min(req.address + req.count, model.wire("Sig") + (signature_bytes + 1) // 2)
        seconds += LINE.read_seconds(end - req.address)
    regs = 2 + ocmf_bytes // 2 + 1  # Typ, St, the text and its NUL
    while regs > 0:
        seconds += LINE.read_seconds(min(125, regs))
        regs -= 125
    return seconds


def proc_figures(pid: int) -> tuple[int, float]:
    """(RSS in KiB, CPU seconds so far) of a process."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    return rss, cpu


class Version:
    """What one OCPP version's CSMS sends and looks for."""

    name = ""
    end_name = ""
    stop_name = ""

    def __init__(self, csms: TestCsms) -> None:
        self.csms = csms

    async def start_session(self, connector: int, tag: str) -> str:
        raise NotImplementedError

    async def request_stop(self, tx: str) -> None:
        raise NotImplementedError

    def is_end_of(self, tx: str) -> Callable[[Received], bool]:
        raise NotImplementedError

    def end_record_length(self, end: dict[str, Any]) -> int:
        raise NotImplementedError

    def is_value_of(self, r: Received, tx: str) -> bool:
        raise NotImplementedError

    async def timed_stop(self, transaction_ids: list[str]) -> tuple[float, int]:
        """Seconds from the remote stop to the last end message, and the End record's length."""
        mark = len(self.csms.received)
        t0 = time.monotonic()
        await asyncio.gather(*(self.request_stop(t) for t in transaction_ids))
        ends = [
            await self.csms.wait_for(self.end_action, self.is_end_of(t), after=mark, timeout=60)
            for t in transaction_ids
        ]
        last = max(r.at for r in ends)
        return last - t0, max(self.end_record_length(r.payload) for r in ends)

    end_action = ""


class Version16(Version):
    name = "1.6"
    end_name = "StopTransaction"
    stop_name = "RemoteStopTransaction"
    end_action = "StopTransaction"

    async def start_session(self, connector: int, tag: str) -> str:
        csms = self.csms
        mark = len(csms.received)
        await csms.call(STATION, "RemoteStartTransaction", {"idTag": tag, "connectorId": connector})
        await csms.wait_for(
            "StartTransaction",
            lambda r: r.payload["connectorId"] == connector,
            after=mark,
            timeout=60,
        )
        for _ in range(200):
            ids = [
                t
                for t, e in csms.transaction_log().items()
                if e["start"]["connectorId"] == connector and e["stop"] is None
            ]
            if ids:
                return str(max(ids))
            await asyncio.sleep(0.02)
        raise TimeoutError("no transaction id")

    async def request_stop(self, tx: str) -> None:
        await self.csms.call(STATION, "RemoteStopTransaction", {"transactionId": int(tx)})

    def is_end_of(self, tx: str) -> Callable[[Received], bool]:
        return lambda r: bool(r.payload["transactionId"] == int(tx))

    def end_record_length(self, end: dict[str, Any]) -> int:
        for mv in end.get("transactionData", []):
            for sv in mv["sampledValue"]:
                if sv.get("context") == "Transaction.End" and sv.get("format") == "SignedData":
                    return len(base64.b64decode(json.loads(sv["value"])["signedMeterData"]))
        raise ValueError("no signed End value")

    def is_value_of(self, r: Received, tx: str) -> bool:
        return r.action == "MeterValues" and r.payload.get("transactionId") == int(tx)


class Version201(Version):
    name = "2.0.1"
    end_name = "TransactionEvent Ended"
    stop_name = "RequestStopTransaction"
    end_action = "TransactionEvent"

    async def start_session(self, connector: int, tag: str) -> str:
        csms = self.csms
        mark = len(csms.received)
        await csms.call(
            STATION,
            "RequestStartTransaction",
            {"idToken": {"idToken": tag, "type": "Central"}, "remoteStartId": 1},
        )
        started = await csms.wait_for(
            "TransactionEvent",
            lambda r: r.payload["eventType"] == "Started" and r.payload["evse"]["id"] == connector,
            after=mark,
            timeout=60,
        )
        return str(started.payload["transactionInfo"]["transactionId"])

    async def request_stop(self, tx: str) -> None:
        await self.csms.call(STATION, "RequestStopTransaction", {"transactionId": tx})

    def is_end_of(self, tx: str) -> Callable[[Received], bool]:
        return lambda r: (
            r.payload["eventType"] == "Ended"
            and r.payload["transactionInfo"]["transactionId"] == tx
        )

    def end_record_length(self, end: dict[str, Any]) -> int:
        for mv in end.get("meterValue", []):
            for sv in mv["sampledValue"]:
                if sv.get("context") == "Transaction.End" and "signedMeterValue" in sv:
                    return len(base64.b64decode(sv["signedMeterValue"]["signedMeterData"]))
        raise ValueError("no signed End value")

    def is_value_of(self, r: Received, tx: str) -> bool:
        return (
            r.action == "TransactionEvent"
            and r.payload["eventType"] == "Updated"
            and r.payload["transactionInfo"]["transactionId"] == tx
        )


VERSIONS: dict[str, type[Version]] = {"1.6": Version16, "2.0.1": Version201}


def spawn(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "chargepoint", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )


async def main(sign_delay: float, idle_seconds: float, versions: list[str]) -> None:
    for name in versions:
        print(f"--- OCPP {name}")
        await bench(VERSIONS[name], sign_delay, idle_seconds)


async def bench(version_class: type[Version], sign_delay: float, idle_seconds: float) -> None:
    csms = TestCsms()
    await csms.start()
    v = version_class(csms)
    tmp = Path(tempfile.mkdtemp(prefix="chargepoint-bench-"))
    config = write_config(tmp / "station.yaml", csms.url, tmp / "state", sign_delay, v.name)
    proc = spawn(config, tmp / "daemon.log")
    try:
        await csms.wait_for("BootNotification", timeout=60)
        await asyncio.sleep(2)
        _, cpu0 = proc_figures(proc.pid)
        await asyncio.sleep(idle_seconds)
        rss1, cpu1 = proc_figures(proc.pid)
        print(
            f"idle daemon, two connectors: RSS {rss1 / 1024:.1f} MiB, "
            f"CPU {100 * (cpu1 - cpu0) / idle_seconds:.2f} % over {idle_seconds:.0f} s"
        )

        singles = []
        for n in range(3):
            tx = await v.start_session(1, f"B{n}")
            await asyncio.sleep(1)
            singles.append(await v.timed_stop([tx]))
            await asyncio.sleep(1.5)
        single, ocmf_len = sorted(singles)[1]
        bus = turn_off_bus_seconds(ocmf_bytes=ocmf_len)
        floor_one = sign_delay + bus
        print(
            f"{v.stop_name} -> {v.end_name}, one connector: {single:.3f} s (median of 3), "
            f"floor {floor_one:.3f} s (signing {sign_delay:.1f} s + bus {bus:.3f} s for a "
            f"{ocmf_len}-byte OCMF), ratio {single / floor_one:.3f}"
        )

        tx1 = await v.start_session(1, "P1")
        tx2 = await v.start_session(2, "P2")
        await asyncio.sleep(1)
        both, ocmf_len = await v.timed_stop([tx1, tx2])
        floor_two = sign_delay + 2 * turn_off_bus_seconds(ocmf_bytes=ocmf_len)
        print(
            f"both connectors stopped at once: {both:.3f} s until both end messages, "
            f"floor {floor_two:.3f} s (one signing delay + twice the bus time), "
            f"ratio {both / floor_two:.3f}"
        )
        await asyncio.sleep(1.5)

        # backlog: a session open, the daemon gone, 1,000 messages queued, the CSMS back
        tx = await v.start_session(1, "BACKLOG")
        await asyncio.sleep(0.5)
        proc.terminate()
        proc.wait(30)
        store = Store.open(tmp / "state" / "chargepoint.sqlite", STATION)
        local_id = store.open_transactions()[0].local_id
        for i in range(1000):
            store.enqueue(
                events.TRANSACTION_METER_VALUES,
                events.meter_values(
                    connector_id=1,
                    timestamp=utc_now(),
                    context="Sample.Periodic",
                    samples=[
                        {
                            "measurand": "Energy.Active.Import.Register",
                            "value": str(1230 + i),
                            "unit": "Wh",
                        }
                    ],
                ),
                local_tx_id=local_id,
            )
        store.close()
        mark = len(csms.received)
        proc = spawn(config, tmp / "daemon.log")
        boot = await csms.wait_for("BootNotification", after=mark, timeout=60)
        stop = await csms.wait_for(v.end_action, v.is_end_of(tx), after=mark, timeout=300)
        delivered = len([r for r in csms.received[mark:] if v.is_value_of(r, tx)])
        drain = stop.at - boot.at
        print(
            f"backlog: {delivered} queued meter values + the {v.end_name} delivered in "
            f"order in {drain:.2f} s after the boot ({delivered / drain:.0f} messages/s)"
        )
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        await csms.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sign-delay", type=float, default=2.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--version", choices=sorted(VERSIONS), action="append")
    args = parser.parse_args()
    asyncio.run(main(args.sign_delay, args.idle_seconds, args.version or list(VERSIONS)))
