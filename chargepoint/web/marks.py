"""The lock mark of each session in the transaction log, computed by our verifier.

A session's signed Begin and End are checked (meter.proof.session: signatures, billability,
the two belong together) against the key that was pinned for its connector's meter when the
session started, from the store's key history, not merely the key stored with the session:

- **verified** (green lock): both records verify against that key and prove the energy;
- **not verified** (yellow lock) with the reason: a record does not verify, is not billable,
  the pair does not belong together, or it was signed with another key than the pinned one;
- **unsigned** (no lock): no signed End (or nothing signed at all), with the reason;
- **open**: the session has not ended yet.

Nothing is written: the web page reads the store read-only.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chargepoint.proof.sessions import check_row
from chargepoint.store import MeterKeyRow, TransactionRow
from meter.proof.keys import KeyFormatError, PublicKeyInfo, load_public_key
from meter.proof.session import ProofStatus, SessionProof


class Lock(enum.StrEnum):
    VERIFIED = "verified"
    NOT_VERIFIED = "not verified"
    UNSIGNED = "unsigned"
    OPEN = "open"


@dataclass(frozen=True)
class Mark:
    lock: Lock
    reason: str  # why (for not verified / unsigned), or which key verified it
    energy_wh: int | None  # what the signed records prove
    key_fingerprint: str | None  # sha256 of the key the records were checked with

    @property
    def css(self) -> str:
        return self.lock.name.lower().replace("_", "-")

    @property
    def title(self) -> str:
        return f"{self.lock.value}: {self.reason}" if self.reason else self.lock.value

    def as_proof(self, meter_serial: str | None) -> SessionProof:
        """The same verdict as the exports' verification column takes it."""
        status = {
            Lock.VERIFIED: ProofStatus.VERIFIED,
            Lock.NOT_VERIFIED: ProofStatus.FAILED,
        }.get(self.lock, ProofStatus.UNSIGNED)
        reason = "" if self.lock is Lock.VERIFIED else self.reason
        return SessionProof(status, reason, self.energy_wh, meter_serial)


def _key(text: str | None) -> PublicKeyInfo | None:
    if not text:
        return None
    try:
        return load_public_key(text)
    except (KeyFormatError, ValueError):
        return None


def pinned_at_the_time(keys: Sequence[MeterKeyRow], row: TransactionRow) -> MeterKeyRow | None:
    """The key pinned for the session's connector when it started. A session older than the
    first key on record (a store from before the key history) takes that first key."""
    mine = [k for k in keys if k.connector_id == row.connector_id]
    if not mine:
        return None
    when = row.started_at or row.opened_at
    for k in mine:
        if k.pinned_at <= when and (k.replaced_at is None or when < k.replaced_at):
            return k
    earlier = [k for k in mine if k.pinned_at <= when]
    return earlier[-1] if earlier else mine[0]


def mark_of(row: TransactionRow, keys: Sequence[MeterKeyRow]) -> Mark:
    """The session's lock mark; `keys` is the store's whole key history."""
    if row.open:
        return Mark(Lock.OPEN, "the session has not ended yet", None, None)
    if row.begin_ocmf is None:
        return Mark(Lock.UNSIGNED, "closed before the meter signed anything", None, None)
    if row.end_ocmf is None:
        why = row.unsigned_end_reason or "the meter signed no End"
        return Mark(Lock.UNSIGNED, f"no signed End: {why}", None, None)
    stored = _key(row.public_key_hex)
    pinned = pinned_at_the_time(keys, row)
    if pinned is not None:
        key = _key(pinned.public_key_hex)
        if key is None:
            return Mark(Lock.NOT_VERIFIED, "the pinned key on record is unreadable", None, None)
        if stored is not None and stored.der != key.der:
            return Mark(
                Lock.NOT_VERIFIED,
                f"signed with key sha256:{stored.fingerprint[:16]}, but the key pinned for "
                f"connector {row.connector_id} then is sha256:{key.fingerprint[:16]}",
                None,
                key.fingerprint,
            )
        source = f"the key pinned for connector {row.connector_id} ({pinned.how})"
    elif stored is not None:
        key = stored
        source = "the key stored with the session (no key pinned for its connector)"
    else:
        return Mark(Lock.NOT_VERIFIED, "no public key known for this session", None, None)
    proof = check_row(row, key)
    if proof.status is ProofStatus.VERIFIED:
        test = f"; {proof.reason}" if proof.reason else ""
        reason = f"checked with {source}, sha256:{key.fingerprint[:16]}{test}"
        return Mark(Lock.VERIFIED, reason, proof.energy_wh, key.fingerprint)
    lock = Lock.UNSIGNED if proof.status is ProofStatus.UNSIGNED else Lock.NOT_VERIFIED
    return Mark(lock, proof.reason, proof.energy_wh, key.fingerprint)


class MarkCache:
    """Marks of closed sessions do not change while the key history stays the same."""

    def __init__(self, limit: int = 20_000) -> None:
        self._limit = limit
        self._history: tuple[MeterKeyRow, ...] = ()
        self._marks: dict[int, Mark] = {}

    def marks(self, rows: Iterable[TransactionRow], keys: Sequence[MeterKeyRow]) -> list[Mark]:
        history = tuple(keys)
        if history != self._history:
            self._history, self._marks = history, {}
        out = []
        for row in rows:
            cached = self._marks.get(row.local_id)
            if cached is None or row.open:
                cached = mark_of(row, history)
                if not row.open:
                    if len(self._marks) >= self._limit:
                        self._marks.clear()
                    self._marks[row.local_id] = cached
            out.append(cached)
        return out
