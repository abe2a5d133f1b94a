"""The authorization part of `chargepoint status`: the local list and the active
reservations, as the operator reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chargepoint.config import StationConfig
from chargepoint.core.auth import local_list_enabled
from chargepoint.core.authorization.reservations import active_at
from chargepoint.core.settings import Settings, station_specs
from chargepoint.service.daemon import SETTING_PREFIX
from chargepoint.store import Store


def stored_authorization(store: Store, cfg: StationConfig) -> dict[str, Any]:
    """The `local_list` and `reservations` of the daemon's status, read from the store as
    the daemon reads them when it starts (for `chargepoint status` while it is not running;
    nothing is written)."""
    stored = {k[len(SETTING_PREFIX) :]: v for k, v in store.settings(SETTING_PREFIX).items()}
    settings = Settings(station_specs(cfg.ocpp, len(cfg.connectors)), stored, _read_only)
    version, rows = store.local_list_load()
    reservations = active_at(store.reservations_active(), datetime.now(UTC))
    return {
        "local_list": {
            "enabled": local_list_enabled(settings),
            "version": version,
            "entries": len({row.key for row in rows}),
        },
        "reservations": [r.describe() for r in reservations],
    }


async def _read_only(key: str, value: str) -> None:
    raise RuntimeError(f"status reads the settings only: {key} = {value} not kept")


def authorization_lines(status: dict[str, Any]) -> list[str]:
    """Lines for the local list (version and size) and each active reservation."""
    lines: list[str] = []
    local_list = status.get("local_list")
    if isinstance(local_list, dict):
        if local_list.get("enabled"):
            lines.append(
                f"  local list: version {local_list.get('version')}, "
                f"{local_list.get('entries')} entries"
            )
        else:
            lines.append("  local list: disabled (LocalAuthListEnabled false)")
    reservations = status.get("reservations")
    if isinstance(reservations, list):
        if not reservations:
            lines.append("  reservations: none")
        for r in reservations:
            where = f"connector {r['connector']}" if r.get("connector") else "any connector"
            group = f" (group {r['parent_id_tag']})" if r.get("parent_id_tag") else ""
            lines.append(
                f"  reservation {r['id']}: {where} for {r['id_tag']}{group} until {r['until']}"
            )
    return lines
