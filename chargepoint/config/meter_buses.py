"""The `meter_buses:` and `simulator:` sections: the Modbus lines that carry meters, and the
embedded simulated meters on a bus whose url is `simulator`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator

from chargepoint.config.base import ConfigModel
from meter.modbus.link import LinkUrlError, parse_link_url

__all__ = ["SIMULATOR_BUS_URL", "MeterBusConfig", "SimulatorSettings"]

SIMULATOR_BUS_URL = "simulator"


class MeterBusConfig(ConfigModel):
    """One Modbus line (or the embedded simulator) that carries meters."""

    name: str = Field(min_length=1, max_length=32)
    url: str
    request_timeout: StrictFloat = Field(default=12.0, gt=0)

    @field_validator("url")
    @classmethod
    def _link_url(cls, value: str) -> str:
        if value == SIMULATOR_BUS_URL:
            return value
        try:
            parse_link_url(value)
        except LinkUrlError as exc:
            raise ValueError(f"{exc} (or `{SIMULATOR_BUS_URL}` for the embedded one)") from None
        return value

    @property
    def is_simulator(self) -> bool:
        return self.url == SIMULATOR_BUS_URL


class SimulatorSettings(ConfigModel):
    """The embedded simulated meters (used by buses whose url is `simulator`)."""

    sign_delay: StrictFloat = Field(default=2.0, ge=0)
    wire_time_baud: StrictInt | None = Field(default=None, gt=0)
    ocmf_style: Literal["kwh", "wh"] = "kwh"
