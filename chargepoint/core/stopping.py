"""The stop of a session: load cut -> turn-off snapshot signed -> session end and its message
stored -> the closed session proven (its mark kept beside it) -> the connector's status.

A transaction that never began charging is closed with nothing billed; one whose charging
ended earlier (TxStopPoint EVConnected) is closed with the signed values it already holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from chargepoint.core import events
from chargepoint.core.context import StationContext, free_status, set_power
from chargepoint.core.disk_space import DiskSpace
from chargepoint.core.status import ConnectorStatus, ErrorCode
from chargepoint.core.transaction import (
    DEAUTHORIZING,
    ActiveTransaction,
    Connector,
    StopReason,
    begin_from_row,
    energy_sample,
    fields_json,
    signed_value,
)
from chargepoint.proof.sessions import record_proof
from chargepoint.store import StoreError, TransactionRow, utc_now
from meter.errors import Action, MeterError, SnapshotIncomplete
from meter.snapshot import SignedSnapshot, SnapshotKind

log = logging.getLogger("chargepoint.station")

S = ConnectorStatus
END_SNAPSHOT_ATTEMPTS = 3
END_SNAPSHOT_RETRY_S = 2.0
STORE_RETRIES = 5
STORE_RETRY_S = 1.0


class Stopping:
    """Ends sessions and closes transactions; `unplug` lets the simulated EV drive off."""

    def __init__(
        self, ctx: StationContext, unplug: Callable[[int], None], disk_space: DiskSpace
    ) -> None:
        self.ctx = ctx
        self._unplug = unplug
        self.disk_space = disk_space  # a full disk: the writes wait in memory for space

    async def stop(
        self, c: Connector, reason: StopReason, id_tag: str | None, recovering: bool = False
    ) -> None:
        async with c.lock:
            tx = c.tx
            if tx is None:
                return
            if tx.begin is None:
                await self.close_unbegun(c, reason, id_tag)
                return
            if tx.ended_reason is not None:
                await self._close_ended(c, tx, reason)
                return
            await self.end_charging(c, tx, reason, id_tag, recovering)

    def _defers_close(self, c: Connector, reason: StopReason) -> bool:
        """Charging stops but the transaction stays open: its stop points are all still
        valid (TxStopPoint EVConnected alone and the EV still plugged in)."""
        stop = self.ctx.tx_points().stop
        if reason not in DEAUTHORIZING or not c.plugged:
            return False
        return not stop & {events.AUTHORIZED, events.POWER_PATH_CLOSED, events.ENERGY_TRANSFER}

    async def end_charging(
        self,
        c: Connector,
        tx: ActiveTransaction,
        reason: StopReason,
        id_tag: str | None,
        recovering: bool,
    ) -> None:
        """Cut the load, take the signed End and store it with the transaction's end (or,
        when the stop point is not reached yet, with a charging-ended message)."""
        begin = tx.begin
        assert begin is not None
        set_power(c, False)
        if c.plugged and c.status not in (S.FAULTED, S.FINISHING):
            c.sm.go(S.FINISHING)
        signed_at = utc_now()
        end, unsigned = await self._signed_end(c, tx, recovering)
        end_value, meter_stop = self._end_reading(c, begin, end, signed_at)
        defer = self._defers_close(c, reason)
        message = (
            self._charging_ended_message(c, reason, id_tag, signed_at, meter_stop)
            if defer
            else self._ended_message(
                c, reason, id_tag, signed_at, meter_stop, begin, end_value, unsigned
            )
        )
        await self._store_end(
            tx.local_id,
            stopped_at=signed_at,
            meter_stop_wh=meter_stop,
            end_ocmf=end.ocmf if end is not None else None,
            end_fields=fields_json(end) if end is not None else None,
            stop_reason=reason.value,
            stop_id_tag=id_tag,
            unsigned_end_reason=unsigned,
            messages=[message],
            close=not defer,
        )
        log.info(
            "connector %d: session %d ended (%s), meter stop %d Wh, %d Wh charged%s%s",
            c.id,
            tx.local_id,
            reason,
            meter_stop,
            meter_stop - begin["energy_wh"],
            "" if unsigned is None else f", NO signed end value: {unsigned}",
            "; the transaction stays open until the EV is unplugged" if defer else "",
        )
        self.ctx.outbox_changed()
        if defer:
            tx.ended_reason = reason
        else:
            c.tx = None
            self._prove(tx.local_id)
        self._settle(c, unsigned)

    async def _signed_end(
        self, c: Connector, tx: ActiveTransaction, recovering: bool
    ) -> tuple[SignedSnapshot | None, str | None]:
        """The session's turn-off snapshot: the one kept from a failed store write, or a
        new one (None and why when the meter signed none)."""
        if tx.end is not None:
            return tx.end, None
        end, unsigned = await self._end_snapshot(c, tx, recovering)
        tx.end = end
        return end, unsigned

    def _end_reading(
        self,
        c: Connector,
        begin: events.SignedValue,
        end: SignedSnapshot | None,
        signed_at: str,
    ) -> tuple[events.SignedValue | None, int]:
        """The signed End value and the meter stop; without a signed End the last reading."""
        if end is not None:
            end_value: events.SignedValue | None = signed_value(
                end, signed_at, c.meter.driver.pinned_key
            )
            assert end_value is not None
            return end_value, end_value["energy_wh"]
        meter_stop = c.last_energy_wh if c.last_energy_wh is not None else begin["energy_wh"]
        return None, meter_stop

    def _charging_ended_message(
        self,
        c: Connector,
        reason: StopReason,
        id_tag: str | None,
        signed_at: str,
        meter_stop: int,
    ) -> tuple[str, dict[str, Any]]:
        return (
            events.TRANSACTION_CHARGING_ENDED,
            events.charging_ended(
                connector_id=c.id,
                timestamp=signed_at,
                reason=reason.value,
                id_tag=id_tag,
                meter_stop_wh=meter_stop,
                offline=not self.ctx.is_online(),
            ),
        )

    def _ended_message(
        self,
        c: Connector,
        reason: StopReason,
        id_tag: str | None,
        signed_at: str,
        meter_stop: int,
        begin: events.SignedValue,
        end_value: events.SignedValue | None,
        unsigned: str | None,
    ) -> tuple[str, dict[str, Any]]:
        settings = self.ctx.settings
        return (
            events.TRANSACTION_ENDED,
            events.ended(
                connector_id=c.id,
                id_tag=id_tag,
                timestamp=signed_at,
                meter_stop_wh=meter_stop,
                reason=reason.value,
                begin=begin,
                end=end_value,
                unsigned_reason=unsigned,
                stop_samples=self._stop_samples(meter_stop),
                sign_readings=settings.flag("SampledDataSignReadings"),
                public_key_mode=settings.raw("PublicKeyWithSignedMeterValue"),
                offline=not self.ctx.is_online(),
            ),
        )

    async def close_unbegun(
        self, c: Connector, reason: StopReason, id_tag: str | None = None
    ) -> None:
        """Close a transaction that never began charging: nothing was signed or billed."""
        tx = c.tx
        if tx is None or tx.begin is not None:
            return
        now = utc_now()
        ended = events.ended(
            connector_id=c.id,
            id_tag=id_tag,
            timestamp=now,
            meter_stop_wh=None,
            reason=reason.value,
            begin=None,
            end=None,
            unsigned_reason=None,
            stop_samples=[],
            sign_readings=False,
            public_key_mode=self.ctx.settings.raw("PublicKeyWithSignedMeterValue"),
            offline=not self.ctx.is_online(),
        )
        await self.disk_space.store(
            f"the close of transaction {tx.local_id}",
            lambda: self.ctx.store.close_transaction(
                tx.local_id,
                closed_at=now,
                stop_reason=reason.value,
                stop_id_tag=id_tag,
                messages=[(events.TRANSACTION_ENDED, ended)],
            ),
        )
        c.tx = None
        self._prove(tx.local_id)
        log.info(
            "connector %d: transaction %d closed before charging (%s), nothing billed",
            c.id,
            tx.local_id,
            reason,
        )
        self.ctx.outbox_changed()
        self._settle(c)

    async def _close_ended(
        self, c: Connector, tx: ActiveTransaction, close_reason: StopReason
    ) -> None:
        """Close a transaction whose charging ended earlier: the Ended message carries the
        signed Begin and End kept in the store, byte for byte."""
        row = await self.ctx.store.transaction(tx.local_id)
        if row is None:
            raise StoreError(f"session {tx.local_id} vanished from the store")
        now = utc_now()
        ended = self._ended_from_row(row, now, close_reason)
        await self.disk_space.store(
            f"the close of transaction {tx.local_id}",
            lambda: self.ctx.store.close_transaction(
                tx.local_id,
                closed_at=now,
                stop_reason=row.stop_reason or close_reason.value,
                stop_id_tag=row.stop_id_tag,
                messages=[(events.TRANSACTION_ENDED, ended)],
            ),
        )
        c.tx = None
        self._prove(tx.local_id)
        log.info(
            "connector %d: transaction %d closed (%s) after its charging ended (%s)",
            c.id,
            tx.local_id,
            close_reason,
            row.stop_reason,
        )
        self.ctx.outbox_changed()
        self._settle(c)

    def _ended_from_row(
        self, row: TransactionRow, timestamp: str, close_reason: StopReason
    ) -> dict[str, Any]:
        begin = begin_from_row(row)
        assert begin is not None and row.stopped_at is not None and row.meter_stop_wh is not None
        end: events.SignedValue | None = None
        if row.end_ocmf is not None:
            end = {
                "ocmf": row.end_ocmf,
                "timestamp": row.stopped_at,
                "energy_wh": row.meter_stop_wh,
                "public_key_hex": row.public_key_hex or "",
            }
        return events.ended(
            connector_id=row.connector_id,
            id_tag=row.stop_id_tag,
            timestamp=timestamp,
            meter_stop_wh=row.meter_stop_wh,
            reason=row.stop_reason or close_reason.value,
            begin=begin,
            end=end,
            unsigned_reason=row.unsigned_end_reason,
            stop_samples=self._stop_samples(row.meter_stop_wh),
            sign_readings=self.ctx.settings.flag("SampledDataSignReadings"),
            public_key_mode=self.ctx.settings.raw("PublicKeyWithSignedMeterValue"),
            close_trigger=close_reason.value,
            offline=not self.ctx.is_online(),
        )

    def _stop_samples(self, meter_stop: int) -> list[events.Sample]:
        if "Energy.Active.Import.Register" in self.ctx.settings.items("StopTxnSampledData"):
            return [energy_sample(meter_stop)]
        return []

    def _prove(self, local_id: int) -> None:
        """Check the closed session's signed records and keep the mark beside it."""
        self.ctx.spawn(record_proof(self.ctx.store, local_id), f"proof of session {local_id}")

    def _settle(self, c: Connector, unsigned: str | None = None) -> None:
        """The connector's status once a transaction closed or its charging ended."""
        if c.tx is None and c.inoperative_scheduled:
            c.inoperative_scheduled = False
            c.operative = False
        if c.hardware_fault is not None:
            c.sm.go(S.FAULTED, ErrorCode.OTHER_ERROR, c.hardware_fault[:50])
        elif c.meter_fault is not None or unsigned is not None:
            c.sm.go(
                S.FAULTED, ErrorCode.POWER_METER_FAILURE, (c.meter_fault or unsigned or "")[:50]
            )
        elif not c.operative and c.tx is None:
            c.sm.go(S.UNAVAILABLE)
        elif c.plugged:
            if c.status is not S.FINISHING:
                c.sm.go(S.FINISHING)
            if c.meter.sim is not None:  # the simulated EV drives off after its session
                asyncio.get_running_loop().call_later(c.config.ev.plug_in_delay, self._unplug, c.id)
        else:
            c.sm.go(free_status(c))

    async def _store_end(self, local_id: int, **kwargs: Any) -> None:
        """The session's end into the store; a failed write is retried, the signed end is
        kept in memory meanwhile (never signed twice). On a full disk it waits in memory,
        in order with the other held writes, until space returns: its Stop message is sent
        only once the signed End is stored with it."""
        signed = 1 if kwargs.get("end_ocmf") is not None else 0
        for attempt in range(1, STORE_RETRIES + 1):
            try:
                await self.disk_space.store(
                    f"the end of session {local_id}",
                    lambda: self.ctx.store.end_transaction(local_id, **kwargs),
                    signed_values=signed,
                )
                return
            except StoreError as exc:
                log.error(
                    "session %d: storing its end failed (attempt %d): %s", local_id, attempt, exc
                )
                if attempt == STORE_RETRIES:
                    raise
                await asyncio.sleep(STORE_RETRY_S * attempt)

    async def _paired_end(self, c: Connector, tx: ActiveTransaction) -> SignedSnapshot | None:
        """A turn-off snapshot already on the meter that ends this session (RCnt + 1)."""
        try:
            last = await c.meter.driver.read_snapshot(SnapshotKind.TURN_OFF)
        except MeterError:
            return None
        if last.fields.rcnt == tx.begin_rcnt + 1 and last.fields.ma1_text == tx.begin_ma1:
            return last
        return None

    async def _end_snapshot(
        self, c: Connector, tx: ActiveTransaction, recovering: bool
    ) -> tuple[SignedSnapshot | None, str | None]:
        driver = c.meter.driver
        if recovering:
            paired = await self._paired_end(c, tx)
            if paired is not None:
                log.info(
                    "connector %d: the meter already holds the end of session %d (T%d)",
                    c.id,
                    tx.local_id,
                    paired.fields.rcnt,
                )
                return paired, None
        last_error = ""
        for attempt in range(1, END_SNAPSHOT_ATTEMPTS + 1):
            try:
                await driver.ensure_identity()
                try:
                    return await driver.take_snapshot(SnapshotKind.TURN_OFF), None
                except SnapshotIncomplete as incomplete:
                    # the meter may still finish it: read it back, never trigger a second one
                    log.warning(
                        "connector %d: turn-off snapshot incomplete (%s); reading it back",
                        c.id,
                        incomplete,
                    )
                    resumed = await driver.resume_snapshot(
                        SnapshotKind.TURN_OFF, incomplete.after_rcnt
                    )
                    if resumed is not None:
                        return resumed, None
                    raise
            except MeterError as exc:
                if exc.snapshot is not None and exc.snapshot.ocmf:
                    # signed, but the meter flags a problem: keep the signed value
                    c.meter_fault = f"{type(exc).__name__}: {exc}"
                    return exc.snapshot, None
                last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "connector %d: turn-off snapshot attempt %d failed: %s",
                    c.id,
                    attempt,
                    last_error,
                )
                paired = await self._paired_end(c, tx)
                if paired is not None:
                    return paired, None
                if exc.action not in (Action.RETRY, Action.READ_BACK) and attempt >= 2:
                    break
            await asyncio.sleep(END_SNAPSHOT_RETRY_S)
        c.meter_fault = last_error
        return None, last_error
