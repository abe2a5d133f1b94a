"""A session whose id token the CSMS rejected after it started (an offline start of an unknown
or stale token): with StopTransactionOnInvalidId (2.0.1 TxCtrlr.StopTxOnInvalidId) it ends
(DeAuthorized); without, the energy stops at once (SuspendedEVSE) - or, under 2.0.1 with
TxCtrlr.MaxEnergyOnInvalidId, once the transaction delivered that many Wh."""

from __future__ import annotations

import asyncio
import logging

from chargepoint.core.context import set_power
from chargepoint.core.status import ConnectorStatus
from chargepoint.core.transaction import Connector
from meter.errors import MeterError

log = logging.getLogger("chargepoint.auth.invalid_id")

S = ConnectorStatus
POLL_S = 1.0


def suspend(c: Connector, why: str) -> None:
    """Cut the energy, keep the transaction (SuspendedEVSE)."""
    log.warning("connector %d: energy stopped: %s", c.id, why)
    set_power(c, False)
    if c.status is not S.SUSPENDED_EVSE:
        c.sm.go(S.SUSPENDED_EVSE)


async def suspend_after(c: Connector, local_id: int, max_wh: int, poll_s: float = POLL_S) -> None:
    """Let the session charge on until it delivered `max_wh` (MaxEnergyOnInvalidId), then
    suspend it; ends by itself when the session does."""
    log.warning(
        "connector %d: id token of transaction %d rejected; charging on up to %d Wh "
        "(MaxEnergyOnInvalidId)",
        c.id,
        local_id,
        max_wh,
    )
    while True:
        tx = c.tx
        if tx is None or tx.local_id != local_id or not tx.charging:
            return
        start_wh = tx.meter_start_wh
        try:
            reading = await c.meter.driver.energy()
        except MeterError as exc:
            log.warning("connector %d: no reading for MaxEnergyOnInvalidId: %s", c.id, exc)
            reading = None
        if reading is not None and reading.total_wh is not None and start_wh is not None:
            delivered = int(reading.total_wh) - start_wh
            if delivered >= max_wh:
                suspend(c, f"{delivered} Wh delivered, MaxEnergyOnInvalidId is {max_wh} Wh")
                return
        await asyncio.sleep(poll_s)
