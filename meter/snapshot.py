"""Typed values of a BSM-WS36A signed snapshot (SunSpec model 64901) and meter identity.

Every field keeps the *raw* register value, exactly as the meter signs it ("not available"
sentinels included); the properties give the scaled, human value or None.
Strings are kept as the bytes the meter holds (trailing NULs stripped), because the
signature covers those bytes, not a decoded text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

UINT32_NA = 0xFFFFFFFF
INT16_NA = -0x8000
UINT16_NA = 0xFFFF
ACC32_NA = 0
BITFIELD32_NA_BIT = 0x80000000


class SnapshotKind(enum.IntEnum):
    """The five snapshot models of the meter, by their Typ register value."""

    CURRENT = 0
    TURN_ON = 1
    TURN_OFF = 2
    START = 3
    END = 4

    @property
    def ocmf_tx(self) -> str:
        """The OCMF reading's TX letter for this kind (C current, B begin, E end)."""
        return {0: "C", 1: "B", 2: "E", 3: "B", 4: "E"}[int(self)]

    @classmethod
    def from_name(cls, name: str) -> SnapshotKind:
        """Accept `turn-on`, `turn_on`, `TURN_ON`, ..."""
        key = name.strip().replace("-", "_").upper()
        try:
            return cls[key]
        except KeyError:
            choices = ", ".join(k.name.lower().replace("_", "-") for k in cls)
            raise ValueError(f"unknown snapshot kind {name!r} (one of {choices})") from None


class SnapshotStatus(enum.IntEnum):
    """The St register of a snapshot model."""

    VALID = 0
    INVALID = 1
    UPDATING = 2
    GENERAL_ERROR = 3
    NO_DOE_RELEASE = 4
    WRONG_CONTACTOR_FEEDBACK = 5


def scaled(raw: int, sf: int) -> Decimal | None:
    """raw * 10**sf without exponent notation; None for the sunssf sentinel."""
    if sf == INT16_NA:
        return None
    return Decimal(raw * 10**sf) if sf >= 0 else Decimal(raw).scaleb(sf)


@dataclass(frozen=True)
class SnapshotFields:
    """The signed fields of a snapshot (current firmware, 17-field representation).

    `typ` .. `evt` are raw register values; `wh_sf`/`w_sf` are the scale factors the
    meter used (also hashed). `tzo` and `w` are signed int16 values.
    """

    typ: int
    rcr: int
    tot_wh_imp: int
    wh_sf: int
    w: int
    w_sf: int
    ma1: bytes
    rcnt: int
    os: int
    epoch: int
    tzo: int
    epoch_set_cnt: int
    epoch_set_os: int
    di: int
    do: int
    meta1: bytes
    meta2: bytes
    meta3: bytes
    evt: int

    @property
    def kind(self) -> SnapshotKind:
        return SnapshotKind(self.typ)

    @property
    def energy_since_turn_on_wh(self) -> Decimal | None:
        """RCR scaled to Wh (acc32: 0 is a valid reading after turn-on)."""
        return scaled(self.rcr, self.wh_sf)

    @property
    def total_energy_wh(self) -> Decimal | None:
        """TotWhImp scaled to Wh; None when the register holds the acc32 sentinel 0."""
        if self.tot_wh_imp == ACC32_NA:
            return None
        return scaled(self.tot_wh_imp, self.wh_sf)

    @property
    def power_w(self) -> Decimal | None:
        if self.w == INT16_NA:
            return None
        return scaled(self.w, self.w_sf)

    @property
    def clock_set(self) -> bool:
        """False while the meter's clock was never set (Epoch or TZO sentinel)."""
        return self.epoch != UINT32_NA and self.tzo != INT16_NA

    @property
    def local_time(self) -> datetime | None:
        """The snapshot time in the meter's local offset (Epoch + TZO), or None if unset."""
        if not self.clock_set:
            return None
        tz = timezone(timedelta(minutes=self.tzo))
        return datetime.fromtimestamp(self.epoch, tz=UTC).astimezone(tz)

    @property
    def events_ok(self) -> bool:
        """True when no event flag is set (a meter with events must not be used for billing)."""
        return self.evt == 0

    @property
    def ma1_text(self) -> str:
        return self.ma1.decode("ascii", errors="replace")

    def meta_text(self, n: int) -> str:
        raw = {1: self.meta1, 2: self.meta2, 3: self.meta3}[n]
        return raw.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class LegacySnapshotFields:
    """The 22 signed fields of firmware 1.7 (manual appendix D): no RCR, with DI/DO change times."""

    typ: int
    tot_wh_imp: int
    wh_sf: int
    w: int
    w_sf: int
    ma1: bytes
    rcnt: int
    os: int
    epoch: int
    tzo: int
    epoch_set_cnt: int
    epoch_set_os: int
    di: int
    do: int
    di_chg_os: int
    di_chg_epoch: int
    di_chg_tzo: int
    do_chg_os: int
    do_chg_epoch: int
    do_chg_tzo: int
    meta1: bytes
    meta2: bytes
    meta3: bytes
    evt: int


@dataclass(frozen=True)
class SignedSnapshot:
    """One snapshot as read from the meter: every signed field, its signature, its OCMF."""

    kind: SnapshotKind
    status: SnapshotStatus
    fields: SnapshotFields
    signature: bytes
    ocmf: str


@dataclass(frozen=True)
class OcmfIdentity:
    """What the meter prints into its OCMF besides the snapshot fields."""

    manufacturer: str  # Common Mn, e.g. "BAUER Electronic"
    model: str  # Common Md, e.g. "BSM-WS36A-H01-1311-0000"
    version_meter: str  # 64900 VrM, e.g. "1.9:32CA:AFF4"
    version_comm: str  # 64900 VrC, e.g. "f1d3d06"


@dataclass(frozen=True)
class MeterIdentity:
    """Identity registers of the meter (Common model 1 and signing meter model 64900)."""

    manufacturer: str
    model: str
    options: str
    version: str
    serial_number: str
    device_address: int
    meter_serial: str
    comm_serial: str
    version_meter: str
    version_comm: str
    meter_address: str  # MA1, the server id printed as OCMF GS/MS
    firmware_hash: bytes  # 64902 blob, SHA-256 of the communication module firmware
    error_code: str  # ErrM, the F.F code; "00000000" when the meter is fine

    def ocmf_identity(self) -> OcmfIdentity:
        return OcmfIdentity(self.manufacturer, self.model, self.version_meter, self.version_comm)
