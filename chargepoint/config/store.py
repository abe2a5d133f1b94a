"""The `store:` section: the state directory (SQLite store, simulated meters) and how long
closed sessions are kept."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from chargepoint.config.base import ConfigModel

__all__ = ["StoreConfig"]


class StoreConfig(ConfigModel):
    """Where the station keeps its SQLite store and the simulated meters' keys and state."""

    state_dir: Path = Path("/var/lib/chargepoint")
    # Sessions (their signed records) are kept at least this long after they closed; the
    # German calibration law's retention for billing proofs is the common choice of 6 years.
    retention_years: int = Field(default=6, ge=1, le=100)
