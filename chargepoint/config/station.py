"""The `station:` section: the station's OCPP identity and what BootNotification reports."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from chargepoint.config.base import ConfigModel

__all__ = ["StationInfo"]

_STATION_ID = re.compile(r"[A-Za-z0-9*\-_=:+|@.]{1,48}")


class StationInfo(ConfigModel):
    """Who the station is: its OCPP identity and what BootNotification reports."""

    id: str
    vendor: str = Field(default="chargepoint", min_length=1, max_length=20)
    model: str = Field(default="Eichrecht AC", min_length=1, max_length=20)
    serial: str | None = Field(default=None, min_length=1, max_length=25)

    @field_validator("id")
    @classmethod
    def _identity(cls, value: str) -> str:
        if not _STATION_ID.fullmatch(value):
            raise ValueError("must be 1 to 48 characters of A-Z a-z 0-9 * - _ = : + | @ .")
        return value
