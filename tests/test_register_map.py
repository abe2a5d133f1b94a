"""The register map and SunSpec decoding against raw register dumps of real meters."""

from __future__ import annotations

import itertools

import pytest

from meter.bsm import registers as regmap
from meter.bsm.decode import fields_from_registers
from meter.modbus.sunspec import (
    MAX_READ_REGISTERS,
    BlockView,
    PointType,
    decode_string,
    plan_reads,
)
from meter.snapshot import SnapshotFields, SnapshotKind
from tests.real_vectors import bsm_public_key_hex, bsm_vectors
from tests.test_bsm_signature import snapshot_fields


def dump(name: str) -> tuple[int, list[int]]:
    entry = bsm_vectors()["register_dumps"][name]
    raw = bytes.fromhex(entry["hex"])
    regs = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return entry["wire_address"], regs


def vector_fields(name: str) -> SnapshotFields:
    return snapshot_fields(bsm_vectors()["snapshot_vectors"][name]["fields"])


def test_models_tile_the_whole_map_without_gaps() -> None:
    models = sorted(regmap.ALL_MODELS, key=lambda m: m.start)
    assert models[0].wire_start == regmap.MAP_WIRE_START + 2  # after 'SunS'
    for a, b in itertools.pairwise(models):
        assert a.wire_end == b.wire_start, (a.label, b.label)
    assert models[-1].wire_end == regmap.END_MODEL_ADDRESS - 1


def test_real_device_lengths_not_the_manuals() -> None:
    assert regmap.SIGNING_METER.length == 300
    assert all(m.length == 252 for m in regmap.SNAPSHOT_MODELS.values())
    assert all(m.length == 498 for m in regmap.OCMF_MODELS.values())
    assert regmap.SNAPSHOT_MODELS[SnapshotKind.TURN_ON].wire("St") == 40778  # manual 40779
    assert regmap.SNAPSHOT_MODELS[SnapshotKind.TURN_OFF].wire("St") == 41032  # manual 41033
    assert regmap.SIGNING_METER.wire("Epoch") == 40260  # manual 40261


@pytest.mark.parametrize(
    ("dump_name", "vector_name", "kind"),
    [
        ("scs", "scs_4278", SnapshotKind.CURRENT),
        ("stons", "stons_4276", SnapshotKind.TURN_ON),
        ("stoffs", "stoffs_4277", SnapshotKind.TURN_OFF),
    ],
)
def test_snapshot_dumps_decode_to_the_signed_fields(
    dump_name: str, vector_name: str, kind: SnapshotKind
) -> None:
    address, regs = dump(dump_name)
    model = regmap.SNAPSHOT_MODELS[kind]
    assert address == model.wire_start
    assert regs[0] == 64901 and regs[1] == 252
    assert fields_from_registers(model, address, regs) == vector_fields(vector_name)
    view = BlockView(model, address, regs)
    signature = view.blob("Sig", view.number("BSig"))
    assert signature.hex() == bsm_vectors()["snapshot_vectors"][vector_name]["signature_der_hex"]


def test_everest_dump_with_clock_never_set_decodes_sentinels() -> None:
    address, regs = dump("everest_scs_invalid_time")
    fields = fields_from_registers(regmap.SNAPSHOT_MODELS[SnapshotKind.CURRENT], address, regs)
    assert fields.ma1 == b"001BZR1521070019"
    assert fields.rcnt == 356
    assert fields.rcr == 5550 and fields.tot_wh_imp == 7090 and fields.wh_sf == 0
    assert not fields.clock_set and fields.local_time is None
    assert fields.epoch == 0xFFFFFFFF and fields.tzo == -0x8000
    assert fields.meta1 == b"" and fields.meta2 == b"" and fields.meta3 == b""


def test_signing_meter_dump_decodes_identity_counters_and_key() -> None:
    address, regs = dump("bsm_64900_payload")
    view = BlockView(regmap.SIGNING_METER, address, regs)
    assert address == regmap.SIGNING_METER.wire("ErrM")
    assert view.string("ErrM") == b"00000000"
    assert view.string("MA1") == b"001BZR1521070006"
    assert view.string("VrM") == b"1.9:32CA:AFF4"
    assert view.string("VrC") == b"f1d3d06"
    assert view.number("RCnt") == 4277
    assert view.number("RCR_SF") == 1
    assert view.number("TZO") == 120
    assert view.string("Meta2") == b"evse-id: DE*BDO*E8025334492*2"
    assert view.number("NPK") == 48 and view.number("BPK") == 91
    key = view.blob("PK", view.number("BPK"))
    assert key.hex() == bsm_public_key_hex("A_meter_001BZR1521070006")


def test_common_model_dump_decodes() -> None:
    address, regs = dump("common_1_payload")
    view = BlockView(regmap.COMMON, address, regs)
    assert view.string("Mn") == b"BAUER Electronic"
    assert view.string("Md") == b"BSM-WS36A-H01-1311-0000"
    assert view.string("Opt") == b""
    assert view.string("Vr") == b"1.9:32CA:AFF4"
    assert view.string("SN") == b"21070006"
    assert view.number("DA") == 42
    assert view.value("Pad") is None  # pad is never a value


@pytest.mark.parametrize(
    ("dump_name", "vector_name", "kind"),
    [
        ("ostons", "ostons_T4276", SnapshotKind.TURN_ON),
        ("ostoffs", "ostoffs_T4277", SnapshotKind.TURN_OFF),
    ],
)
def test_ocmf_dumps_hold_the_record_up_to_the_nul(
    dump_name: str, vector_name: str, kind: SnapshotKind
) -> None:
    address, regs = dump(dump_name)
    model = regmap.OCMF_MODELS[kind]
    assert address == model.wire_start and regs[0] == 64903 and regs[1] == 498
    view = BlockView(model, address, regs)
    assert view.number("Typ") == kind
    text = decode_string(view.regs_of("O")).decode()
    assert text == bsm_vectors()["ocmf_vectors"][vector_name]["ocmf"]


def test_plan_reads_never_exceeds_125_nor_cuts_a_point() -> None:
    for model in regmap.ALL_MODELS:
        reads = plan_reads(model, model.points)
        covered: set[int] = set()
        for r in reads:
            assert 0 < r.count <= MAX_READ_REGISTERS
            covered.update(range(r.address, r.address + r.count))
        for p in model.points:
            start = model.wire_start + p.offset
            assert set(range(start, start + p.size)) <= covered
            if p.type is PointType.BLOB:
                continue
            cut = [r for r in reads if r.address < start + p.size and start < r.address + r.count]
            assert len(cut) == 1, f"{model.label}.{p.name} split across reads"


def test_snapshot_model_is_read_in_three_frames() -> None:
    model = regmap.SNAPSHOT_MODELS[SnapshotKind.TURN_ON]
    reads = plan_reads(model, (*model.span("Typ", "BSig"), model.get("Sig")))
    assert [r.count for r in reads] == [100, 125, 27]
    assert reads[0].address == model.wire("Typ")
