"""Reservations (OCPP 1.6 Reservation profile, 2.0.1 block H), version-free.

Each reservation is a small state machine: Accepted -> Used (its card started a transaction)
| Cancelled (CancelReservation) | Expired (its expiry passed) | Removed (its connector became
Faulted or Unavailable: 1.6 5.13 (3), 2.0.1 H01.FR.16/17). Only Accepted reservations are
active; an ended one never comes back. All of it is kept in the store, so reservations and
their expiry survive a restart: `start()` loads the active ones, ends those that expired
meanwhile and arms one timer for the next expiry.

ReserveNow (`reserve`) answers from the connectors' actual state:

- Rejected: the expiry already passed, no such connector, or a reservation for any connector
  (1.6 connector 0, 2.0.1 without evseId) while ReserveConnectorZeroSupported
  (ReservationCtrlr.NonEvseSpecific) is false.
- Faulted / Unavailable: the connector (or, for any connector, every connector) is.
- Occupied: the connector has a transaction or a start, an EV plugged in, another
  reservation, or it is needed by the reservations for any connector.
- Accepted otherwise. A reservation id that is already active is replaced (1.6 5.13, H01.FR.02):
  the checks then ignore the old one, and a refusal keeps it.

Reservations for any connector bind no connector: each keeps one free connector (H01.FR.07/09
"N reservations on N EVSEs"), and when the free connectors are all needed, they show Reserved
(errata H01.FR.20/24). A connector with its own reservation shows Reserved while it is idle.

Listeners (`subscribe`) hear every reservation that ends (the 2.0.1 adapter sends
ReservationStatusUpdate Expired/Removed for those, durably: `unreported()`/`reported()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from chargepoint.core.authorization.decision import Hold, ReservationFacts
from chargepoint.core.authorization.tokens import clock_text, parse_time, same_token
from chargepoint.core.status import ConnectorStatus, InvalidTransition, StatusReport
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transaction import Connector
from chargepoint.store import AsyncStore, ReservationRow, StoreError, utc_now

log = logging.getLogger("chargepoint.reservations")

S = ConnectorStatus
MAX_TIMER_S = 3600.0  # the timer wakes at least this often (clock changes)
KEEP_ENDED_DAYS = 30  # ended reservations stay in the store this long


class ReservationState(enum.StrEnum):
    ACCEPTED = "Accepted"
    USED = "Used"
    CANCELLED = "Cancelled"
    EXPIRED = "Expired"
    REMOVED = "Removed"


# the ends the CSMS is told about with ReservationStatusUpdate (2.0.1 H01.FR.16/17, H04)
REPORTED_ENDS = frozenset({ReservationState.EXPIRED, ReservationState.REMOVED})


class ReserveStatus(enum.StrEnum):
    ACCEPTED = "Accepted"
    FAULTED = "Faulted"
    OCCUPIED = "Occupied"
    REJECTED = "Rejected"
    UNAVAILABLE = "Unavailable"


class InvalidReservationChange(RuntimeError):
    """A reservation that already ended was asked to end again."""


@dataclass(frozen=True)
class ReserveRequest:
    reservation_id: int
    connector_id: int | None  # None: any connector
    id_tag: str
    expiry: datetime
    parent_id_tag: str | None = None
    token_type: str | None = None
    connector_type: str | None = None


@dataclass
class Reservation:
    reservation_id: int
    connector_id: int | None
    id_tag: str
    expiry: datetime
    parent_id_tag: str | None = None
    token_type: str | None = None
    connector_type: str | None = None
    state: ReservationState = ReservationState.ACCEPTED
    created_at: str = ""
    ended_at: str | None = None

    @property
    def active(self) -> bool:
        return self.state is ReservationState.ACCEPTED

    def expired(self, now: datetime) -> bool:
        """Its expiry passed at `now` (the timer ends it: Expired)."""
        return self.expiry <= now

    def hold(self) -> Hold:
        return Hold(self.reservation_id, self.id_tag, self.parent_id_tag, self.expiry)

    def end(self, state: ReservationState) -> None:
        """Accepted -> `state`; ending an ended reservation is an error."""
        if not self.active or state is ReservationState.ACCEPTED:
            raise InvalidReservationChange(
                f"reservation {self.reservation_id}: {self.state} -> {state}"
            )
        self.state = state
        self.ended_at = utc_now()

    def describe(self) -> dict[str, object]:
        """For the control interface's status."""
        return {
            "id": self.reservation_id,
            "connector": self.connector_id,
            "id_tag": self.id_tag,
            "parent_id_tag": self.parent_id_tag,
            "expiry": self.expiry.isoformat().replace("+00:00", "Z"),
            "until": clock_text(self.expiry),
        }

    def row(self, reported: bool) -> ReservationRow:
        return ReservationRow(
            reservation_id=self.reservation_id,
            connector_id=self.connector_id,
            id_tag=self.id_tag,
            parent_id_tag=self.parent_id_tag,
            token_type=self.token_type,
            connector_type=self.connector_type,
            expiry=self.expiry.isoformat().replace("+00:00", "Z"),
            state=self.state.value,
            created_at=self.created_at,
            ended_at=self.ended_at,
            reported=reported,
        )

    @classmethod
    def from_row(cls, row: ReservationRow) -> Reservation:
        expiry = parse_time(row.expiry)
        assert expiry is not None
        return cls(
            reservation_id=row.reservation_id,
            connector_id=row.connector_id,
            id_tag=row.id_tag,
            expiry=expiry,
            parent_id_tag=row.parent_id_tag,
            token_type=row.token_type,
            connector_type=row.connector_type,
            state=ReservationState(row.state),
            created_at=row.created_at,
            ended_at=row.ended_at,
        )


EndListener = Callable[[Reservation], None]


def loaded(rows: Iterable[ReservationRow]) -> list[Reservation]:
    """The reservations of the store's rows; a row with an unreadable expiry is dropped."""
    reservations = []
    for row in rows:
        try:
            reservations.append(Reservation.from_row(row))
        except (ValueError, AssertionError):
            log.error("reservation %d has an unreadable expiry; dropped", row.reservation_id)
    return reservations


def active_at(rows: Iterable[ReservationRow], now: datetime) -> list[Reservation]:
    """What `Reservations.start()` at `now` keeps active of the store's active rows (and
    `active()` then lists): the readable ones whose expiry has not passed, soonest first."""
    return sorted((r for r in loaded(rows) if not r.expired(now)), key=lambda r: r.expiry)


def _idle(c: Connector) -> bool:
    """Free for a new session: no EV, nothing open or starting, operative, not faulted."""
    return (
        c.tx is None
        and not c.plugged
        and c.pending_id_tag is None
        and c.operative
        and c.status in (S.AVAILABLE, S.PREPARING, S.RESERVED)
    )


def _usable(c: Connector) -> bool:
    """Could serve a reservation (now or once its session ends)."""
    return c.operative and c.status not in (S.FAULTED, S.UNAVAILABLE)


class Reservations:
    """The active reservations of the station, their connectors' Reserved status and the
    expiry timer.

    `allow_any_connector()` says whether reservations without a connector are accepted
    (ReserveConnectorZeroSupported / ReservationCtrlr.NonEvseSpecific); `report_ends` makes
    Expired/Removed ends wait in the store until `reported()` (the 2.0.1 adapter sets it)."""

    def __init__(
        self,
        connectors: Mapping[int, Connector],
        store: AsyncStore,
        allow_any_connector: Callable[[], bool] = lambda: True,
    ) -> None:
        self.connectors = connectors
        self.store = store
        self.allow_any_connector = allow_any_connector
        self.report_ends = False
        self._active: dict[int, Reservation] = {}
        self._listeners: list[EndListener] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._unusable: set[int] = set()
        self._timer: asyncio.Task[None] | None = None
        self._refresh_scheduled = False
        for c in connectors.values():
            c.sm.subscribe(self._on_status)

    # ---- reading ---------------------------------------------------------------------

    def subscribe(self, listener: EndListener) -> None:
        self._listeners.append(listener)

    def active(self) -> list[Reservation]:
        return sorted(self._active.values(), key=lambda r: r.expiry)

    def get(self, reservation_id: int) -> Reservation | None:
        return self._active.get(reservation_id)

    def on_connector(self, connector_id: int) -> Reservation | None:
        return next((r for r in self._active.values() if r.connector_id == connector_id), None)

    def unspecified(self) -> list[Reservation]:
        return sorted(
            (r for r in self._active.values() if r.connector_id is None), key=lambda r: r.expiry
        )

    def free_connectors(self) -> list[Connector]:
        """Idle connectors without a reservation of their own."""
        return [c for c in self.connectors.values() if _idle(c) and self.on_connector(c.id) is None]

    def facts(self, connector_id: int) -> ReservationFacts:
        """What a start on this connector must respect (for the authorization decision)."""
        here = self.on_connector(connector_id)
        free = self.free_connectors()
        count = len(free) + (0 if any(c.id == connector_id for c in free) else 1)
        return ReservationFacts(
            here=here.hold() if here is not None else None,
            unspecified=tuple(r.hold() for r in self.unspecified()),
            free_connectors=count,
        )

    def reserved_for(self, id_tag: str) -> int | None:
        """The connector reserved for exactly this card, if any (to send it there)."""
        for r in self._active.values():
            if r.connector_id is not None and same_token(r.id_tag, id_tag):
                return r.connector_id
        return None

    def reserved_for_others(self, connector_id: int, id_tag: str) -> bool:
        """The connector shows Reserved and not for this card (its group may still match:
        the decision tells)."""
        r = self.on_connector(connector_id)
        if r is not None:
            return not same_token(r.id_tag, id_tag)
        c = self.connectors.get(connector_id)
        return c is not None and c.reserved

    def surely_refused(self, connector_id: int, id_tag: str) -> str | None:
        """Why this card certainly cannot start on this connector (a reservation for
        another card, no group that could match), before anything is authorized; None
        when it may (the decision, with the card's group, tells for sure)."""
        facts = self.facts(connector_id)
        holds = [h for h in (facts.here,) if h is not None] or list(facts.unspecified)
        if any(h.parent_id_tag for h in holds) or any(h.matches(id_tag, None) for h in holds):
            return None
        if facts.here is not None:
            return f"reserved for another card until {clock_text(facts.here.expiry)}"
        if facts.unspecified and facts.free_connectors <= len(facts.unspecified):
            until = min(h.expiry for h in facts.unspecified)
            return f"the free connectors are reserved for other cards until {clock_text(until)}"
        return None

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load the active reservations, end those that expired while the station was
        down, and arm the timer."""
        now = datetime.now(UTC)
        with contextlib.suppress(StoreError):
            await self.store.reservations_prune(KEEP_ENDED_DAYS)
        for reservation in loaded(await self.store.reservations_active()):
            self._active[reservation.reservation_id] = reservation
        if self._active:
            log.info(
                "%d reservation(s) active: %s",
                len(self._active),
                ", ".join(str(r) for r in self._active),
            )
        await self._expire_due(now)
        self.refresh()
        self._timer = asyncio.create_task(self._run(), name="reservation expiry")

    async def stop(self) -> None:
        if self._timer is not None:
            await cancel_and_wait([self._timer])
            self._timer = None

    # ---- ReserveNow / CancelReservation / use -------------------------------------

    async def reserve(
        self, request: ReserveRequest, now: datetime | None = None
    ) -> tuple[ReserveStatus, str]:
        """ReserveNow: the status to answer and why."""
        now = now or datetime.now(UTC)
        async with self._lock:
            status, why = self._check(request, now)
            if status is not ReserveStatus.ACCEPTED:
                log.info("ReserveNow %d refused: %s (%s)", request.reservation_id, status, why)
                return status, why
            previous = self._active.get(request.reservation_id)
            reservation = Reservation(
                reservation_id=request.reservation_id,
                connector_id=request.connector_id,
                id_tag=request.id_tag,
                expiry=request.expiry,
                parent_id_tag=request.parent_id_tag,
                token_type=request.token_type,
                connector_type=request.connector_type,
                created_at=utc_now(),
            )
            try:
                await self.store.reservation_put(reservation.row(reported=True))
            except StoreError as exc:
                log.error("ReserveNow %d not kept: %s", request.reservation_id, exc)
                return ReserveStatus.REJECTED, f"the store could not keep it: {exc}"
            self._active[reservation.reservation_id] = reservation
            log.info(
                "reservation %d%s: %s for %s until %s",
                reservation.reservation_id,
                " replaced" if previous is not None else "",
                f"connector {request.connector_id}"
                if request.connector_id is not None
                else "any connector",
                request.id_tag,
                reservation.expiry.isoformat(),
            )
        self.refresh()
        self._wake.set()
        return ReserveStatus.ACCEPTED, ""

    def _check(self, request: ReserveRequest, now: datetime) -> tuple[ReserveStatus, str]:
        if request.expiry <= now:
            return ReserveStatus.REJECTED, "the expiry has already passed"
        others = {k: r for k, r in self._active.items() if k != request.reservation_id}
        any_connector = [r for r in others.values() if r.connector_id is None]
        own = {r.connector_id for r in others.values() if r.connector_id is not None}
        free = [c for c in self.connectors.values() if _idle(c) and c.id not in own]
        cid = request.connector_id
        if cid is None:
            if not self.allow_any_connector():
                return ReserveStatus.REJECTED, "reservations for any connector are not supported"
            if len(free) > len(any_connector):
                return ReserveStatus.ACCEPTED, ""
            statuses = {c.status for c in self.connectors.values()}
            if statuses == {S.FAULTED}:
                return ReserveStatus.FAULTED, "every connector is faulted"
            if all(not c.operative or c.status is S.UNAVAILABLE for c in self.connectors.values()):
                return ReserveStatus.UNAVAILABLE, "every connector is unavailable"
            return ReserveStatus.OCCUPIED, "no connector is free for another reservation"
        c = self.connectors.get(cid)
        if c is None:
            return ReserveStatus.REJECTED, f"no connector {cid}"
        if c.status is S.FAULTED:
            return ReserveStatus.FAULTED, f"connector {cid} is faulted"
        if not c.operative or c.status is S.UNAVAILABLE:
            return ReserveStatus.UNAVAILABLE, f"connector {cid} is unavailable"
        if cid in own:
            return ReserveStatus.OCCUPIED, f"connector {cid} is reserved already"
        if not _idle(c) or c.plugged or c.status is S.PREPARING:
            return ReserveStatus.OCCUPIED, f"connector {cid} is in use"
        if len(free) - 1 < len(any_connector):
            return ReserveStatus.OCCUPIED, f"connector {cid} is needed by other reservations"
        return ReserveStatus.ACCEPTED, ""

    async def cancel(self, reservation_id: int) -> bool:
        """CancelReservation: True when it was active (Accepted), False when unknown."""
        return await self._end(reservation_id, ReservationState.CANCELLED)

    async def used(self, reservation_id: int) -> None:
        """Its card started a transaction (1.6: StartTransaction with reservationId; 2.0.1:
        the TransactionEvent with reservationId)."""
        await self._end(reservation_id, ReservationState.USED)

    async def _end(self, reservation_id: int, state: ReservationState) -> bool:
        async with self._lock:
            reservation = self._active.get(reservation_id)
            if reservation is None:
                return False
            reservation.end(state)
            reported = not (self.report_ends and state in REPORTED_ENDS)
            try:
                await self.store.reservation_put(reservation.row(reported=reported))
            except StoreError as exc:
                log.error("reservation %d end (%s) not kept: %s", reservation_id, state, exc)
            del self._active[reservation_id]
            log.info("reservation %d %s", reservation_id, state.value.lower())
        self.refresh()
        for listener in list(self._listeners):
            listener(reservation)
        return True

    # ---- ReservationStatusUpdate bookkeeping (2.0.1) ---------------------------------

    async def unreported(self) -> list[Reservation]:
        """Ended reservations (Expired / Removed) the CSMS has not been told about."""
        return [Reservation.from_row(r) for r in await self.store.reservations_unreported()]

    async def reported(self, reservation_id: int) -> None:
        await self.store.reservation_reported(reservation_id)

    # ---- connector statuses -----------------------------------------------------------

    def refresh(self) -> None:
        """Show Reserved where a connector is held, Available where no longer."""
        free = self.free_connectors()
        held_back = {c.id for c in free} if 0 < len(free) <= len(self.unspecified()) else set()
        for c in self.connectors.values():
            reserved = self.on_connector(c.id) is not None or c.id in held_back
            c.reserved = reserved
            try:
                if reserved and c.status is S.AVAILABLE and _idle(c):
                    c.sm.go(S.RESERVED)
                elif not reserved and c.status is S.RESERVED:
                    c.sm.go(S.PREPARING if c.plugged else S.AVAILABLE)
            except InvalidTransition as exc:  # pragma: no cover - the table allows these
                log.error("%s", exc)

    def _on_status(self, report: StatusReport) -> None:
        if report.status in (S.FAULTED, S.UNAVAILABLE):
            self._unusable.add(report.connector_id)
            self._wake.set()
        if not self._refresh_scheduled:
            self._refresh_scheduled = True
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to refresh
                asyncio.get_running_loop().call_soon(self._scheduled_refresh)
                return
            self._refresh_scheduled = False

    def _scheduled_refresh(self) -> None:
        self._refresh_scheduled = False
        self.refresh()

    # ---- the timer -------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._remove_unusable()
                await self._expire_due(datetime.now(UTC))
            except StoreError as exc:  # pragma: no cover - logged, retried on the next wake
                log.error("reservations: %s", exc)
            soonest = min((r.expiry for r in self._active.values()), default=None)
            timeout = MAX_TIMER_S
            if soonest is not None:
                timeout = min(timeout, max(0.0, (soonest - datetime.now(UTC)).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout + 0.001):
                    await self._wake.wait()

    async def _expire_due(self, now: datetime) -> None:
        for reservation in [r for r in self._active.values() if r.expired(now)]:
            await self._end(reservation.reservation_id, ReservationState.EXPIRED)

    async def _remove_unusable(self) -> None:
        """Reservations whose connector became Faulted or Unavailable end (Removed), and
        reservations for any connector beyond the connectors that can still serve them."""
        unusable, self._unusable = self._unusable, set()
        for cid in unusable:
            c = self.connectors.get(cid)
            reservation = self.on_connector(cid)
            if c is not None and reservation is not None and not _usable(c):
                await self._end(reservation.reservation_id, ReservationState.REMOVED)
        own = {r.connector_id for r in self._active.values() if r.connector_id is not None}
        capacity = sum(1 for c in self.connectors.values() if _usable(c) and c.id not in own)
        for reservation in reversed(self.unspecified()[capacity:]):
            await self._end(reservation.reservation_id, ReservationState.REMOVED)
