"""Smart charging at run time: the installed profiles (kept in the store), the effective
limit of every connector, and telling the load.

The effective limit of a connector is its composite schedule now, except that the station-wide
limits (ChargingStationMaxProfile, external constraints on EVSE 0) are shared between the
connectors that hold a session (`sharing`). It is recomputed whenever something it depends on
changes: a profile set or cleared, a period boundary or the end of a validity (a timer wakes
the loop), a connector's status (a session starts or ends). A change:

- is published to the subscribers (`subscribe`): the control interface streams it to the
  charge controller, the service writes it to a wallbox setpoint;
- limits the simulated EV, which follows it with a ramp (`load.FollowingEv`);
- suspends a session whose limit is 0 (SuspendedEVSE) and resumes it (Charging).

Changing the limit never touches the meter's signed readings: the load changes, the session's
signed Begin and End stay the only signed values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from chargepoint.core.charging.book import ClearCriteria, ConnectorProfiles, ProfileBook
from chargepoint.core.charging.clock import Clock, SystemClock
from chargepoint.core.charging.composite import (
    INF,
    Active,
    CompositeSchedule,
    binding,
    composite_schedule,
    evaluate,
)
from chargepoint.core.charging.load import FollowingEv
from chargepoint.core.charging.profiles import (
    ChargingProfile,
    Electrical,
    Kind,
    LimitSource,
    Purpose,
    RateUnit,
    Schedule,
    SchedulePeriod,
    format_time,
    from_json,
    parse_time,
    to_json,
)
from chargepoint.core.charging.sharing import share
from chargepoint.core.charging.validation import Capabilities, ProfileRejected, check_profile
from chargepoint.core.context import StationContext
from chargepoint.core.status import ConnectorStatus, StatusReport
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transaction import Connector
from chargepoint.store import StoreError
from chargepoint.store.charging_profiles import ChargingProfileRow

log = logging.getLogger("chargepoint.charging")

S = ConnectorStatus
MAX_SLEEP_S = 3600.0  # the loop looks again at least this often (clock adjustments)
MIN_SLEEP_S = 0.02
EXTERNAL_ID_BASE = 1  # ids of the charge controller's limits, per source


@dataclass(frozen=True)
class ConnectorLimit:
    """The limit a connector's load follows now (the control interface's message)."""

    connector_id: int
    watts: float | None  # None: nothing limits it
    amps: float | None  # per phase, with `phases`
    phases: int
    source: str  # what sets it: "TxProfile 7 (stack 1)", "none", ...
    since: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": "charging_limit",
            "connector": self.connector_id,
            "limit_w": None if self.watts is None else round(self.watts, 1),
            "limit_a": None if self.amps is None else round(self.amps, 1),
            "phases": self.phases,
            "source": self.source,
            "since": format_time(self.since),
        }


@dataclass(frozen=True)
class ExternalLimitNotice:
    """An external limit set or cleared by the charge controller (2.0.1 NotifyChargingLimit
    / ClearedChargingLimit)."""

    connector_id: int
    source: LimitSource
    profile: ChargingProfile | None  # None: cleared
    grid_critical: bool = False


@dataclass(frozen=True)
class _PendingStart:
    id_tag: str
    profile: ChargingProfile


LimitListener = Callable[[ConnectorLimit], None]
ExternalListener = Callable[[ExternalLimitNotice], None]


def _row(profile: ChargingProfile) -> ChargingProfileRow:
    return ChargingProfileRow(
        source=profile.source.value,
        profile_id=profile.profile_id,
        connector_id=profile.connector_id,
        purpose=profile.purpose.value,
        stack_level=profile.stack_level,
        transaction_local_id=profile.transaction,
        body=to_json(profile),
        installed_at=format_time(profile.installed_at) if profile.installed_at else "",
    )


class SmartCharging:
    """The station's smart charging; `Station.charging`."""

    def __init__(self, ctx: StationContext) -> None:
        self.ctx = ctx
        cfg = ctx.config.smart_charging
        self.electrical = Electrical(cfg.nominal_voltage, cfg.default_phases)
        self.capabilities = Capabilities(connectors=frozenset(ctx.connectors))
        self.connector_max_a = cfg.connector_max_current
        self.clock: Clock = SystemClock()
        self.book = ProfileBook()
        self._limits: dict[int, ConnectorLimit] = {}
        self._pending: dict[int, _PendingStart] = {}
        self._listeners: list[LimitListener] = []
        self._external_listeners: list[ExternalListener] = []
        self._wake = asyncio.Event()
        self._next_change = INF
        self._tasks: set[asyncio.Task[Any]] = set()
        self._evaluating = False
        self._evs: dict[int, FollowingEv] = {}
        for c in ctx.connectors.values():
            if c.meter.sim is not None:
                ev = FollowingEv(c.meter.sim, cfg.ev_ramp_seconds)
                c.meter.ev = ev
                self._evs[c.id] = ev
            c.sm.subscribe(self._on_status)

    # ---- lifecycle ---------------------------------------------------------------------

    async def load(self) -> None:
        """The profiles kept in the store; those that expired meanwhile are removed."""
        for row in await self.ctx.store.charging_profiles():
            try:
                profile = from_json(row.body)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("stored charging profile %s unreadable, ignored: %s", row.key, exc)
                continue
            self.book.install(profile, ())
        if len(self.book):
            log.info("%d charging profiles restored", len(self.book))
        self.evaluate()

    async def run(self) -> None:
        """Recompute at every period boundary (and whenever woken)."""
        while True:
            delay = self._next_change - self.clock.now().timestamp()
            real = min(max(self.clock.real_seconds(delay), MIN_SLEEP_S), MAX_SLEEP_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), real)
            self._wake.clear()
            self.evaluate()

    async def stop(self) -> None:
        await cancel_and_wait(list(self._tasks))
        self._tasks.clear()
        for ev in self._evs.values():
            await ev.close()

    def set_clock(self, clock: Clock) -> None:
        """Read the time from `clock` from now on (tests, demonstrations)."""
        self.clock = clock
        self.evaluate()
        self._wake.set()

    # ---- subscribers -------------------------------------------------------------------

    def subscribe(self, listener: LimitListener) -> Callable[[], None]:
        """`listener` gets every change of a connector's limit; returns the unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def subscribe_external(self, listener: ExternalListener) -> None:
        self._external_listeners.append(listener)

    def limits(self) -> dict[int, ConnectorLimit]:
        return dict(self._limits)

    def limit(self, connector_id: int) -> ConnectorLimit | None:
        return self._limits.get(connector_id)

    # ---- what the CSMS asks ------------------------------------------------------------

    def open_transaction(self, connector_id: int) -> int | None:
        c = self.ctx.connectors.get(connector_id)
        return c.tx.local_id if c is not None and c.tx is not None else None

    def check(self, profile: ChargingProfile, *, strict: bool, for_start: bool = False) -> None:
        """Raise ProfileRejected unless `profile` could be installed now."""
        check_profile(
            profile,
            self.capabilities,
            self.open_transaction,
            self.clock.now(),
            strict=strict,
            for_start=for_start,
        )
        if not for_start:
            self.book.check_room(profile, self.capabilities.max_profiles)

    async def set_profile(self, profile: ChargingProfile, *, strict: bool) -> ChargingProfile:
        """Validate, store and apply a profile; raises ProfileRejected with the reason (the
        profile is then neither stored nor applied)."""
        self.check(profile, strict=strict)
        if profile.purpose is Purpose.TX and profile.transaction is None:
            profile = profile.with_transaction(self.open_transaction(profile.connector_id))
        profile = replace(profile, installed_at=self.clock.now())
        await self._install(profile)
        return profile

    async def _install(self, profile: ChargingProfile) -> None:
        replaced = self.book.check_room(profile, self.capabilities.max_profiles)
        try:
            await self.ctx.store.put_charging_profile(
                _row(profile), [p.key for p in replaced if p.key != profile.key]
            )
        except StoreError as exc:
            raise ProfileRejected(f"the profile could not be stored: {exc}") from exc
        self.book.install(profile, replaced)
        log.info(
            "charging profile %s installed on connector %d%s",
            profile.describe(),
            profile.connector_id,
            f" (replaces {', '.join(p.describe() for p in replaced)})" if replaced else "",
        )
        self.evaluate()

    def expect_start(self, connector_id: int, id_tag: str, profile: ChargingProfile) -> None:
        """The TxProfile of a remote start: applies to the transaction that start opens."""
        self._pending[connector_id] = _PendingStart(id_tag, profile)
        self.evaluate()

    async def clear(self, criteria: ClearCriteria) -> list[ChargingProfile]:
        """Remove the profiles that match; the ones removed."""
        gone = self.book.matching(criteria)
        if not gone:
            return []
        await self.ctx.store.delete_charging_profiles([p.key for p in gone])
        self.book.remove(gone)
        for p in gone:
            log.info("charging profile %s cleared", p.describe())
        self.evaluate()
        return gone

    def installed(self) -> list[ChargingProfile]:
        return self.book.all()

    def composite(
        self, connector_id: int, duration: int, unit: RateUnit | None
    ) -> CompositeSchedule | None:
        """The composite schedule of a connector (0: the station) from now, or None when
        there is no such connector."""
        now = self.clock.now().replace(microsecond=0)
        n = len(self.ctx.connectors)
        if connector_id == 0:
            cp = self.book.station_profiles()
            session = None
            fallback = n * self.electrical.watts(self.connector_max_a, RateUnit.AMPS, None)
        elif connector_id in self.ctx.connectors:
            c = self.ctx.connectors[connector_id]
            cp = self._profiles_of(c)
            session = self._session_start(c)
            fallback = self.electrical.watts(self.connector_max_a, RateUnit.AMPS, None)
        else:
            return None
        chosen = unit or self._natural_unit(cp)
        return composite_schedule(
            cp,
            now,
            duration,
            chosen,
            self.electrical,
            session_start=session,
            fallback_w=fallback,
        )

    @staticmethod
    def _natural_unit(cp: ConnectorProfiles) -> RateUnit:
        units = {p.schedule.unit for p in cp.all()}
        return RateUnit.AMPS if units == {RateUnit.AMPS} else RateUnit.WATTS

    # ---- what the charge controller says (external constraints) -------------------------

    async def set_external_limit(
        self,
        connector_id: int,
        limit: float,
        unit: RateUnit,
        source: LimitSource,
        *,
        phases: int | None = None,
        duration: int | None = None,
        grid_critical: bool = False,
    ) -> ChargingProfile:
        """A limit from outside OCPP (a building's energy manager, the grid operator): a
        ChargingStationExternalConstraints profile from now, replacing the source's last one
        on that connector (0: the whole station)."""
        if source is LimitSource.CSO:
            raise ProfileRejected("external limits come from EMS, SO or Other, not the CSMS")
        now = self.clock.now().replace(microsecond=0)
        existing = [
            p
            for p in self.book.all()
            if p.purpose is Purpose.EXTERNAL
            and p.source is source
            and p.connector_id == connector_id
        ]
        used = {p.profile_id for p in self.book.all() if p.source is source}
        profile_id = existing[0].profile_id if existing else EXTERNAL_ID_BASE
        while not existing and profile_id in used:
            profile_id += 1
        profile = ChargingProfile(
            profile_id=profile_id,
            connector_id=connector_id,
            purpose=Purpose.EXTERNAL,
            stack_level=0,
            kind=Kind.ABSOLUTE,
            schedule=Schedule(
                unit=unit,
                periods=(SchedulePeriod(0, limit, phases),),
                start=now,
                duration=duration,
            ),
            source=source,
            grid_critical=grid_critical,
            installed_at=now,
        )
        check_profile(profile, self.capabilities, self.open_transaction, now)
        await self._install(profile)
        self._notify_external(ExternalLimitNotice(connector_id, source, profile, grid_critical))
        return profile

    async def clear_external_limit(
        self, connector_id: int | None, source: LimitSource | None
    ) -> list[ChargingProfile]:
        sources = (
            frozenset({source})
            if source is not None
            else frozenset(LimitSource) - {LimitSource.CSO}
        )
        gone = await self.clear(
            ClearCriteria(connector_id=connector_id, purpose=Purpose.EXTERNAL, sources=sources)
        )
        for p in gone:
            self._notify_external(ExternalLimitNotice(p.connector_id, p.source, None))
        return gone

    def _notify_external(self, notice: ExternalLimitNotice) -> None:
        for listener in list(self._external_listeners):
            try:
                listener(notice)
            except Exception:
                log.exception("external limit listener failed")

    # ---- the effective limits ----------------------------------------------------------

    def _on_status(self, report: StatusReport) -> None:
        if not self._evaluating:
            self.evaluate()

    def _session_start(self, c: Connector) -> datetime | None:
        tx = c.tx
        if tx is None or tx.started_at is None:
            return None
        try:
            return parse_time(tx.started_at)
        except ValueError:
            return None

    def _pending_for(self, c: Connector) -> ChargingProfile | None:
        pending = self._pending.get(c.id)
        if pending is None:
            return None
        if c.tx is not None and c.tx.id_tag == pending.id_tag:
            return pending.profile.with_transaction(c.tx.local_id)
        if c.tx is None and c.pending_id_tag == pending.id_tag:
            return pending.profile  # the start is under way: applies from the first watt
        return None

    def _profiles_of(self, c: Connector) -> ConnectorProfiles:
        cp = self.book.for_connector(c.id, c.tx.local_id if c.tx is not None else None)
        pending = self._pending_for(c)
        if pending is not None:
            cp = replace(cp, tx=(*cp.tx, pending))
        return cp

    def _bind_pending(self) -> None:
        """A remote start's profile becomes its transaction's TxProfile once the transaction
        is open; it is dropped when the start did not happen."""
        for cid, pending in list(self._pending.items()):
            c = self.ctx.connectors[cid]
            if c.tx is not None and c.tx.id_tag == pending.id_tag:
                del self._pending[cid]
                profile = replace(
                    pending.profile.with_transaction(c.tx.local_id),
                    installed_at=self.clock.now(),
                )
                self._spawn(self._install_bound(profile), f"store TxProfile connector {cid}")
                self.book.install(profile, self.book.replaced_by(profile))
            elif c.tx is None and c.pending_id_tag != pending.id_tag:
                del self._pending[cid]
                log.info("connector %d: remote start did not happen; its profile dropped", cid)

    async def _install_bound(self, profile: ChargingProfile) -> None:
        try:
            await self.ctx.store.put_charging_profile(_row(profile))
        except StoreError as exc:
            log.error("TxProfile %s not stored: %s", profile.describe(), exc)

    def _expire(self, now: datetime) -> None:
        gone = self.book.expired(now, self.open_transaction)
        if not gone:
            return
        self.book.remove(gone)
        for p in gone:
            log.info("charging profile %s expired and removed", p.describe())
        self._spawn(self._delete([p.key for p in gone]), "remove expired charging profiles")

    async def _delete(self, keys: list[tuple[str, int]]) -> None:
        try:
            await self.ctx.store.delete_charging_profiles(keys)
        except StoreError as exc:
            log.error("expired charging profiles not removed from the store: %s", exc)

    def _spawn(self, coro: Any, name: str) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro, name=name)
        except RuntimeError:  # no loop (a synchronous caller in a test): nothing to store
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def evaluate(self) -> dict[int, ConnectorLimit]:
        """Recompute every connector's limit now; apply and publish the changes."""
        if self._evaluating:
            return self._limits
        self._evaluating = True
        try:
            return self._evaluate()
        finally:
            self._evaluating = False

    def _evaluate(self) -> dict[int, ConnectorLimit]:
        now = self.clock.now()
        t = now.timestamp()
        self._bind_pending()
        self._expire(now)
        own: dict[int, Active | None] = {}
        phases: dict[int, int | None] = {}
        station: Active | None = None
        next_change = INF
        for c in self.ctx.connectors.values():
            session = self._session_start(c)
            ev = evaluate(
                self._profiles_of(c),
                t,
                session.timestamp() if session is not None else t,
                self.electrical,
            )
            next_change = min(next_change, ev.next_change)
            own[c.id] = binding(ev.connector_parts(), self.electrical)
            phases[c.id] = ev.tx.phases if ev.tx is not None else None
            station = binding(ev.station_parts(), self.electrical)  # the same for all
        if next_change != self._next_change:
            self._next_change = next_change
            self._wake.set()  # the loop sleeps until the new next change
        total = station.watts(self.electrical) if station is not None else INF
        demands = {
            c.id: self._demand(c, own[c.id]) for c in self.ctx.connectors.values() if _holds(c)
        }
        shares = share(total, demands) if math.isfinite(total) else {}
        for c in self.ctx.connectors.values():
            mine = own[c.id]
            own_w = mine.watts(self.electrical) if mine is not None else INF
            station_w = shares.get(c.id, total)
            if own_w <= station_w:
                watts, part = own_w, mine
                source = mine.profile.describe() if mine is not None else "none"
            else:
                watts, part = station_w, station
                assert station is not None
                source = station.profile.describe()
                if len(shares) > 1 and c.id in shares:
                    source += f", shared by {len(shares)} connectors"
            n = phases[c.id] or (part.phases if part is not None else None)
            n = n or self.electrical.default_phases
            self._apply(c, watts if math.isfinite(watts) else None, n, source, now)
            self._suspend_or_resume(c, watts)
        return self._limits

    def _demand(self, c: Connector, own: Active | None) -> float:
        own_w = own.watts(self.electrical) if own is not None else INF
        if c.id in self._evs:
            return min(own_w, c.config.ev.power_w)
        return own_w

    def _apply(
        self, c: Connector, watts: float | None, phases: int, source: str, now: datetime
    ) -> None:
        before = self._limits.get(c.id)
        amps = self.electrical.convert(watts, RateUnit.AMPS, phases) if watts is not None else None
        if (
            before is not None
            and _same(before.watts, watts)
            and before.source == source
            and before.phases == phases
        ):
            return
        limit = ConnectorLimit(c.id, watts, amps, phases, source, now)
        self._limits[c.id] = limit
        log.info(
            "connector %d: charging limit %s (%s)",
            c.id,
            "none" if watts is None else f"{watts:.0f} W / {amps:.1f} A x {phases}",
            source,
        )
        ev = self._evs.get(c.id)
        if ev is not None:
            ev.set_limit(watts)
        for listener in list(self._listeners):
            try:
                listener(limit)
            except Exception:
                log.exception("charging limit listener failed")

    def _suspend_or_resume(self, c: Connector, watts: float) -> None:
        """A session limited to nothing waits (SuspendedEVSE) and charges again after."""
        tx = c.tx
        if tx is None or not tx.charging or not c.load_released:
            return
        if watts <= 0:
            if c.status in (S.CHARGING, S.SUSPENDED_EV):
                c.sm.go(S.SUSPENDED_EVSE)
        elif c.status is S.SUSPENDED_EVSE and c.plugged:
            c.sm.go(S.CHARGING)

    # ---- status ------------------------------------------------------------------------

    def status(self, connector_id: int) -> dict[str, Any] | None:
        limit = self._limits.get(connector_id)
        if limit is None:
            return None
        data = limit.as_dict()
        del data["event"], data["connector"]
        return data

    def next_change(self) -> datetime | None:
        if not math.isfinite(self._next_change):
            return None
        return datetime.fromtimestamp(self._next_change, UTC)


def _holds(c: Connector) -> bool:
    """Does the connector take a share of a station-wide limit (a session is open, being
    started, or drawing)?"""
    return c.tx is not None or c.pending_id_tag is not None or c.load_released


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < 0.05
