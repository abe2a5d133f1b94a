"""What reads return: one frozen dataclass per kind of row, and the converters from the
columns SQLite hands back."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class TransactionRow:
    """One transaction. ``begin_*`` and ``end_*`` are the signed records, byte for byte.

    A transaction opens (``opened_at``) when its start point is reached and closes
    (``closed_at``) at its stop point. Its signed charging period lies within: the Begin
    (``started_at`` ... ``begin_fields``) is None until the meter signed the turn-on (and stays
    None for a transaction closed before charging began); ``stopped_at`` and the End follow at
    the turn-off. Under OCPP 1.6 both bounds coincide with the signed period.
    """

    local_id: int
    connector_id: int
    evse_id: str
    id_tag: str  # "" until known (a transaction opened when the EV plugged in)
    meter_serial: str | None
    public_key_hex: str | None
    started_at: str | None
    meter_start_wh: int | None
    begin_ocmf: str | None
    begin_fields: str | None
    csms_transaction_id: int | None
    stopped_at: str | None
    meter_stop_wh: int | None
    end_ocmf: str | None
    end_fields: str | None
    stop_reason: str | None
    stop_id_tag: str | None
    # Set when the session had to end without a signed end value: why.
    unsigned_end_reason: str | None
    opened_at: str
    closed_at: str | None

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def signed(self) -> bool:
        """The meter signed this transaction's Begin."""
        return self.begin_ocmf is not None

    @property
    def charging(self) -> bool:
        """Begun and not yet ended: the load may be released."""
        return self.begin_ocmf is not None and self.stopped_at is None


@dataclass(frozen=True)
class OutboxMessage:
    """A message for the CSMS, kept from before its first attempt until long after it is sent."""

    seq: int
    kind: str
    local_tx_id: int | None
    data: dict[str, Any]
    created_at: str
    attempts: int
    status: str  # "pending" | "sent" | "failed"
    last_error: str | None
    sent_at: str | None
    response: dict[str, Any] | None = None  # the CSMS's answer, once sent


@dataclass(frozen=True)
class ProofRow:
    """What a session's signed records prove (see meter.proof.session)."""

    local_id: int
    status: str  # verified | failed | unsigned
    reason: str
    energy_wh: int | None
    checked_at: str


@dataclass(frozen=True)
class MeterKeyRow:
    """A meter key pinned for a connector; `replaced_at` is set when another meter took over."""

    id: int
    connector_id: int
    meter_serial: str
    public_key_hex: str
    pinned_at: str
    how: str  # "first contact", "configured", "replaced by the operator"
    replaced_at: str | None


@dataclass(frozen=True)
class CacheEntry:
    """What the CSMS last said about an id tag."""

    id_tag: str
    status: str
    expiry: str | None
    parent_id_tag: str | None
    updated_at: str


TX_COLUMNS = ", ".join(f.name for f in fields(TransactionRow))
OUTBOX_COLUMNS = (
    "seq, kind, local_tx_id, data, created_at, attempts, status, last_error, sent_at, response"
)


def tx_row(row: tuple[Any, ...]) -> TransactionRow:
    return TransactionRow(*row)


def outbox_row(row: tuple[Any, ...]) -> OutboxMessage:
    seq, kind, local_tx_id, data, created_at, attempts, status, last_error, sent_at, resp = row
    return OutboxMessage(
        seq=seq,
        kind=kind,
        local_tx_id=local_tx_id,
        data=json.loads(data),
        created_at=created_at,
        attempts=attempts,
        status=status,
        last_error=last_error,
        sent_at=sent_at,
        response=json.loads(resp) if resp is not None else None,
    )
