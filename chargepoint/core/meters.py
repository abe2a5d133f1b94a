"""A connector's meter as the transaction core sees it: a `SigningMeter`, the key configured
for it, and, on the simulator, the simulated EV whose power the meter measures.

The core knows no meter model: `chargepoint.service.meters` builds the drivers from the
config (the BSM-WS36A, the station's test signer, the embedded simulator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from meter.interface import SigningMeter
from meter.proof.keys import PublicKeyInfo


class SimulatedEv(Protocol):
    """The simulated load on a connector: the power it draws, which its meter measures."""

    def set_power(self, watts: float) -> None: ...


@dataclass
class ConnectorMeter:
    """The signing meter of one connector."""

    connector_id: int
    driver: SigningMeter
    configured_key: PublicKeyInfo | None
    sim: SimulatedEv | None = None
    # the simulated EV as the core switches it: `sim` limited by smart charging (set by
    # chargepoint.core.charging, which wraps `sim`; `sim` stays the simulator itself)
    ev: SimulatedEv | None = None

    @property
    def unit(self) -> int:
        return self.driver.unit
