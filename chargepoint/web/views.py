"""What the pages show, as plain text per element: the station, its connectors (live), the
transaction log rows and the key history. The live part is a flat map `element -> text`
that the page's script copies into the elements marked `data-live` (text only, never HTML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chargepoint import __version__
from chargepoint.config import StationConfig
from chargepoint.store import MeterKeyRow, TransactionRow
from chargepoint.web.feed import Snapshot
from chargepoint.web.marks import Mark
from meter.proof.keys import KeyFormatError, load_public_key
from meter.proof.test_signature import is_test_signature_text

# connector status -> the colour class of its badge (the status is always written out too)
STATE_CLASS = {
    "Available": "ok",
    "Preparing": "busy",
    "Charging": "charging",
    "SuspendedEV": "busy",
    "SuspendedEVSE": "busy",
    "Finishing": "busy",
    "Unavailable": "off",
    "Faulted": "fault",
}
SECURITY_PROFILES = {
    0: "0: no authentication",
    1: "1: HTTP Basic authentication",
    2: "2: TLS with HTTP Basic authentication",
    3: "3: TLS with client certificate",
}


def when(stamp: str | None) -> str:
    """`2026-11-21T10:00:00.123Z` -> `2026-11-21 10:00:00 UTC`."""
    if not stamp:
        return ""
    text = stamp.replace("T", " ").removesuffix("Z")
    return f"{text.partition('.')[0]} UTC"


def kwh(wh: int | float | None) -> str:
    return "" if wh is None else f"{wh / 1000:.3f} kWh"


def fingerprint(key_hex: str | None) -> str:
    """The key's SHA-256 fingerprint (of its DER form), as the CLI prints it."""
    if not key_hex:
        return ""
    try:
        return load_public_key(key_hex).fingerprint
    except (KeyFormatError, ValueError):
        return "(unreadable key)"


def csms_url(cfg: StationConfig) -> str:
    """The CSMS URL with the station id, never with credentials."""
    parts = urlsplit(cfg.csms.url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    path = parts.path.rstrip("/") + "/" + cfg.station.id
    return urlunsplit((parts.scheme, netloc, path, "", ""))


@dataclass(frozen=True)
class StationView:
    id: str
    vendor_model: str
    serial: str
    firmware: str
    csms_url: str
    ocpp_version: str
    security_profile: str


def station_view(cfg: StationConfig) -> StationView:
    return StationView(
        id=cfg.station.id,
        vendor_model=f"{cfg.station.vendor} {cfg.station.model}",
        serial=cfg.station.serial or "",
        firmware=f"chargepoint {__version__}",
        csms_url=csms_url(cfg),
        ocpp_version=cfg.csms.ocpp_version,
        security_profile=SECURITY_PROFILES.get(
            cfg.csms.security_profile, str(cfg.csms.security_profile)
        ),
    )


@dataclass(frozen=True)
class ConnectorKey:
    meter_serial: str
    fingerprint: str
    pinned_at: str


def current_keys(keys: list[MeterKeyRow]) -> dict[int, ConnectorKey]:
    """The key pinned now for each connector."""
    out = {}
    for k in keys:
        if k.replaced_at is None:
            out[k.connector_id] = ConnectorKey(
                k.meter_serial, fingerprint(k.public_key_hex), when(k.pinned_at)
            )
    return out


def _session_text(tx: dict[str, Any] | None) -> str:
    if not tx:
        return "none"
    card = tx.get("id_tag") or "no card yet"
    since = when(tx.get("started_at") or tx.get("opened_at"))
    state = "charging" if tx.get("charging") else "not charging"
    return f"#{tx.get('local_id')} ({card}), {state}, since {since}"


def live_view(snapshot: Snapshot, connector_ids: list[int]) -> dict[str, str]:
    """Element -> text for the status page; `@state` entries name a badge's colour class."""
    status = snapshot.status
    view: dict[str, str] = {}
    if status is None:
        view["daemon"] = f"not answering: {snapshot.error}"
        view["daemon@state"] = "fault"
        view["csms"] = "unknown"
        view["csms@state"] = "off"
        view["csms.since"] = ""
        view["outbox"] = "unknown"
        for cid in connector_ids:
            view[f"c{cid}.status"] = "unknown"
            view[f"c{cid}.status@state"] = "off"
        return view
    view["daemon"] = "answering"
    view["daemon@state"] = "ok"
    online = bool(status.get("online"))
    view["csms"] = "connected" if online else "not connected"
    view["csms@state"] = "ok" if online else "fault"
    since = snapshot.online_since
    view["csms.since"] = f"since {when(since)}" if since else "(seen since this page started)"
    failed = int(status.get("failed_messages") or 0)
    outbox = f"{status.get('outbox', 0)} waiting"
    view["outbox"] = outbox + (f", {failed} refused by the CSMS" if failed else "")
    by_id = {int(c["id"]): c for c in status.get("connectors", [])}
    for cid in connector_ids:
        c = by_id.get(cid)
        if c is None:
            view[f"c{cid}.status"] = "not reported"
            view[f"c{cid}.status@state"] = "off"
            continue
        state = str(c.get("status", ""))
        view[f"c{cid}.status"] = state
        view[f"c{cid}.status@state"] = STATE_CLASS.get(state, "off")
        problem = c.get("info") or ""
        code = c.get("error_code") or "NoError"
        view[f"c{cid}.error"] = "" if code == "NoError" and not problem else f"{code} {problem}"
        view[f"c{cid}.plugged"] = "plugged in" if c.get("plugged") else "not plugged in"
        view[f"c{cid}.operative"] = "in service" if c.get("operative") else "out of service"
        view[f"c{cid}.load"] = "released" if c.get("load_released") else "off"
        tx = c.get("transaction")
        view[f"c{cid}.session"] = _session_text(tx)
        view[f"c{cid}.energy"] = kwh(tx.get("energy_wh")) if tx else ""
        view[f"c{cid}.power"] = (
            f"{float(c['power_w']) / 1000:.2f} kW" if c.get("power_w") is not None else "—"
        )
        view[f"c{cid}.limit"] = _limit_text(c.get("charging_limit"))
        view[f"c{cid}.meter_error"] = str(c.get("last_meter_error") or c.get("meter_fault") or "")
    return view


@dataclass(frozen=True)
class LogRow:
    row: TransactionRow
    mark: Mark

    @property
    def started(self) -> str:
        return when(self.row.started_at or self.row.opened_at)

    @property
    def stopped(self) -> str:
        return when(self.row.stopped_at or self.row.closed_at)

    @property
    def energy(self) -> str:
        return kwh(self.mark.energy_wh)

    @property
    def chargy(self) -> bool:
        """Chargy's JSON needs the meter's snapshots (kept with every BSM-WS36A session)."""
        row = self.row
        if row.open or not row.end_ocmf or is_test_signature_text(row.begin_ocmf or ""):
            return False
        return all('"signature"' in (fields or "") for fields in (row.begin_fields, row.end_fields))


@dataclass(frozen=True)
class KeyView:
    connector_id: int
    meter_serial: str
    public_key_hex: str
    fingerprint: str
    pinned_at: str
    how: str
    replaced_at: str


def key_views(keys: list[MeterKeyRow]) -> list[KeyView]:
    return [
        KeyView(
            k.connector_id,
            k.meter_serial,
            k.public_key_hex,
            fingerprint(k.public_key_hex),
            when(k.pinned_at),
            k.how,
            when(k.replaced_at) if k.replaced_at else "",
        )
        for k in keys
    ]


def _limit_text(limit: Any) -> str:
    """The connector's current limit and what sets it ("16 A (TxProfile)"), or a dash."""
    if not isinstance(limit, dict) or limit.get("limit_a") is None:
        return "—"
    source = f" ({limit['source']})" if limit.get("source") else ""
    return f"{float(limit['limit_a']):.0f} A{source}"
