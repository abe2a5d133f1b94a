"""Telling a wallbox its limit: for stations whose power electronics take a current setpoint,
each change of a connector's limit is run as a configured command and/or written to a Modbus
holding register (`smart_charging.setpoint_command`, `smart_charging.setpoint_modbus`).

One writer task per daemon: changes are queued and applied in order, only the newest limit of
each connector is written when several are waiting. A failure is logged and the next change
is tried again; the charge controller's own safety limits stay in charge of the hardware.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from chargepoint.config.smart_charging import SmartChargingConfig
from chargepoint.core.charging.controller import ConnectorLimit, SmartCharging
from chargepoint.core.tasks import cancel_and_wait
from meter.errors import MeterError
from meter.modbus.bus import ModbusBus

log = logging.getLogger("chargepoint.service.setpoints")

COMMAND_TIMEOUT_S = 10.0


def _nothing() -> None:
    pass


def command_argv(template: list[str], limit: ConnectorLimit) -> list[str]:
    """The command with its placeholders filled ({amps}/{watts} empty: no limit)."""
    values = {
        "connector": str(limit.connector_id),
        "amps": "" if limit.amps is None else f"{limit.amps:.1f}",
        "watts": "" if limit.watts is None else f"{limit.watts:.0f}",
        "phases": str(limit.phases),
        "source": limit.source,
    }
    argv = []
    for arg in template:
        filled = arg
        for name, value in values.items():
            filled = filled.replace("{" + name + "}", value)
        argv.append(filled)
    return argv


def register_value(limit: ConnectorLimit, config: SmartChargingConfig) -> int:
    """What the setpoint register gets: the limit in its quantity times its scale."""
    modbus = config.setpoint_modbus
    assert modbus is not None
    if modbus.quantity == "A":
        amps = limit.amps if limit.amps is not None else config.connector_max_current
        value = amps * modbus.scale
    else:
        watts = limit.watts
        if watts is None:
            watts = config.connector_max_current * config.nominal_voltage * limit.phases
        value = watts * modbus.scale
    return max(0, min(0xFFFF, round(value)))


class SetpointWriter:
    def __init__(self, config: SmartChargingConfig, charging: SmartCharging) -> None:
        self.config = config
        self.charging = charging
        self._waiting: dict[int, ConnectorLimit] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._bus: ModbusBus | None = None
        self._unsubscribe: Callable[[], None] = _nothing

    @property
    def enabled(self) -> bool:
        return self.config.setpoint_command is not None or self.config.setpoint_modbus is not None

    def start(self) -> None:
        if not self.enabled:
            return
        modbus = self.config.setpoint_modbus
        if modbus is not None:
            self._bus = ModbusBus.from_url(modbus.url)
        self._unsubscribe = self.charging.subscribe(self._on_limit)
        for limit in self.charging.limits().values():
            self._on_limit(limit)
        self._task = asyncio.create_task(self._run(), name="wallbox setpoints")

    def _on_limit(self, limit: ConnectorLimit) -> None:
        self._waiting[limit.connector_id] = limit
        self._changed.set()

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            while self._waiting:
                connector_id = min(self._waiting)
                limit = self._waiting.pop(connector_id)
                await self._apply(limit)

    async def _apply(self, limit: ConnectorLimit) -> None:
        if self.config.setpoint_command is not None:
            await self._run_command(command_argv(self.config.setpoint_command, limit))
        modbus = self.config.setpoint_modbus
        if modbus is not None and self._bus is not None:
            address = modbus.registers.get(limit.connector_id)
            if address is None:
                return
            value = register_value(limit, self.config)
            try:
                await self._bus.write(modbus.unit, address, [value])
            except MeterError as exc:
                log.error(
                    "connector %d: setpoint %d not written to register %d: %s",
                    limit.connector_id,
                    value,
                    address,
                    exc,
                )
            else:
                log.info(
                    "connector %d: setpoint %d written to register %d",
                    limit.connector_id,
                    value,
                    address,
                )

    async def _run_command(self, argv: list[str]) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            log.error("setpoint command %s not started: %s", argv[0], exc)
            return
        try:
            _, err = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("setpoint command %s killed after %.0f s", argv[0], COMMAND_TIMEOUT_S)
            return
        if proc.returncode != 0:
            log.error(
                "setpoint command %s failed (exit %s): %s",
                " ".join(argv),
                proc.returncode,
                err.decode(errors="replace").strip()[:300],
            )
        else:
            log.info("setpoint command: %s", " ".join(argv))

    async def stop(self) -> None:
        self._unsubscribe()
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        if self._bus is not None:
            self._bus.close()
            self._bus = None
