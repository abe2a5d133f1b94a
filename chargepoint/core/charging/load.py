"""The simulated EV as smart charging sees it (`ConnectorMeter.ev`, around the simulator):
switched on and off by the transaction core (`set_power`, the EV's own power), limited by its
connector's limit (`set_limit`), and following a new limit within a few seconds like a real EV
follows the pilot signal.

Switching is immediate: the limit is set before the power is released (the pilot signal
before the contactor, OCPP 1.6 figure 8) and the contactor opens at once. A limit that changes
while the EV draws is followed with a linear ramp over `ramp_s`, in steps of `STEP_S`; the
meter simulator measures each step, so the metered energy and power follow it.
"""

from __future__ import annotations

import asyncio
import math

from chargepoint.core.meters import SimulatedEv
from chargepoint.core.tasks import cancel_and_wait

STEP_S = 0.25


class FollowingEv:
    """Wraps the simulator's EV; is itself a `SimulatedEv` for the transaction core."""

    def __init__(self, inner: SimulatedEv, ramp_s: float) -> None:
        self.inner = inner
        self.ramp_s = ramp_s
        self.wanted = 0.0  # what the EV would draw (0: switched off)
        self.limit: float | None = None  # W; None: nothing limits it
        self.drawn = 0.0  # what it draws now (the last value given to the simulator)
        self._ramp: asyncio.Task[None] | None = None

    @property
    def target(self) -> float:
        return self.wanted if self.limit is None else max(min(self.wanted, self.limit), 0.0)

    def set_power(self, watts: float) -> None:
        """Switch on (the EV's power) or off (0): at once."""
        self.wanted = watts
        self._stop_ramp()
        self._draw(self.target)

    def set_limit(self, watts: float | None) -> None:
        """A new limit: followed with a ramp while the EV draws, at once otherwise."""
        self.limit = watts
        target = self.target
        if target == self.drawn:
            self._stop_ramp()
            return
        if self.wanted <= 0 or self.ramp_s <= 0:
            self._stop_ramp()
            self._draw(target)
            return
        self._stop_ramp()
        steps = max(1, math.ceil(self.ramp_s / STEP_S))
        start = self.drawn
        self._draw(start + (target - start) / steps)  # the first step at once
        if steps > 1:
            self._ramp = asyncio.get_running_loop().create_task(
                self._follow(start, target, steps), name="simulated EV ramp"
            )

    async def _follow(self, start: float, target: float, steps: int) -> None:
        for step in range(2, steps + 1):
            await asyncio.sleep(STEP_S)
            self._draw(start + (target - start) * step / steps)

    def _draw(self, watts: float) -> None:
        self.drawn = watts
        self.inner.set_power(watts)

    def _stop_ramp(self) -> None:
        if self._ramp is not None and not self._ramp.done():
            self._ramp.cancel()
        self._ramp = None

    async def close(self) -> None:
        if self._ramp is not None:
            await cancel_and_wait([self._ramp])
            self._ramp = None
