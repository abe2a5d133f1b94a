"""Flags an OCPP adapter keeps per transaction in the store's settings ("the meter's key went
out with this transaction", "its Ended went out"), read through a cache.

The sender asks for them once per message it builds; a backlog of 10,000 messages would be
10,000 trips to the store's thread. The adapter that owns a flag is its only writer, through
:meth:`TransactionFlags.set`, which writes the store first and the cache after: the cache never
says more than the store holds, and what it holds stays true (a flag is only ever set).
"""

from __future__ import annotations

from chargepoint.store import AsyncStore

CACHED_FLAGS = 4096  # flags kept in memory at most (the cache starts over beyond)


class TransactionFlags:
    """The flags named `{prefix}.{name}.{local_id}` in the settings, "1" when set."""

    def __init__(self, store: AsyncStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix
        self._known: dict[tuple[str, int], bool] = {}

    def _key(self, name: str, local_id: int) -> str:
        return f"{self.prefix}.{name}.{local_id}"

    async def get(self, name: str, local_id: int) -> bool:
        known = self._known.get((name, local_id))
        if known is not None:
            return known
        value = await self.store.get_setting(self._key(name, local_id)) == "1"
        self._remember(name, local_id, value)
        return value

    async def set(self, name: str, local_id: int) -> None:
        """Set the flag: on disk (with the acknowledgements waiting before it), then here
        (forgotten meanwhile: a write cancelled or failed half way is read again)."""
        self._known.pop((name, local_id), None)
        await self.store.set_setting(self._key(name, local_id), "1")
        self._remember(name, local_id, True)

    def _remember(self, name: str, local_id: int, value: bool) -> None:
        if len(self._known) >= CACHED_FLAGS:
            self._known.clear()
        self._known[(name, local_id)] = value
