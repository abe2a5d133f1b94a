"""Idle memory of the daemon: `chargepoint run` booted against a CSMS on loopback, nothing
happening, its resident set size read from /proc after it settled.

Two stations, each on the OCPP version its file names (one version loaded):
- `config/simulator.yaml`: two connectors on the embedded simulated meters;
- `config/bsm-rs485.yaml`: two real-meter connectors on a serial port, here a pty that never
  answers (a stub serial port: the daemon opens it and finds no meter), the CSMS reached on
  plain ws:// with security profile 0 instead of the file's wss:// profile 2.

Also the import cost of what each station loads (python -X importtime is not needed: a fresh
interpreter's RSS after `import chargepoint.cli.main` and after a daemon's imports).

Usage: python benchmarks/footprint.py [--settle 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from chargepoint.testcsms import TestCsms

REPO = Path(__file__).resolve().parent.parent
STATION = "CP-FOOTPRINT"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def station_file(example: str, folder: Path, csms_url: str, serial_port: str | None) -> Path:
    doc: dict[str, Any] = yaml.safe_load((REPO / "config" / example).read_text())
    doc["station"]["id"] = STATION
    doc["csms"] = {
        "url": csms_url,
        "ocpp_version": doc["csms"].get("ocpp_version", "1.6"),
        "reconnect_min_delay": 0.2,
        "reconnect_max_delay": 1,
    }
    doc["store"] = {"state_dir": str(folder / "state")}
    doc["control"] = {"listen": "unix:control.sock"}
    if serial_port is not None:
        for bus in doc["meter_buses"]:
            bus["url"] = f"serial://{serial_port}?baudrate=19200&parity=N"
            bus["request_timeout"] = 0.5
    path = folder / example
    path.write_text(yaml.safe_dump(doc))
    return path


async def idle_rss(config: Path, csms: TestCsms, settle: float) -> float:
    boots = len(csms.messages("BootNotification"))
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
        [sys.executable, "-m", "chargepoint", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while len(csms.messages("BootNotification")) == boots:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{config.name}: the daemon did not boot")
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle)
        return rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def import_rss(module: str) -> float:
    code = f"import {module}, os; print(open('/proc/self/status').read())"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=4.0, help="seconds idle before reading")
    parser.add_argument("--runs", type=int, default=3, help="daemon starts per station")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        master, slave = os.openpty()  # the stub serial port: opened, never answers
        port = os.ttyname(slave)
        async with TestCsms() as csms:
            for example, serial in (("simulator.yaml", None), ("bsm-rs485.yaml", port)):
                figures = []
                for run in range(args.runs):
                    folder = Path(tmp) / f"{example}-{run}"
                    folder.mkdir()
                    config = station_file(example, folder, csms.url, serial)
                    figures.append(await idle_rss(config, csms, args.settle))
                print(
                    f"{example}: idle RSS median {statistics.median(figures):.1f} MiB "
                    f"(min {min(figures):.1f}, max {max(figures):.1f}, {args.runs} runs)"
                )
        os.close(master)
        os.close(slave)
    print(f"python alone: {import_rss('sys'):.1f} MiB")
    print(f"import chargepoint.cli.main: {import_rss('chargepoint.cli.main'):.1f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
