"""What the station and its steps (starting, stopping, recovery, sampling) share: the
configuration, store, settings and connectors, the hooks the OCPP adapter sets, the tasks the
station owns, and the small connector actions every step takes (load, idle status, meter
fault)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from chargepoint.config import StationConfig
from chargepoint.core.meters import ConnectorMeter
from chargepoint.core.settings import Settings
from chargepoint.core.status import ConnectorStateMachine, ConnectorStatus, ErrorCode
from chargepoint.core.transaction import SIGNED_PERIOD, Connector, TxPoints, VolatileMeterValues
from chargepoint.store import AsyncStore, utc_now
from meter.errors import MeterError, explain

log = logging.getLogger("chargepoint.station")

S = ConnectorStatus


async def _nothing(_: int) -> None:
    return None


class StationContext:
    """The station's shared state; `Station` is one, and its steps hold a reference to it."""

    def __init__(
        self,
        config: StationConfig,
        store: AsyncStore,
        settings: Settings,
        meters: Mapping[int, ConnectorMeter],
    ) -> None:
        self.config = config
        self.store = store
        self.settings = settings
        self.connectors: dict[int, Connector] = {
            c.id: Connector(c, meters[c.id], ConnectorStateMachine(c.id)) for c in config.connectors
        }
        self.is_online: Callable[[], bool] = lambda: False
        self.outbox_changed: Callable[[], None] = lambda: None
        self.volatile_meter_values: VolatileMeterValues = lambda cid, ctx, samples: None
        # set by the OCPP 2.0.1 adapter from TxCtrlr.TxStartPoint / TxStopPoint
        self.tx_points: Callable[[], TxPoints] = lambda: SIGNED_PERIOD
        self.resetting = False
        # set by the daemon: record a security event (type, techInfo), e.g. SettingSystemTime
        self.security_event: Callable[[str, str | None], object] = lambda kind, info: None
        self.tasks: set[asyncio.Task[Any]] = set()  # session tasks, cancelled on stop
        # a start's transaction message is stored: its reservation is used (set by Station)
        self.reservation_used: Callable[[int], Awaitable[Any]] = _nothing

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed: %r", name, t.exception(), exc_info=t.exception())

        task.add_done_callback(done)
        return task


def idle_status(c: Connector) -> ConnectorStatus:
    if not c.operative:
        return S.UNAVAILABLE
    return S.PREPARING if c.plugged else free_status(c)


def free_status(c: Connector) -> ConnectorStatus:
    """Nobody at the connector: Available, or Reserved while a reservation holds it."""
    return S.RESERVED if c.reserved else S.AVAILABLE


def set_power(c: Connector, on: bool) -> None:
    c.load_released = on
    ev = c.meter.ev if c.meter.ev is not None else c.meter.sim
    if ev is not None:
        ev.set_power(c.config.ev.power_w if on else 0.0)


def note_meter_error(c: Connector, exc: MeterError) -> None:
    """Keep the last meter error of a connector, worded for a person, with its time."""
    c.last_meter_error = f"{utc_now()}: {explain(exc)}"


def meter_fault(c: Connector, exc: MeterError) -> None:
    note_meter_error(c, exc)
    c.meter_fault = f"{type(exc).__name__}: {exc}"
    log.error("connector %d: meter fault: %s", c.id, c.meter_fault)
    set_power(c, False)
    c.sm.go(S.FAULTED, ErrorCode.POWER_METER_FAILURE, type(exc).__name__[:50])
