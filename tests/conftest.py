"""Shared fixtures: simulated meters on a loopback bus, and the driver connected to them."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from meter.bsm.driver import BsmWs36a, MeterTimeouts
from meter.modbus.bus import ModbusBus
from meter.modbus.loopback import free_port
from meter.modbus.wiretime import LineSettings
from meter.sim.device import SimulatedBsm, SimulatorConfig
from meter.sim.server import SimulatedBus


@dataclass
class Station:
    """Simulated meters on a bus, a driver-side bus, and one driver per meter."""

    sims: dict[int, SimulatedBsm]
    sim_bus: SimulatedBus
    bus: ModbusBus
    url: str
    meters: dict[int, BsmWs36a] = field(default_factory=dict)

    def meter(self, unit: int = 42) -> BsmWs36a:
        return self.meters[unit]

    def sim(self, unit: int = 42) -> SimulatedBsm:
        return self.sims[unit]


StationFactory = Callable[..., Awaitable[Station]]


@pytest.fixture
async def station(tmp_path: Path) -> AsyncIterator[StationFactory]:
    """Factory: `await station(link="tcp", units=(42,), sign_delay=0.05, ...)`."""
    started: list[Station] = []

    async def make(
        link: str = "tcp",
        units: tuple[int, ...] = (42,),
        sign_delay: float = 0.05,
        power_w: float = 200_000.0,
        request_timeout: float = 2.0,
        wire_time: LineSettings | None = None,
        persist: bool = False,
        configs: dict[int, SimulatorConfig] | None = None,
    ) -> Station:
        sims = {}
        for unit in units:
            cfg = (configs or {}).get(unit) or SimulatorConfig(
                unit=unit,
                sign_delay=sign_delay,
                power_w=power_w,
                key_file=tmp_path / f"unit-{unit}.key" if persist else None,
                state_file=tmp_path / f"unit-{unit}.json" if persist else None,
            )
            sims[unit] = SimulatedBsm(cfg)
        sim_bus = SimulatedBus(list(sims.values()), wire_time=wire_time)
        port = free_port()
        await sim_bus.serve_tcp("127.0.0.1", port, rtu_framing=link != "tcp")
        url = {
            "tcp": f"tcp://127.0.0.1:{port}",
            "rtu+tcp": f"rtu+tcp://127.0.0.1:{port}",
            "serial": f"serial://socket://127.0.0.1:{port}?baudrate=19200&parity=E",
        }[link]
        bus = ModbusBus.from_url(url, request_timeout=request_timeout)
        await bus.connect()
        st = Station(sims, sim_bus, bus, url)
        for unit in units:
            st.meters[unit] = BsmWs36a(bus, unit=unit, timeouts=MeterTimeouts(poll_interval=0.01))
        started.append(st)
        return st

    yield make
    for st in started:
        st.bus.close()
        await st.sim_bus.aclose()


@dataclass
class PtyPair:
    meter_side: str
    controller_side: str


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[PtyPair]:
    """Two linked pseudo terminals from socat (parity N: Linux ptys refuse even parity)."""
    socat = shutil.which("socat")
    if socat is None:
        if os.environ.get("CI"):
            pytest.fail("socat is required in CI (.ci/run installs it)")
        pytest.skip("socat not installed")
    a, b = tmp_path / "meter-pty", tmp_path / "controller-pty"
    proc = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while not (a.exists() and b.exists()):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("socat did not create the pty pair")
        time.sleep(0.02)
    try:
        yield PtyPair(str(a), str(b))
    finally:
        proc.terminate()
        proc.wait(5)


__all__ = ["PtyPair", "Station", "StationFactory", "free_port"]
