"""The Bauer BSM-WS36A register map, with the lengths real devices have (field guide 1.2/1.3).

Start addresses are the manual's data-model addresses; `ModelInstance.wire()` gives the
address on the wire (one lower).
"""

from __future__ import annotations

from meter.modbus.sunspec import ModelInstance, Point, PointType, point
from meter.snapshot import SnapshotKind

T = PointType

SUNSPEC_MARKER = 0x53756E53  # 'SunS'
SUNSPEC_MARKER_ADDRESS = 40001
END_MODEL_ADDRESS = 44292
DEFAULT_UNIT = 42

COMMON = ModelInstance(
    "common",
    1,
    40003,
    66,
    (
        point("ID", 0, T.UINT16),
        point("L", 1, T.UINT16),
        point("Mn", 2, T.STRING, 16),
        point("Md", 18, T.STRING, 16),
        point("Opt", 34, T.STRING, 8),
        point("Vr", 42, T.STRING, 8),
        point("SN", 50, T.STRING, 16),
        point("DA", 66, T.UINT16, writable=True),
        point("Pad", 67, T.PAD),
    ),
)

SERIAL_HEADER = ModelInstance(
    "serial interface header",
    10,
    40071,
    4,
    (
        point("ID", 0, T.UINT16),
        point("L", 1, T.UINT16),
        point("St", 2, T.ENUM16),
        point("Ctl", 3, T.UINT16),
        point("Typ", 4, T.ENUM16),
        point("Pad", 5, T.PAD),
    ),
)

SERIAL_INTERFACE = ModelInstance(
    "serial interface",
    17,
    40077,
    12,
    (
        point("ID", 0, T.UINT16),
        point("L", 1, T.UINT16),
        point("Nam", 2, T.STRING, 4),
        point("Rte", 6, T.UINT32, writable=True),
        point("Bits", 8, T.UINT16),
        point("Pty", 9, T.ENUM16),
        point("Dup", 10, T.ENUM16),
        point("Flw", 11, T.ENUM16),
        point("Typ", 12, T.ENUM16),
        point("Pcol", 13, T.ENUM16),
    ),
)


def _reserved(name: str, offset: int, size: int) -> Point:
    return Point(name, offset, size, T.RESERVED)


AC_METER = ModelInstance(
    "ac meter",
    203,
    40091,
    105,
    (
        point("ID", 0, T.UINT16),
        point("L", 1, T.UINT16),
        point("A", 2, T.INT16),
        point("AphA", 3, T.INT16),
        point("AphB", 4, T.INT16),
        point("AphC", 5, T.INT16),
        point("A_SF", 6, T.SUNSSF),
        _reserved("R1", 7, 1),
        point("PhVphA", 8, T.INT16),
        point("PhVphB", 9, T.INT16),
        point("PhVphC", 10, T.INT16),
        _reserved("R2", 11, 4),
        point("V_SF", 15, T.SUNSSF),
        point("Hz", 16, T.INT16),
        point("Hz_SF", 17, T.SUNSSF),
        point("W", 18, T.INT16),
        point("WphA", 19, T.INT16),
        point("WphB", 20, T.INT16),
        point("WphC", 21, T.INT16),
        point("W_SF", 22, T.SUNSSF),
        point("VA", 23, T.INT16),
        point("VAphA", 24, T.INT16),
        point("VAphB", 25, T.INT16),
        point("VAphC", 26, T.INT16),
        point("VA_SF", 27, T.SUNSSF),
        point("VAR", 28, T.INT16),
        point("VARphA", 29, T.INT16),
        point("VARphB", 30, T.INT16),
        point("VARphC", 31, T.INT16),
        point("VAR_SF", 32, T.SUNSSF),
        _reserved("R3", 33, 1),
        point("PFphA", 34, T.INT16),
        point("PFphB", 35, T.INT16),
        point("PFphC", 36, T.INT16),
        point("PF_SF", 37, T.SUNSSF),
        _reserved("R4", 38, 8),
        point("TotWhImp", 46, T.ACC32),
        _reserved("R5", 48, 6),
        point("TotWh_SF", 54, T.SUNSSF),
        _reserved("R6", 55, 50),
        point("Evt", 105, T.BITFIELD32),
    ),
)

SIGNING_METER = ModelInstance(
    "signing meter",
    64900,
    40198,
    300,
    (
        point("ID", 0, T.UINT16),
        point("L", 1, T.UINT16),
        point("ErrM", 2, T.STRING, 4),
        point("SNM", 6, T.STRING, 8),
        point("SNC", 14, T.STRING, 8),
        point("VrM", 22, T.STRING, 8),
        point("VrC", 30, T.STRING, 8),
        point("MA1", 38, T.STRING, 8),
        point("MA2", 46, T.STRING, 8),
        point("RCR", 54, T.UINT32),
        point("RCR_SF", 56, T.SUNSSF),
        point("PDCnt", 57, T.UINT32),
        point("RCnt", 59, T.UINT32),
        point("OS", 61, T.UINT32),
        point("Epoch", 63, T.UINT32, writable=True),
        point("TZO", 65, T.INT16, writable=True),
        point("EpochSetCnt", 66, T.UINT32),
        point("EpochSetOS", 68, T.UINT32),
        point("DI", 70, T.UINT16),
        point("DO", 71, T.UINT16, writable=True),
        point("DIChgOS", 72, T.UINT32),
        point("DIChgEpoch", 74, T.UINT32),
        point("DIChgTZO", 76, T.INT16),
        point("DOChgOS", 77, T.UINT32),
        point("DOChgEpoch", 79, T.UINT32),
        point("DOChgTZO", 81, T.INT16),
        point("Meta1", 82, T.STRING, 70, writable=True),
        point("Meta2", 152, T.STRING, 50, writable=True),
        point("Meta3", 202, T.STRING, 50, writable=True),
        point("NPK", 252, T.UINT16),
        point("BPK", 253, T.UINT16),
        point("PK", 254, T.BLOB, 48),
    ),
)

FIRMWARE_HASH = ModelInstance(
    "communication module firmware hash",
    64902,
    40500,
    20,
    (
        point("ID", 0, T.UINT16),
        point("L", 1, T.UINT16),
        point("Typ", 2, T.ENUM16),
        point("NB", 3, T.UINT16),
        point("BB", 4, T.UINT16),
        point("Pad", 5, T.PAD),
        point("B", 6, T.BLOB, 16),
    ),
)

SNAPSHOT_PAYLOAD = 252
OCMF_PAYLOAD = 498
OCMF_TEXT_REGISTERS = 496


def _snapshot_model(label: str, start: int) -> ModelInstance:
    return ModelInstance(
        label,
        64901,
        start,
        SNAPSHOT_PAYLOAD,
        (
            point("ID", 0, T.UINT16),
            point("L", 1, T.UINT16),
            point("Typ", 2, T.ENUM16),
            point("St", 3, T.ENUM16, writable=True),
            point("RCR", 4, T.ACC32),
            point("TotWhImp", 6, T.ACC32),
            point("Wh_SF", 8, T.SUNSSF),
            point("W", 9, T.INT16),
            point("W_SF", 10, T.SUNSSF),
            point("MA1", 11, T.STRING, 8),
            point("RCnt", 19, T.UINT32),
            point("OS", 21, T.UINT32),
            point("Epoch", 23, T.UINT32),
            point("TZO", 25, T.INT16),
            point("EpochSetCnt", 26, T.UINT32),
            point("EpochSetOS", 28, T.UINT32),
            point("DI", 30, T.UINT16),
            point("DO", 31, T.UINT16),
            point("Meta1", 32, T.STRING, 70),
            point("Meta2", 102, T.STRING, 50),
            point("Meta3", 152, T.STRING, 50),
            point("Evt", 202, T.BITFIELD32),
            point("NSig", 204, T.UINT16),
            point("BSig", 205, T.UINT16),
            point("Sig", 206, T.BLOB, 48),
        ),
    )


def _ocmf_model(label: str, start: int) -> ModelInstance:
    return ModelInstance(
        label,
        64903,
        start,
        OCMF_PAYLOAD,
        (
            point("ID", 0, T.UINT16),
            point("L", 1, T.UINT16),
            point("Typ", 2, T.ENUM16),
            point("St", 3, T.ENUM16),
            point("O", 4, T.BLOB, OCMF_TEXT_REGISTERS),  # a string, read like a blob up to NUL
        ),
    )


SNAPSHOT_MODELS: dict[SnapshotKind, ModelInstance] = {
    SnapshotKind.CURRENT: _snapshot_model("signed current snapshot", 40522),
    SnapshotKind.TURN_ON: _snapshot_model("signed turn-on snapshot", 40776),
    SnapshotKind.TURN_OFF: _snapshot_model("signed turn-off snapshot", 41030),
    SnapshotKind.START: _snapshot_model("signed start snapshot", 41284),
    SnapshotKind.END: _snapshot_model("signed end snapshot", 41538),
}

OCMF_MODELS: dict[SnapshotKind, ModelInstance] = {
    SnapshotKind.CURRENT: _ocmf_model("ocmf signed current snapshot", 41792),
    SnapshotKind.TURN_ON: _ocmf_model("ocmf signed turn-on snapshot", 42292),
    SnapshotKind.TURN_OFF: _ocmf_model("ocmf signed turn-off snapshot", 42792),
    SnapshotKind.START: _ocmf_model("ocmf signed start snapshot", 43292),
    SnapshotKind.END: _ocmf_model("ocmf signed end snapshot", 43792),
}

ALL_MODELS: tuple[ModelInstance, ...] = (
    COMMON,
    SERIAL_HEADER,
    SERIAL_INTERFACE,
    AC_METER,
    SIGNING_METER,
    FIRMWARE_HASH,
    *SNAPSHOT_MODELS.values(),
    *OCMF_MODELS.values(),
)

MAP_WIRE_START = SUNSPEC_MARKER_ADDRESS - 1  # 40000
MAP_WIRE_END = END_MODEL_ADDRESS - 1 + 2  # one past the end model's L register


def model_at(wire_address: int) -> ModelInstance | None:
    """The model whose registers (ID..payload) include this wire address."""
    for m in ALL_MODELS:
        if m.wire_start <= wire_address < m.wire_end:
            return m
    return None
