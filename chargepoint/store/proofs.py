"""What each session proves: its verification, derived from the signed records and kept
beside them, never in place of them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from chargepoint.store.connection import StoreBase
from chargepoint.store.rows import ProofRow
from chargepoint.store.values import utc_now
from chargepoint.store.worker import AsyncStoreBase


class Proofs(StoreBase):
    """The ``session_proofs`` table."""

    def put_proof(self, local_id: int, status: str, reason: str, energy_wh: int | None) -> None:
        """Record (or refresh) a session's verification; the session itself is untouched."""
        self.put_proofs([(local_id, status, reason, energy_wh)])

    def put_proofs(self, proofs: Sequence[tuple[int, str, str, int | None]]) -> None:
        """Several sessions' verifications (local_id, status, reason, energy_wh), one write."""
        now = utc_now()

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO session_proofs (local_id, status, reason, energy_wh, checked_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (local_id) DO UPDATE SET"
                " status = excluded.status, reason = excluded.reason,"
                " energy_wh = excluded.energy_wh, checked_at = excluded.checked_at",
                [(*p, now) for p in proofs],
            )

        self._write(write)

    def proof(self, local_id: int) -> ProofRow | None:
        def read(conn: sqlite3.Connection) -> ProofRow | None:
            row = conn.execute(
                "SELECT local_id, status, reason, energy_wh, checked_at FROM session_proofs"
                " WHERE local_id = ?",
                (local_id,),
            ).fetchone()
            return ProofRow(*row) if row is not None else None

        return self._read(read)


class AsyncProofs(AsyncStoreBase):
    """The same on the store's worker thread."""

    _store: Proofs

    async def put_proof(
        self, local_id: int, status: str, reason: str, energy_wh: int | None
    ) -> None:
        await self._run(self._store.put_proof, local_id, status, reason, energy_wh)

    async def put_proofs(self, proofs: Sequence[tuple[int, str, str, int | None]]) -> None:
        await self._run(self._store.put_proofs, proofs)

    async def proof(self, local_id: int) -> ProofRow | None:
        return await self._run(self._store.proof, local_id)
