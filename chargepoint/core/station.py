"""The version-free transaction core: the station's connectors and the operations the OCPP
adapters, the control interface and the service call (the data it keeps is in
chargepoint.core.transaction).

The steps live beside it, each on the state the station shares (chargepoint.core.context):
chargepoint.core.starting (authorize -> EV plugged -> meter ready (no events, pinned key)
-> metadata -> turn-on snapshot signed -> session and its messages stored -> load released
-> Charging), chargepoint.core.stopping (load cut -> turn-off snapshot signed -> session end
and its message stored -> proven), chargepoint.core.recovery (power loss, resume after a
clean stop), chargepoint.core.sampling (meter values, clock-aligned values, meter health,
meter clocks) and chargepoint.core.meter_fitness (the pinned keys).
Nothing is sent from here: the OCPP adapter drains the store's outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from chargepoint.config import StationConfig
from chargepoint.core import events
from chargepoint.core.auth import Authorizer
from chargepoint.core.authorization.decision import SessionOwner, Source
from chargepoint.core.authorization.invalid_id import suspend, suspend_after
from chargepoint.core.authorization.reservations import Reservations
from chargepoint.core.authorization.tokens import same_token
from chargepoint.core.charging.controller import SmartCharging
from chargepoint.core.charging.profiles import ChargingProfile
from chargepoint.core.context import StationContext, free_status, idle_status, set_power
from chargepoint.core.disk_space import REFUSAL, DiskSpace
from chargepoint.core.meter_fitness import MeterFitness
from chargepoint.core.meters import ConnectorMeter
from chargepoint.core.recovery import Recovery
from chargepoint.core.sampling import Sampling
from chargepoint.core.settings import Settings
from chargepoint.core.starting import Starting, release_claim
from chargepoint.core.status import ConnectorStatus, ErrorCode, StatusReport
from chargepoint.core.stopping import Stopping
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transaction import Connector, StopReason
from chargepoint.store import AsyncStore
from meter.errors import MeterError
from meter.proof.keys import PublicKeyInfo

log = logging.getLogger("chargepoint.station")

S = ConnectorStatus
METER_HEALTH_INTERVAL_S = 15.0  # how often a faulted meter is checked again
LOOP_ERROR_BACKOFF_S = 5.0


class Station(StationContext):
    """All connectors of the charge point and the sessions on them."""

    def __init__(
        self,
        config: StationConfig,
        store: AsyncStore,
        settings: Settings,
        meters: Mapping[int, ConnectorMeter],
        authorizer: Authorizer,
    ) -> None:
        super().__init__(config, store, settings, meters)
        self.authorizer = authorizer
        self.reservations = Reservations(
            self.connectors,
            store,
            lambda: settings.flag("ReserveConnectorZeroSupported"),
        )
        self.reservation_used = self.reservations.used
        # 2.0.1 TxCtrlr.MaxEnergyOnInvalidId in Wh (set by its adapter); None: not used
        self.max_energy_on_invalid_id: Callable[[], int | None] = lambda: None
        self._loops: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self._fitness = MeterFitness(self)
        # a full state dir: sessions refused, writes held in memory until space returns
        self.disk_space = DiskSpace(Path(config.store.state_dir))
        self.disk_space.security_event = self._security_event_later
        self._stopping = Stopping(self, self.unplug, self.disk_space)
        self._recovery = Recovery(self, self._stopping, self.plug_in)
        self._starting = Starting(
            self, self._fitness, self._stopping, self._recovery, self.plug_in, self.disk_space
        )
        self._sampling = Sampling(
            self,
            self.stop_transaction,
            self._fitness.meter_ready,
            METER_HEALTH_INTERVAL_S,
            self.disk_space,
        )
        self.charging = SmartCharging(self)  # charging profiles and the limits the load follows

    def _security_event_later(self, kind: str, info: str | None) -> object:
        """`security_event` as the daemon sets it after this station was built."""
        return self.security_event(kind, info)

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
        await self.disk_space.check()
        await self.authorizer.start()
        await self._recovery.take_over_open_sessions()
        await self.reservations.start()
        await self.charging.load()
        sampling = self._sampling
        self._loops = [
            asyncio.create_task(self._supervised(sampling.sample_loop), name="meter sampling"),
            asyncio.create_task(
                self._supervised(sampling.aligned_loop), name="clock-aligned values"
            ),
            asyncio.create_task(self._supervised(sampling.health_loop), name="meter health"),
            asyncio.create_task(self._supervised(sampling.clock_loop), name="meter clocks"),
            asyncio.create_task(self._supervised(self.charging.run), name="charging limits"),
            asyncio.create_task(self._supervised(self.disk_space.run), name="storage space"),
        ]
        self._ready.set()

    def ended_loops(self) -> list[str]:
        """The periodic loops that stopped (none while the station makes progress)."""
        return [t.get_name() for t in self._loops if t.done()]

    async def keep_sessions_open(self) -> list[int]:
        """A clean stop that leaves the charging sessions open (service restart): note them,
        so the next start resumes them when their meter still holds the same open turn-on.
        Without this note (power loss, crash) the next start ends them (PowerLoss)."""
        return await self._recovery.keep_sessions_open()

    async def stop(self) -> None:
        """Cancel every task the station owns; open sessions stay open in the store."""
        self.disk_space.stop()
        await cancel_and_wait([*self._loops, *self.tasks])
        self._loops.clear()
        self.tasks.clear()
        await self.reservations.stop()
        await self.charging.stop()

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

    async def idle(self) -> None:
        """Wait until no session task is running (tests, reset)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

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
            set_power(c, True)
            c.sm.go(S.CHARGING)
        if (
            events.EV_CONNECTED in self.tx_points().start
            and c.tx is None
            and c.pending_id_tag is None
            and c.operative
            and c.status is not S.FAULTED
            and not self.disk_space.refuses_sessions
        ):
            self.spawn(self._starting.open_on_plug(c), f"open transaction connector {c.id}")

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
                self.spawn(
                    self._stopping.stop(c, StopReason.EV_DISCONNECTED, None),
                    f"stop connector {c.id}",
                )
            else:
                set_power(c, False)
                c.sm.go(S.SUSPENDED_EV)
        elif tx is not None:
            # not charging yet (a start in progress notices by itself) or charging done
            if not c.lock.locked():
                self.spawn(
                    self._stopping.stop(c, StopReason.EV_DISCONNECTED, None),
                    f"close connector {c.id}",
                )
        elif c.status in (S.PREPARING, S.FINISHING) and c.pending_id_tag is None:
            c.sm.go(free_status(c))

    async def present_id_tag(self, id_tag: str, connector_id: int | None = None) -> str:
        """An RFID card or app at the station: stops its own session (or one of its group)
        or starts one. The answer says what happens, or why not ("rejected: blocked in local
        list", "rejected: reserved for another card until 14:30")."""
        for c in self.connectors.values():
            if c.tx is None or (connector_id is not None and connector_id != c.id):
                continue
            if not c.tx.id_tag:
                continue  # opened when the EV plugged in, waiting for this authorization
            if same_token(c.tx.id_tag, id_tag) or connector_id == c.id:
                # the session's own card stops it; another one only with the session's group
                owner = SessionOwner(c.tx.id_tag, c.tx.parent_id_tag)
                decision = await self.authorizer.decide(id_tag, self.is_online(), stopping=owner)
                if not decision.accepted:
                    return f"rejected: {decision.reason}"
                self.stop_transaction(c.id, StopReason.LOCAL, id_tag)
                if decision.source is Source.SESSION_CARD:
                    return f"stopping session on connector {c.id}"
                return f"stopping session on connector {c.id} ({decision.reason})"
        if self.disk_space.refuses_sessions:
            log.warning("id tag %s refused: %s", id_tag, REFUSAL)
            return f"rejected: {REFUSAL}"
        free = self._free_connector(connector_id, id_tag)
        if free is None:
            if connector_id is not None:
                return f"rejected: {self._why_busy(self.connector(connector_id))}"
            return "rejected: no free connector"
        c = free
        c.pending_id_tag = id_tag  # claimed while the tag is checked
        try:
            decision = await self.authorizer.decide(
                id_tag, self.is_online(), reservations=self.reservations.facts(c.id)
            )
        except BaseException:
            release_claim(c)
            raise
        if not decision.accepted:
            release_claim(c)
            return f"rejected: {decision.reason}"
        self.spawn(
            self._starting.start(
                c,
                id_tag,
                "Authorized",
                decision.parent_id_tag,
                reservation_id=decision.reservation_id,
            ),
            f"start connector {c.id}",
        )
        return f"accepted on connector {c.id} ({decision.reason})"

    @staticmethod
    def _why_busy(c: Connector) -> str:
        """Why a connector takes no new session, in words (the control interface shows it)."""
        if c.status is S.FAULTED:
            why = c.meter_fault or c.hardware_fault or c.sm.info
            return f"connector {c.id} is Faulted" + (f" ({why})" if why else "")
        if not c.operative or c.status is S.UNAVAILABLE:
            return f"connector {c.id} is Unavailable"
        if c.tx is not None or c.pending_id_tag is not None:
            return f"connector {c.id} is busy with another session"
        return f"connector {c.id} is {c.status.value}"

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
            c.sm.go(idle_status(c))

    # ---- inputs from the CSMS ----------------------------------------------------------

    def remote_start(
        self,
        id_tag: str,
        connector_id: int | None,
        remote_start_id: int | None = None,
        token_type: str | None = None,
        charging_profile: ChargingProfile | None = None,
    ) -> bool:
        """`charging_profile`: a TxProfile for the transaction this start opens."""
        if self.disk_space.refuses_sessions:
            log.warning("remote start for %s refused: %s", id_tag, REFUSAL)
            return False
        c = self._free_connector(connector_id, id_tag)
        if c is None:
            return False
        refused = self.reservations.surely_refused(c.id, id_tag)
        if refused is not None:
            log.info("remote start for %s on connector %d refused: %s", id_tag, c.id, refused)
            return False
        c.pending_id_tag = id_tag  # claimed until the start ends
        if charging_profile is not None:
            self.charging.expect_start(c.id, id_tag, replace(charging_profile, connector_id=c.id))
        self.spawn(
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
            decision = await self.authorizer.decide(
                id_tag,
                self.is_online(),
                remote=True,
                token_type=token_type,
                reservations=self.reservations.facts(c.id),
            )
        except BaseException:
            release_claim(c)
            raise
        if not decision.accepted:
            log.info("remote start for %s refused: %s", id_tag, decision.reason)
            release_claim(c)
            return
        await self._starting.start(
            c,
            id_tag,
            "RemoteStart",
            decision.parent_id_tag,
            remote_start_id,
            token_type,
            decision.reservation_id,
        )

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
        log.info(
            "connector %d: stop of session %d requested (%s%s)",
            c.id,
            c.tx.local_id,
            reason.value,
            f", id tag {id_tag}" if id_tag else "",
        )
        if c.tx.begin is None and c.lock.locked():
            # the start is still waiting for the EV or the meter: it closes the transaction
            c.abort_reason = reason
            c.abort_id_tag = id_tag
            c.abort_event.set()
            return True
        self.spawn(self._stopping.stop(c, reason, id_tag), f"stop connector {c.id}")
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
                    c.sm.go(idle_status(c))
        return "Scheduled" if scheduled else "Accepted"

    async def end_all(self, reason: StopReason) -> None:
        """End every open session (reset, configured shutdown) and wait for the ends; starts
        in progress are abandoned (their signed turn-on is switched off again)."""
        self.resetting = True
        for c in self.connectors.values():
            if c.lock.locked() and (c.tx is None or c.tx.begin is None):
                c.abort_reason = reason  # a start waiting for the EV gives up now
                c.abort_event.set()
        starting = [t for t in self.tasks if "start" in t.get_name() and not t.done()]
        if starting:
            await asyncio.gather(*starting, return_exceptions=True)
        stops = [
            self.spawn(self._stopping.stop(c, reason, None), f"stop connector {c.id}")
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
            self.spawn(
                self._stopping.stop(c, StopReason.DEAUTHORIZED, None), f"stop connector {c.id}"
            )
        elif c is not None:
            max_wh = self.max_energy_on_invalid_id()
            if max_wh:
                self.spawn(suspend_after(c, local_id, max_wh), f"energy limit connector {c.id}")
            else:
                suspend(c, "the CSMS rejected the id token (StopTransactionOnInvalidId false)")

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
                    "power_w": c.last_power_w,
                    "meter_fault": c.meter_fault,
                    "last_meter_error": c.last_meter_error,
                    "charging_limit": self.charging.status(c.id),
                    "transaction": tx,
                }
            )
        return {
            "station": self.config.station.id,
            "online": self.is_online(),
            "outbox": await self.store.outbox_length(),
            "failed_messages": len(await self.store.failed_messages()),
            "connectors": connectors,
            "local_list": {
                "enabled": self.authorizer.local_list_enabled(),
                "version": self.authorizer.local_list.version,
                "entries": len(self.authorizer.local_list),
            },
            "reservations": [r.describe() for r in self.reservations.active()],
            "storage": self.disk_space.describe(),
            "storage_detail": self.disk_space.status(),
        }

    # ---- sessions ----------------------------------------------------------------------

    def _free_connector(self, connector_id: int | None, id_tag: str = "") -> Connector | None:
        candidates = (
            [self.connector(connector_id)] if connector_id else list(self.connectors.values())
        )
        # the connector reserved for this card first, then an EV already plugged in (and its
        # open transaction); connectors reserved for other cards last
        mine = self.reservations.reserved_for(id_tag) if id_tag else None
        candidates.sort(
            key=lambda c: (
                c.id != mine,
                self.reservations.reserved_for_others(c.id, id_tag),
                c.tx is None,
                not c.plugged,
            )
        )
        for c in candidates:
            opened_unauthorized = c.tx is not None and c.tx.begin is None and not c.tx.id_tag
            if (
                (c.tx is None or opened_unauthorized)
                and c.pending_id_tag is None
                and c.operative
                and c.status in (S.AVAILABLE, S.PREPARING, S.RESERVED)
            ):
                return c
        return None

    # ---- the meters ------------------------------------------------------------------

    async def pin_key(self, c: Connector) -> None:
        """No key configured nor pinned yet: pin the one the meter shows (commissioning)."""
        await self._fitness.pin_key(c)

    async def meter_ready(self, c: Connector) -> PublicKeyInfo:
        """Fail with a MeterError unless this meter may sign billable values now."""
        return await self._fitness.meter_ready(c)

    async def keep_meter_clock(self, c: Connector) -> None:
        """Set a meter's clock when it was never set, or when it drifted and the last set is
        more than 24 h ago; never during a session (EpochSetCnt must match begin and end)."""
        await self._sampling.keep_meter_clock(c)

    async def read_meter(self, connector_id: int) -> list[events.Sample]:
        """A fresh reading (TriggerMessage MeterValues)."""
        return await self._sampling.sample_connector(self.connector(connector_id))
