"""The driver against the simulated meter over every link: what a station sees."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from meter.bsm import registers as regmap
from meter.bsm.driver import BsmWs36a, MeterTimeouts
from meter.bsm.signature import verify_snapshot_signature
from meter.errors import (
    Action,
    ClockSetRefused,
    MeterEventsSet,
    MeterNoReply,
    ModbusExceptionReply,
    PublicKeyMismatch,
    SnapshotFailed,
    SnapshotGeneralError,
    SnapshotIncomplete,
    SnapshotInvalid,
    SnapshotNoDoeRelease,
    SnapshotTimeout,
    SnapshotWrongContactorFeedback,
)
from meter.modbus.bus import ModbusBus
from meter.modbus.sunspec import bytes_to_registers
from meter.modbus.wiretime import LineSettings
from meter.proof.keys import load_public_key
from meter.proof.ocmf import parse_ocmf, verify_ocmf
from meter.sim.server import SimulatedBus
from meter.snapshot import SignedSnapshot, SnapshotKind, SnapshotStatus
from tests.conftest import PtyPair, StationFactory, free_port
from tests.test_pyocmf_interop import pyocmf_verifies


async def charge_session(
    meter: BsmWs36a, seconds: float = 0.4
) -> tuple[SignedSnapshot, SignedSnapshot]:
    await meter.identity()
    await meter.write_metadata("contract-id: rfid:0011223344", "evse-id: DE*ABC*E1*1", "demo")
    begin = await meter.take_snapshot(SnapshotKind.TURN_ON)
    await asyncio.sleep(seconds)
    end = await meter.take_snapshot(SnapshotKind.TURN_OFF)
    return begin, end


@pytest.mark.parametrize("link", ["tcp", "rtu+tcp", "serial"])
async def test_full_session_over_each_link_is_signed_and_verifies(
    station: StationFactory, link: str
) -> None:
    st = await station(link=link)
    meter, sim = st.meter(), st.sim()
    ident = await meter.identity()
    assert ident.manufacturer == "BAUER Electronic"
    assert ident.model == "BSM-WS36A-H01-1311-0000"
    assert ident.meter_address == sim.meter_address
    assert ident.version_comm == "f1d3d06" and len(ident.firmware_hash) == 32
    key = await meter.public_key()
    assert key.der == sim.public_key_der and key.curve_name == "secp256r1"
    start_total = (await meter.energy()).total_wh
    assert start_total is not None

    await meter.write_metadata("contract-id: rfid:0011223344", "evse-id: DE*ABC*E1*1", "demo")
    begin = await meter.take_snapshot(SnapshotKind.TURN_ON)
    assert sim.contactor_closed, "the meter releases the load after the turn-on snapshot"
    await asyncio.sleep(0.5)
    charging = await meter.energy()
    assert charging.power_w is not None and charging.power_w > 0
    end = await meter.take_snapshot(SnapshotKind.TURN_OFF)
    assert not sim.contactor_closed

    b, e = begin.fields, end.fields
    assert b.typ == SnapshotKind.TURN_ON and e.typ == SnapshotKind.TURN_OFF
    assert b.rcr == 0, "RCR restarts at 0 at turn-on"
    assert e.rcnt == b.rcnt + 1, "no other snapshot between begin and end"
    assert e.epoch_set_cnt == b.epoch_set_cnt
    assert (b.do, b.di, e.do, e.di) == (0, 1, 0, 1), "values collected with the contactor open"
    charged = e.energy_since_turn_on_wh
    assert charged is not None and charged >= 20  # 200 kW for 0.5 s is 28 Wh
    assert e.total_energy_wh is not None and b.total_energy_wh is not None
    assert abs((e.total_energy_wh - b.total_energy_wh) - charged) <= 10  # 10 Wh resolution
    assert b.meta1 == b"contract-id: rfid:0011223344" and e.meta2 == b"evse-id: DE*ABC*E1*1"

    for snap in (begin, end):
        assert verify_snapshot_signature(snap.fields, snap.signature, key).valid
        record = parse_ocmf(snap.ocmf)
        check = verify_ocmf(record, key)
        assert check.signature_valid and check.billable, check.reason
        assert record.payload["ID"] == "contract-id: rfid:0011223344"
        assert record.payload["X2"] == "evse-id: DE*ABC*E1*1"
        assert record.payload["PG"] == f"T{snap.fields.rcnt}"
        assert pyocmf_verifies(snap.ocmf, key.der_hex)
    assert parse_ocmf(begin.ocmf).readings[0].tx == "B"
    assert parse_ocmf(end.ocmf).readings[0].tx == "E"


async def test_ocmf_is_read_only_up_to_its_nul(station: StationFactory) -> None:
    st = await station()
    meter = st.meter()
    await meter.identity()
    await meter.write_metadata("id", "", "")
    await meter.take_snapshot(SnapshotKind.CURRENT)  # learns the OCMF style
    st.bus.stats.reset()
    snap = await meter.take_snapshot(SnapshotKind.CURRENT)
    ocmf_registers = 2 + len(snap.ocmf) // 2 + 1  # Typ, St, the text and its terminating NUL
    ocmf_reads = -(-ocmf_registers // 125)
    snapshot_registers = 204 + (len(snap.signature) + 1) // 2  # Typ .. BSig, Sig up to BSig
    baseline_registers = 2 + 1  # global RCnt, the model's St before the trigger
    polls = st.bus.stats.reads - 2 - 3 - ocmf_reads
    assert st.bus.stats.writes == 1
    assert polls >= 1
    ocmf_read = st.bus.stats.registers_read - baseline_registers - polls - snapshot_registers
    # the length is predicted with the longest DER signature (72 bytes, 144 hex digits): a
    # shorter one leaves up to 2 registers read past the NUL's register
    assert ocmf_registers <= ocmf_read <= ocmf_registers + 3
    assert ocmf_read < regmap.OCMF_TEXT_REGISTERS


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (SnapshotStatus.INVALID, SnapshotInvalid),
        (SnapshotStatus.GENERAL_ERROR, SnapshotGeneralError),
        (SnapshotStatus.NO_DOE_RELEASE, SnapshotNoDoeRelease),
        (SnapshotStatus.WRONG_CONTACTOR_FEEDBACK, SnapshotWrongContactorFeedback),
    ],
)
async def test_each_failure_status_is_its_own_error(
    station: StationFactory, status: SnapshotStatus, error: type[SnapshotFailed]
) -> None:
    st = await station()
    st.sim().faults.snapshot_status = status
    with pytest.raises(error) as info:
        await st.meter().take_snapshot(SnapshotKind.TURN_ON)
    assert info.value.status is status
    assert info.value.action is Action.FAULT
    assert not st.sim().contactor_closed, "no load released without a signed turn-on"


async def test_welded_contactor_fails_turn_off_on_its_feedback(station: StationFactory) -> None:
    st = await station()
    meter, sim = st.meter(), st.sim()
    await meter.take_snapshot(SnapshotKind.TURN_ON)
    sim.faults.contactor_welded = True
    with pytest.raises(SnapshotWrongContactorFeedback):
        await meter.take_snapshot(SnapshotKind.TURN_OFF)
    assert (await meter.energy()).power_w, "a welded contactor keeps the load on"


async def test_missing_doe_release_means_no_energy(station: StationFactory) -> None:
    st = await station()
    meter, sim = st.meter(), st.sim()
    sim.faults.doe_high = False
    begin = await meter.take_snapshot(SnapshotKind.TURN_ON)
    await asyncio.sleep(0.2)
    end = await meter.take_snapshot(SnapshotKind.TURN_OFF)
    assert end.fields.rcr == 0 and end.fields.rcnt == begin.fields.rcnt + 1


async def test_event_flags_raise_but_keep_the_signed_snapshot(station: StationFactory) -> None:
    st = await station()
    st.sim().faults.events = 1 << 18
    meter = st.meter()
    with pytest.raises(MeterEventsSet) as info:
        await meter.check_ready()
    assert "firmware hash" in str(info.value)
    with pytest.raises(MeterEventsSet) as info2:
        await meter.take_snapshot(SnapshotKind.CURRENT)
    snap = info2.value.snapshot
    assert snap is not None and snap.fields.evt == 1 << 18
    key = await meter.public_key()
    check = verify_ocmf(parse_ocmf(snap.ocmf), key)
    assert check.signature_valid and not check.billable


@pytest.mark.parametrize("link", ["tcp", "rtu+tcp", "serial"])
async def test_no_reply_and_late_reply_are_retryable(station: StationFactory, link: str) -> None:
    st = await station(link=link, request_timeout=0.3)
    meter, sim = st.meter(), st.sim()
    sim.faults.no_reply = True
    t0 = time.monotonic()
    with pytest.raises(MeterNoReply) as info:
        await meter.energy()
    assert info.value.action is Action.RETRY
    assert time.monotonic() - t0 < 2
    sim.faults.no_reply = False
    sim.faults.reply_delay = 0.6
    with pytest.raises(MeterNoReply):
        await meter.energy()
    # no pause: the late reply is still on its way while the next requests go out
    sim.faults.reply_delay = 0.1
    assert (await meter.energy()).events == 0
    ident = await meter.identity()
    assert ident.manufacturer == "BAUER Electronic" and ident.meter_address == sim.meter_address


async def test_slow_signer_times_out_and_is_read_back_not_retaken(
    station: StationFactory,
) -> None:
    st = await station(sign_delay=1.0)
    sim = st.sim()
    meter = BsmWs36a(st.bus, unit=42, timeouts=MeterTimeouts(snapshot=0.3, poll_interval=0.02))
    with pytest.raises(SnapshotTimeout) as info:
        await meter.take_snapshot(SnapshotKind.CURRENT)
    assert isinstance(info.value, SnapshotIncomplete)
    assert info.value.action is Action.READ_BACK
    assert info.value.after_rcnt == 0 and sim.nv.rcnt == 0, "committed only once signed"
    snap = await meter.resume_snapshot(SnapshotKind.CURRENT, info.value.after_rcnt, timeout=3)
    assert snap is not None and snap.fields.rcnt == 1
    assert sim.nv.rcnt == 1, "read back, not triggered again"


async def test_pinned_key_mismatch_is_refused(station: StationFactory) -> None:
    st = await station(units=(42, 43))
    other = load_public_key(st.sim(43).public_key_der.hex())
    meter = BsmWs36a(st.bus, unit=42, pinned_key=other)
    with pytest.raises(PublicKeyMismatch):
        await meter.public_key()
    with pytest.raises(PublicKeyMismatch):
        await meter.check_ready()


async def test_two_meters_on_one_bus_and_a_missing_unit(station: StationFactory) -> None:
    st = await station(units=(42, 43), request_timeout=0.3)
    keys = {u: (await st.meter(u).public_key()).der for u in (42, 43)}
    assert keys[42] != keys[43]
    a, b = await asyncio.gather(
        st.meter(42).take_snapshot(SnapshotKind.TURN_ON),
        st.meter(43).take_snapshot(SnapshotKind.TURN_ON),
    )
    assert a.fields.ma1 != b.fields.ma1
    ghost = BsmWs36a(st.bus, unit=44)
    with pytest.raises(MeterNoReply):
        await ghost.energy()


async def test_clock_set_once_a_day_and_never_in_a_transaction(station: StationFactory) -> None:
    st = await station()
    meter = st.meter()
    assert (await meter.clock()).epoch is None
    cest = timezone(timedelta(hours=2))
    state = await meter.set_clock(datetime.now(UTC).astimezone(cest))
    assert state.epoch is not None and abs(state.epoch - time.time()) < 5
    assert state.tzo_minutes == 120 and state.set_count == 1
    with pytest.raises(ClockSetRefused, match="24 h"):
        await meter.set_clock()
    assert (await meter.set_clock(force=True, tzo_minutes=120)).set_count == 2
    await meter.take_snapshot(SnapshotKind.TURN_ON)
    assert (await meter.transaction_state()).open
    with pytest.raises(ClockSetRefused, match="transaction"):
        await meter.set_clock(force=True)
    snap = await meter.take_snapshot(SnapshotKind.TURN_OFF)
    assert not (await meter.transaction_state()).open
    assert parse_ocmf(snap.ocmf).readings[0].time_text.endswith("+0200 S")


async def test_writes_behave_like_the_device(station: StationFactory) -> None:
    st = await station()
    sm = regmap.SIGNING_METER
    # half a data point is rejected
    with pytest.raises(ModbusExceptionReply) as info:
        await st.bus.write(42, sm.wire("Meta1"), bytes_to_registers(b"half", 35))
    assert info.value.exception_code == 0x02
    # read-only registers are silently ignored
    before = await st.bus.read(42, sm.wire("RCnt"), 2)
    await st.bus.write(42, sm.wire("RCnt"), [0x1234, 0x5678])
    assert await st.bus.read(42, sm.wire("RCnt"), 2) == before
    # reads past the map end are a Modbus exception
    with pytest.raises(ModbusExceptionReply):
        await st.bus.read(42, regmap.MAP_WIRE_END - 1, 2)
    with pytest.raises(ValueError, match="Meta1"):
        await st.meter().write_metadata("x" * 141, "", "")


async def test_state_survives_a_power_loss(station: StationFactory) -> None:
    st = await station(persist=True)
    meter = st.meter()
    await meter.identity()
    await meter.write_metadata("rfid:cafe", "evse-id: DE*ABC*E1*2", "")
    begin = await meter.take_snapshot(SnapshotKind.TURN_ON)
    await asyncio.sleep(0.3)
    key_before = st.sim().public_key_der
    cfg = st.sim().config
    st.bus.close()
    await st.sim_bus.aclose()  # power loss of the whole station

    st2 = await station(persist=True, configs={42: cfg})
    meter2 = st2.meter()
    assert st2.sim().public_key_der == key_before
    assert st2.sim().nv.power_downs == 1
    await meter2.identity()
    assert (await meter2.transaction_state()).open
    kept = await meter2.read_snapshot(SnapshotKind.TURN_ON)
    assert kept.ocmf == begin.ocmf and kept.signature == begin.signature
    end = await meter2.take_snapshot(SnapshotKind.TURN_OFF)
    assert end.fields.rcnt == begin.fields.rcnt + 1
    assert end.fields.meta1 == b"rfid:cafe"
    assert end.fields.rcr > 0, "energy charged before the power loss is kept"
    key = load_public_key(key_before.hex())
    assert verify_ocmf(parse_ocmf(end.ocmf), key).signature_valid


async def test_wire_time_emulation_holds_the_bus(station: StationFactory) -> None:
    line = LineSettings(baudrate=19200)
    st = await station(wire_time=line)
    t0 = time.monotonic()
    await st.bus.read(42, regmap.SIGNING_METER.wire("Meta1"), 120)
    took = time.monotonic() - t0
    expected = line.read_seconds(120)
    assert expected == pytest.approx((8 + 245 + 7) * 11 / 19200)
    assert expected <= took < expected + 0.05


async def test_rtu_over_a_real_serial_port(pty_pair: PtyPair) -> None:
    from meter.sim.device import SimulatedBsm, SimulatorConfig

    sim = SimulatedBsm(SimulatorConfig(unit=42, sign_delay=0.05, power_w=200_000.0))
    sim_bus = SimulatedBus([sim])
    await sim_bus.serve_serial(pty_pair.meter_side, LineSettings(baudrate=19200, parity="N"))
    bus = ModbusBus.from_url(f"serial://{pty_pair.controller_side}?baudrate=19200&parity=N")
    try:
        await bus.connect()
        meter = BsmWs36a(bus, unit=42, timeouts=MeterTimeouts(poll_interval=0.01))
        begin, end = await charge_session(meter, seconds=0.3)
        key = await meter.public_key()
        for snap in (begin, end):
            assert verify_ocmf(parse_ocmf(snap.ocmf), key).billable
    finally:
        bus.close()
        await sim_bus.aclose()


def test_free_port_is_bindable() -> None:
    assert 1024 < free_port() < 65536
