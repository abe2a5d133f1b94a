"""A stored session's proof: its two signed records checked against the key they were signed
with (kept with the session), the result stored beside the session, never over it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from chargepoint.store import AsyncStore, ProofRow, Store, StoreError, TransactionRow
from meter.proof.keys import KeyFormatError, PublicKeyInfo, load_public_key
from meter.proof.session import ProofStatus, SessionProof, check_session

log = logging.getLogger("chargepoint.proofs")


@dataclass(frozen=True)
class ProvenSession:
    row: TransactionRow
    proof: SessionProof


def _fields(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def prove(row: TransactionRow) -> SessionProof:
    """What the row's records prove against the key stored with the session."""
    if row.begin_ocmf is None:
        return SessionProof(ProofStatus.UNSIGNED, "closed before the meter signed", None, None)
    try:
        key = load_public_key(row.public_key_hex) if row.public_key_hex else None
    except (KeyFormatError, ValueError) as exc:
        return SessionProof(ProofStatus.FAILED, f"stored public key unreadable: {exc}", None, None)
    if row.end_ocmf is None and row.unsigned_end_reason:
        return SessionProof(
            ProofStatus.UNSIGNED, f"no signed End: {row.unsigned_end_reason}", None, None
        )
    return check_row(row, key)


def check_row(row: TransactionRow, key: PublicKeyInfo | None) -> SessionProof:
    """The proof the row's signed records and their stored fields give, checked with `key`."""
    return check_session(
        row.begin_ocmf, row.end_ocmf, key, _fields(row.begin_fields), _fields(row.end_fields)
    )


def proof_of(store: Store, row: TransactionRow, refresh: bool = False) -> SessionProof:
    """The session's proof, computed once for a closed session and kept in the store."""
    for proven in proven_sessions(store, [row], refresh):
        return proven.proof
    raise AssertionError("unreachable")


def proven_sessions(
    store: Store, rows: Iterable[TransactionRow], refresh: bool = False, batch: int = 500
) -> Iterator[ProvenSession]:
    """Each row with its proof: kept ones are read, missing ones computed and kept (written in
    batches, so an export of many sessions checks and records them quickly)."""
    pending: list[tuple[int, str, str, int | None]] = []
    try:
        for row in rows:
            kept: ProofRow | None = None
            if not row.open and not refresh:
                kept = store.proof(row.local_id)
            if kept is not None:
                proof = SessionProof(
                    ProofStatus(kept.status), kept.reason, kept.energy_wh, row.meter_serial
                )
            else:
                proof = prove(row)
                if not row.open:
                    pending.append(
                        (row.local_id, proof.status.value, proof.reason, proof.energy_wh)
                    )
                    if len(pending) >= batch:
                        store.put_proofs(pending)
                        pending = []
            yield ProvenSession(row, proof)
    finally:
        if pending:
            store.put_proofs(pending)


async def record_proof(store: AsyncStore, local_id: int) -> SessionProof | None:
    """Check a session that just closed and keep its mark (the daemon, after each session);
    a failed proof is logged as an error: the records do not prove what was billed."""
    try:
        row = await store.transaction(local_id)
        if row is None or row.open:
            return None
        proof = await asyncio.to_thread(prove, row)
        await store.put_proof(local_id, proof.status.value, proof.reason, proof.energy_wh)
    except StoreError as exc:
        log.warning("session %d: its proof was not kept: %s", local_id, exc)
        return None
    if proof.status is ProofStatus.FAILED:
        log.error("session %d: signed records do NOT verify: %s", local_id, proof.reason)
    else:
        log.info("session %d: %s", local_id, proof.mark)
    return proof
