"""What the transaction core keeps about connectors and their transactions: the open
transaction with its signed Begin, the connector's state, where transactions start and stop,
why they stop, and the conversions between stored rows, meter snapshots and events."""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from chargepoint.config import ConnectorConfig
from chargepoint.core import events
from chargepoint.core.meters import ConnectorMeter
from chargepoint.core.status import ConnectorStateMachine, ConnectorStatus
from chargepoint.store import TransactionRow
from meter.interface import EnergyReading
from meter.proof.keys import PublicKeyInfo
from meter.snapshot import SignedSnapshot


class StopReason(enum.StrEnum):
    LOCAL = "Local"
    REMOTE = "Remote"
    EV_DISCONNECTED = "EVDisconnected"
    DEAUTHORIZED = "DeAuthorized"
    SOFT_RESET = "SoftReset"
    HARD_RESET = "HardReset"
    POWER_LOSS = "PowerLoss"
    REBOOT = "Reboot"
    UNLOCK_COMMAND = "UnlockCommand"
    EMERGENCY_STOP = "EmergencyStop"
    OTHER = "Other"
    # only where a transaction can outlive its charging period or precede it (OCPP 2.0.1)
    TIMEOUT = "Timeout"  # no EV within the connection timeout
    STOPPED_BY_EV = "StoppedByEV"  # energy transfer stopped, TxStopPoint EnergyTransfer


# Stops that take authorization away (TxStopPoint Authorized no longer valid).
DEAUTHORIZING = frozenset({StopReason.LOCAL, StopReason.REMOTE, StopReason.DEAUTHORIZED})


@dataclass
class ActiveTransaction:
    """An open transaction. `begin` is None until the meter signed the turn-on (a transaction
    opened at EVConnected/Authorized); `ended_reason` is set once charging ended with its
    signed End while the transaction waits for its stop point (TxStopPoint EVConnected)."""

    local_id: int
    id_tag: str
    opened_at: str
    begin: events.SignedValue | None = None
    begin_rcnt: int = 0
    begin_ma1: str = ""
    parent_id_tag: str | None = None
    # a signed end not yet in the store (a store write failed): never take another one
    end: SignedSnapshot | None = None
    ended_reason: StopReason | None = None
    energy_flowed: bool = False

    @property
    def charging(self) -> bool:
        return self.begin is not None and self.ended_reason is None

    @property
    def started_at(self) -> str | None:
        return self.begin["timestamp"] if self.begin is not None else None

    @property
    def meter_start_wh(self) -> int | None:
        return self.begin["energy_wh"] if self.begin is not None else None


@dataclass
class Connector:
    config: ConnectorConfig
    meter: ConnectorMeter
    sm: ConnectorStateMachine
    plugged: bool = False
    load_released: bool = False
    operative: bool = True
    inoperative_scheduled: bool = False
    hardware_fault: str | None = None
    meter_fault: str | None = None
    last_meter_error: str | None = None  # "<UTC time>: <what happened>", for `status`
    pending_id_tag: str | None = None
    reserved: bool = False  # held by a reservation: shows Reserved while idle
    tx: ActiveTransaction | None = None
    # a stop asked for while the start is still waiting (for the EV or the meter)
    abort_reason: StopReason | None = None
    abort_id_tag: str | None = None
    abort_event: asyncio.Event = field(default_factory=asyncio.Event)
    last_energy_wh: int | None = None
    last_power_w: float | None = None  # the meter's active power at the last sample
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    plugged_event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> int:
        return self.config.id

    @property
    def status(self) -> ConnectorStatus:
        return self.sm.status


VolatileMeterValues = Callable[[int, str, list[events.Sample]], None]


@dataclass(frozen=True)
class StartRequest:
    """Who a start is for and how it was asked for."""

    id_tag: str
    trigger: str  # "Authorized" at the station, "RemoteStart" from the CSMS
    parent_id_tag: str | None
    remote_start_id: int | None
    token_type: str | None = None  # the id token's type when the CSMS named one (2.0.1)
    reservation_id: int | None = None  # the reservation this start uses


@dataclass(frozen=True)
class TxPoints:
    """Where transactions start and stop (OCPP 2.0.1 TxStartPoint / TxStopPoint names)."""

    start: frozenset[str]
    stop: frozenset[str]


# OCPP 1.6: a transaction is exactly its signed charging period.
SIGNED_PERIOD = TxPoints(
    frozenset({events.POWER_PATH_CLOSED}), frozenset({events.POWER_PATH_CLOSED})
)


def begin_from_row(row: TransactionRow) -> events.SignedValue | None:
    if (
        row.begin_ocmf is None
        or row.started_at is None
        or row.meter_start_wh is None
        or row.public_key_hex is None
    ):
        return None
    return {
        "ocmf": row.begin_ocmf,
        "timestamp": row.started_at,
        "energy_wh": row.meter_start_wh,
        "public_key_hex": row.public_key_hex,
    }


def active_from_row(row: TransactionRow) -> ActiveTransaction:
    tx = ActiveTransaction(row.local_id, row.id_tag, row.opened_at)
    begin = begin_from_row(row)
    if begin is not None and row.begin_fields is not None:
        tx.begin = begin
        tx.begin_rcnt = int(json.loads(row.begin_fields)["rcnt"])
        tx.begin_ma1 = row.meter_serial or ""
    if row.stopped_at is not None and row.stop_reason is not None:
        tx.ended_reason = StopReason(row.stop_reason)
    return tx


def late_start_point(points: frozenset[str]) -> str:
    """The start point a transaction opened at by the meter's signed Begin names: the
    signed data, the closed power path and energy transfer all follow from it at once (the
    load is released only once the Begin is signed and stored)."""
    for point in (events.DATA_SIGNED, events.POWER_PATH_CLOSED, events.ENERGY_TRANSFER):
        if point in points:
            return point
    return events.POWER_PATH_CLOSED


def samples_of(reading: EnergyReading, wanted: list[str]) -> list[events.Sample]:
    """The measurands asked for, from one meter reading."""
    samples: list[events.Sample] = []
    if reading.total_wh is not None and "Energy.Active.Import.Register" in wanted:
        samples.append(energy_sample(int(reading.total_wh)))
    if reading.power_w is not None and "Power.Active.Import" in wanted:
        samples.append(
            {"measurand": "Power.Active.Import", "value": str(int(reading.power_w)), "unit": "W"}
        )
    return samples


def energy_sample(wh: int) -> events.Sample:
    return {"measurand": "Energy.Active.Import.Register", "value": str(wh), "unit": "Wh"}


def signed_value(
    snap: SignedSnapshot, signed_at: str, key: PublicKeyInfo | None
) -> events.SignedValue:
    total = snap.fields.total_energy_wh
    return {
        "ocmf": snap.ocmf,
        "timestamp": signed_at,
        "energy_wh": int(total) if total is not None else 0,
        "public_key_hex": key.der_hex if key is not None else "",
    }


def fields_json(snap: SignedSnapshot) -> str:
    data = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in asdict(snap.fields).items()}
    data["signature"] = snap.signature.hex()
    data["read_at"] = datetime.now(UTC).isoformat()
    return json.dumps(data, sort_keys=True)
