"""Meter errors, typed by what the caller should do about them.

- `Retry`: the bus or the meter did not answer; the same operation may succeed later.
- `Fault`: the meter cannot be used for billing now (report it, mark the connector faulted).
- `Refused`: the request itself is not allowed (caller's mistake or a protection rule).
"""

from __future__ import annotations

import enum

from meter.snapshot import SnapshotKind, SnapshotStatus


class Action(enum.Enum):
    RETRY = "retry"
    FAULT = "fault"
    REFUSED = "refused"


class MeterError(Exception):
    """Base of every meter error."""

    action: Action = Action.FAULT


class MeterNoReply(MeterError):
    """No reply within the request timeout (bus cut, meter unpowered, wrong unit id)."""

    action = Action.RETRY


class MeterConnectionError(MeterError):
    """The link itself (serial port, TCP gateway) could not be opened or broke."""

    action = Action.RETRY


class ModbusExceptionReply(MeterError):
    """The meter answered with a Modbus exception code."""

    action = Action.FAULT

    def __init__(self, function_code: int, exception_code: int, address: int) -> None:
        self.function_code = function_code
        self.exception_code = exception_code
        self.address = address
        super().__init__(
            f"Modbus exception {exception_code:#04x} for function {function_code} "
            f"at wire address {address}"
        )


class MeterReplyInvalid(MeterError):
    """The meter answered, but the content is not what its register map promises."""

    action = Action.FAULT


class SnapshotFailed(MeterError):
    """The meter reported a failure status for a snapshot; nothing signed was produced."""

    action = Action.FAULT
    status: SnapshotStatus = SnapshotStatus.INVALID

    def __init__(self, kind: SnapshotKind, status: SnapshotStatus, detail: str = "") -> None:
        self.kind = kind
        self.status = status
        text = f"{kind.name.lower().replace('_', '-')} snapshot failed: {status.name.lower()}"
        super().__init__(f"{text} ({detail})" if detail else text)


class SnapshotInvalid(SnapshotFailed):
    pass


class SnapshotGeneralError(SnapshotFailed):
    pass


class SnapshotNoDoeRelease(SnapshotFailed):
    pass


class SnapshotWrongContactorFeedback(SnapshotFailed):
    pass


class SnapshotTimeout(SnapshotFailed):
    """The snapshot stayed in 'updating' longer than the snapshot timeout."""

    action = Action.RETRY


_SNAPSHOT_ERRORS: dict[SnapshotStatus, type[SnapshotFailed]] = {
    SnapshotStatus.INVALID: SnapshotInvalid,
    SnapshotStatus.GENERAL_ERROR: SnapshotGeneralError,
    SnapshotStatus.NO_DOE_RELEASE: SnapshotNoDoeRelease,
    SnapshotStatus.WRONG_CONTACTOR_FEEDBACK: SnapshotWrongContactorFeedback,
}


def snapshot_error(kind: SnapshotKind, status: int) -> SnapshotFailed:
    try:
        st = SnapshotStatus(status)
    except ValueError:
        return SnapshotInvalid(kind, SnapshotStatus.INVALID, f"unknown status {status}")
    return _SNAPSHOT_ERRORS.get(st, SnapshotInvalid)(kind, st)


class MeterEventsSet(MeterError):
    """Evt has flags set: the meter must not be used for billing."""

    action = Action.FAULT

    def __init__(self, events: int) -> None:
        self.events = events
        names = [name for bit, name in EVENT_BITS.items() if events & (1 << bit)]
        listed = ", ".join(names) if names else "unknown flags"
        super().__init__(f"meter reports event flags {events:#010x} ({listed})")


EVENT_BITS = {
    16: "fatal error of the meter module",
    17: "signature module initialisation failed",
    18: "signature module firmware hash check failed",
    19: "signature module in development mode",
}


class PublicKeyMismatch(MeterError):
    """The meter shows a public key other than the pinned one (swapped or tampered meter)."""

    action = Action.FAULT

    def __init__(self, pinned_hex: str, actual_hex: str) -> None:
        self.pinned_hex = pinned_hex
        self.actual_hex = actual_hex
        super().__init__(
            f"meter public key ...{actual_hex[-16:]} differs from the pinned key "
            f"...{pinned_hex[-16:]}"
        )


class ClockSetRefused(MeterError):
    """Setting the clock now would harm the meter or break an open transaction."""

    action = Action.REFUSED


class MeterBusy(MeterError):
    """Another snapshot on this meter is still being taken."""

    action = Action.REFUSED
