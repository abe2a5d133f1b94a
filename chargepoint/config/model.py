"""`StationConfig`: the whole station's file, one field per section, and the rules and
warnings that span sections.

Each section is a model in its own module (station, csms, meter_buses, connectors, metadata,
ocpp, control, log, shutdown, store, web, security); a section's own rules and warnings live
there. Adding a section: its module and one field below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from chargepoint.config.base import ConfigModel, field_values
from chargepoint.config.connectors import ConnectorConfig
from chargepoint.config.control import ControlConfig
from chargepoint.config.csms import CsmsConfig
from chargepoint.config.firmware import DiagnosticsConfig, FirmwareConfig
from chargepoint.config.log import LoggingConfig
from chargepoint.config.metadata import MetadataConfig
from chargepoint.config.meter_buses import MeterBusConfig, SimulatorSettings
from chargepoint.config.ocpp import OcppSettings
from chargepoint.config.overrides import Overrides
from chargepoint.config.problems import (
    ConfigError,
    ConfigProblem,
    Loc,
    dotted,
    raise_issues,
    sorted_problems,
)
from chargepoint.config.security import SecurityConfig
from chargepoint.config.shutdown import ShutdownConfig
from chargepoint.config.smart_charging import SmartChargingConfig
from chargepoint.config.station import StationInfo
from chargepoint.config.store import StoreConfig
from chargepoint.config.validation import validate_model
from chargepoint.config.web import WebConfig

__all__ = ["StationConfig", "station_warnings"]

_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes including the NUL


class StationConfig(ConfigModel):
    """The whole station: the root of the YAML file."""

    station: StationInfo
    csms: CsmsConfig
    meter_buses: list[MeterBusConfig] = Field(min_length=1)
    simulator: SimulatorSettings | None = None
    connectors: list[ConnectorConfig] = Field(min_length=1)
    metadata: MetadataConfig = MetadataConfig()
    ocpp: OcppSettings = OcppSettings()
    control: ControlConfig = ControlConfig()
    logging: LoggingConfig = LoggingConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    store: StoreConfig = StoreConfig()
    web: WebConfig = WebConfig()
    security: SecurityConfig = SecurityConfig()
    smart_charging: SmartChargingConfig = SmartChargingConfig()
    firmware: FirmwareConfig = FirmwareConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()

    @model_validator(mode="after")
    def _cross_rules(self) -> Self:
        issues: list[tuple[Loc, str]] = []
        buses: dict[str, int] = {}
        for i, bus in enumerate(self.meter_buses):
            if bus.name in buses:
                issues.append(
                    (
                        ("meter_buses", i, "name"),
                        f"bus name {bus.name!r} is already used by meter_buses[{buses[bus.name]}]",
                    )
                )
            else:
                buses[bus.name] = i
            if bus.is_simulator and self.simulator is None:
                issues.append(
                    (
                        ("meter_buses", i, "url"),
                        "the simulator bus needs the top-level `simulator:` section "
                        "(`simulator: {}` for the defaults)",
                    )
                )
        count = len(self.connectors)
        ids: dict[int, int] = {}
        meters: dict[tuple[str, int], int] = {}
        for i, conn in enumerate(self.connectors):
            if conn.id in ids:
                issues.append((("connectors", i, "id"), f"connector id {conn.id} is used twice"))
            else:
                ids[conn.id] = i
                if conn.id > count:
                    issues.append(
                        (
                            ("connectors", i, "id"),
                            f"connector ids must be 1 to {count} (one per connector, no gaps); "
                            f"{conn.id} is out of range",
                        )
                    )
            ref = conn.meter
            if ref.bus not in buses:
                known = ", ".join(repr(b.name) for b in self.meter_buses)
                issues.append(
                    (
                        ("connectors", i, "meter", "bus"),
                        f"no meter bus named {ref.bus!r} (meter_buses: {known})",
                    )
                )
            key = (ref.bus, ref.unit)
            if key in meters:
                other = self.connectors[meters[key]].id
                issues.append(
                    (
                        ("connectors", i, "meter", "unit"),
                        f"unit {ref.unit} on bus {ref.bus!r} is already the meter of "
                        f"connector {other}",
                    )
                )
            else:
                meters[key] = i
        raise_issues(issues)
        return self

    def bus(self, name: str) -> MeterBusConfig:
        """The bus called `name` (KeyError when there is none)."""
        for bus in self.meter_buses:
            if bus.name == name:
                return bus
        raise KeyError(name)

    def connector(self, connector_id: int) -> ConnectorConfig:
        """The connector with this id (KeyError when there is none)."""
        for conn in self.connectors:
            if conn.id == connector_id:
                return conn
        raise KeyError(connector_id)

    def with_overrides(
        self,
        csms_url: str | None = None,
        ocpp_version: str | None = None,
        state_dir: Path | None = None,
    ) -> StationConfig:
        """A new config with command-line overrides applied and validated again.

        Raises ConfigError (without file lines) when the result is not valid.
        """
        overrides = Overrides(csms_url=csms_url, ocpp_version=ocpp_version, state_dir=state_dir)
        config, problems = validate_model(StationConfig, overrides.apply(field_values(self)), {})
        if config is None:
            raise ConfigError(sorted_problems(overrides.mark(problems)))
        return config

    def config_warnings(self) -> list[ConfigProblem]:
        """Things that are allowed but probably wrong (no line numbers: see LoadedConfig)."""
        return [ConfigProblem(dotted(loc), None, msg) for loc, msg in station_warnings(self)]


# --- warnings --------------------------------------------------------------------------------


def station_warnings(cfg: StationConfig) -> list[tuple[Loc, str]]:
    """Everything the file allows but that is probably wrong: each section's own warnings and
    those that span sections."""
    out: list[tuple[Loc, str]] = []
    out += _station_id_in_url(cfg)
    out += _section_warnings(cfg, "csms")
    if cfg.simulator is not None and not any(b.is_simulator for b in cfg.meter_buses):
        out.append((("simulator",), "no meter bus uses the simulator; this section is unused"))
    out += _connector_warnings(cfg)
    for name in type(cfg).model_fields:
        if name != "csms":
            out += _section_warnings(cfg, name)
    out += _socket_path_warnings(cfg)
    return out


def _section_warnings(cfg: StationConfig, name: str) -> list[tuple[Loc, str]]:
    value = getattr(cfg, name)
    items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
    out: list[tuple[Loc, str]] = []
    for index, section in items:
        if isinstance(section, ConfigModel):
            prefix: Loc = (name,) if index is None else (name, index)
            out += [(prefix + loc, msg) for loc, msg in section.section_warnings()]
    return out


def _station_id_in_url(cfg: StationConfig) -> list[tuple[Loc, str]]:
    if urlsplit(cfg.csms.url).path.rstrip("/").split("/")[-1] == cfg.station.id:
        return [
            (
                ("csms", "url"),
                "ends with the station id, which is appended again: give the URL without it",
            )
        ]
    return []


def _connector_warnings(cfg: StationConfig) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    simulated = {b.name for b in cfg.meter_buses if b.is_simulator}
    evse_ids: dict[str, int] = {}
    keys: dict[str, int] = {}
    for i, conn in enumerate(cfg.connectors):
        if conn.evse_id in evse_ids:
            out.append(
                (
                    ("connectors", i, "evse_id"),
                    f"the same EVSE id as connector {cfg.connectors[evse_ids[conn.evse_id]].id}",
                )
            )
        evse_ids.setdefault(conn.evse_id, i)
        key = conn.meter.public_key
        if key is None and conn.meter.bus not in simulated:
            out.append(
                (
                    ("connectors", i, "meter"),
                    "no public_key pinned: the key the meter shows first is trusted and kept; "
                    "pin the key read at commissioning (chargepoint meter --url URL pubkey)",
                )
            )
        elif key is not None:
            if key in keys:
                other = cfg.connectors[keys[key]].id
                out.append(
                    (
                        ("connectors", i, "meter", "public_key"),
                        f"the same public key as connector {other}: every meter has its own",
                    )
                )
            keys.setdefault(key, i)
    return out


def _socket_path_warnings(cfg: StationConfig) -> list[tuple[Loc, str]]:
    socket_path = cfg.control.unix_path(cfg.store.state_dir)
    if socket_path is not None and len(os.fsencode(socket_path.absolute())) > _UNIX_PATH_MAX:
        return [
            (
                ("control", "listen"),
                f"the socket path is longer than {_UNIX_PATH_MAX} bytes; use a shorter one",
            )
        ]
    return []
