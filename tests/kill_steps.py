"""Which step of a session a power loss landed in, as the CSMS saw it: the kill harness asks
at each kill and counts the kills per step (tests/kill_harness.py).

Per connector the last thing the CSMS heard or did decides the step:

- `start requested`: a remote start the station accepted, nothing since;
- `charging`: the start message (1.6 StartTransaction, 2.0.1 TransactionEvent Started: the
  load is released once the meter signed the Begin, so the CSMS cannot tell a started session
  from a charging one) or a report of Charging;
- `stop requested`: a remote stop the station accepted;
- `stopped`: the end message (1.6 StatusNotification Finishing after StopTransaction, 2.0.1
  TransactionEvent Ended), the EV not yet gone;
- `idle`: the connector reported Available (or nothing happened on it yet).
"""

from __future__ import annotations

from typing import Any, Final

from chargepoint.testcsms import Received, TestCsms

SESSION_STEPS: Final = (
    "start requested",
    "charging",
    "stop requested",
    "stopped",
    "idle",
)


class SessionSteps:
    """Listens to the CSMS and keeps each connector's step."""

    def __init__(self, csms: TestCsms, version: str, connectors: tuple[int, ...]) -> None:
        self.version = version
        self.step: dict[int, str] = dict.fromkeys(connectors, "idle")
        self._tx_connector: dict[str, int] = {}  # 2.0.1 transactionId -> its EVSE
        csms.add_listener(self._on_received)

    def command(self, connector: int, step: str) -> None:
        """The CSMS asked for a start or a stop on `connector` and the station accepted."""
        self.step[connector] = step

    def connector_of(self, session_payloads: list[dict[str, Any]]) -> int | None:
        for p in session_payloads:
            if "connectorId" in p:
                return int(p["connectorId"])
            evse = p.get("evse")
            if isinstance(evse, dict) and "id" in evse:
                return int(evse["id"])
            tx = p.get("transactionInfo", {}).get("transactionId")
            if tx in self._tx_connector:
                return self._tx_connector[tx]
        return None

    def _set(self, connector: Any, step: str) -> None:
        if isinstance(connector, int) and connector in self.step:
            self.step[connector] = step

    def _on_received(self, rec: Received) -> None:
        p = rec.payload
        if rec.action == "StatusNotification":
            if self.version == "1.6":
                status = {"Charging": "charging", "Finishing": "stopped", "Available": "idle"}
                if p.get("status") in status:
                    self._set(p.get("connectorId"), status[p["status"]])
            elif p.get("connectorStatus") == "Available":
                self._set(p.get("evseId"), "idle")
        elif rec.action == "StartTransaction":
            self._set(p.get("connectorId"), "charging")
        elif rec.action == "TransactionEvent":
            info = p.get("transactionInfo", {})
            tx = info.get("transactionId")
            evse = p.get("evse", {}).get("id")
            if isinstance(evse, int) and isinstance(tx, str):
                self._tx_connector[tx] = evse
            connector = self._tx_connector.get(tx) if isinstance(tx, str) else None
            if p.get("eventType") == "Started":
                self._set(connector, "charging")
            elif p.get("eventType") == "Ended":
                self._set(connector, "stopped")
            elif info.get("chargingState") == "Charging":
                self._set(connector, "charging")

    def labels(self) -> list[str]:
        return sorted({f"session: {step}" for step in self.step.values()})
