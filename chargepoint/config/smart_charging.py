"""The `smart_charging:` section: how limits convert between A and W, what a connector can
deliver, how the simulated EV follows its limit, and how a wallbox that takes a current
setpoint is told the limit (a command, or a Modbus register write)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator

from chargepoint.config.base import ConfigModel

__all__ = ["ModbusSetpoint", "SmartChargingConfig"]

_PLACEHOLDERS = ("{connector}", "{amps}", "{watts}", "{phases}", "{source}")


class ModbusSetpoint(ConfigModel):
    """A holding register per connector that takes the current (or power) setpoint."""

    url: str = Field(
        min_length=1,
        description="the Modbus link of the wallbox controller: tcp://HOST:PORT, "
        "rtu+tcp://HOST:PORT (a serial gateway) or serial:///dev/ttyUSB1?baudrate=9600&parity=N",
    )
    unit: StrictInt = Field(default=1, ge=1, le=247, description="Modbus unit id")
    registers: dict[int, StrictInt] = Field(
        min_length=1,
        description="connector id -> holding register address (0-65535) written with its limit",
    )
    quantity: Literal["A", "W"] = Field(
        default="A", description="what the register holds: current per phase (A) or power (W)"
    )
    scale: StrictFloat = Field(
        default=1.0,
        gt=0,
        description="the register value is the limit times this, rounded (10: tenths of an A)",
    )

    @field_validator("registers")
    @classmethod
    def _addresses(cls, value: dict[int, int]) -> dict[int, int]:
        for connector, address in value.items():
            if connector < 1:
                raise ValueError(f"connector ids start at 1, not {connector}")
            if not 0 <= address <= 0xFFFF:
                raise ValueError(f"register {address} of connector {connector} is not 0-65535")
        return value


class SmartChargingConfig(ConfigModel):
    """Charging profiles from the CSMS and limits from the charge controller become each
    connector's limit; this section says how that limit reaches the load."""

    nominal_voltage: StrictFloat = Field(
        default=230.0,
        gt=0,
        le=1000,
        description="volts per phase used to convert limits between A and W",
    )
    default_phases: StrictInt = Field(
        default=3,
        ge=1,
        le=3,
        description="phases assumed where a schedule period gives no numberPhases",
    )
    connector_max_current: StrictFloat = Field(
        default=32.0,
        gt=0,
        description="A per phase one connector can deliver: the composite schedule shows it "
        "where no profile limits the connector",
    )
    ev_ramp_seconds: StrictFloat = Field(
        default=3.0,
        ge=0,
        le=60,
        description="simulated EV: seconds it takes to follow a new limit (0: at once)",
    )
    setpoint_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="a command run (without a shell) whenever a connector's limit changes, "
        "e.g. [/usr/local/bin/wallbox-limit, '{connector}', '{amps}']; placeholders "
        + ", ".join(_PLACEHOLDERS)
        + "; {amps} and {watts} are empty when nothing limits the connector",
    )
    setpoint_modbus: ModbusSetpoint | None = Field(
        default=None,
        description="write each connector's limit to a holding register of the wallbox "
        "controller (no limit: connector_max_current)",
    )
