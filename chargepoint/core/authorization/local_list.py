"""The Local Authorization List: the id tokens the CSMS sent with SendLocalList, with its
version, kept in the store and mirrored in memory for the decisions.

Rules (OCPP 1.6 3.5.2 and 5.15, 2.0.1 D01/D02), the same for both versions:

- Full replaces the whole list; every entry needs its IdTagInfo. An empty Full clears it.
- Differential adds or updates the entries with an IdTagInfo and deletes those without one;
  its version must be higher than the list's (else VersionMismatch, D01.FR.19).
- Failed: a version below 1 (D01.FR.18; a Full with no entries may set 0, the empty list's
  version), a token twice in one message (D01.FR.06), a Full entry without IdTagInfo, more
  entries than SendLocalListMaxLength, a list longer than LocalAuthListMaxLength afterwards,
  or a store that could not keep it. A failed update changes nothing.
- NotSupported while LocalAuthListEnabled is false (2.0.1 answers Failed).
- Nothing else changes the list: the CSMS's answers go to the cache, never to the list.

A Full update is one SQL transaction (rows deleted and inserted together); a Differential
touches only the rows it names.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from chargepoint.core.authorization.tokens import AuthStatus, IdTagInfo, status_of, token_key
from chargepoint.store import AsyncStore, LocalListRow, StoreError

log = logging.getLogger("chargepoint.auth.local_list")


class UpdateType(enum.StrEnum):
    FULL = "Full"
    DIFFERENTIAL = "Differential"


class UpdateStatus(enum.StrEnum):
    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_SUPPORTED = "NotSupported"
    VERSION_MISMATCH = "VersionMismatch"


@dataclass(frozen=True)
class ListEntry:
    """One entry of a SendLocalList; `info` None in a Differential deletes the token."""

    id_tag: str
    info: IdTagInfo | None
    token_type: str | None = None


@dataclass(frozen=True)
class UpdateResult:
    status: UpdateStatus
    reason: str = ""


@dataclass(frozen=True)
class ListLimits:
    enabled: bool
    max_length: int  # LocalAuthListMaxLength: entries the list may hold
    max_per_message: int  # SendLocalListMaxLength (LocalAuthListCtrlr.ItemsPerMessage)


def _row(entry: ListEntry) -> LocalListRow:
    info = entry.info
    assert info is not None
    return LocalListRow(
        key=token_key(entry.id_tag),
        id_tag=entry.id_tag,
        status=info.status.value,
        expiry=info.expiry,
        parent_id_tag=info.parent_id_tag,
        token_type=entry.token_type,
    )


def _info(row: LocalListRow) -> IdTagInfo:
    return IdTagInfo(status_of(row.status), row.expiry, row.parent_id_tag)


class LocalList:
    """The list in the store, with an in-memory index for lookups."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        self.version = 0
        self._rows: dict[str, LocalListRow] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        self.version, rows = await self.store.local_list_load()
        self._rows = {row.key: row for row in rows}
        if rows or self.version:
            log.info("local list version %d with %d entries", self.version, len(rows))

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, id_tag: str) -> IdTagInfo | None:
        row = self._rows.get(token_key(id_tag))
        return _info(row) if row is not None else None

    def contains(self, id_tag: str) -> bool:
        return token_key(id_tag) in self._rows

    def storage_bytes(self) -> int:
        """About how many bytes the entries take (LocalAuthListCtrlr.Storage)."""
        return sum(
            len(r.id_tag) + len(r.status) + len(r.expiry or "") + len(r.parent_id_tag or "") + 16
            for r in self._rows.values()
        )

    def accepted_count(self) -> int:
        return sum(1 for r in self._rows.values() if r.status == AuthStatus.ACCEPTED.value)

    async def update(
        self,
        update_type: UpdateType,
        version: int,
        entries: Sequence[ListEntry],
        limits: ListLimits,
    ) -> UpdateResult:
        """Apply a SendLocalList; the list is unchanged unless the result is Accepted."""
        async with self._lock:
            result = self._check(update_type, version, entries, limits)
            if result is not None:
                log.warning(
                    "SendLocalList %s version %d (%d entries): %s: %s",
                    update_type,
                    version,
                    len(entries),
                    result.status,
                    result.reason,
                )
                return result
            try:
                if update_type is UpdateType.FULL:
                    rows = [_row(e) for e in entries]
                    await self.store.local_list_replace(version, rows)
                    self._rows = {row.key: row for row in rows}
                else:
                    upserts = [_row(e) for e in entries if e.info is not None]
                    deletes = [token_key(e.id_tag) for e in entries if e.info is None]
                    await self.store.local_list_update(version, upserts, deletes)
                    for key in deletes:
                        self._rows.pop(key, None)
                    self._rows.update((row.key, row) for row in upserts)
            except StoreError as exc:
                log.error("SendLocalList version %d not kept: %s", version, exc)
                return UpdateResult(UpdateStatus.FAILED, f"the store could not keep it: {exc}")
            self.version = version
            log.info(
                "local list %s update to version %d: %d entries in the message, %d in the list",
                update_type,
                version,
                len(entries),
                len(self._rows),
            )
            return UpdateResult(UpdateStatus.ACCEPTED)

    def _check(
        self,
        update_type: UpdateType,
        version: int,
        entries: Sequence[ListEntry],
        limits: ListLimits,
    ) -> UpdateResult | None:
        if not limits.enabled:
            return UpdateResult(UpdateStatus.NOT_SUPPORTED, "LocalAuthListEnabled is false")
        if len(entries) > limits.max_per_message:
            return UpdateResult(
                UpdateStatus.FAILED,
                f"{len(entries)} entries; SendLocalListMaxLength is {limits.max_per_message}",
            )
        full = update_type is UpdateType.FULL
        if version < 0 or (version == 0 and not (full and not entries)):
            return UpdateResult(UpdateStatus.FAILED, f"list version {version} is not above 0")
        keys = [token_key(e.id_tag) for e in entries]
        if len(set(keys)) != len(keys):
            return UpdateResult(UpdateStatus.FAILED, "a token appears twice in the message")
        if any(not e.id_tag for e in entries):
            return UpdateResult(UpdateStatus.FAILED, "an entry has an empty id token")
        if full:
            if any(e.info is None for e in entries):
                return UpdateResult(
                    UpdateStatus.FAILED, "a Full update has an entry without IdTagInfo"
                )
            size = len(entries)
        else:
            if version <= self.version:
                return UpdateResult(
                    UpdateStatus.VERSION_MISMATCH,
                    f"version {version} is not above the list's version {self.version}",
                )
            added = {k for k, e in zip(keys, entries, strict=True) if e.info is not None}
            removed = {k for k, e in zip(keys, entries, strict=True) if e.info is None}
            size = len((self._rows.keys() - removed) | added)
        if size > limits.max_length:
            return UpdateResult(
                UpdateStatus.FAILED,
                f"the list would hold {size} entries; LocalAuthListMaxLength is "
                f"{limits.max_length}",
            )
        return None
