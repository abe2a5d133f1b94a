"""The station's meters built from the config: buses, the embedded simulator, the drivers,
the pinned keys. The core sees each as a `ConnectorMeter` over the `SigningMeter` protocol.

The simulator and the station's test signer are imported only when the config uses them: a
station on real meters does not carry their code in memory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from chargepoint.config import ConnectorConfig, MeterBusConfig, StationConfig
from chargepoint.core.meters import ConnectorMeter
from chargepoint.store import AsyncStore
from chargepoint.store.files import PRIVATE_DIR_MODE, make_directory
from meter.bsm.driver import BsmWs36a, MeterTimeouts
from meter.interface import SigningMeter
from meter.modbus.bus import ModbusBus
from meter.modbus.link import parse_link_url
from meter.proof.keys import PublicKeyInfo, load_public_key

if TYPE_CHECKING:
    from meter.sim.device import SimulatedBsm
    from meter.sim.server import SimulatedBus

log = logging.getLogger("chargepoint.meters")

SIMULATOR_URL = "simulator"
STATION_TEST = "station-test"


class MeterFleet:
    """Owns every bus (and the embedded simulated meters) for the daemon's lifetime."""

    def __init__(self, config: StationConfig, state_dir: Path) -> None:
        self.config = config
        self.state_dir = state_dir
        self.buses: dict[str, ModbusBus] = {}
        self.sim_buses: list[SimulatedBus] = []
        self.meters: dict[int, ConnectorMeter] = {}

    async def start(self) -> None:
        sims: dict[int, SimulatedBsm] = {}  # connector id -> its simulated meter
        for bus_cfg in self.config.meter_buses:
            if bus_cfg.url == SIMULATOR_URL:
                sims.update(await self._start_simulated_bus(bus_cfg))
            else:
                self.buses[bus_cfg.name] = ModbusBus(
                    parse_link_url(bus_cfg.url), request_timeout=bus_cfg.request_timeout
                )
        for conn in self.config.connectors:
            key = load_public_key(conn.meter.public_key) if conn.meter.public_key else None
            driver = self._driver(conn, self.buses[conn.meter.bus], key)
            self.meters[conn.id] = ConnectorMeter(conn.id, driver, key, sims.get(conn.id))

    async def _start_simulated_bus(self, bus_cfg: MeterBusConfig) -> dict[int, SimulatedBsm]:
        """The embedded simulated meters of one bus, served on a loopback port."""
        from meter.bsm.ocmf import OcmfStyle
        from meter.modbus.loopback import free_port
        from meter.modbus.wiretime import LineSettings
        from meter.sim.device import SimulatedBsm, SimulatorConfig
        from meter.sim.server import SimulatedBus

        sim_cfg = self.config.simulator
        assert sim_cfg is not None, "config validation requires the simulator section"
        folder = make_directory(self.state_dir / "simulated-meters", PRIVATE_DIR_MODE)
        members: dict[int, SimulatedBsm] = {}
        for conn in self.config.connectors:
            if conn.meter.bus != bus_cfg.name:
                continue
            members[conn.id] = SimulatedBsm(
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
        wire = LineSettings(sim_cfg.wire_time_baud) if sim_cfg.wire_time_baud else None
        sim_bus = SimulatedBus(list(members.values()), wire_time=wire)
        port = free_port()
        await sim_bus.serve_tcp("127.0.0.1", port, rtu_framing=True)
        self.sim_buses.append(sim_bus)
        self.buses[bus_cfg.name] = ModbusBus.from_url(
            f"rtu+tcp://127.0.0.1:{port}", request_timeout=bus_cfg.request_timeout
        )
        log.info(
            "embedded simulated meters %s on bus %s",
            [s.config.unit for s in members.values()],
            bus_cfg.name,
        )
        return members

    def _driver(
        self, conn: ConnectorConfig, bus: ModbusBus, key: PublicKeyInfo | None
    ) -> SigningMeter:
        if conn.meter.signing != STATION_TEST:
            return BsmWs36a(
                bus,
                unit=conn.meter.unit,
                pinned_key=key,
                timeouts=MeterTimeouts(),
            )
        from meter.stationsign.meter import StationSignedMeter

        folder = make_directory(self.state_dir / "test-signer", PRIVATE_DIR_MODE)
        log.warning(
            "connector %d: TEST MODE: the station signs the meter's readings with its "
            "own key; these sessions are NOT calibration-law compliant",
            conn.id,
        )
        return StationSignedMeter(
            bus,
            conn.meter.unit,
            key_file=folder / f"connector-{conn.id}.key",
            state_file=folder / f"connector-{conn.id}.json",
            timeouts=MeterTimeouts(),
        )

    async def pin_keys(self, store: AsyncStore) -> None:
        """Pin each meter's key: the configured one, else the one seen at commissioning."""
        signing = {c.id: c.meter.signing for c in self.config.connectors}
        for cid, m in self.meters.items():
            if signing.get(cid) == STATION_TEST:
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
