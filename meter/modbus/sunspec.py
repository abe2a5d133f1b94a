"""SunSpec data points: types, raw decoding, "not available" sentinels, and read planning.

Addresses in this module are *wire* (protocol, 0-based) register addresses unless a name
says otherwise. The meter manual lists data-model addresses, one higher.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_READ_REGISTERS = 125
MAX_WRITE_REGISTERS = 123


class PointType(enum.Enum):
    UINT16 = "uint16"
    INT16 = "int16"
    ENUM16 = "enum16"
    SUNSSF = "sunssf"
    PAD = "pad"
    UINT32 = "uint32"
    ACC32 = "acc32"
    BITFIELD32 = "bitfield32"
    STRING = "string"
    BLOB = "blob"  # repeating uint16 block holding binary data (keys, signatures, hashes)
    RESERVED = "reserved"


_SIZES = {
    PointType.UINT16: 1,
    PointType.INT16: 1,
    PointType.ENUM16: 1,
    PointType.SUNSSF: 1,
    PointType.PAD: 1,
    PointType.UINT32: 2,
    PointType.ACC32: 2,
    PointType.BITFIELD32: 2,
}


@dataclass(frozen=True)
class Point:
    """One data point of a model: offset from the model's ID register, size in registers."""

    name: str
    offset: int
    size: int
    type: PointType
    writable: bool = False

    def __post_init__(self) -> None:
        fixed = _SIZES.get(self.type)
        if fixed is not None and fixed != self.size:
            raise ValueError(f"{self.name}: {self.type.value} takes {fixed} registers")

    @property
    def end(self) -> int:
        return self.offset + self.size


def point(
    name: str, offset: int, type_: PointType, size: int | None = None, writable: bool = False
) -> Point:
    return Point(name, offset, size if size is not None else _SIZES[type_], type_, writable)


@dataclass(frozen=True)
class ModelInstance:
    """One model instance of the device map: ID register at `start` (data-model address)."""

    label: str
    model_id: int
    start: int  # manual (data-model, 1-based) address of the ID register
    length: int  # payload length, registers after ID and L
    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        previous_end = 0
        for p in self.points:
            if p.offset < previous_end:
                raise ValueError(f"{self.label}: {p.name} overlaps the point before it")
            previous_end = p.end
        if previous_end > self.length + 2:
            raise ValueError(f"{self.label}: points run past the payload length")

    @property
    def wire_start(self) -> int:
        """Wire address of the model ID register."""
        return self.start - 1

    @property
    def wire_end(self) -> int:
        """Wire address one past the model's last payload register."""
        return self.wire_start + 2 + self.length

    def get(self, name: str) -> Point:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"{self.label} has no point {name}")

    def wire(self, name: str) -> int:
        """Wire address of a point."""
        return self.wire_start + self.get(name).offset

    def span(self, first: str, last: str) -> tuple[Point, ...]:
        """The points from `first` to `last` inclusive, in address order."""
        names = [p.name for p in self.points]
        i, j = names.index(first), names.index(last)
        return self.points[i : j + 1]


@dataclass(frozen=True)
class ReadRequest:
    address: int  # wire address
    count: int


def plan_reads(
    model: ModelInstance, points: Sequence[Point], max_registers: int = MAX_READ_REGISTERS
) -> list[ReadRequest]:
    """Cover `points` with as few reads as possible, never cutting a data point in two.

    Consecutive points are merged (gaps between them are read along when that saves a
    request); BLOB points may be cut at any register, as each of their registers is a
    uint16 data point of its own.
    """
    reads: list[ReadRequest] = []
    start: int | None = None
    end = 0
    for p in sorted(points, key=lambda q: q.offset):
        pieces: Iterable[tuple[int, int]]
        if p.type is PointType.BLOB:
            pieces = ((p.offset + k, 1) for k in range(p.size))
        else:
            if p.size > max_registers:
                raise ValueError(f"{p.name} is larger than one read")
            pieces = ((p.offset, p.size),)
        for offset, size in pieces:
            if start is None:
                start, end = offset, offset + size
            elif offset + size - start <= max_registers:
                end = max(end, offset + size)
            else:
                reads.append(ReadRequest(model.wire_start + start, end - start))
                start, end = offset, offset + size
    if start is not None:
        reads.append(ReadRequest(model.wire_start + start, end - start))
    return reads


# ---- raw decoding ---------------------------------------------------------------------


def u32(regs: Sequence[int], i: int = 0) -> int:
    return (regs[i] << 16) | regs[i + 1]


def s16(value: int) -> int:
    return value - 0x10000 if value & 0x8000 else value


def registers_to_bytes(regs: Sequence[int]) -> bytes:
    return b"".join(r.to_bytes(2, "big") for r in regs)


def bytes_to_registers(data: bytes, size: int | None = None) -> list[int]:
    """Pack bytes into big-endian registers, NUL padded to `size` registers if given."""
    if size is not None:
        if len(data) > size * 2:
            raise ValueError(f"{len(data)} bytes do not fit into {size} registers")
        data = data.ljust(size * 2, b"\0")
    elif len(data) % 2:
        data += b"\0"
    return [int.from_bytes(data[k : k + 2], "big") for k in range(0, len(data), 2)]


def decode_string(regs: Sequence[int]) -> bytes:
    """A SunSpec string: the bytes up to the first NUL."""
    raw = registers_to_bytes(regs)
    nul = raw.find(b"\0")
    return raw if nul < 0 else raw[:nul]


def decode_blob(regs: Sequence[int], byte_count: int) -> bytes:
    return registers_to_bytes(regs)[:byte_count]


def raw_value(p: Point, regs: Sequence[int]) -> int | bytes:
    """The raw value of a point as the meter signs it (int16 types sign-extended)."""
    if p.type in (PointType.UINT16, PointType.ENUM16, PointType.PAD):
        return regs[0]
    if p.type in (PointType.INT16, PointType.SUNSSF):
        return s16(regs[0])
    if p.type in (PointType.UINT32, PointType.ACC32, PointType.BITFIELD32):
        return u32(regs)
    if p.type is PointType.STRING:
        return decode_string(regs)
    return registers_to_bytes(regs)


def is_not_available(p: Point, raw: int | bytes) -> bool:
    """SunSpec's "not available" sentinels (field guide 1.1)."""
    if isinstance(raw, bytes):
        return False
    return {
        PointType.UINT16: raw == 0xFFFF,
        PointType.ENUM16: raw == 0xFFFF,
        PointType.INT16: raw == -0x8000,
        PointType.SUNSSF: raw == -0x8000,
        PointType.PAD: True,
        PointType.UINT32: raw == 0xFFFFFFFF,
        PointType.ACC32: raw == 0,
        PointType.BITFIELD32: bool(raw & 0x80000000),
    }.get(p.type, False)


def value(p: Point, regs: Sequence[int]) -> int | bytes | None:
    """The point's value, None where the device reports "not available"."""
    raw = raw_value(p, regs)
    return None if is_not_available(p, raw) else raw


class BlockView:
    """Registers of one contiguous read, addressed by point name."""

    def __init__(self, model: ModelInstance, wire_address: int, regs: Sequence[int]) -> None:
        self.model = model
        self.base = wire_address
        self.regs = list(regs)

    def merge(self, wire_address: int, regs: Sequence[int]) -> None:
        """Add the registers of a later read that follows on (gaps are not allowed)."""
        if wire_address != self.base + len(self.regs):
            raise ValueError("reads must be contiguous to merge")
        self.regs.extend(regs)

    def regs_of(self, name: str) -> list[int]:
        p = self.model.get(name)
        i = self.model.wire_start + p.offset - self.base
        if i < 0 or i + p.size > len(self.regs):
            raise KeyError(f"{name} was not read")
        return self.regs[i : i + p.size]

    def blob(self, name: str, byte_count: int) -> bytes:
        """The first `byte_count` bytes of a BLOB point (only those registers need be read)."""
        p = self.model.get(name)
        needed = (byte_count + 1) // 2
        if byte_count < 0 or needed > p.size:
            raise ValueError(f"{name}: {byte_count} bytes do not fit its {p.size} registers")
        i = self.model.wire_start + p.offset - self.base
        if i < 0 or i + needed > len(self.regs):
            raise KeyError(f"{name} was not read")
        return registers_to_bytes(self.regs[i : i + needed])[:byte_count]

    def raw(self, name: str) -> int | bytes:
        return raw_value(self.model.get(name), self.regs_of(name))

    def number(self, name: str) -> int:
        v = self.raw(name)
        if not isinstance(v, int):
            raise TypeError(f"{name} is not a number")
        return v

    def string(self, name: str) -> bytes:
        v = self.raw(name)
        if not isinstance(v, bytes):
            raise TypeError(f"{name} is not a string")
        return v

    def value(self, name: str) -> int | bytes | None:
        return value(self.model.get(name), self.regs_of(name))
