"""A full state dir (the disk under the store): noticed, reported, survived, left by itself.

States: ``ok -> full -> recovering -> ok``.

- **ok**: writes go straight to the store. A write that fails with
  :class:`~chargepoint.store.StoreFull`, or a check that finds less than ``min_free_bytes``
  free in the state dir, enters **full**: one ERROR log line and a MemoryExhaustion security
  event (critical in OCPP 2.0.1 Part 2 Appendix 1 and the 1.6 security whitepaper; it waits
  in memory like any other write until the store takes it).
- **full**: new sessions are refused (:data:`REFUSAL`), because a session whose signed values
  cannot be stored must not start. A write that cannot be stored is held in memory, in order,
  and every write made meanwhile queues behind it, so nothing overtakes a held one: a
  session's end with its signed End and its Stop message (which therefore is not sent before
  its signed value is durable), meter values, security events, security log lines. A
  session already charging keeps charging: its signed Begin is stored, and its signed End
  stays on the meter until the next turn-on (which is refused meanwhile) as well as in
  memory here. Held signed values are never dropped; meter values beyond
  ``MAX_HELD_DROPPABLE`` are (counted, reported).
- **recovering**: every ``recheck_interval_s`` (``RECHECK_INTERVAL_S``) the free space is
  checked (and the held writes are tried even while it is short: a signed End the store
  takes is not left in memory); once there is enough, the held writes are written in
  order (one that fails for space again returns to full, silently). When none is left:
  **ok**, one ERROR line says how long it lasted and what was written, and sessions are
  accepted again. No restart.

If the daemon stops while writes are held, they are lost from memory, and it says so: the
meters still hold the signed End values, and the next start ends those sessions from them
(the open session's turn-off snapshot, RCnt + 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from chargepoint.store import disk_full
from chargepoint.store.connection import WAL_SIZE_LIMIT

log = logging.getLogger("chargepoint.storage")

T = TypeVar("T")

RECHECK_INTERVAL_S: Final = 10.0  # how often the free space of the state dir is checked
# below this, no new session: the WAL may grow to its size limit between two checkpoints
MIN_FREE_BYTES: Final = 2 * WAL_SIZE_LIMIT
MAX_HELD_DROPPABLE: Final = 1000  # unsigned meter values held at most; later ones dropped
REFUSAL: Final = "station storage full: cannot record a signed session"
MEMORY_EXHAUSTION: Final = "MemoryExhaustion"  # the security event (2.0.1 and 1.6 name)


class SpaceState(enum.StrEnum):
    OK = "ok"
    FULL = "full"
    RECOVERING = "recovering"


@dataclass(eq=False)
class HeldWrite:
    """A write the store could not take, waiting in memory for space."""

    what: str
    write: Callable[[], Awaitable[Any]]
    signed_values: int
    droppable: bool
    done: asyncio.Future[Any]


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the file system of `path` (None when
    it cannot be told)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class DiskSpace:
    """The state machine of one station's state dir (see the module docstring).

    `security_event(type, tech_info)` records a security event (set by the station);
    `run()` is the re-check loop the station owns."""

    def __init__(
        self,
        state_dir: Path,
        *,
        recheck_interval_s: float = RECHECK_INTERVAL_S,
        min_free_bytes: int = MIN_FREE_BYTES,
    ) -> None:
        self.state_dir = state_dir
        self.recheck_interval_s = recheck_interval_s
        self.min_free_bytes = min_free_bytes
        self.state = SpaceState.OK
        self.since: dt.datetime | None = None  # when the state dir was found full
        self.reason = ""
        self.free: int | None = None  # at the last check
        self.dropped = 0  # meter values not kept during this episode
        self.security_event: Callable[[str, str | None], object] = lambda kind, info: None
        self._held: deque[HeldWrite] = deque()
        self._written = 0  # held writes stored during this episode
        self._written_signed = 0
        self._wake = asyncio.Event()
        self._checking = asyncio.Lock()

    # ---- what the station asks -------------------------------------------------------------

    @property
    def refuses_sessions(self) -> bool:
        """No new session may start: the store may not take its signed values."""
        return self.state is not SpaceState.OK

    @property
    def held_writes(self) -> int:
        return sum(1 for h in self._held if h.signed_values or not h.done.cancelled())

    @property
    def held_signed_values(self) -> int:
        return sum(h.signed_values for h in self._held)

    def describe(self) -> str:
        """One line for `status`: "ok", or "full since 07:42 UTC, 1 signed value held in
        memory (3 writes waiting)"."""
        if self.state is SpaceState.OK:
            return "ok"
        since = f" since {self.since:%H:%M} UTC" if self.since is not None else ""
        text = (
            f"{self.state.value}{since}, "
            f"{_plural(self.held_signed_values, 'signed value')} held in memory"
        )
        if self._held:
            text += f" ({_plural(self.held_writes, 'write')} waiting)"
        if self.dropped:
            text += f", {_plural(self.dropped, 'meter value message')} dropped"
        return text

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "since": self.since.isoformat(timespec="seconds") if self.since else None,
            "reason": self.reason or None,
            "free_bytes": self.free,
            "held_writes": self.held_writes,
            "held_signed_values": self.held_signed_values,
            "dropped_meter_values": self.dropped,
            "text": self.describe(),
        }

    # ---- writes ----------------------------------------------------------------------------

    async def store(
        self, what: str, write: Callable[[], Awaitable[T]], *, signed_values: int = 0
    ) -> T:
        """Run `write` (one store write) now, or, the disk being full, hold it in memory and
        return only once it is written, in order with every other held write. Errors other
        than a full disk propagate."""
        future = await self._submit(what, write, signed_values, droppable=False)
        result: T = await future
        return result

    async def store_or_hold(
        self,
        what: str,
        write: Callable[[], Awaitable[Any]],
        *,
        signed_values: int = 0,
        droppable: bool = False,
    ) -> None:
        """Run `write` now, or hold it (see `store`) and return at once; an error of the
        held write is logged when it runs. `droppable`: may be left out when memory holds
        too many such writes already (unsigned meter values)."""
        future = await self._submit(what, write, signed_values, droppable)
        if not future.done():
            future.add_done_callback(_log_failure(what))

    def full(self, reason: str, detail: str = "") -> None:
        """The disk is full (a write failed for space, or too little is free): `reason` in
        a few words (status, the security event), `detail` for the log."""
        if self.state is SpaceState.FULL:
            return
        first = self.state is SpaceState.OK
        self.state = SpaceState.FULL
        if not first:
            return  # space ran out again while the held writes were being written
        self.since = dt.datetime.now(dt.UTC)
        self.reason = reason
        self.dropped = 0
        self._written = self._written_signed = 0
        log.error(
            "storage full: %s%s; new sessions are refused, and what cannot be written is "
            "held in memory until space returns (checked every %g s)",
            reason,
            f" ({detail})" if detail else "",
            self.recheck_interval_s,
        )
        self.security_event(MEMORY_EXHAUSTION, f"state dir full: {reason}")
        self._wake.set()

    async def _submit(
        self,
        what: str,
        write: Callable[[], Awaitable[Any]],
        signed_values: int,
        droppable: bool,
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._held:
            try:
                future.set_result(await write())
                return future
            except Exception as exc:
                if not disk_full(exc):
                    raise
                self.full(f"{what} not written", str(exc))
        elif droppable and self._held_droppable() >= MAX_HELD_DROPPABLE:
            self.dropped += 1
            future.set_result(None)
            return future
        self._held.append(HeldWrite(what, write, signed_values, droppable, future))
        log.log(
            logging.DEBUG if droppable else logging.INFO,
            "storage full: %s held in memory (%s, %s waiting)",
            what,
            _plural(self.held_signed_values, "signed value"),
            _plural(self.held_writes, "write"),
        )
        return future

    def _held_droppable(self) -> int:
        return sum(1 for h in self._held if h.droppable)

    # ---- the re-check ----------------------------------------------------------------------

    def check_soon(self) -> None:
        """Check now instead of at the end of the interval."""
        self._wake.set()

    async def run(self) -> None:
        """Check the free space every `recheck_interval_s` (sooner after `check_soon`)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.recheck_interval_s)
            self._wake.clear()
            await self.check()

    async def check(self) -> None:
        """ok: enter full when too little is free. full: once enough is free, write what is
        held, in order, and return to ok."""
        async with self._checking:
            free = await asyncio.to_thread(free_bytes, self.state_dir)
            self.free = free
            enough = free is None or free >= self.min_free_bytes
            if self.state is SpaceState.OK:
                if not enough:
                    self.full(
                        f"{free} bytes free, less than the {self.min_free_bytes} a new "
                        "session needs",
                        str(self.state_dir),
                    )
                return
            if not enough:
                if self._held:  # the store may take them even with little free: try
                    await self._flush()
                return
            self.state = SpaceState.RECOVERING
            if not await self._flush():
                return
            assert self.since is not None
            lasted = dt.datetime.now(dt.UTC) - self.since
            log.error(
                "storage full no more: %s free after %.0f s; %s (%s) held in memory now "
                "written%s; new sessions are accepted again",
                "?" if free is None else f"{free} bytes",
                lasted.total_seconds(),
                _plural(self._written, "write"),
                _plural(self._written_signed, "signed value"),
                f", {_plural(self.dropped, 'meter value message')} dropped" if self.dropped else "",
            )
            self.state = SpaceState.OK
            self.since = None
            self.reason = ""

    async def _flush(self) -> bool:
        """Write the held writes in order; False when the disk is full again."""
        while self._held:
            head = self._held[0]
            if head.done.cancelled() and not head.signed_values:  # its caller gave up
                self._held.popleft()
                continue
            try:
                result = await head.write()
            except Exception as exc:
                if disk_full(exc):
                    self.full(f"{head.what} not written", str(exc))
                    return False
                self._held.popleft()
                if not head.done.done():
                    head.done.set_exception(exc)
                continue
            self._held.popleft()
            self._written += 1
            self._written_signed += head.signed_values
            if not head.done.done():
                head.done.set_result(result)
        return True

    def stop(self) -> None:
        """At shutdown: say what memory held and the store never took."""
        if self.held_writes:
            log.error(
                "stopping with the storage full: %s (%s) held in memory are not written; "
                "the meters keep their signed End values and the next start ends those "
                "sessions from them",
                _plural(self.held_writes, "write"),
                _plural(self.held_signed_values, "signed value"),
            )


def _log_failure(what: str) -> Callable[[asyncio.Future[Any]], None]:
    def done(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.error("%s: held write failed: %s", what, future.exception())

    return done
