"""What the status page shows of a connector's power and charging limit (from `GET /status`)."""

from __future__ import annotations

from chargepoint.web.feed import Snapshot
from chargepoint.web.views import live_view


def snapshot(connector: dict[str, object]) -> Snapshot:
    status = {"station": "CP-1", "online": True, "outbox": 0, "connectors": [connector]}
    return Snapshot(1, status, None, None, "2026-12-04T06:00:00Z")


def test_power_and_limit_with_its_source() -> None:
    view = live_view(
        snapshot(
            {
                "id": 1,
                "status": "Charging",
                "power_w": 7360.0,
                "charging_limit": {"limit_a": 10.7, "limit_w": 7360.0, "source": "TxProfile"},
            }
        ),
        [1],
    )
    assert view["c1.power"] == "7.36 kW"
    assert view["c1.limit"] == "11 A (TxProfile)"


def test_no_reading_and_no_limit_show_a_dash() -> None:
    view = live_view(snapshot({"id": 1, "status": "Available"}), [1])
    assert view["c1.power"] == "—"
    assert view["c1.limit"] == "—"
