"""Control interface latency: the daemon (`chargepoint run`, a child process on the embedded
simulator, test CSMS on loopback) asked `--requests` times `GET /status` and
`POST /connectors/1/clear-fault` (a no-op on a healthy connector: the cost of the interface
itself) with the client `chargepoint status` / `control` use, one connection per request, on
the Unix socket and on loopback TCP. Prints the median and the 95th percentile per request.

Usage: python benchmarks/control_latency.py [--requests 200] [--transport unix|tcp|both]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the station harness lives with the tests

from chargepoint.service.control import ControlAddress, request  # noqa: E402
from chargepoint.testcsms import TestCsms  # noqa: E402
from tests.station_harness import STATION_ID, StationProcess, station_yaml  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ms(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(seconds) * 1000:6.2f} ms, p95 {p95 * 1000:6.2f} ms"


async def _answering(address: ControlAddress, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            code, _ = await request(address, "GET", "/status", timeout=2)
            if code == 200:
                return
        except (OSError, TimeoutError, ValueError):
            pass
        if loop.time() > deadline:
            raise TimeoutError(f"the daemon does not answer on {address.describe()}")
        await asyncio.sleep(0.1)


async def measure(transport: str, requests: int) -> None:
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        listen = "unix:control.sock" if transport == "unix" else f"http://127.0.0.1:{_free_port()}"
        config = station_yaml(
            Path(tmp) / "station.yaml",
            csms.url,
            state,
            sections={"control": {"listen": listen}},
        )
        daemon = StationProcess(config, Path(tmp) / "daemon.log")
        daemon.start()
        try:
            await csms.wait_connected(STATION_ID, timeout=30)
            address = ControlAddress(listen, state)
            await _answering(address)
            for method, target in (("GET", "/status"), ("POST", "/connectors/1/clear-fault")):
                times: list[float] = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    code, body = await request(address, method, target, {})
                    times.append(time.perf_counter() - t0)
                    assert code == 200, (code, body)
                print(f"  {transport:4} {method:4} {target:26} {_ms(times)}  ({requests} requests)")
        finally:
            code = await asyncio.to_thread(daemon.terminate)
            await csms.stop()
            if code != 0:
                print(daemon.log_text()[-3000:], file=sys.stderr)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--transport", choices=("unix", "tcp", "both"), default="both")
    args = parser.parse_args()
    print("control interface latency (daemon in a child process, one connection per request):")
    for transport in ("unix", "tcp") if args.transport == "both" else (args.transport,):
        await measure(transport, args.requests)


if __name__ == "__main__":
    asyncio.run(main())
