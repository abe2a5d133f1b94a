"""The start of a session: authorize -> EV plugged -> meter ready (no events, pinned key)
-> metadata -> turn-on snapshot signed -> session and its messages stored -> load released
-> Charging.

The transaction opens at the first start point reached (TxStartPoint): Authorized at once,
EVConnected when the EV is there, otherwise only with the signed Begin. A transaction opened
before the signed Begin is closed again, with nothing billed, when the start does not get
that far; a turn-on signed for a start that cannot go on is switched off again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from chargepoint.core import events
from chargepoint.core.context import (
    StationContext,
    free_status,
    idle_status,
    meter_fault,
    set_power,
)
from chargepoint.core.disk_space import REFUSAL, DiskSpace
from chargepoint.core.meter_fitness import MeterFitness
from chargepoint.core.recovery import Recovery
from chargepoint.core.status import ConnectorStatus, ErrorCode
from chargepoint.core.stopping import Stopping
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transaction import (
    ActiveTransaction,
    Connector,
    StartRequest,
    StopReason,
    energy_sample,
    fields_json,
    late_start_point,
    signed_value,
)
from chargepoint.store import StoreError, StoreFull, disk_full, utc_now
from meter.errors import MeterError, SnapshotIncomplete
from meter.proof.keys import PublicKeyInfo
from meter.snapshot import SignedSnapshot, SnapshotKind

log = logging.getLogger("chargepoint.station")

S = ConnectorStatus


def release_claim(c: Connector) -> None:
    """The connector no longer waits for a start for an id tag."""
    c.pending_id_tag = None
    if c.tx is None and c.status is S.PREPARING and not c.plugged:
        c.sm.go(free_status(c))


class Starting:
    """Starts sessions on claimed connectors; `plug_in` lets the simulated EV arrive."""

    def __init__(
        self,
        ctx: StationContext,
        fitness: MeterFitness,
        stopping: Stopping,
        recovery: Recovery,
        plug_in: Callable[[int], None],
        disk_space: DiskSpace,
    ) -> None:
        self.ctx = ctx
        self.fitness = fitness
        self.stopping = stopping
        self.recovery = recovery
        self._plug_in = plug_in
        self.disk_space = disk_space

    async def start(
        self,
        c: Connector,
        id_tag: str,
        trigger: str,
        parent_id_tag: str | None = None,
        remote_start_id: int | None = None,
        token_type: str | None = None,
        reservation_id: int | None = None,
    ) -> None:
        """Run a claimed connector's start (its pending_id_tag is set by the caller).

        The transaction opens at the first start point reached (TxStartPoint): Authorized
        now, EVConnected when the EV is there, otherwise only once the meter signed the
        turn-on. A transaction opened before the signed Begin is closed again, with nothing
        billed, when the start does not get that far."""
        async with c.lock:
            c.pending_id_tag = id_tag
            start = StartRequest(
                id_tag, trigger, parent_id_tag, remote_start_id, token_type, reservation_id
            )
            try:
                if c.tx is not None and (c.tx.begin is not None or c.tx.id_tag):
                    return
                if not c.operative or c.status is S.FAULTED or self.ctx.resetting:
                    return
                if self.disk_space.refuses_sessions:
                    log.warning("connector %d: start for %s refused: %s", c.id, id_tag, REFUSAL)
                    return
                await self._start_steps(c, start)
            except StoreFull as exc:
                # the disk filled during the start: no session without its signed values
                self.disk_space.full(f"the start on connector {c.id} not written", str(exc))
                log.warning("connector %d: start for %s abandoned: %s", c.id, id_tag, REFUSAL)
                if c.tx is not None and c.tx.begin is None:
                    await self.stopping.close_unbegun(c, StopReason.OTHER, None)
            finally:
                c.abort_reason = None
                c.abort_id_tag = None
                c.abort_event.clear()
                release_claim(c)

    async def _start_steps(self, c: Connector, start: StartRequest) -> None:
        """The steps of `start` once the connector may start: open at the start point,
        wait for the EV, the signed Begin; close again what did not begin."""
        points = self.ctx.tx_points().start
        if c.tx is not None:
            await self._authorize_open(c, start)
            await self._reservation_taken(start)
        elif events.AUTHORIZED in points:
            await self._open(c, events.AUTHORIZED, start)
            await self._reservation_taken(start)
        if not await self._wait_for_ev(c):
            reason = c.abort_reason or (
                StopReason.SOFT_RESET if self.ctx.resetting else StopReason.TIMEOUT
            )
            await self.stopping.close_unbegun(c, reason, c.abort_id_tag)
            return
        if c.tx is None and events.EV_CONNECTED in points:
            await self._open(c, events.EV_CONNECTED, start)
            await self._reservation_taken(start)
        if c.status is not S.PREPARING:
            c.sm.go(S.PREPARING)
        if self.disk_space.refuses_sessions:
            # the disk filled while the EV was awaited: the meter signs nothing
            log.warning("connector %d: start for %s abandoned: %s", c.id, start.id_tag, REFUSAL)
            c.abort_reason = c.abort_reason or StopReason.OTHER
        else:
            await self._begin(c, start)
        if c.tx is not None and c.tx.begin is None:
            await self.stopping.close_unbegun(c, self._abandon_reason(c), c.abort_id_tag)

    async def _reservation_taken(self, start: StartRequest) -> None:
        """The start's transaction message is stored: its reservation is used."""
        if start.reservation_id is not None:
            await self.ctx.reservation_used(start.reservation_id)

    async def open_on_plug(self, c: Connector) -> None:
        """TxStartPoint EVConnected: the transaction opens when the cable is plugged in."""
        async with c.lock:
            if c.tx is None and c.plugged and c.pending_id_tag is None:
                try:
                    await self._open(c, events.EV_CONNECTED, None)
                except StoreFull as exc:
                    self.disk_space.full(f"a transaction on connector {c.id} not opened", str(exc))
                    log.warning("connector %d: no transaction opened: %s", c.id, REFUSAL)
                    return
                if not c.plugged:  # the EV left while the transaction was being stored
                    await self.stopping.close_unbegun(c, StopReason.EV_DISCONNECTED)

    def _abandon_reason(self, c: Connector) -> StopReason:
        """Why a start that opened a transaction did not begin charging."""
        if c.abort_reason is not None:
            return c.abort_reason
        if self.ctx.resetting:
            return StopReason.SOFT_RESET
        if not c.plugged:
            return StopReason.EV_DISCONNECTED
        return StopReason.OTHER

    async def _open(self, c: Connector, start_point: str, start: StartRequest | None) -> None:
        """Open a transaction before the meter signs (start point EVConnected/Authorized);
        `start` is None when nobody is authorized yet (the EV plugged in)."""
        id_tag = start.id_tag if start is not None else ""
        opened_at = utc_now()
        settings = self.ctx.settings
        local_id = await self.ctx.store.open_transaction(
            connector_id=c.id,
            evse_id=c.config.evse_id,
            id_tag=id_tag,
            opened_at=opened_at,
            messages=[
                (
                    events.TRANSACTION_STARTED,
                    events.started(
                        connector_id=c.id,
                        evse_id=c.config.evse_id,
                        id_tag=id_tag,
                        timestamp=opened_at,
                        meter_start_wh=None,
                        begin=None,
                        trigger=start.trigger if start is not None else "",
                        start_point=start_point,
                        remote_start_id=start.remote_start_id if start is not None else None,
                        plugged=c.plugged,
                        offline=not self.ctx.is_online(),
                        sign_started=settings.flag("SampledDataSignStartedReadings"),
                        public_key_mode=settings.raw("PublicKeyWithSignedMeterValue"),
                        id_token_type=start.token_type if start is not None else None,
                        reservation_id=start.reservation_id if start is not None else None,
                    ),
                )
            ],
        )
        c.tx = ActiveTransaction(local_id, id_tag, opened_at)
        log.info(
            "connector %d: transaction %d opened (%s)%s",
            c.id,
            local_id,
            start_point,
            f" for {id_tag}" if id_tag else "",
        )
        self.ctx.outbox_changed()

    async def _authorize_open(self, c: Connector, start: StartRequest) -> None:
        """The id tag for a transaction opened when the EV plugged in."""
        tx = c.tx
        assert tx is not None
        now = utc_now()
        await self.ctx.store.authorize_transaction(
            tx.local_id,
            start.id_tag,
            [
                (
                    events.TRANSACTION_AUTHORIZED,
                    events.authorized(
                        connector_id=c.id,
                        id_tag=start.id_tag,
                        timestamp=now,
                        trigger=start.trigger,
                        offline=not self.ctx.is_online(),
                        id_token_type=start.token_type,
                        reservation_id=start.reservation_id,
                    ),
                )
            ],
        )
        tx.id_tag = start.id_tag
        tx.parent_id_tag = start.parent_id_tag
        log.info("connector %d: transaction %d authorized for %s", c.id, tx.local_id, start.id_tag)
        self.ctx.outbox_changed()

    async def _wait_for_ev(self, c: Connector) -> bool:
        """Wait for the EV (ConnectionTimeOut); False on timeout or an aborted start."""
        if c.plugged:
            return True
        c.sm.go(S.PREPARING)
        if c.meter.sim is not None:  # the simulated EV arrives when a session is requested
            delay = c.config.ev.plug_in_delay
            asyncio.get_running_loop().call_later(delay, self._plug_in, c.id)
        timeout = self.ctx.settings.number("ConnectionTimeOut")
        plugged = asyncio.create_task(c.plugged_event.wait(), name=f"wait EV {c.id}")
        aborted = asyncio.create_task(c.abort_event.wait(), name=f"wait abort {c.id}")
        try:
            await asyncio.wait({plugged, aborted}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            await cancel_and_wait([plugged, aborted])
        if c.plugged and c.abort_reason is None and not self.ctx.resetting:
            return True
        if c.abort_reason is not None:
            log.info("connector %d: start abandoned (%s)", c.id, c.abort_reason)
        else:
            log.info("connector %d: no EV within ConnectionTimeOut (%d s)", c.id, timeout)
        if c.status is S.PREPARING and not c.plugged:
            c.sm.go(free_status(c))
        return False

    def _unfit_to_start(self, c: Connector) -> str | None:
        """Why a connector may no longer start (re-checked after the 2-6 s of signing)."""
        if self.ctx.resetting:
            return "a reset is in progress"
        if not c.plugged:
            return "the EV was unplugged"
        if c.hardware_fault is not None:
            return f"fault: {c.hardware_fault}"
        if not c.operative:
            return "connector set inoperative"
        if c.abort_reason is not None:
            return f"stopped ({c.abort_reason})"
        return None

    async def _begin(self, c: Connector, start: StartRequest) -> None:
        """The signed Begin: signed by the meter, stored with its messages, and only then
        the load released (Charging)."""
        signed = await self._sign_turn_on(c, start.id_tag)
        if signed is None:
            return
        snap, key, signed_at = signed
        unfit = self._unfit_to_start(c)
        if unfit is not None:
            await self._switch_off_unused_turn_on(c, unfit)
            return
        begin = signed_value(snap, signed_at, key)
        begin_values = self._begin_messages(c, begin)
        try:
            tx = await self._store_begin(c, snap, key, signed_at, begin, begin_values, start)
        except StoreError as exc:
            # the signed turn-on is on the meter only: switch it off, nothing is billed
            if disk_full(exc):
                self.disk_space.full(f"the signed Begin on connector {c.id} not written", str(exc))
            log.error("connector %d: storing the signed Begin failed: %s", c.id, exc)
            self.ctx.spawn(self.recovery.close_orphan_turn_on(c), f"close turn-on connector {c.id}")
            c.sm.go(idle_status(c))
            return
        self._note_begin(c, tx, snap, begin, start)
        await self._reservation_taken(start)
        unfit = self._unfit_to_start(c)
        if unfit is not None:
            # something happened while the Begin was being stored: end it before any load
            log.warning(
                "connector %d: session %d ends before the load is released: %s",
                c.id,
                tx.local_id,
                unfit,
            )
            await self.stopping.end_charging(c, tx, self._abandon_reason(c), c.abort_id_tag, False)
            return
        set_power(c, True)  # only now: the begin value is signed and stored
        c.sm.go(S.CHARGING)

    async def _sign_turn_on(
        self, c: Connector, id_tag: str
    ) -> tuple[SignedSnapshot, PublicKeyInfo, str] | None:
        """The meter checked, given the session's metadata and its turn-on signed: the
        snapshot, the key and when; None (connector Faulted) when the meter cannot sign."""
        driver = c.meter.driver
        try:
            key = await self.fitness.meter_ready(c)
            meta = self.ctx.config.metadata.render(
                id_tag=id_tag,
                evse_id=c.config.evse_id,
                connector_id=str(c.id),
                station_id=self.ctx.config.station.id,
            )
            await driver.write_metadata(*meta)
            signed_at = utc_now()
            try:
                snap = await driver.take_snapshot(SnapshotKind.TURN_ON)
            except SnapshotIncomplete as incomplete:
                resumed = await driver.resume_snapshot(SnapshotKind.TURN_ON, incomplete.after_rcnt)
                if resumed is None:
                    raise
                snap = resumed
        except MeterError as exc:
            meter_fault(c, exc)
            if exc.snapshot is not None or isinstance(exc, SnapshotIncomplete):
                # a turn-on may be signed on the meter: switch it off again (RCnt pairing)
                self.ctx.spawn(
                    self.recovery.close_orphan_turn_on(c), f"close turn-on connector {c.id}"
                )
            return None
        return snap, key, signed_at

    async def _switch_off_unused_turn_on(self, c: Connector, unfit: str) -> None:
        """The start cannot go on after the meter signed its turn-on: nothing is billed."""
        log.warning(
            "connector %d: not starting after the turn-on was signed: %s; switching "
            "the meter off again, nothing is billed",
            c.id,
            unfit,
        )
        with contextlib.suppress(MeterError):
            await c.meter.driver.take_snapshot(SnapshotKind.TURN_OFF)
        if c.hardware_fault is not None:
            c.sm.go(S.FAULTED, ErrorCode.OTHER_ERROR, c.hardware_fault[:50])
        else:
            c.sm.go(idle_status(c))

    def _begin_messages(
        self, c: Connector, begin: events.SignedValue
    ) -> list[tuple[str, dict[str, Any]]]:
        """The signed-Begin message stored beside the Begin, when StartTxnSampledData asks
        for values or the transaction opened earlier."""
        settings = self.ctx.settings
        meter_start = begin["energy_wh"]
        offline = not self.ctx.is_online()
        begin_values: list[tuple[str, dict[str, Any]]] = []
        started_measurands = settings.items("StartTxnSampledData")
        if started_measurands or c.tx is not None:
            # a transaction opened earlier learns its signed Begin from this message
            sign = settings.flag("SampledDataSignStartedReadings")
            samples = (
                [energy_sample(meter_start)]
                if "Energy.Active.Import.Register" in started_measurands
                else []
            )
            begin_values.append(
                (
                    events.TRANSACTION_BEGIN_SIGNED,
                    events.begin_signed(
                        connector_id=c.id,
                        begin=begin,
                        signed=sign,
                        samples=samples,
                        opened_earlier=c.tx is not None,
                        offline=offline,
                        public_key_mode=settings.raw("PublicKeyWithSignedMeterValue"),
                    ),
                )
            )
        return begin_values

    async def _store_begin(
        self,
        c: Connector,
        snap: SignedSnapshot,
        key: PublicKeyInfo,
        signed_at: str,
        begin: events.SignedValue,
        begin_values: list[tuple[str, dict[str, Any]]],
        start: StartRequest,
    ) -> ActiveTransaction:
        """The signed Begin and its messages into the store, in one SQL transaction."""
        meter_start = begin["energy_wh"]
        id_tag = start.id_tag
        offline = not self.ctx.is_online()
        settings = self.ctx.settings
        if c.tx is not None:
            local_id = c.tx.local_id
            await self.ctx.store.begin_transaction(
                local_id,
                meter_serial=snap.fields.ma1_text,
                public_key_hex=key.der_hex,
                started_at=signed_at,
                meter_start_wh=meter_start,
                begin_ocmf=snap.ocmf,
                begin_fields=fields_json(snap),
                messages=begin_values,
            )
            tx = c.tx
        else:
            started = events.started(
                connector_id=c.id,
                evse_id=c.config.evse_id,
                id_tag=id_tag,
                timestamp=signed_at,
                meter_start_wh=meter_start,
                begin=begin,
                trigger=start.trigger,
                start_point=late_start_point(self.ctx.tx_points().start),
                remote_start_id=start.remote_start_id,
                plugged=c.plugged,
                offline=offline,
                sign_started=settings.flag("SampledDataSignStartedReadings"),
                public_key_mode=settings.raw("PublicKeyWithSignedMeterValue"),
                id_token_type=start.token_type,
                reservation_id=start.reservation_id,
            )
            local_id = await self.ctx.store.start_transaction(
                connector_id=c.id,
                evse_id=c.config.evse_id,
                id_tag=id_tag,
                meter_serial=snap.fields.ma1_text,
                public_key_hex=key.der_hex,
                started_at=signed_at,
                meter_start_wh=meter_start,
                begin_ocmf=snap.ocmf,
                begin_fields=fields_json(snap),
                messages=[(events.TRANSACTION_STARTED, started), *begin_values],
            )
            tx = ActiveTransaction(local_id, id_tag, signed_at)
            c.tx = tx
        return tx

    def _note_begin(
        self,
        c: Connector,
        tx: ActiveTransaction,
        snap: SignedSnapshot,
        begin: events.SignedValue,
        start: StartRequest,
    ) -> None:
        """The stored Begin on the session in memory."""
        meter_start = begin["energy_wh"]
        tx.begin = begin
        tx.begin_rcnt = snap.fields.rcnt
        tx.begin_ma1 = snap.fields.ma1_text
        tx.parent_id_tag = tx.parent_id_tag or start.parent_id_tag
        c.last_energy_wh = meter_start
        log.info(
            "connector %d: session %d started for %s, meter start %d Wh (T%d)",
            c.id,
            tx.local_id,
            start.id_tag,
            meter_start,
            snap.fields.rcnt,
        )
        self.ctx.outbox_changed()
