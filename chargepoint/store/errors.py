"""The one error of the store: it cannot be opened, or a write was refused."""

from __future__ import annotations

__all__ = ["StoreDamaged", "StoreError"]


class StoreError(Exception):
    """The store cannot be opened, or a write was refused; the message is one line."""


class StoreDamaged(StoreError):
    """The store file is corrupt: nothing is started on it; a person runs `store recover`."""
