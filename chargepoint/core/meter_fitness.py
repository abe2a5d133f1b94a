"""Whether a connector's meter may sign billable values: the pinned public key (pinned at
first contact when none is configured, kept in the key history with the meter's serial), no
meter events, and the same meter serial the key was pinned for."""

from __future__ import annotations

import logging

from chargepoint.core.context import StationContext
from chargepoint.core.transaction import Connector
from meter.errors import MeterSerialChanged
from meter.proof.keys import PublicKeyInfo

log = logging.getLogger("chargepoint.station")


class MeterFitness:
    """The pinned keys of the station's meters and the check before every signed Begin."""

    def __init__(self, ctx: StationContext) -> None:
        self.ctx = ctx
        self._key_recorded: set[int] = set()
        self._pinned_serial: dict[int, str] = {}  # the serial each pinned key belongs to

    async def pin_key(self, c: Connector) -> None:
        """No key configured nor pinned yet: pin the one the meter shows (commissioning)."""
        driver = c.meter.driver
        if driver.pinned_key is not None:
            if c.id not in self._key_recorded:  # the key history knows the configured key
                await self._record_key(c, driver.pinned_key.der_hex, "configured")
            return
        key = await driver.public_key()
        driver.pinned_key = key
        await self.ctx.store.set_setting(f"meter.{c.id}.public_key", key.der_hex)
        await self._record_key(c, key.der_hex, "first contact")
        log.warning(
            "connector %d: pinned the meter's public key ...%s at first contact; compare it "
            "with the key on the meter's label",
            c.id,
            key.der_hex[-16:],
        )

    async def _record_key(self, c: Connector, key_hex: str, how: str) -> None:
        identity = c.meter.driver.cached_identity
        serial = identity.meter_address if identity is not None else ""
        row = await self.ctx.store.pin_meter_key(c.id, serial, key_hex, how)
        self._pinned_serial[c.id] = row.meter_serial
        self._key_recorded.add(c.id)

    async def meter_ready(self, c: Connector) -> PublicKeyInfo:
        """Fail with a MeterError unless this meter may sign billable values now."""
        await self.pin_key(c)
        key = await c.meter.driver.check_ready()
        identity = await c.meter.driver.ensure_identity()
        pinned = self._pinned_serial.get(c.id, "")
        if pinned and identity.meter_address != pinned:
            raise MeterSerialChanged(pinned, identity.meter_address)
        return key
