"""The values the store writes as text: UTC timestamps and JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from chargepoint.store.errors import StoreError

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def utc_now() -> str:
    """The current time in ISO 8601 UTC with milliseconds: ``2026-11-21T10:00:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_json(what: str, data: Any) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc


def check_json_text(what: str, text: str) -> None:
    try:
        json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{what} is not valid JSON text: {exc}") from exc


def check_timestamp(what: str, value: str) -> None:
    if not _TIMESTAMP.match(value):
        raise StoreError(f"{what} {value!r} is not ISO 8601 UTC ending in Z")
