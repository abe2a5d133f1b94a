"""Meter errors, typed by what the caller should do about them.

- `Retry`: the bus or the meter did not answer; the same operation may succeed later.
- `Fault`: the meter cannot be used for billing now (report it, mark the connector faulted).
- `Refused`: the request itself is not allowed (caller's mistake or a protection rule).
- `Read back`: a snapshot was (or may have been) triggered but is not in hand: read it back
  with `BsmWs36a.resume_snapshot(kind, after_rcnt)`, never trigger it again (a second
  snapshot between begin and end breaks RCnt +1 of the session).

Every error raised after a snapshot's signature was read carries that signed snapshot in
`snapshot` (its `ocmf` is empty when the OCMF text could not be read).
"""

from __future__ import annotations

import enum

from meter.snapshot import SignedSnapshot, SnapshotKind, SnapshotStatus


class Action(enum.Enum):
    RETRY = "retry"
    FAULT = "fault"
    REFUSED = "refused"
    READ_BACK = "read-back"  # read the snapshot back, do not trigger it again


class MeterError(Exception):
    """Base of every meter error."""

    action: Action = Action.FAULT
    snapshot: SignedSnapshot | None = None  # the signed snapshot, when one was read


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


class SnapshotIncomplete(MeterError):
    """A snapshot was triggered (or the trigger may have reached the meter), but it is not in
    hand: the meter kept signing, or reading it back failed.

    Do not trigger again: call `resume_snapshot(kind, after_rcnt)`, which returns the
    snapshot once the meter has it, or None when the meter shows no snapshot of this kind
    newer than `after_rcnt` (then nothing was signed and a new trigger is safe).
    """

    action = Action.READ_BACK

    def __init__(
        self,
        kind: SnapshotKind,
        after_rcnt: int,
        detail: str = "",
        snapshot: SignedSnapshot | None = None,
    ) -> None:
        self.kind = kind
        self.after_rcnt = after_rcnt
        self.snapshot = snapshot
        text = (
            f"{kind.name.lower().replace('_', '-')} snapshot after T{after_rcnt} not in hand; "
            "read it back, do not trigger again"
        )
        super().__init__(f"{text} ({detail})" if detail else text)


class SnapshotTimeout(SnapshotIncomplete):
    """The snapshot stayed in 'updating' longer than the snapshot timeout."""


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
    """Evt has flags set: the meter must not be used for billing.

    Raised by a snapshot read, `snapshot` holds the signed snapshot that carries the flags.
    """

    action = Action.FAULT

    def __init__(self, events: int, snapshot: SignedSnapshot | None = None) -> None:
        self.events = events
        self.snapshot = snapshot
        names = [name for bit, name in EVENT_BITS.items() if events & (1 << bit)]
        listed = ", ".join(names) if names else "unknown flags"
        super().__init__(f"meter reports event flags {events:#010x} ({listed})")


EVENT_BITS = {
    16: "fatal error of the meter module",
    17: "signature module initialisation failed",
    18: "signature module firmware hash check failed",
    19: "signature module in development mode",
}


class MeterFaultCode(MeterError):
    """The meter shows an F.F error code (ErrM) other than 00000000: not fit for billing."""

    action = Action.FAULT

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"meter reports error code F.F {code}")


class SignatureInvalid(MeterError):
    """A snapshot read from the meter does not verify against the pinned key."""

    action = Action.FAULT

    def __init__(self, message: str, snapshot: SignedSnapshot | None = None) -> None:
        self.snapshot = snapshot
        super().__init__(message)


class MetadataRefused(MeterError, ValueError):
    """Metadata the meter cannot take, or whose OCMF record could outgrow the OCMF model."""

    action = Action.REFUSED


class MeterSerialChanged(MeterError):
    """The meter answers with another serial (MA1) than the one its key was pinned with."""

    action = Action.FAULT

    def __init__(self, pinned: str, actual: str) -> None:
        self.pinned = pinned
        self.actual = actual
        super().__init__(f"meter serial {actual!r} differs from the pinned meter {pinned!r}")


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
    """The meter is still taking a snapshot of this kind: read it once it is done."""

    action = Action.RETRY


_HINTS: dict[type[MeterError], str] = {
    MeterNoReply: "check the wiring, the unit id and the line settings (default 19200 8E1)",
    ModbusExceptionReply: "the meter refused the request: a BSM-WS36A at this unit id?",
    MeterEventsSet: "the meter must not be used for billing until its events are cleared",
    MeterFaultCode: "the meter must not be used for billing until its error is cleared",
    PublicKeyMismatch: "swapped or tampered? compare its label, see `chargepoint meter-keys`",
    SignatureInvalid: "the meter's signature does not verify with its pinned key",
}


def explain(exc: MeterError) -> str:
    """One line for a person: what happened and, where it helps, what to check."""
    text = str(exc) or type(exc).__name__
    hint = next((h for cls, h in _HINTS.items() if isinstance(exc, cls)), None)
    return f"{text} ({hint})" if hint else text
