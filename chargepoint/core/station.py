"""The version-free transaction core: connectors, sessions, signed begin and end values
(the data it keeps is in chargepoint.core.transaction).

Order of a start: authorize -> EV plugged -> meter ready (no events, pinned key) -> metadata
-> turn-on snapshot signed -> session and its messages stored -> load released -> Charging.
Order of a stop: load cut -> turn-off snapshot signed -> session end and its message stored.
Nothing is sent from here: the OCPP adapter drains the store's outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

from chargepoint.config import StationConfig
from chargepoint.core import events
from chargepoint.core.auth import Authorizer, Decision
from chargepoint.core.meters import ConnectorMeter
from chargepoint.core.settings import Settings
from chargepoint.core.status import (
    ConnectorStateMachine,
    ConnectorStatus,
    ErrorCode,
    InvalidTransition,
    StatusReport,
)
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transaction import (
    DEAUTHORIZING,
    SIGNED_PERIOD,
    ActiveTransaction,
    Connector,
    StartRequest,
    StopReason,
    TxPoints,
    VolatileMeterValues,
    active_from_row,
    begin_from_row,
    energy_sample,
    fields_json,
    late_start_point,
    samples_of,
    signed_value,
)
from chargepoint.proof.sessions import record_proof
from chargepoint.store import AsyncStore, StoreError, TransactionRow, utc_now
from meter.errors import Action, MeterError, MeterSerialChanged, SnapshotIncomplete
from meter.proof.keys import PublicKeyInfo
from meter.snapshot import SignedSnapshot, SnapshotKind

log = logging.getLogger("chargepoint.station")

S = ConnectorStatus
METER_HEALTH_INTERVAL_S = 15.0
RECOVERY_RETRY_S = 10.0
END_SNAPSHOT_ATTEMPTS = 3
END_SNAPSHOT_RETRY_S = 2.0
CLOCK_CHECK_INTERVAL_S = 3600.0
STORE_RETRIES = 5
STORE_RETRY_S = 1.0
LOOP_ERROR_BACKOFF_S = 5.0
CLOCK_DRIFT_LIMIT_S = 30.0
SETTING_POLL_S = 1.0  # how soon a loop notices its interval setting switched on
KEPT_OPEN_SETTING = "shutdown.sessions_kept_open"  # the sessions a clean stop left open


class Station:
    """All connectors of the charge point and the sessions on them."""

    def __init__(
        self,
        config: StationConfig,
        store: AsyncStore,
        settings: Settings,
        meters: Mapping[int, ConnectorMeter],
        authorizer: Authorizer,
    ) -> None:
        self.config = config
        self.store = store
        self.settings = settings
        self.authorizer = authorizer
        self.connectors: dict[int, Connector] = {
            c.id: Connector(c, meters[c.id], ConnectorStateMachine(c.id)) for c in config.connectors
        }
        self.is_online: Callable[[], bool] = lambda: False
        self.outbox_changed: Callable[[], None] = lambda: None
        self.volatile_meter_values: VolatileMeterValues = lambda cid, ctx, samples: None
        # set by the OCPP 2.0.1 adapter from TxCtrlr.TxStartPoint / TxStopPoint
        self.tx_points: Callable[[], TxPoints] = lambda: SIGNED_PERIOD
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self.resetting = False
        self._next_sample = 0.0
        self._key_recorded: set[int] = set()
        self._pinned_serial: dict[int, str] = {}  # the serial each pinned key belongs to

    # ---- lifecycle ---------------------------------------------------------------------

    def subscribe_status(self, listener: Callable[[StatusReport], None]) -> None:
        for c in self.connectors.values():
            c.sm.subscribe(listener)

    def status_reports(self) -> list[StatusReport]:
        return [c.sm.report for c in self.connectors.values()]

    async def start(self) -> None:
        """Restore availability, end sessions left open by a power loss, start the loops."""
        for c in self.connectors.values():
            stored = await self.store.get_setting(f"availability.{c.id}")
            if stored == "Inoperative":
                c.operative = False
                c.sm.go(S.UNAVAILABLE)
        for c in self.connectors.values():
            try:
                await self.pin_key(c)
            except MeterError as exc:
                log.error("connector %d: meter not reachable at start: %s", c.id, exc)
        rows = await self.store.open_transactions()
        open_by_connector = {r.connector_id: r for r in rows}
        kept_open = await self._sessions_kept_open()
        for c in self.connectors.values():
            row = open_by_connector.get(c.id)
            if row is not None:
                c.tx = active_from_row(row)
                if row.local_id in kept_open and row.charging:
                    self._spawn(self._resume(c, row), f"resume connector {c.id}")
                else:
                    self._spawn(self._recover(c, row), f"recover connector {c.id}")
            else:
                self._spawn(self._close_orphan_turn_on(c), f"orphan check connector {c.id}")
        self._loops = [
            asyncio.create_task(self._supervised(self._sample_loop), name="meter sampling"),
            asyncio.create_task(self._supervised(self._aligned_loop), name="clock-aligned values"),
            asyncio.create_task(self._supervised(self._health_loop), name="meter health"),
            asyncio.create_task(self._supervised(self._clock_loop), name="meter clocks"),
        ]
        self._ready.set()

    def ended_loops(self) -> list[str]:
        """The periodic loops that stopped (none while the station makes progress)."""
        return [t.get_name() for t in self._loops if t.done()]

    async def keep_sessions_open(self) -> list[int]:
        """A clean stop that leaves the charging sessions open (service restart): note them,
        so the next start resumes them when their meter still holds the same open turn-on.
        Without this note (power loss, crash) the next start ends them (PowerLoss)."""
        open_ids = [
            c.tx.local_id
            for c in self.connectors.values()
            if c.tx is not None and c.tx.charging and not c.lock.locked()
        ]
        note = json.dumps({"at": utc_now(), "sessions": open_ids})
        await self.store.set_setting(KEPT_OPEN_SETTING, note)
        return open_ids

    async def _sessions_kept_open(self) -> set[int]:
        """The sessions the last clean stop left open; the note is used once."""
        text = await self.store.get_setting(KEPT_OPEN_SETTING)
        if not text:
            return set()
        await self.store.set_setting(KEPT_OPEN_SETTING, "")
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
            asyncio.get_running_loop().call_later(c.config.ev.plug_in_delay, self.plug_in, c.id)

    async def stop(self) -> None:
        """Cancel every task the station owns; open sessions stay open in the store."""
        await cancel_and_wait([*self._loops, *self._tasks])
        self._loops.clear()
        self._tasks.clear()

    async def _supervised(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Keep a periodic loop alive: an unexpected error is logged and the loop restarted."""
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "%s failed; restarting it in %.0f s", loop.__name__, LOOP_ERROR_BACKOFF_S
                )
                await asyncio.sleep(LOOP_ERROR_BACKOFF_S)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed: %r", name, t.exception(), exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def idle(self) -> None:
        """Wait until no session task is running (tests, reset)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---- inputs from the charge controller / HMI ---------------------------------------

    def connector(self, connector_id: int) -> Connector:
        try:
            return self.connectors[connector_id]
        except KeyError:
            raise ValueError(f"no connector {connector_id}") from None

    def plug_in(self, connector_id: int) -> None:
        c = self.connector(connector_id)
        if c.plugged:
            return
        c.plugged = True
        c.plugged_event.set()
        log.info("connector %d: EV plugged in", c.id)
        if c.tx is None and c.status is S.AVAILABLE:
            c.sm.go(S.PREPARING)
        elif c.tx is not None and c.tx.charging and c.status is S.SUSPENDED_EV:
            self._set_power(c, True)
            c.sm.go(S.CHARGING)
        if (
            events.EV_CONNECTED in self.tx_points().start
            and c.tx is None
            and c.pending_id_tag is None
            and c.operative
            and c.status is not S.FAULTED
        ):
            self._spawn(self._open_on_plug(c), f"open transaction connector {c.id}")

    async def _open_on_plug(self, c: Connector) -> None:
        """TxStartPoint EVConnected: the transaction opens when the cable is plugged in."""
        async with c.lock:
            if c.tx is None and c.plugged and c.pending_id_tag is None:
                await self._open(c, events.EV_CONNECTED, None)
                if not c.plugged:  # the EV left while the transaction was being stored
                    await self._close_unbegun(c, StopReason.EV_DISCONNECTED)

    def unplug(self, connector_id: int) -> None:
        c = self.connector(connector_id)
        if not c.plugged:
            return
        c.plugged = False
        c.plugged_event.clear()
        log.info("connector %d: EV unplugged", c.id)
        tx = c.tx
        if tx is not None and tx.charging:
            if self.settings.flag("StopTransactionOnEVSideDisconnect") or (
                events.EV_CONNECTED in self.tx_points().stop
            ):
                self._spawn(
                    self._stop(c, StopReason.EV_DISCONNECTED, None), f"stop connector {c.id}"
                )
            else:
                self._set_power(c, False)
                c.sm.go(S.SUSPENDED_EV)
        elif tx is not None:
            # not charging yet (a start in progress notices by itself) or charging done
            if not c.lock.locked():
                self._spawn(
                    self._stop(c, StopReason.EV_DISCONNECTED, None), f"close connector {c.id}"
                )
        elif c.status in (S.PREPARING, S.FINISHING) and c.pending_id_tag is None:
            c.sm.go(S.AVAILABLE)

    async def present_id_tag(self, id_tag: str, connector_id: int | None = None) -> str:
        """An RFID card or app at the station: stops its own session or starts one."""
        for c in self.connectors.values():
            if c.tx is None or (connector_id is not None and connector_id != c.id):
                continue
            if not c.tx.id_tag:
                continue  # opened when the EV plugged in, waiting for this authorization
            if c.tx.id_tag == id_tag:
                self.stop_transaction(c.id, StopReason.LOCAL, id_tag)
                return f"stopping session on connector {c.id}"
            if connector_id == c.id:
                # another card may stop a session only when it shares its parent id tag
                decision = await self.authorizer.authorize(id_tag, self.is_online())
                parent = decision.info.parent_id_tag if decision.info else None
                if decision.accepted and parent and parent == c.tx.parent_id_tag:
                    self.stop_transaction(c.id, StopReason.LOCAL, id_tag)
                    return f"stopping session on connector {c.id} (same parent id tag)"
                return f"rejected: {id_tag} may not stop this session"
        free = self._free_connector(connector_id)
        if free is None:
            return "rejected: no free connector"
        c = free
        c.pending_id_tag = id_tag  # claimed while the tag is checked
        try:
            decision = await self.authorizer.authorize(id_tag, self.is_online())
        except BaseException:
            self._release_claim(c)
            raise
        if not decision.accepted:
            self._release_claim(c)
            status = decision.info.status if decision.info else "unknown"
            log.info("id tag %s not accepted (%s, %s)", id_tag, status, decision.source)
            return f"rejected: {status}"
        parent = decision.info.parent_id_tag if decision.info else None
        self._spawn(self._start(c, id_tag, "Authorized", parent), f"start connector {c.id}")
        return f"accepted on connector {c.id} ({decision.source})"

    def report_fault(self, connector_id: int, info: str) -> None:
        c = self.connector(connector_id)
        c.hardware_fault = info or "fault reported by the charge controller"
        if c.tx is not None:
            self.stop_transaction(c.id, StopReason.OTHER)
        if c.tx is None or not c.tx.charging:
            c.sm.go(S.FAULTED, ErrorCode.OTHER_ERROR, c.hardware_fault[:50])

    def clear_fault(self, connector_id: int) -> None:
        c = self.connector(connector_id)
        c.hardware_fault = None
        if c.status is S.FAULTED and c.meter_fault is None and c.tx is None:
            c.sm.go(self._idle_status(c))

    # ---- inputs from the CSMS ----------------------------------------------------------

    def remote_start(
        self,
        id_tag: str,
        connector_id: int | None,
        remote_start_id: int | None = None,
        token_type: str | None = None,
    ) -> bool:
        c = self._free_connector(connector_id)
        if c is None:
            return False
        c.pending_id_tag = id_tag  # claimed until the start ends
        self._spawn(
            self._remote_start(c, id_tag, remote_start_id, token_type),
            f"remote start connector {c.id}",
        )
        return True

    async def _remote_start(
        self,
        c: Connector,
        id_tag: str,
        remote_start_id: int | None = None,
        token_type: str | None = None,
    ) -> None:
        try:
            decision: Decision = await self.authorizer.authorize_remote(id_tag, self.is_online())
        except BaseException:
            self._release_claim(c)
            raise
        if not decision.accepted:
            log.info("remote start for %s not authorized", id_tag)
            self._release_claim(c)
            return
        parent = decision.info.parent_id_tag if decision.info else None
        await self._start(c, id_tag, "RemoteStart", parent, remote_start_id, token_type)

    def open_local_id(self, connector_id: int) -> int | None:
        """The local id of the transaction open on a connector, if any."""
        c = self.connector(connector_id)
        return c.tx.local_id if c.tx is not None else None

    def busy(self) -> bool:
        """A transaction is open or being started on some connector (Reset OnIdle waits)."""
        return any(
            c.tx is not None or c.pending_id_tag is not None for c in self.connectors.values()
        )

    def transaction_by_local_id(self, local_id: int) -> Connector | None:
        for c in self.connectors.values():
            if c.tx is not None and c.tx.local_id == local_id:
                return c
        return None

    def stop_transaction(
        self, connector_id: int, reason: StopReason, id_tag: str | None = None
    ) -> bool:
        c = self.connector(connector_id)
        if c.tx is None:
            return False
        if c.tx.begin is None and c.lock.locked():
            # the start is still waiting for the EV or the meter: it closes the transaction
            c.abort_reason = reason
            c.abort_id_tag = id_tag
            c.abort_event.set()
            return True
        self._spawn(self._stop(c, reason, id_tag), f"stop connector {c.id}")
        return True

    async def change_availability(self, connector_id: int, operative: bool) -> str:
        targets = (
            list(self.connectors.values()) if connector_id == 0 else [self.connector(connector_id)]
        )
        scheduled = False
        for c in targets:
            await self.store.set_setting(
                f"availability.{c.id}", "Operative" if operative else "Inoperative"
            )
            c.operative = operative
            busy = c.tx is not None or c.pending_id_tag is not None
            if not operative and busy:
                c.inoperative_scheduled = True
                scheduled = True
            elif not operative:
                c.sm.go(S.UNAVAILABLE)
            else:
                c.inoperative_scheduled = False
                if c.status is S.UNAVAILABLE:
                    c.sm.go(self._idle_status(c))
        return "Scheduled" if scheduled else "Accepted"

    async def end_all(self, reason: StopReason) -> None:
        """End every open session (reset, configured shutdown) and wait for the ends; starts
        in progress are abandoned (their signed turn-on is switched off again)."""
        self.resetting = True
        for c in self.connectors.values():
            if c.lock.locked() and (c.tx is None or c.tx.begin is None):
                c.abort_reason = reason  # a start waiting for the EV gives up now
                c.abort_event.set()
        starting = [t for t in self._tasks if "start" in t.get_name() and not t.done()]
        if starting:
            await asyncio.gather(*starting, return_exceptions=True)
        stops = [
            self._spawn(self._stop(c, reason, None), f"stop connector {c.id}")
            for c in self.connectors.values()
            if c.tx is not None
        ]
        for c in self.connectors.values():
            c.pending_id_tag = None
        if stops:
            await asyncio.gather(*stops, return_exceptions=True)

    async def deauthorized(self, local_id: int) -> None:
        """The CSMS did not accept the id tag of a running session."""
        c = self.transaction_by_local_id(local_id)
        if c is not None and c.tx is not None and not c.tx.charging:
            if c.tx.begin is None:
                self.stop_transaction(c.id, StopReason.DEAUTHORIZED)
            return
        if c is not None and self.settings.flag("StopTransactionOnInvalidId"):
            self._spawn(self._stop(c, StopReason.DEAUTHORIZED, None), f"stop connector {c.id}")
        elif c is not None:
            self._set_power(c, False)
            c.sm.go(S.SUSPENDED_EVSE)

    # ---- status for the control interface ----------------------------------------------

    async def status(self) -> dict[str, Any]:
        connectors = []
        for c in self.connectors.values():
            tx = None
            if c.tx is not None:
                start_wh = c.tx.meter_start_wh
                tx = {
                    "local_id": c.tx.local_id,
                    "id_tag": c.tx.id_tag,
                    "opened_at": c.tx.opened_at,
                    "started_at": c.tx.started_at,
                    "meter_start_wh": start_wh,
                    "charging": c.tx.charging,
                    "energy_wh": None
                    if c.last_energy_wh is None or start_wh is None
                    else c.last_energy_wh - start_wh,
                }
            connectors.append(
                {
                    "id": c.id,
                    "evse_id": c.config.evse_id,
                    "status": c.status.value,
                    "error_code": c.sm.error_code.value,
                    "info": c.sm.info,
                    "plugged": c.plugged,
                    "load_released": c.load_released,
                    "operative": c.operative,
                    "meter_unit": c.meter.unit,
                    "transaction": tx,
                }
            )
        return {
            "station": self.config.station.id,
            "online": self.is_online(),
            "outbox": await self.store.outbox_length(),
            "failed_messages": len(await self.store.failed_messages()),
            "connectors": connectors,
        }

    # ---- sessions ----------------------------------------------------------------------

    def _free_connector(self, connector_id: int | None) -> Connector | None:
        candidates = (
            [self.connector(connector_id)] if connector_id else list(self.connectors.values())
        )
        # an EV already plugged in (and its open transaction) gets the id tag first
        candidates.sort(key=lambda c: (c.tx is None, not c.plugged))
        for c in candidates:
            opened_unauthorized = c.tx is not None and c.tx.begin is None and not c.tx.id_tag
            if (
                (c.tx is None or opened_unauthorized)
                and c.pending_id_tag is None
                and c.operative
                and c.status in (S.AVAILABLE, S.PREPARING)
            ):
                return c
        return None

    def _idle_status(self, c: Connector) -> ConnectorStatus:
        if not c.operative:
            return S.UNAVAILABLE
        return S.PREPARING if c.plugged else S.AVAILABLE

    def _set_power(self, c: Connector, on: bool) -> None:
        c.load_released = on
        if c.meter.sim is not None:
            c.meter.sim.set_power(c.config.ev.power_w if on else 0.0)

    def _release_claim(self, c: Connector) -> None:
        c.pending_id_tag = None
        if c.tx is None and c.status is S.PREPARING and not c.plugged:
            c.sm.go(S.AVAILABLE)

    async def _start(
        self,
        c: Connector,
        id_tag: str,
        trigger: str,
        parent_id_tag: str | None = None,
        remote_start_id: int | None = None,
        token_type: str | None = None,
    ) -> None:
        """Run a claimed connector's start (its pending_id_tag is set by the caller).

        The transaction opens at the first start point reached (TxStartPoint): Authorized
        now, EVConnected when the EV is there, otherwise only once the meter signed the
        turn-on. A transaction opened before the signed Begin is closed again, with nothing
        billed, when the start does not get that far."""
        async with c.lock:
            c.pending_id_tag = id_tag
            start = StartRequest(id_tag, trigger, parent_id_tag, remote_start_id, token_type)
            try:
                if c.tx is not None and (c.tx.begin is not None or c.tx.id_tag):
                    return
                if not c.operative or c.status is S.FAULTED or self.resetting:
                    return
                points = self.tx_points().start
                if c.tx is not None:
                    await self._authorize_open(c, start)
                elif events.AUTHORIZED in points:
                    await self._open(c, events.AUTHORIZED, start)
                if not await self._wait_for_ev(c):
                    reason = c.abort_reason or (
                        StopReason.SOFT_RESET if self.resetting else StopReason.TIMEOUT
                    )
                    await self._close_unbegun(c, reason, c.abort_id_tag)
                    return
                if c.tx is None and events.EV_CONNECTED in points:
                    await self._open(c, events.EV_CONNECTED, start)
                if c.status is not S.PREPARING:
                    c.sm.go(S.PREPARING)
                await self._begin(c, start)
                if c.tx is not None and c.tx.begin is None:
                    await self._close_unbegun(c, self._abandon_reason(c), c.abort_id_tag)
            finally:
                c.abort_reason = None
                c.abort_id_tag = None
                c.abort_event.clear()
                self._release_claim(c)

    def _abandon_reason(self, c: Connector) -> StopReason:
        """Why a start that opened a transaction did not begin charging."""
        if c.abort_reason is not None:
            return c.abort_reason
        if self.resetting:
            return StopReason.SOFT_RESET
        if not c.plugged:
            return StopReason.EV_DISCONNECTED
        return StopReason.OTHER

    async def _open(self, c: Connector, start_point: str, start: StartRequest | None) -> None:
        """Open a transaction before the meter signs (start point EVConnected/Authorized);
        `start` is None when nobody is authorized yet (the EV plugged in)."""
        id_tag = start.id_tag if start is not None else ""
        opened_at = utc_now()
        local_id = await self.store.open_transaction(
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
                        offline=not self.is_online(),
                        sign_started=self.settings.flag("SampledDataSignStartedReadings"),
                        public_key_mode=self.settings.raw("PublicKeyWithSignedMeterValue"),
                        id_token_type=start.token_type if start is not None else None,
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
        self.outbox_changed()

    async def _authorize_open(self, c: Connector, start: StartRequest) -> None:
        """The id tag for a transaction opened when the EV plugged in."""
        tx = c.tx
        assert tx is not None
        now = utc_now()
        await self.store.authorize_transaction(
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
                        offline=not self.is_online(),
                        id_token_type=start.token_type,
                    ),
                )
            ],
        )
        tx.id_tag = start.id_tag
        tx.parent_id_tag = start.parent_id_tag
        log.info("connector %d: transaction %d authorized for %s", c.id, tx.local_id, start.id_tag)
        self.outbox_changed()

    async def _close_unbegun(
        self, c: Connector, reason: StopReason, id_tag: str | None = None
    ) -> None:
        """Close a transaction that never began charging: nothing was signed or billed."""
        tx = c.tx
        if tx is None or tx.begin is not None:
            return
        now = utc_now()
        await self.store.close_transaction(
            tx.local_id,
            closed_at=now,
            stop_reason=reason.value,
            stop_id_tag=id_tag,
            messages=[
                (
                    events.TRANSACTION_ENDED,
                    events.ended(
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
                        public_key_mode=self.settings.raw("PublicKeyWithSignedMeterValue"),
                        offline=not self.is_online(),
                    ),
                )
            ],
        )
        c.tx = None
        self._prove(tx.local_id)
        log.info(
            "connector %d: transaction %d closed before charging (%s), nothing billed",
            c.id,
            tx.local_id,
            reason,
        )
        self.outbox_changed()
        self._settle(c)

    async def _wait_for_ev(self, c: Connector) -> bool:
        """Wait for the EV (ConnectionTimeOut); False on timeout or an aborted start."""
        if c.plugged:
            return True
        c.sm.go(S.PREPARING)
        if c.meter.sim is not None:  # the simulated EV arrives when a session is requested
            delay = c.config.ev.plug_in_delay
            asyncio.get_running_loop().call_later(delay, self.plug_in, c.id)
        timeout = self.settings.number("ConnectionTimeOut")
        plugged = asyncio.create_task(c.plugged_event.wait(), name=f"wait EV {c.id}")
        aborted = asyncio.create_task(c.abort_event.wait(), name=f"wait abort {c.id}")
        try:
            await asyncio.wait({plugged, aborted}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            await cancel_and_wait([plugged, aborted])
        if c.plugged and c.abort_reason is None and not self.resetting:
            return True
        if c.abort_reason is not None:
            log.info("connector %d: start abandoned (%s)", c.id, c.abort_reason)
        else:
            log.info("connector %d: no EV within ConnectionTimeOut (%d s)", c.id, timeout)
        if c.status is S.PREPARING and not c.plugged:
            c.sm.go(S.AVAILABLE)
        return False

    async def pin_key(self, c: Connector) -> None:
        """No key configured nor pinned yet: pin the one the meter shows (commissioning)."""
        driver = c.meter.driver
        if driver.pinned_key is not None:
            if c.id not in self._key_recorded:  # the key history knows the configured key
                await self._record_key(c, driver.pinned_key.der_hex, "configured")
            return
        key = await driver.public_key()
        driver.pinned_key = key
        await self.store.set_setting(f"meter.{c.id}.public_key", key.der_hex)
        await self._record_key(c, key.der_hex, "first contact")
        log.warning(
            "connector %d: pinned the meter's public key ...%s at first contact; compare it "
            "with the key on the meter's label",
            c.id,
            key.der_hex[-16:],
        )

    async def _record_key(self, c: Connector, key_hex: str, how: str) -> None:
        identity = c.meter.driver.cached_identity
        serial = identity.meter_address if identity is not None else ""
        row = await self.store.pin_meter_key(c.id, serial, key_hex, how)
        self._pinned_serial[c.id] = row.meter_serial
        self._key_recorded.add(c.id)

    async def meter_ready(self, c: Connector) -> PublicKeyInfo:
        """Fail with a MeterError unless this meter may sign billable values now."""
        await self.pin_key(c)
        key = await c.meter.driver.check_ready()
        identity = await c.meter.driver.ensure_identity()
        pinned = self._pinned_serial.get(c.id, "")
        if pinned and identity.meter_address != pinned:
            raise MeterSerialChanged(pinned, identity.meter_address)
        return key

    def _meter_fault(self, c: Connector, exc: MeterError) -> None:
        c.meter_fault = f"{type(exc).__name__}: {exc}"
        log.error("connector %d: meter fault: %s", c.id, c.meter_fault)
        self._set_power(c, False)
        c.sm.go(S.FAULTED, ErrorCode.POWER_METER_FAILURE, type(exc).__name__[:50])

    def _unfit_to_start(self, c: Connector) -> str | None:
        """Why a connector may no longer start (re-checked after the 2-6 s of signing)."""
        if self.resetting:
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
        driver = c.meter.driver
        id_tag = start.id_tag
        try:
            key = await self.meter_ready(c)
            meta = self.config.metadata.render(
                id_tag=id_tag,
                evse_id=c.config.evse_id,
                connector_id=str(c.id),
                station_id=self.config.station.id,
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
            self._meter_fault(c, exc)
            if exc.snapshot is not None or isinstance(exc, SnapshotIncomplete):
                # a turn-on may be signed on the meter: switch it off again (RCnt pairing)
                self._spawn(self._close_orphan_turn_on(c), f"close turn-on connector {c.id}")
            return
        unfit = self._unfit_to_start(c)
        if unfit is not None:
            log.warning(
                "connector %d: not starting after the turn-on was signed: %s; switching "
                "the meter off again, nothing is billed",
                c.id,
                unfit,
            )
            with contextlib.suppress(MeterError):
                await driver.take_snapshot(SnapshotKind.TURN_OFF)
            if c.hardware_fault is not None:
                c.sm.go(S.FAULTED, ErrorCode.OTHER_ERROR, c.hardware_fault[:50])
            else:
                c.sm.go(self._idle_status(c))
            return
        begin = signed_value(snap, signed_at, key)
        meter_start = begin["energy_wh"]
        offline = not self.is_online()
        begin_values: list[tuple[str, dict[str, Any]]] = []
        started_measurands = self.settings.items("StartTxnSampledData")
        if started_measurands or c.tx is not None:
            # a transaction opened earlier learns its signed Begin from this message
            sign = self.settings.flag("SampledDataSignStartedReadings")
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
                        public_key_mode=self.settings.raw("PublicKeyWithSignedMeterValue"),
                    ),
                )
            )
        try:
            tx = await self._store_begin(c, snap, key, signed_at, begin, begin_values, start)
        except StoreError as exc:
            # the signed turn-on is on the meter only: switch it off, nothing is billed
            log.error("connector %d: storing the signed Begin failed: %s", c.id, exc)
            self._spawn(self._close_orphan_turn_on(c), f"close turn-on connector {c.id}")
            c.sm.go(self._idle_status(c))
            return
        local_id = tx.local_id
        tx.begin = begin
        tx.begin_rcnt = snap.fields.rcnt
        tx.begin_ma1 = snap.fields.ma1_text
        tx.parent_id_tag = tx.parent_id_tag or start.parent_id_tag
        c.last_energy_wh = meter_start
        log.info(
            "connector %d: session %d started for %s, meter start %d Wh (T%d)",
            c.id,
            local_id,
            id_tag,
            meter_start,
            snap.fields.rcnt,
        )
        self.outbox_changed()
        unfit = self._unfit_to_start(c)
        if unfit is not None:
            # something happened while the Begin was being stored: end it before any load
            log.warning(
                "connector %d: session %d ends before the load is released: %s",
                c.id,
                local_id,
                unfit,
            )
            await self._end_charging(c, tx, self._abandon_reason(c), c.abort_id_tag, False)
            return
        self._set_power(c, True)  # only now: the begin value is signed and stored
        c.sm.go(S.CHARGING)

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
        offline = not self.is_online()
        if c.tx is not None:
            local_id = c.tx.local_id
            await self.store.begin_transaction(
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
                start_point=late_start_point(self.tx_points().start),
                remote_start_id=start.remote_start_id,
                plugged=c.plugged,
                offline=offline,
                sign_started=self.settings.flag("SampledDataSignStartedReadings"),
                public_key_mode=self.settings.raw("PublicKeyWithSignedMeterValue"),
                id_token_type=start.token_type,
            )
            local_id = await self.store.start_transaction(
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

    async def _stop(
        self, c: Connector, reason: StopReason, id_tag: str | None, recovering: bool = False
    ) -> None:
        async with c.lock:
            tx = c.tx
            if tx is None:
                return
            if tx.begin is None:
                await self._close_unbegun(c, reason, id_tag)
                return
            if tx.ended_reason is not None:
                await self._close_ended(c, tx, reason)
                return
            await self._end_charging(c, tx, reason, id_tag, recovering)

    def _defers_close(self, c: Connector, reason: StopReason) -> bool:
        """Charging stops but the transaction stays open: its stop points are all still
        valid (TxStopPoint EVConnected alone and the EV still plugged in)."""
        stop = self.tx_points().stop
        if reason not in DEAUTHORIZING or not c.plugged:
            return False
        return not stop & {events.AUTHORIZED, events.POWER_PATH_CLOSED, events.ENERGY_TRANSFER}

    async def _end_charging(
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
        self._set_power(c, False)
        if c.plugged and c.status not in (S.FAULTED, S.FINISHING):
            c.sm.go(S.FINISHING)
        signed_at = utc_now()
        end: SignedSnapshot | None
        unsigned: str | None
        if tx.end is not None:
            end, unsigned = tx.end, None
        else:
            end, unsigned = await self._end_snapshot(c, tx, recovering)
            tx.end = end
        if end is not None:
            end_value: events.SignedValue | None = signed_value(
                end, signed_at, c.meter.driver.pinned_key
            )
            assert end_value is not None
            meter_stop = end_value["energy_wh"]
        else:
            end_value = None
            meter_stop = c.last_energy_wh if c.last_energy_wh is not None else begin["energy_wh"]
        defer = self._defers_close(c, reason)
        offline = not self.is_online()
        message: tuple[str, dict[str, Any]]
        if defer:
            message = (
                events.TRANSACTION_CHARGING_ENDED,
                events.charging_ended(
                    connector_id=c.id,
                    timestamp=signed_at,
                    reason=reason.value,
                    id_tag=id_tag,
                    meter_stop_wh=meter_stop,
                    offline=offline,
                ),
            )
        else:
            message = (
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
                    sign_readings=self.settings.flag("SampledDataSignReadings"),
                    public_key_mode=self.settings.raw("PublicKeyWithSignedMeterValue"),
                    offline=offline,
                ),
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
        self.outbox_changed()
        if defer:
            tx.ended_reason = reason
        else:
            c.tx = None
            self._prove(tx.local_id)
        self._settle(c, unsigned)

    async def _close_ended(
        self, c: Connector, tx: ActiveTransaction, close_reason: StopReason
    ) -> None:
        """Close a transaction whose charging ended earlier: the Ended message carries the
        signed Begin and End kept in the store, byte for byte."""
        row = await self.store.transaction(tx.local_id)
        if row is None:
            raise StoreError(f"session {tx.local_id} vanished from the store")
        now = utc_now()
        await self.store.close_transaction(
            tx.local_id,
            closed_at=now,
            stop_reason=row.stop_reason or close_reason.value,
            stop_id_tag=row.stop_id_tag,
            messages=[
                (
                    events.TRANSACTION_ENDED,
                    self._ended_from_row(row, now, close_reason),
                )
            ],
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
        self.outbox_changed()
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
            sign_readings=self.settings.flag("SampledDataSignReadings"),
            public_key_mode=self.settings.raw("PublicKeyWithSignedMeterValue"),
            close_trigger=close_reason.value,
            offline=not self.is_online(),
        )

    def _stop_samples(self, meter_stop: int) -> list[events.Sample]:
        if "Energy.Active.Import.Register" in self.settings.items("StopTxnSampledData"):
            return [energy_sample(meter_stop)]
        return []

    def _prove(self, local_id: int) -> None:
        """Check the closed session's signed records and keep the mark beside it."""
        self._spawn(record_proof(self.store, local_id), f"proof of session {local_id}")

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
                asyncio.get_running_loop().call_later(c.config.ev.plug_in_delay, self.unplug, c.id)
        else:
            c.sm.go(S.AVAILABLE)

    async def _store_end(self, local_id: int, **kwargs: Any) -> None:
        """The session's end into the store; a failed write is retried, the signed end is
        kept in memory meanwhile (never signed twice)."""
        for attempt in range(1, STORE_RETRIES + 1):
            try:
                await self.store.end_transaction(local_id, **kwargs)
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
            await self._stop(c, StopReason.POWER_LOSS, None)
            if row.begin_ocmf is None:
                await self._close_orphan_turn_on(c)
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
        await self._stop(c, StopReason.POWER_LOSS, None, recovering=True)

    async def _close_orphan_turn_on(self, c: Connector) -> None:
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
            self._meter_fault(c, exc)

    # ---- periodic work -----------------------------------------------------------------

    async def _sample_connector(self, c: Connector) -> list[events.Sample]:
        reading = await c.meter.driver.energy()
        if reading.total_wh is not None:
            c.last_energy_wh = int(reading.total_wh)
        samples = samples_of(reading, self.settings.items("MeterValuesSampledData"))
        tx = c.tx
        if tx is not None and tx.charging and c.load_released and c.plugged:
            if reading.power_w:
                tx.energy_flowed = True
            if reading.power_w is not None and reading.power_w <= 0 and c.status is S.CHARGING:
                if tx.energy_flowed and events.ENERGY_TRANSFER in self.tx_points().stop:
                    # TxStopPoint EnergyTransfer: the transaction ends when the EV stops
                    self.stop_transaction(c.id, StopReason.STOPPED_BY_EV)
                else:
                    c.sm.go(S.SUSPENDED_EV)
            elif reading.power_w and c.status is S.SUSPENDED_EV:
                c.sm.go(S.CHARGING)
        return samples

    async def _sample_loop(self) -> None:
        """Periodic values (MeterValueSampleInterval); with TxStopPoint EnergyTransfer the
        power is watched every second even when no values are sent."""
        while True:
            interval = self.settings.number("MeterValueSampleInterval")
            watch = events.ENERGY_TRANSFER in self.tx_points().stop
            period = interval if interval > 0 else SETTING_POLL_S
            if watch:
                period = min(period, SETTING_POLL_S)
            await asyncio.sleep(period)
            due = interval > 0 and time.monotonic() >= self._next_sample
            if not due and not watch:
                continue
            if due:
                self._next_sample = time.monotonic() + interval - 0.05
            for c in self.connectors.values():
                if c.tx is None or not c.tx.charging or c.lock.locked():
                    continue
                try:
                    samples = await self._sample_connector(c)
                except MeterError as exc:
                    log.warning("connector %d: sampling failed: %s", c.id, exc)
                    continue
                if due and samples and c.tx is not None and c.tx.charging:
                    await self._queue_meter_values(c, c.tx, "Sample.Periodic", samples)

    async def _queue_meter_values(
        self, c: Connector, tx: ActiveTransaction, context: str, samples: list[events.Sample]
    ) -> None:
        """A session's meter values into the durable outbox."""
        await self.store.enqueue(
            events.TRANSACTION_METER_VALUES,
            events.meter_values(
                connector_id=c.id,
                timestamp=utc_now(),
                context=context,
                samples=samples,
                offline=not self.is_online(),
            ),
            local_tx_id=tx.local_id,
        )
        self.outbox_changed()

    async def _aligned_loop(self) -> None:
        while True:
            interval = self.settings.number("ClockAlignedDataInterval")
            if interval <= 0:
                await asyncio.sleep(SETTING_POLL_S)
                continue
            now = time.time()
            await asyncio.sleep(interval - (now % interval))
            for c in self.connectors.values():
                try:
                    reading = await c.meter.driver.energy()
                except MeterError as exc:
                    log.warning("connector %d: clock-aligned reading failed: %s", c.id, exc)
                    continue
                samples = samples_of(reading, self.settings.items("MeterValuesAlignedData"))
                if not samples:
                    continue
                if c.tx is not None:
                    await self._queue_meter_values(c, c.tx, "Sample.Clock", samples)
                else:
                    self.volatile_meter_values(c.id, "Sample.Clock", samples)

    async def _health_loop(self) -> None:
        """Bring a connector back once its meter is fit to sign again."""
        while True:
            await asyncio.sleep(METER_HEALTH_INTERVAL_S)
            for c in self.connectors.values():
                if c.meter_fault is None or c.tx is not None or c.lock.locked():
                    continue
                try:
                    await self.meter_ready(c)
                except MeterError as exc:
                    log.debug("connector %d: meter still not ready: %s", c.id, exc)
                    continue
                log.info("connector %d: meter fit again (%s cleared)", c.id, c.meter_fault)
                c.meter_fault = None
                if c.hardware_fault is None and c.status is S.FAULTED:
                    c.sm.go(self._idle_status(c))

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

    async def _clock_loop(self) -> None:
        while True:
            for c in self.connectors.values():
                try:
                    await self.keep_meter_clock(c)
                except MeterError as exc:
                    log.warning("connector %d: meter clock not checked: %s", c.id, exc)
            await asyncio.sleep(CLOCK_CHECK_INTERVAL_S)

    async def read_meter(self, connector_id: int) -> list[events.Sample]:
        """A fresh reading (TriggerMessage MeterValues)."""
        return await self._sample_connector(self.connector(connector_id))
