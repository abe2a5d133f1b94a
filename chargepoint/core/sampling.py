"""The station's periodic meter work: sampled values of running sessions
(MeterValueSampleInterval, and the power watch of TxStopPoint EnergyTransfer), clock-aligned
values (ClockAlignedDataInterval), bringing a faulted meter back once it is fit to sign, and
the meters' clocks (never set during a session)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from chargepoint.core import events
from chargepoint.core.context import StationContext, idle_status, note_meter_error
from chargepoint.core.disk_space import DiskSpace
from chargepoint.core.status import ConnectorStatus
from chargepoint.core.transaction import ActiveTransaction, Connector, StopReason, samples_of
from chargepoint.store import utc_now
from meter.errors import MeterError
from meter.proof.keys import PublicKeyInfo

log = logging.getLogger("chargepoint.station")

S = ConnectorStatus
CLOCK_CHECK_INTERVAL_S = 3600.0
CLOCK_DRIFT_LIMIT_S = 30.0
SETTING_POLL_S = 1.0  # how soon a loop notices its interval setting switched on


class Sampling:
    """The periodic loops (each run supervised by the station) and fresh readings.

    `stop_transaction` ends a session whose EV stopped drawing power (TxStopPoint
    EnergyTransfer), `meter_ready` checks a faulted meter, every `health_interval_s`."""

    def __init__(
        self,
        ctx: StationContext,
        stop_transaction: Callable[[int, StopReason], bool],
        meter_ready: Callable[[Connector], Awaitable[PublicKeyInfo]],
        health_interval_s: float,
        disk_space: DiskSpace,
    ) -> None:
        self.ctx = ctx
        self.disk_space = disk_space  # a full disk: values wait in memory for space
        self._stop_transaction = stop_transaction
        self._meter_ready = meter_ready
        self._health_interval_s = health_interval_s
        self._next_sample = 0.0
        # a new MeterValueSampleInterval (2.0.1 TxUpdatedInterval) applies at once
        self._interval_changed = asyncio.Event()
        ctx.settings.subscribe(self._on_setting)

    def _on_setting(self, key: str, value: str) -> None:
        if key == "MeterValueSampleInterval":
            self._interval_changed.set()

    async def _sleep_or_interval_change(self, seconds: float) -> bool:
        """Sleep `seconds`; True when MeterValueSampleInterval changed meanwhile (the next
        periodic values come one new interval after the change, not after the old one)."""
        try:
            await asyncio.wait_for(self._interval_changed.wait(), seconds)
        except TimeoutError:
            return False
        self._interval_changed.clear()
        interval = self.ctx.settings.number("MeterValueSampleInterval")
        if interval > 0:
            self._next_sample = min(self._next_sample, time.monotonic() + interval - 0.05)
        return True

    async def sample_connector(self, c: Connector) -> list[events.Sample]:
        reading = await c.meter.driver.energy()
        if reading.total_wh is not None:
            c.last_energy_wh = int(reading.total_wh)
        c.last_power_w = None if reading.power_w is None else float(reading.power_w)
        samples = samples_of(reading, self.ctx.settings.items("MeterValuesSampledData"))
        tx = c.tx
        if tx is not None and tx.charging and c.load_released and c.plugged:
            if reading.power_w:
                tx.energy_flowed = True
            if reading.power_w is not None and reading.power_w <= 0 and c.status is S.CHARGING:
                if tx.energy_flowed and events.ENERGY_TRANSFER in self.ctx.tx_points().stop:
                    # TxStopPoint EnergyTransfer: the transaction ends when the EV stops
                    self._stop_transaction(c.id, StopReason.STOPPED_BY_EV)
                else:
                    c.sm.go(S.SUSPENDED_EV)
            elif reading.power_w and c.status is S.SUSPENDED_EV:
                c.sm.go(S.CHARGING)
        return samples

    async def sample_loop(self) -> None:
        """Periodic values (MeterValueSampleInterval); with TxStopPoint EnergyTransfer the
        power is watched every second even when no values are sent."""
        while True:
            interval = self.ctx.settings.number("MeterValueSampleInterval")
            watch = events.ENERGY_TRANSFER in self.ctx.tx_points().stop
            period = interval if interval > 0 else SETTING_POLL_S
            if watch:
                period = min(period, SETTING_POLL_S)
            if await self._sleep_or_interval_change(period):
                continue
            due = interval > 0 and time.monotonic() >= self._next_sample
            if not due and not watch:
                continue
            if due:
                self._next_sample = time.monotonic() + interval - 0.05
            for c in self.ctx.connectors.values():
                if c.tx is None or not c.tx.charging or c.lock.locked():
                    continue
                try:
                    samples = await self.sample_connector(c)
                except MeterError as exc:
                    log.warning("connector %d: sampling failed: %s", c.id, exc)
                    note_meter_error(c, exc)
                    continue
                if due and samples and c.tx is not None and c.tx.charging:
                    await self._queue_meter_values(c, c.tx, "Sample.Periodic", samples)

    async def _queue_meter_values(
        self, c: Connector, tx: ActiveTransaction, context: str, samples: list[events.Sample]
    ) -> None:
        """A session's meter values into the durable outbox (held in memory while the disk
        is full; the oldest are kept when too many wait)."""
        data = events.meter_values(
            connector_id=c.id,
            timestamp=utc_now(),
            context=context,
            samples=samples,
            offline=not self.ctx.is_online(),
        )

        async def write() -> None:
            await self.ctx.store.enqueue(
                events.TRANSACTION_METER_VALUES, data, local_tx_id=tx.local_id
            )
            self.ctx.outbox_changed()

        await self.disk_space.store_or_hold(
            f"meter values of session {tx.local_id}", write, droppable=True
        )

    async def aligned_loop(self) -> None:
        while True:
            interval = self.ctx.settings.number("ClockAlignedDataInterval")
            if interval <= 0:
                await asyncio.sleep(SETTING_POLL_S)
                continue
            now = time.time()
            await asyncio.sleep(interval - (now % interval))
            for c in self.ctx.connectors.values():
                try:
                    reading = await c.meter.driver.energy()
                except MeterError as exc:
                    log.warning("connector %d: clock-aligned reading failed: %s", c.id, exc)
                    note_meter_error(c, exc)
                    continue
                samples = samples_of(reading, self.ctx.settings.items("MeterValuesAlignedData"))
                if not samples:
                    continue
                if c.tx is not None:
                    await self._queue_meter_values(c, c.tx, "Sample.Clock", samples)
                else:
                    self.ctx.volatile_meter_values(c.id, "Sample.Clock", samples)

    async def health_loop(self) -> None:
        """Bring a connector back once its meter is fit to sign again."""
        while True:
            await asyncio.sleep(self._health_interval_s)
            for c in self.ctx.connectors.values():
                if c.meter_fault is None or c.tx is not None or c.lock.locked():
                    continue
                try:
                    await self._meter_ready(c)
                except MeterError as exc:
                    log.debug("connector %d: meter still not ready: %s", c.id, exc)
                    continue
                log.info("connector %d: meter fit again (%s cleared)", c.id, c.meter_fault)
                c.meter_fault = None
                if c.hardware_fault is None and c.status is S.FAULTED:
                    c.sm.go(idle_status(c))

    async def keep_meter_clock(self, c: Connector) -> None:
        """Set a meter's clock when it was never set, or when it drifted and the last set is
        more than 24 h ago; never during a session (EpochSetCnt must match begin and end)."""
        if c.tx is not None or c.lock.locked():
            return
        driver = c.meter.driver
        clock = await driver.clock()
        now = datetime.now(UTC).astimezone()
        if clock.epoch is not None:
            drift = abs(clock.epoch - now.timestamp())
            since = clock.seconds_since_set
            if drift < CLOCK_DRIFT_LIMIT_S or (since is not None and since < 24 * 3600):
                return
            log.warning("connector %d: meter clock off by %.0f s; setting it", c.id, drift)
        async with c.lock:
            if c.tx is None:
                await driver.set_clock(now)
                log.info("connector %d: meter clock set to %s", c.id, now.isoformat())
                self.ctx.security_event("SettingSystemTime", f"connector {c.id}: meter clock set")

    async def clock_loop(self) -> None:
        while True:
            for c in self.ctx.connectors.values():
                try:
                    await self.keep_meter_clock(c)
                except MeterError as exc:
                    log.warning("connector %d: meter clock not checked: %s", c.id, exc)
                    note_meter_error(c, exc)
            await asyncio.sleep(CLOCK_CHECK_INTERVAL_S)
