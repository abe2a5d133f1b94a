"""The authorization part of `chargepoint status`: the local list and the active
reservations, as the operator reads them."""

from __future__ import annotations

from typing import Any


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
