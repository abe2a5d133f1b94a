"""The driver's snapshot and OCMF read path on register dumps of a real BSM-WS36A.

The dumps (`tests/vectors/bsm-vectors.json`, register_dumps) are served by a fake bus
that answers `read(unit, address, count)` from them and fails any read outside them, so the
driver must find everything it needs where the real device keeps it. Not in the dumps and
filled in here: the SunSpec marker and common model header (40000-40003), and a firmware
hash model (64902) with a zero hash, which identity() reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pytest

from meter.bsm import registers as regmap
from meter.bsm.driver import BsmWs36a, MeterTimeouts
from meter.errors import MeterReplyInvalid, SnapshotIncomplete
from meter.modbus.bus import ModbusBus
from meter.proof.keys import load_public_key
from meter.proof.ocmf import parse_ocmf
from meter.snapshot import SnapshotKind, SnapshotStatus
from tests.real_vectors import bsm_public_key_hex, bsm_vectors

KEY = "A_meter_001BZR1521070006"
KINDS = {
    SnapshotKind.CURRENT: ("scs", "oscs_64903_payload", "oscs_T4278", 4278),
    SnapshotKind.TURN_ON: ("stons", "ostons", "ostons_T4276", 4276),
    SnapshotKind.TURN_OFF: ("stoffs", "ostoffs", "ostoffs_T4277", 4277),
}


def dump(name: str) -> tuple[int, list[int]]:
    entry = bsm_vectors()["register_dumps"][name]
    raw = bytes.fromhex(entry["hex"])
    regs = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    assert len(regs) == entry["registers"]
    return int(entry["wire_address"]), regs


class DumpBus:
    """A meter made of register dumps; a snapshot trigger is served like the device does."""

    def __init__(self) -> None:
        self.regs: dict[int, int] = {}
        for name in (
            "common_1_payload",
            "bsm_64900_payload",
            "scs",
            "stons",
            "stoffs",
            "ostons",
            "ostoffs",
            "oscs_64903_payload",
        ):
            self.put(*dump(name))
        self.put(40000, [0x5375, 0x6E53, 1, 66])  # 'SunS', common model ID and L
        self.put(regmap.SIGNING_METER.wire_start, [64900, 300])  # as the dump's note says
        fw = regmap.FIRMWARE_HASH
        self.put(fw.wire_start, [64902, 20, 0, 16, 32, 0x8000, *[0] * 16])
        self.reads: list[tuple[int, int]] = []
        self.writes: list[tuple[int, list[int]]] = []
        self.polls_until_valid = 0
        self.pending: SnapshotKind | None = None

    def put(self, address: int, values: Sequence[int]) -> None:
        for i, v in enumerate(values):
            self.regs[address + i] = v

    def set_global_rcnt(self, rcnt: int) -> None:
        self.put(regmap.SIGNING_METER.wire("RCnt"), [rcnt >> 16, rcnt & 0xFFFF])

    async def read(self, unit: int, address: int, count: int) -> list[int]:
        assert unit == 42 and 1 <= count <= 125
        missing = [a for a in range(address, address + count) if a not in self.regs]
        assert not missing, f"read of {count} at {address} leaves the dumps at {missing[0]}"
        self.reads.append((address, count))
        if self.pending is not None:
            st = regmap.SNAPSHOT_MODELS[self.pending].wire("St")
            if address == st and count == 1:
                self.polls_until_valid -= 1
                if self.polls_until_valid <= 0:
                    self.regs[st] = SnapshotStatus.VALID
                    self.pending = None
        return [self.regs[a] for a in range(address, address + count)]

    async def write(self, unit: int, address: int, values: Sequence[int]) -> None:
        self.writes.append((address, list(values)))
        for kind, model in regmap.SNAPSHOT_MODELS.items():
            if address == model.wire("St") and list(values) == [SnapshotStatus.UPDATING]:
                # the dump's snapshot is the one this trigger produces
                rcnt = KINDS[kind][3]
                self.set_global_rcnt(rcnt)
                self.regs[address] = SnapshotStatus.UPDATING
                self.pending, self.polls_until_valid = kind, 3
                return
        raise AssertionError(f"unexpected write at {address}")


def meter_on(bus: DumpBus, pinned: bool = True) -> BsmWs36a:
    key = load_public_key(bsm_public_key_hex(KEY)) if pinned else None
    timeouts = MeterTimeouts(poll_interval=0.001, ocmf_lag=0.05)
    return BsmWs36a(cast(ModbusBus, bus), unit=42, pinned_key=key, timeouts=timeouts)


def ocmf_registers_read(bus: DumpBus, kind: SnapshotKind) -> int:
    model = regmap.OCMF_MODELS[kind]
    return sum(n for a, n in bus.reads if model.wire_start <= a < model.wire_end)


@pytest.mark.parametrize("kind", list(KINDS))
async def test_read_snapshot_on_real_dumps_verifies_and_reads_ocmf_to_its_nul(
    kind: SnapshotKind,
) -> None:
    bus = DumpBus()
    meter = meter_on(bus)
    ident = await meter.identity()
    assert ident.meter_address == "001BZR1521070006" and ident.version_comm == "f1d3d06"
    assert ident.error_code == "00000000"
    bus.reads.clear()
    snap = await meter.read_snapshot(kind)  # the pinned key checks both signatures
    _, _, vector, rcnt = KINDS[kind]
    expected = bsm_vectors()["ocmf_vectors"][vector]["ocmf"]
    assert snap.ocmf == expected
    assert snap.fields.rcnt == rcnt and snap.fields.typ == kind
    assert snap.fields.meta1 == b"contract-id: rfid:12345678abcdef"
    record = parse_ocmf(snap.ocmf)
    assert record.pagination == f"T{rcnt}" and record.readings[0].xt == kind
    # the OCMF model from Typ: Typ, St, the text and its NUL, in as many frames as that
    # takes; the first frame's length assumes the longest (72-byte) signature, which is up
    # to 2 bytes of DER, 4 hex characters, 2 registers longer than a real one
    text_registers = len(expected.encode()) // 2 + 1
    read = ocmf_registers_read(bus, kind)
    assert 2 + text_registers <= read <= 2 + text_registers + 3
    model = regmap.OCMF_MODELS[kind]
    frames = [(a, n) for a, n in bus.reads if model.wire_start <= a < model.wire_end]
    assert frames[0][0] == model.wire("Typ") and len(frames) == -(-read // 125)
    assert all(n <= 125 for _, n in bus.reads)


async def test_without_identity_the_ocmf_is_read_in_full_frames_up_to_its_nul() -> None:
    bus = DumpBus()
    meter = meter_on(bus, pinned=False)
    snap = await meter.read_snapshot(SnapshotKind.TURN_OFF)
    assert snap.ocmf == bsm_vectors()["ocmf_vectors"]["ostoffs_T4277"]["ocmf"]
    frames = [n for a, n in bus.reads if a >= regmap.OCMF_MODELS[SnapshotKind.TURN_OFF].wire_start]
    assert frames[:-1] == [125] * (len(frames) - 1)
    assert sum(frames) < 2 + regmap.OCMF_TEXT_REGISTERS


@pytest.mark.parametrize("kind", [SnapshotKind.TURN_ON, SnapshotKind.TURN_OFF])
async def test_take_snapshot_on_real_dumps(kind: SnapshotKind) -> None:
    bus = DumpBus()
    rcnt = KINDS[kind][3]
    bus.set_global_rcnt(rcnt - 1)
    bus.regs[regmap.SNAPSHOT_MODELS[kind].wire("St")] = SnapshotStatus.INVALID  # an old one
    meter = meter_on(bus)
    await meter.identity()
    snap = await meter.take_snapshot(kind)
    assert snap.fields.rcnt == rcnt
    assert bus.writes == [(regmap.SNAPSHOT_MODELS[kind].wire("St"), [SnapshotStatus.UPDATING])]


async def test_resume_snapshot_on_real_dumps() -> None:
    bus = DumpBus()
    meter = meter_on(bus)
    await meter.identity()
    snap = await meter.resume_snapshot(SnapshotKind.TURN_OFF, 4276)
    assert snap is not None and snap.fields.rcnt == 4277
    assert await meter.resume_snapshot(SnapshotKind.TURN_OFF, 4277) is None
    assert bus.writes == []


async def test_an_ocmf_of_another_snapshot_is_refused_on_real_dumps() -> None:
    bus = DumpBus()
    on_start, on_regs = dump("ostons")
    off_model = regmap.OCMF_MODELS[SnapshotKind.TURN_OFF]
    # the turn-off OCMF model holds the turn-on record (T4276), with its own Typ and St
    bus.put(off_model.wire_start, on_regs)
    bus.put(off_model.wire("Typ"), [SnapshotKind.TURN_OFF, SnapshotStatus.VALID])
    assert on_start == regmap.OCMF_MODELS[SnapshotKind.TURN_ON].wire_start
    meter = meter_on(bus)
    await meter.identity()
    with pytest.raises(MeterReplyInvalid, match="PG 'T4276', the snapshot is T4277") as info:
        await meter.read_snapshot(SnapshotKind.TURN_OFF)
    assert info.value.snapshot is not None and info.value.snapshot.fields.rcnt == 4277
    with pytest.raises(SnapshotIncomplete) as incomplete:
        await meter.resume_snapshot(SnapshotKind.TURN_OFF, 4276)
    assert incomplete.value.snapshot is not None and incomplete.value.after_rcnt == 4276
