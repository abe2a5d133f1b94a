"""The adapters' per-transaction flags (chargepoint/csms/transaction_flags.py): read from the
store once, then from memory; a flag set is on disk before it is remembered."""

from __future__ import annotations

from pathlib import Path

import pytest

from chargepoint.csms import transaction_flags
from chargepoint.csms.transaction_flags import TransactionFlags
from chargepoint.store import AsyncStore, Store


async def test_a_flag_is_read_once_and_set_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = await AsyncStore.open(path, "CP-1")
    try:
        await store.set_setting("ocpp201-tx.ended.7", "1")  # from before a restart
        flags = TransactionFlags(store, "ocpp201-tx")
        assert await flags.get("ended", 7) is True
        assert await flags.get("ended", 8) is False
        assert await flags.get("key_sent", 7) is False

        reads: list[str] = []
        real = store.get_setting

        async def counted(key: str) -> str | None:
            reads.append(key)
            return await real(key)

        store.get_setting = counted  # type: ignore[method-assign]
        for _ in range(3):
            assert await flags.get("ended", 8) is False
            assert await flags.get("ended", 7) is True
        assert reads == []  # remembered

        await flags.set("ended", 8)
        assert await flags.get("ended", 8) is True
        assert reads == []
        with Store.open_read_only(path, "CP-1") as other:  # what a power loss would leave
            assert other.get_setting("ocpp201-tx.ended.8") == "1"
            assert other.get_setting("ocpp201-tx.key_sent.7") is None
    finally:
        await store.close()


async def test_a_set_that_fails_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await AsyncStore.open(tmp_path / "store.sqlite", "CP-1")
    try:
        flags = TransactionFlags(store, "ocpp16")
        assert await flags.get("key_sent", 1) is False

        async def failing(key: str, value: str) -> None:
            raise OSError("disk gone")

        monkeypatch.setattr(store, "set_setting", failing)
        with pytest.raises(OSError):
            await flags.set("key_sent", 1)
        monkeypatch.undo()
        await store.set_setting("ocpp16.key_sent.1", "1")  # as if the write had gone through
        assert await flags.get("key_sent", 1) is True  # not the stale False
    finally:
        await store.close()


async def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transaction_flags, "CACHED_FLAGS", 10)
    store = await AsyncStore.open(tmp_path / "store.sqlite", "CP-1")
    try:
        flags = TransactionFlags(store, "ocpp16")
        for local_id in range(25):
            assert await flags.get("key_sent", local_id) is False
        assert len(flags._known) <= 10
    finally:
        await store.close()
