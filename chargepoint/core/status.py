"""Connector states as an explicit state machine (OCPP 1.6 ChargePointStatus names)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("chargepoint.connector")


class ConnectorStatus(enum.StrEnum):
    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class ErrorCode(enum.StrEnum):
    """OCPP 1.6 ChargePointErrorCode values the station reports."""

    NO_ERROR = "NoError"
    OTHER_ERROR = "OtherError"
    POWER_METER_FAILURE = "PowerMeterFailure"
    INTERNAL_ERROR = "InternalError"
    CONNECTOR_LOCK_FAILURE = "ConnectorLockFailure"
    EV_COMMUNICATION_ERROR = "EVCommunicationError"


S = ConnectorStatus
ALLOWED: dict[ConnectorStatus, frozenset[ConnectorStatus]] = {
    S.AVAILABLE: frozenset({S.PREPARING, S.CHARGING, S.RESERVED, S.UNAVAILABLE, S.FAULTED}),
    S.PREPARING: frozenset(
        {
            S.AVAILABLE,
            S.RESERVED,
            S.CHARGING,
            S.FINISHING,
            S.UNAVAILABLE,
            S.FAULTED,
            S.SUSPENDED_EV,
            S.SUSPENDED_EVSE,
        }
    ),
    S.CHARGING: frozenset(
        {S.AVAILABLE, S.SUSPENDED_EV, S.SUSPENDED_EVSE, S.FINISHING, S.UNAVAILABLE, S.FAULTED}
    ),
    S.SUSPENDED_EV: frozenset(
        {S.AVAILABLE, S.CHARGING, S.SUSPENDED_EVSE, S.FINISHING, S.UNAVAILABLE, S.FAULTED}
    ),
    S.SUSPENDED_EVSE: frozenset(
        {S.AVAILABLE, S.CHARGING, S.SUSPENDED_EV, S.FINISHING, S.UNAVAILABLE, S.FAULTED}
    ),
    S.FINISHING: frozenset({S.AVAILABLE, S.PREPARING, S.RESERVED, S.UNAVAILABLE, S.FAULTED}),
    # a reservation ends (Available), its card starts (Preparing), the connector fails
    S.RESERVED: frozenset({S.AVAILABLE, S.PREPARING, S.CHARGING, S.UNAVAILABLE, S.FAULTED}),
    S.UNAVAILABLE: frozenset({S.AVAILABLE, S.PREPARING, S.CHARGING, S.RESERVED, S.FAULTED}),
    S.FAULTED: frozenset({S.AVAILABLE, S.PREPARING, S.RESERVED, S.UNAVAILABLE, S.FINISHING}),
}


class InvalidTransition(RuntimeError):
    pass


@dataclass(frozen=True)
class StatusReport:
    connector_id: int
    status: ConnectorStatus
    error_code: ErrorCode
    info: str


Listener = Callable[[StatusReport], None]


class ConnectorStateMachine:
    """The status of one connector; every change is checked and reported to listeners."""

    def __init__(self, connector_id: int, initial: ConnectorStatus = S.AVAILABLE) -> None:
        self.connector_id = connector_id
        self.status = initial
        self.error_code = ErrorCode.NO_ERROR
        self.info = ""
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def report(self) -> StatusReport:
        return StatusReport(self.connector_id, self.status, self.error_code, self.info)

    def go(
        self, to: ConnectorStatus, error_code: ErrorCode = ErrorCode.NO_ERROR, info: str = ""
    ) -> None:
        """Move to `to`; the same status with another error/info is reported again."""
        if to == self.status and error_code == self.error_code and info == self.info:
            return
        if to != self.status and to not in ALLOWED[self.status]:
            raise InvalidTransition(f"connector {self.connector_id}: {self.status} -> {to}")
        log.info(
            "connector %d: %s -> %s%s",
            self.connector_id,
            self.status,
            to,
            f" ({error_code}: {info})" if error_code != ErrorCode.NO_ERROR or info else "",
        )
        self.status, self.error_code, self.info = to, error_code, info
        for listener in list(self._listeners):
            listener(self.report)
