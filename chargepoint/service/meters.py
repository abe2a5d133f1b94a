"""The station's meters built from the config: buses, the embedded simulator, the drivers,
the pinned keys. The core sees each as a `ConnectorMeter` over the `SigningMeter` protocol."""

from __future__ import annotations

import logging
from pathlib import Path

from chargepoint.config import ConnectorConfig, StationConfig
from chargepoint.core.meters import ConnectorMeter
from chargepoint.store import AsyncStore
from meter.bsm.driver import BsmWs36a, MeterTimeouts
from meter.bsm.ocmf import OcmfStyle
from meter.modbus.bus import ModbusBus
from meter.modbus.link import parse_link_url
from meter.modbus.loopback import free_port
from meter.modbus.wiretime import LineSettings
from meter.proof.keys import load_public_key
from meter.sim.device import SimulatedBsm, SimulatorConfig
from meter.sim.server import SimulatedBus
from meter.stationsign.meter import StationSignedMeter

log = logging.getLogger("chargepoint.meters")

SIMULATOR_URL = "simulator"


class MeterFleet:
    """Owns every bus (and the embedded simulated meters) for the daemon's lifetime."""

    def __init__(self, config: StationConfig, state_dir: Path) -> None:
        self.config = config
        self.state_dir = state_dir
        self.buses: dict[str, ModbusBus] = {}
        self.sim_buses: list[SimulatedBus] = []
        self.meters: dict[int, ConnectorMeter] = {}

    async def start(self) -> None:
        sims_by_bus: dict[str, list[tuple[ConnectorConfig, SimulatedBsm]]] = {}
        for bus_cfg in self.config.meter_buses:
            if bus_cfg.url != SIMULATOR_URL:
                self.buses[bus_cfg.name] = ModbusBus(
                    parse_link_url(bus_cfg.url), request_timeout=bus_cfg.request_timeout
                )
                continue
            sim_cfg = self.config.simulator
            assert sim_cfg is not None, "config validation requires the simulator section"
            members = []
            for conn in self.config.connectors:
                if conn.meter.bus != bus_cfg.name:
                    continue
                folder = self.state_dir / "simulated-meters"
                sim = SimulatedBsm(
                    SimulatorConfig(
                        unit=conn.meter.unit,
                        sign_delay=sim_cfg.sign_delay,
                        power_w=0.0,  # nothing flows until the EV draws
                        ocmf_style=OcmfStyle.KWH_TWO_DECIMALS
                        if sim_cfg.ocmf_style == "kwh"
                        else OcmfStyle.WH_INTEGER,
                        key_file=folder / f"unit-{conn.meter.unit}.key",
                        state_file=folder / f"unit-{conn.meter.unit}.json",
                    )
                )
                members.append((conn, sim))
            wire = LineSettings(sim_cfg.wire_time_baud) if sim_cfg.wire_time_baud else None
            sim_bus = SimulatedBus([s for _, s in members], wire_time=wire)
            port = free_port()
            await sim_bus.serve_tcp("127.0.0.1", port, rtu_framing=True)
            self.sim_buses.append(sim_bus)
            sims_by_bus[bus_cfg.name] = members
            self.buses[bus_cfg.name] = ModbusBus.from_url(
                f"rtu+tcp://127.0.0.1:{port}", request_timeout=bus_cfg.request_timeout
            )
            log.info(
                "embedded simulated meters %s on bus %s",
                [c.meter.unit for c, _ in members],
                bus_cfg.name,
            )
        for conn in self.config.connectors:
            bus = self.buses[conn.meter.bus]
            key = load_public_key(conn.meter.public_key) if conn.meter.public_key else None
            own_sim: SimulatedBsm | None = next(
                (s for c, s in sims_by_bus.get(conn.meter.bus, []) if c.id == conn.id), None
            )
            driver: BsmWs36a
            if conn.meter.signing == "station-test":
                folder = self.state_dir / "test-signer"
                driver = StationSignedMeter(
                    bus,
                    conn.meter.unit,
                    key_file=folder / f"connector-{conn.id}.key",
                    state_file=folder / f"connector-{conn.id}.json",
                    timeouts=MeterTimeouts(),
                )
                log.warning(
                    "connector %d: TEST MODE: the station signs the meter's readings with its "
                    "own key; these sessions are NOT calibration-law compliant",
                    conn.id,
                )
            else:
                driver = BsmWs36a(
                    bus, unit=conn.meter.unit, pinned_key=key, timeouts=MeterTimeouts()
                )
            self.meters[conn.id] = ConnectorMeter(conn.id, driver, key, own_sim)

    async def pin_keys(self, store: AsyncStore) -> None:
        """Pin each meter's key: the configured one, else the one seen at commissioning."""
        for cid, m in self.meters.items():
            if isinstance(m.driver, StationSignedMeter):
                continue  # its own key, from its key file
            setting = f"meter.{cid}.public_key"
            stored = await store.get_setting(setting)
            if m.configured_key is not None:
                m.driver.pinned_key = m.configured_key
                if stored is None:
                    await store.set_setting(setting, m.configured_key.der_hex)
            elif stored is not None:
                m.driver.pinned_key = load_public_key(stored)

    async def stop(self) -> None:
        for bus in self.buses.values():
            bus.close()
        for sim_bus in self.sim_buses:
            await sim_bus.aclose()
