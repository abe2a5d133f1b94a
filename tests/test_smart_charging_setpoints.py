"""A wallbox that takes a current setpoint follows the limit: the configured command runs and
the Modbus register is written whenever a connector's limit changes (a real Modbus TCP server
on loopback, the command a real process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext

from chargepoint.config.smart_charging import SmartChargingConfig
from chargepoint.core.charging.controller import ConnectorLimit
from chargepoint.service.setpoints import command_argv, register_value
from chargepoint.testcsms.smart_charging import ProfileSpec
from meter.modbus.bus import ModbusBus
from meter.modbus.loopback import free_port
from meter.sim.pymodbus_server import ModbusTcpServer
from tests.station_env import Env, running_env
from tests.station_harness import STATION_ID, wait_until

NOW = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
RECORDER = """
import json, sys
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(sys.argv[2:]) + "\\n")
"""


def test_command_placeholders_and_register_values() -> None:
    limit = ConnectorLimit(2, 5520.0, 8.0, 3, "TxProfile 7 (stack 1)", NOW)
    argv = command_argv(["/bin/wb", "--c={connector}", "{amps}", "{watts}", "{source}"], limit)
    assert argv == ["/bin/wb", "--c=2", "8.0", "5520", "TxProfile 7 (stack 1)"]
    unlimited = ConnectorLimit(2, None, None, 3, "none", NOW)
    assert command_argv(["{amps}", "{watts}"], unlimited) == ["", ""]
    config = SmartChargingConfig.model_validate(
        {"setpoint_modbus": {"url": "tcp://127.0.0.1:1502", "registers": {2: 40}, "scale": 10}}
    )
    assert register_value(limit, config) == 80  # tenths of an A
    assert register_value(unlimited, config) == 320  # the connector's maximum, 32 A
    in_watts = SmartChargingConfig.model_validate(
        {"setpoint_modbus": {"url": "tcp://h:1", "registers": {1: 0}, "quantity": "W"}}
    )
    assert register_value(limit, in_watts) == 5520


@pytest.fixture
async def modbus_port() -> AsyncIterator[int]:
    block = ModbusSequentialDataBlock(1, [0] * 2000)  # type: ignore[no-untyped-call]
    device = ModbusDeviceContext(hr=block)
    port = free_port()
    server = ModbusTcpServer(
        ModbusServerContext(devices={3: device}, single=False), address=("127.0.0.1", port)
    )
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.2)
    try:
        yield port
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def registers_become(bus: ModbusBus, expected: list[int]) -> None:
    """Registers 1000 and 1001 of unit 3 hold `expected` within a few seconds."""
    for _ in range(50):
        if await bus.read(3, 1000, 2) == expected:
            return
        await asyncio.sleep(0.1)
    assert await bus.read(3, 1000, 2) == expected


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env("1.6", tmp_path) as e:
        yield e


async def test_limit_changes_reach_the_command_and_the_register(modbus_port: int, env: Env) -> None:
    recorder = env.tmp / "recorder.py"
    recorder.write_text(RECORDER)
    calls = env.tmp / "calls.txt"
    await env.start(
        sections={
            "smart_charging": {
                "setpoint_command": [
                    sys.executable,
                    str(recorder),
                    str(calls),
                    "{connector}",
                    "{amps}",
                    "{watts}",
                ],
                "setpoint_modbus": {
                    "url": f"tcp://127.0.0.1:{modbus_port}",
                    "unit": 3,
                    "registers": {1: 1000, 2: 1001},
                    "scale": 10,
                },
            }
        }
    )
    bus = ModbusBus.from_url(f"tcp://127.0.0.1:{modbus_port}")
    try:

        def lines() -> list[list[str]]:
            text = calls.read_text() if calls.exists() else ""
            return [json.loads(line) for line in text.splitlines()]

        # at start every connector is told it has no limit: the connector maximum, 32 A
        await wait_until(lambda: len(lines()) == 2, 10, "the first setpoints")
        assert sorted(lines()) == [["1", "", ""], ["2", "", ""]]  # no amps, no watts
        await registers_become(bus, [320, 320])

        start = datetime.now(UTC) - timedelta(minutes=1)
        answer = await env.csms.set_charging_profile(
            STATION_ID, 0, ProfileSpec(1, "TxDefault", [(0, 10)], start=start)
        )
        assert answer["status"] == "Accepted"
        await wait_until(lambda: len(lines()) == 4, 10, "the new setpoints")
        assert sorted(lines()[2:]) == [["1", "10.0", "6900"], ["2", "10.0", "6900"]]
        await registers_become(bus, [100, 100])  # 10 A in tenths
    finally:
        bus.close()
