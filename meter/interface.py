"""What a signing meter is to the rest of the project: the `SigningMeter` protocol.

The station's transaction core depends on this protocol only. The BSM-WS36A driver
(`meter.bsm.driver.BsmWs36a`) and the station's test signer (`meter.stationsign`) implement
it, and the simulator (`meter.sim`) is a real Modbus device behind the BSM driver. A second
meter model is one new package beside `meter/bsm/` whose driver satisfies this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from meter.proof.keys import PublicKeyInfo
from meter.snapshot import MeterIdentity, SignedSnapshot, SnapshotKind


@dataclass(frozen=True)
class EnergyReading:
    total_wh: Decimal | None
    power_w: Decimal | None
    events: int


@dataclass(frozen=True)
class ClockState:
    epoch: int | None  # None while never set
    tzo_minutes: int | None
    set_count: int
    set_at_os: int
    operating_seconds: int

    @property
    def seconds_since_set(self) -> int | None:
        if self.set_count == 0:
            return None
        return self.operating_seconds - self.set_at_os


@dataclass(frozen=True)
class TransactionState:
    """What the meter's own snapshot counters say about an open transaction."""

    open: bool
    reason: str


class SigningMeter(Protocol):
    """A meter that signs the readings at the start and the end of a session.

    Errors are `meter.errors.MeterError` subclasses whose `action` tells the caller what to do
    (retry, fault the connector, refuse, read the snapshot back).
    """

    unit: int
    pinned_key: PublicKeyInfo | None  # the key every signed reading must verify with

    async def identity(self) -> MeterIdentity:
        """Read manufacturer, model, serials and firmware versions from the meter."""
        ...

    @property
    def cached_identity(self) -> MeterIdentity | None:
        """The identity read last, if any."""
        ...

    async def ensure_identity(self) -> MeterIdentity:
        """The identity, read once."""
        ...

    async def energy(self) -> EnergyReading:
        """The energy register, the active power and the event flags."""
        ...

    async def public_key(self) -> PublicKeyInfo:
        """The meter's public key (PublicKeyMismatch when it is not the pinned one)."""
        ...

    async def check_ready(self) -> PublicKeyInfo:
        """Fit to bill: no event flags, no error code, the pinned key."""
        ...

    async def clock(self) -> ClockState:
        """The meter's clock and its set counter."""
        ...

    async def set_clock(
        self, when: datetime | None = None, tzo_minutes: int | None = None, force: bool = False
    ) -> ClockState:
        """Set the clock (rate-limited; refused while a transaction is open on the meter)."""
        ...

    async def write_metadata(
        self, meta1: str | bytes, meta2: str | bytes, meta3: str | bytes
    ) -> None:
        """The identification written into the next signed readings."""
        ...

    async def transaction_state(self) -> TransactionState:
        """Whether the meter itself holds an open transaction (a turn-on without turn-off)."""
        ...

    async def take_snapshot(self, kind: SnapshotKind) -> SignedSnapshot:
        """Have the meter sign a reading of this kind and return it, signature checked."""
        ...

    async def resume_snapshot(
        self, kind: SnapshotKind, after_rcnt: int, timeout: float | None = None
    ) -> SignedSnapshot | None:
        """Collect a snapshot triggered before an interruption (None: it never happened)."""
        ...

    async def read_snapshot(self, kind: SnapshotKind) -> SignedSnapshot:
        """The last snapshot of this kind, as the meter holds it."""
        ...
