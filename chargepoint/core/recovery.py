"""Sessions found open at start: a power loss (or crash) ends them with the meter's turn-off
snapshot (reason PowerLoss); a clean stop that noted them (service restart) lets them
continue when the meter still holds their open turn-on. A turn-on the meter signed but the
store never kept is switched off again (nothing was billed for it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from chargepoint.core.context import StationContext, meter_fault
from chargepoint.core.status import ConnectorStatus, ErrorCode, InvalidTransition
from chargepoint.core.stopping import Stopping
from chargepoint.core.transaction import Connector, StopReason, active_from_row
from chargepoint.store import TransactionRow, utc_now
from meter.errors import Action, MeterError
from meter.snapshot import SnapshotKind

log = logging.getLogger("chargepoint.station")

S = ConnectorStatus
RECOVERY_RETRY_S = 10.0
KEPT_OPEN_SETTING = "shutdown.sessions_kept_open"  # the sessions a clean stop left open


class Recovery:
    """Takes over the sessions a previous run left open; `plug_in` lets the simulated EV
    come back to a resumed session."""

    def __init__(
        self, ctx: StationContext, stopping: Stopping, plug_in: Callable[[int], None]
    ) -> None:
        self.ctx = ctx
        self.stopping = stopping
        self._plug_in = plug_in

    async def take_over_open_sessions(self) -> None:
        """Resume, end or close what the store and the meters hold open (one task each)."""
        rows = await self.ctx.store.open_transactions()
        open_by_connector = {r.connector_id: r for r in rows}
        kept_open = await self._sessions_kept_open()
        for c in self.ctx.connectors.values():
            row = open_by_connector.get(c.id)
            if row is not None:
                c.tx = active_from_row(row)
                if row.local_id in kept_open and row.charging:
                    self.ctx.spawn(self._resume(c, row), f"resume connector {c.id}")
                else:
                    self.ctx.spawn(self._recover(c, row), f"recover connector {c.id}")
            else:
                self.ctx.spawn(self.close_orphan_turn_on(c), f"orphan check connector {c.id}")

    async def keep_sessions_open(self) -> list[int]:
        """A clean stop that leaves the charging sessions open (service restart): note them,
        so the next start resumes them when their meter still holds the same open turn-on.
        Without this note (power loss, crash) the next start ends them (PowerLoss)."""
        open_ids = [
            c.tx.local_id
            for c in self.ctx.connectors.values()
            if c.tx is not None and c.tx.charging and not c.lock.locked()
        ]
        note = json.dumps({"at": utc_now(), "sessions": open_ids})
        await self.ctx.store.set_setting(KEPT_OPEN_SETTING, note)
        return open_ids

    async def _sessions_kept_open(self) -> set[int]:
        """The sessions the last clean stop left open; the note is used once."""
        text = await self.ctx.store.get_setting(KEPT_OPEN_SETTING)
        if not text:
            return set()
        await self.ctx.store.set_setting(KEPT_OPEN_SETTING, "")
        try:
            return {int(i) for i in json.loads(text)["sessions"]}
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable note of sessions kept open at the last stop: %.100s", text)
            return set()

    async def _resume(self, c: Connector, row: TransactionRow) -> None:
        """A session a clean stop left open: it continues when the meter still holds its
        open turn-on (same RCnt, same meter); otherwise it is ended like after a power loss.
        The load is released again only once the EV is reported plugged in."""
        tx = c.tx
        assert tx is not None
        try:
            state = await c.meter.driver.transaction_state()
            last_on = await c.meter.driver.read_snapshot(SnapshotKind.TURN_ON)
            same = (
                state.open
                and last_on.fields.rcnt == tx.begin_rcnt
                and last_on.fields.ma1_text == tx.begin_ma1
            )
        except MeterError as exc:
            log.warning("connector %d: cannot resume session %d: %s", c.id, tx.local_id, exc)
            same = False
        if not same:
            await self._recover(c, row)
            return
        log.info(
            "connector %d: session %d continues after the restart (T%d still open on the "
            "meter); load released again once the EV is reported plugged in",
            c.id,
            tx.local_id,
            tx.begin_rcnt,
        )
        c.last_energy_wh = tx.meter_start_wh
        with contextlib.suppress(InvalidTransition):
            if c.status is S.AVAILABLE:
                c.sm.go(S.PREPARING)
            c.sm.go(S.SUSPENDED_EV)
        if c.meter.sim is not None:  # the simulated EV is still there
            asyncio.get_running_loop().call_later(c.config.ev.plug_in_delay, self._plug_in, c.id)

    async def _recover(self, c: Connector, row: TransactionRow) -> None:
        """A transaction left open (power loss, crash): end it with the turn-off snapshot;
        one that had not begun charging or whose charging had ended is closed."""
        if not row.charging:
            log.warning(
                "connector %d: transaction %d was left open %s: closing it (PowerLoss)",
                c.id,
                row.local_id,
                "before charging began" if row.begin_ocmf is None else "after charging ended",
            )
            await self.stopping.stop(c, StopReason.POWER_LOSS, None)
            if row.begin_ocmf is None:
                await self.close_orphan_turn_on(c)
            return
        log.warning(
            "connector %d: session %d was left open: ending it (PowerLoss)", c.id, row.local_id
        )
        while True:
            try:
                await c.meter.driver.identity()
                break
            except MeterError as exc:
                if exc.action is not Action.RETRY:
                    break
                c.sm.go(S.FAULTED, ErrorCode.POWER_METER_FAILURE, "meter unreachable")
                log.error(
                    "connector %d: meter unreachable, session %d waits for it: %s",
                    c.id,
                    row.local_id,
                    exc,
                )
                await asyncio.sleep(RECOVERY_RETRY_S)
        await self.stopping.stop(c, StopReason.POWER_LOSS, None, recovering=True)

    async def close_orphan_turn_on(self, c: Connector) -> None:
        """A turn-on the meter signed but the store never kept (power lost while starting):
        no load was released for it and no message names it; switch the meter off."""
        try:
            state = await c.meter.driver.transaction_state()
            if state.open:
                log.warning(
                    "connector %d: meter shows a turn-on never stored (%s); "
                    "closing it, nothing was billed",
                    c.id,
                    state.reason,
                )
                await c.meter.driver.identity()
                await c.meter.driver.take_snapshot(SnapshotKind.TURN_OFF)
        except MeterError as exc:
            meter_fault(c, exc)
