"""The daemon's lifecycle: store, meters, transaction core, OCPP adapter, control interface.

Every task is owned here and cancelled on shutdown. What a stop does with open sessions
(`shutdown.end_sessions`) and what systemd is told (READY, STATUS, WATCHDOG) is in
chargepoint/service/lifecycle.py. Sessions a clean stop left open are resumed at the next start when
their meter still holds the same open turn-on; sessions left open by a power loss or a crash
are ended with their turn-off snapshot (reason PowerLoss).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chargepoint.config import StationConfig
from chargepoint.core import events
from chargepoint.core.auth import Authorizer, IdTagInfo
from chargepoint.core.diagnostics import LogUploads
from chargepoint.core.firmware import FirmwareUpdates
from chargepoint.core.meters import ConnectorMeter
from chargepoint.core.security import StationSecurity
from chargepoint.core.settings import Settings, station_specs
from chargepoint.core.station import Station
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transfer import UrlTransfers
from chargepoint.service import lifecycle
from chargepoint.service.control import ControlAddress
from chargepoint.service.instance_lock import InstanceLock
from chargepoint.service.meters import MeterFleet
from chargepoint.service.sd_notify import SdNotifier, Watchdog, watchdog_interval
from chargepoint.service.setpoints import SetpointWriter
from chargepoint.store import AsyncStore
from chargepoint.store.files import DIR_MODE, make_directory
from meter.errors import MeterError

log = logging.getLogger("chargepoint.service.daemon")

STORE_FILE = "chargepoint.sqlite"
SETTING_PREFIX = "ocpp."
DEVICE_MODEL_PREFIX = "ocpp201."
SUPPORTED_VERSIONS = ("1.6", "2.0.1")
STATUS_INTERVAL_S = 30.0  # how often STATUS= is refreshed when systemd runs no watchdog
ADAPTER_STOP_S = 0.5  # how long a stopped OCPP adapter may take to wind down
EXIT_RESTART = 75  # after a firmware installation: systemd (Restart=on-failure) restarts us
REBOOT_FLUSH_S = 10.0  # a simulated reboot first delivers the queued messages (InstallRebooting)


class UnsupportedVersion(Exception):
    pass


if TYPE_CHECKING:
    from chargepoint.csms.ocpp16.adapter import Ocpp16Adapter
    from chargepoint.csms.ocpp201.adapter import Ocpp201Adapter
    from chargepoint.service.control_server import ControlServer


async def _offline(_: str) -> IdTagInfo | None:
    return None


def _meter_key_reader(meter: ConnectorMeter) -> Callable[[], str]:
    def read() -> str:
        key = meter.driver.pinned_key
        return events.oca_public_key(key.der_hex if key is not None else "")

    return read


class Daemon:
    def __init__(self, config: StationConfig) -> None:
        self.config = config
        self.state_dir = Path(config.store.state_dir)
        self.stopping = asyncio.Event()
        self.store: AsyncStore | None = None
        self.fleet: MeterFleet | None = None
        self.station: Station | None = None
        self.adapter: Ocpp16Adapter | Ocpp201Adapter | None = None
        self.control: ControlServer | None = None
        self.setpoints: SetpointWriter | None = None
        self._adapter_task: asyncio.Task[None] | None = None
        self.notifier = SdNotifier.from_environment()
        self.hurry = asyncio.Event()  # a second stop signal: skip the shutdown waits
        self.watchdog: Watchdog | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self.instance_lock = InstanceLock(self.state_dir)
        self.security: StationSecurity | None = None
        self.firmware: FirmwareUpdates | None = None
        self.logs: LogUploads | None = None
        self.restart_requested = False  # exit with EXIT_RESTART: a firmware update installed

    @property
    def adapter_task(self) -> asyncio.Task[None] | None:
        """The OCPP connection loop (the watchdog checks that it runs)."""
        return self._adapter_task

    async def start(self) -> None:
        cfg = self.config
        if cfg.csms.ocpp_version not in SUPPORTED_VERSIONS:
            raise UnsupportedVersion(f"OCPP {cfg.csms.ocpp_version} is not supported")
        make_directory(self.state_dir, DIR_MODE)
        # before anything else: a second daemon on this state dir touches nothing
        control_address = ControlAddress(cfg.control.listen, self.state_dir)
        self.instance_lock.acquire(f"control {control_address.describe()}")
        store = await AsyncStore.open(self.state_dir / STORE_FILE, cfg.station.id)
        self.store = store
        fleet = MeterFleet(cfg, self.state_dir)
        self.fleet = fleet
        await fleet.start()
        await fleet.pin_keys(store)
        stored = {
            k[len(SETTING_PREFIX) :]: v for k, v in (await store.settings(SETTING_PREFIX)).items()
        }

        async def persist(key: str, value: str) -> None:
            await store.set_setting(SETTING_PREFIX + key, value)

        settings = Settings(station_specs(cfg.ocpp, len(cfg.connectors)), stored, persist)
        for cid, meter in fleet.meters.items():
            settings.dynamic[f"MeterPublicKey{cid}"] = _meter_key_reader(meter)
        authorizer = Authorizer(settings, store, _offline)
        station = Station(cfg, store, settings, fleet.meters, authorizer)
        self.station = station
        for c in station.connectors.values():  # identities for BootNotification, best effort
            with contextlib.suppress(MeterError):
                await c.meter.driver.identity()
        security = StationSecurity(cfg, store)
        self.security = security
        await security.load()
        station.security_event = security.events.record_soon
        security.events.space = station.disk_space  # a full disk: events wait in memory
        self.adapter = await self._adapter(station, settings, store, authorizer, security)
        fw = cfg.firmware
        self.firmware = FirmwareUpdates(
            cfg, station, store, security, UrlTransfers(fw.transfer_timeout, fw.ca_file)
        )
        self.firmware.restart = self._firmware_restart
        uploads = UrlTransfers(cfg.diagnostics.transfer_timeout, fw.ca_file)
        self.logs = LogUploads(cfg, station, store, security, uploads)
        self.adapter.firmware = self.firmware
        self.adapter.logs = self.logs
        await security.start()
        from chargepoint.service.control_server import ControlServer  # aiohttp: daemon only

        self.control = ControlServer(station, control_address)
        await self.control.start()
        await station.start()
        self.setpoints = SetpointWriter(cfg.smart_charging, station.charging)
        self.setpoints.start()
        await self.logs.start()  # a log upload a power loss cut off: its final status
        self._adapter_task = asyncio.create_task(
            self.adapter.run(), name=f"ocpp {cfg.csms.ocpp_version} adapter"
        )
        await self.firmware.start()
        log.info("station %s running with %d connectors", cfg.station.id, len(cfg.connectors))

    async def _firmware_restart(self, simulated: bool) -> None:
        """The station restarts after a firmware installation. Simulated: the CSMS session
        ends and a new one starts with a new boot, as after a reboot. Else the daemon stops
        and exits with EXIT_RESTART for systemd to start the new firmware (this waits until
        the stop cancels it)."""
        adapter = self.adapter
        assert self.store is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REBOOT_FLUSH_S
        while await self.store.outbox_length() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if not simulated or adapter is None:
            log.warning("firmware installed: restarting the daemon")
            self.restart_requested = True
            self.stopping.set()
            await asyncio.Event().wait()
            return
        log.warning("firmware installed (simulated): restarting the CSMS session")
        ws = adapter.ws
        if ws is not None:
            await ws.close()
        while adapter.accepted.is_set() and loop.time() < deadline + 5:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def _adapter(
        self,
        station: Station,
        settings: Settings,
        store: AsyncStore,
        authorizer: Authorizer,
        security: StationSecurity,
    ) -> Ocpp16Adapter | Ocpp201Adapter:
        cfg = self.config
        # only the configured OCPP version is imported (each costs memory on the controller)
        if cfg.csms.ocpp_version == "1.6":
            from chargepoint.csms.ocpp16.adapter import Ocpp16Adapter

            return Ocpp16Adapter(cfg, station, settings, store, authorizer, security)
        from chargepoint.csms.ocpp201.adapter import Ocpp201Adapter
        from chargepoint.csms.ocpp201.device_model import DeviceModel, LiveValues
        from chargepoint.csms.ocpp201.security import (
            password_apart,
            priority_check,
            stored_with_password,
        )

        async def persist(key: str, value: str) -> None:
            await store.set_setting(key, value)

        def connector_status(connector_id: int) -> str | None:
            c = station.connectors.get(connector_id)
            return c.status.value if c is not None else None

        live = LiveValues(connector_status=connector_status)
        password = security.connection.password
        stored = await stored_with_password(
            await store.settings(DEVICE_MODEL_PREFIX), password, persist
        )
        model = DeviceModel.for_station(
            cfg,
            settings,
            password_apart(security.connection, persist),
            stored,
            live=live,
            network_priority_check=priority_check(security),
        )
        return Ocpp201Adapter(cfg, station, settings, store, authorizer, model, security)

    async def stop(self) -> None:
        if self._watchdog_task is not None:
            await cancel_and_wait([self._watchdog_task])
        for job in (self.firmware, self.logs):
            if job is not None:
                await job.stop()
        if self.adapter is not None:
            await self.adapter.stop()
        if self._adapter_task is not None:
            # with its connection closed the loop ends by itself (and collects its tasks'
            # errors); cancel it only if it does not
            await asyncio.wait([self._adapter_task], timeout=ADAPTER_STOP_S)
            await cancel_and_wait([self._adapter_task])
        if self.setpoints is not None:
            await self.setpoints.stop()
        if self.station is not None:
            await self.station.stop()
        if self.control is not None:
            await self.control.stop()
        if self.fleet is not None:
            await self.fleet.stop()
        if self.security is not None:
            await self.security.stop()
        if self.store is not None:
            await self.store.close()
        self.instance_lock.release()
        log.info("stopped")

    def start_watchdog(self) -> None:
        """WATCHDOG=1 while the daemon makes progress (WatchdogSec=), STATUS= updates."""
        if not self.notifier.enabled:
            return
        interval = watchdog_interval()
        self.watchdog = Watchdog(
            self.notifier,
            interval or STATUS_INTERVAL_S,
            lambda: lifecycle.progress(self),
            lambda: lifecycle.describe(self),
            ping=interval is not None,
        )
        self._watchdog_task = asyncio.create_task(self.watchdog.run(), name="systemd watchdog")

    def signalled(self) -> None:
        """SIGTERM/SIGINT: stop; a second one: stop without waiting."""
        if self.stopping.is_set():
            log.warning("second stop signal: stopping without waiting")
            self.hurry.set()
        self.stopping.set()

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.signalled)
        try:
            await self.start()
            self.notifier.ready(lifecycle.ready_status(self))
            self.start_watchdog()
            await self.stopping.wait()
            log.info("shutdown requested")
            self.notifier.stopping("stopping")
            await lifecycle.shutdown(self, self.hurry)
        finally:
            await self.stop()
