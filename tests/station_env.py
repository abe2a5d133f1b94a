"""A station daemon in-process against the test CSMS, seen through a version view."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chargepoint.service.control import ControlAddress, request
from chargepoint.service.daemon import Daemon
from chargepoint.testcsms import TestCsms
from meter.proof.keys import load_public_key
from meter.proof.ocmf import parse_ocmf, verify_ocmf
from tests.ocpp_views import VIEWS, Session, View
from tests.real_vectors import REPO_ROOT
from tests.station_harness import STATION_ID, InProcessStation, station_yaml, wait_until


@dataclass
class Env:
    csms: TestCsms
    view: View
    tmp: Path
    station: InProcessStation | None = None

    @property
    def version(self) -> str:
        return self.view.version

    @property
    def daemon(self) -> Daemon:
        assert self.station is not None and self.station.daemon is not None
        return self.station.daemon

    def config(self, **kwargs: Any) -> Path:
        csms = {"ocpp_version": self.version, **kwargs.pop("csms", {})}
        return station_yaml(
            self.tmp / "station.yaml", self.csms.url, self.tmp / "state", csms=csms, **kwargs
        )

    async def start(self, **kwargs: Any) -> Daemon:
        self.station = InProcessStation(self.config(**kwargs))
        daemon = await self.station.start()
        await self.booted()
        return daemon

    async def booted(self) -> None:
        await self.csms.wait_connected(STATION_ID, timeout=10)
        await wait_until(
            lambda: self.daemon.adapter is not None and self.daemon.adapter.accepted.is_set(),
            timeout=10,
            what="an accepted boot",
        )
        await self.csms.wait_for("StatusNotification", timeout=10)

    async def restart(self) -> Daemon:
        assert self.station is not None
        await self.station.stop()
        daemon = await self.station.start()
        await self.booted()
        return daemon

    async def outbox_drained(self, timeout: float = 10) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            _, status = await self.control("GET", "/status")
            if status["outbox"] == 0:
                return
            if loop.time() > deadline:
                raise TimeoutError(f"outbox still holds {status['outbox']} messages")
            await asyncio.sleep(0.02)

    async def control(
        self, method: str, target: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        address = ControlAddress("unix:control.sock", self.tmp / "state")
        return await request(address, method, target, body)


async def remote_session(
    env: Env, connector: int = 1, id_tag: str = "TAG-1", seconds: float = 0.4, n: int = 1
) -> Session:
    assert await env.view.remote_start(connector, id_tag) == "Accepted"
    started = await env.view.wait_started(n)
    await asyncio.sleep(seconds)
    assert await env.view.remote_stop(started.tx_id) == "Accepted"
    return await env.view.wait_ended(n)


def check_signed_pair(session: Session, key_hex: str, id_tag: str) -> None:
    """The end message carries the signed Begin and End: they verify against the key read
    from the station, name the id tag, and pair (RCnt + 1)."""
    values = session.signed
    assert set(values) == {"Transaction.Begin", "Transaction.End"}, session.payloads
    key = load_public_key(key_hex)
    begin = parse_ocmf(values["Transaction.Begin"]["ocmf"])
    end = parse_ocmf(values["Transaction.End"]["ocmf"])
    for record in (begin, end):
        check = verify_ocmf(record, key)
        assert check.signature_valid and check.billable, check.reason
        assert record.identification == id_tag
    assert int(str(end.pagination)[1:]) == int(str(begin.pagination)[1:]) + 1  # RCnt + 1
    for value in values.values():
        assert value["sampled_value"]["measurand"] == "Energy.Active.Import.Register"


@contextlib.asynccontextmanager
async def running_env(version: str, tmp: Path) -> AsyncIterator[Env]:
    """A test CSMS for `version` on loopback; the station is started by the test
    (`env.start(...)`), and stopped here with the CSMS."""
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    e = Env(csms, VIEWS[version](csms), tmp)
    try:
        yield e
    finally:
        if e.station is not None:
            await e.station.stop()
        await csms.stop()


def cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """`chargepoint ARGS... --config` this station's YAML, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "chargepoint", *args, "--config", str(env.tmp / "station.yaml")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
