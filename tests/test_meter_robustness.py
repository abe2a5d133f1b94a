"""The meter side when things go wrong: late replies, lost triggers, stale OCMF, races,
metadata too long for the OCMF model, corrupt simulator state, odd record files."""

from __future__ import annotations

import asyncio
import json
import re
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    WriteMultipleRegistersResponse,
)

from meter.bsm import registers as regmap
from meter.bsm.driver import BsmWs36a, MeterTimeouts, longest_ocmf_record
from meter.bsm.ocmf import OcmfStyle, build_payload, sign_and_assemble
from meter.errors import (
    Action,
    ClockSetRefused,
    MetadataRefused,
    MeterBusy,
    MeterError,
    MeterEventsSet,
    MeterFaultCode,
    MeterNoReply,
    MeterReplyInvalid,
    SnapshotIncomplete,
    SnapshotTimeout,
)
from meter.modbus.bus import ModbusBus
from meter.modbus.sunspec import registers_to_bytes
from meter.proof.keys import load_public_key, public_der
from meter.proof.ocmf import parse_ocmf, verify_ocmf
from meter.proof.verification import verify_input
from meter.sim.device import SimulatedBsm, SimulatorConfig
from meter.sim.server import SimulatedBus
from meter.snapshot import OcmfIdentity, SnapshotFields, SnapshotKind, SnapshotStatus
from tests.conftest import Station, StationFactory, free_port

COMMON = regmap.COMMON


def text(regs: Sequence[int]) -> bytes:
    return registers_to_bytes(regs).rstrip(b"\0")


def fast(st: Station, **timeouts: float) -> BsmWs36a:
    """A driver on the station's bus with short timeouts."""
    values = {"poll_interval": 0.01, **timeouts}
    return BsmWs36a(st.bus, unit=42, timeouts=MeterTimeouts(**values))


# ---- the bus: a late reply never answers the next request ----------------------------


@pytest.mark.parametrize("link", ["rtu+tcp", "serial", "tcp"])
async def test_a_late_reply_does_not_answer_the_next_request(
    station: StationFactory, link: str
) -> None:
    st = await station(link=link, request_timeout=0.3)
    sim = st.sim()
    sim.faults.reply_delay = 0.4
    with pytest.raises(MeterNoReply):
        await st.bus.read(42, COMMON.wire("Mn"), 16)
    # No pause: the reply to Mn arrives (0.4 s) while the next reads, of the same size,
    # wait for theirs (0.15 s each). Each must get its own data.
    sim.faults.reply_delay = 0.15
    assert text(await st.bus.read(42, COMMON.wire("Md"), 16)) == b"BSM-WS36A-H01-1311-0000"
    assert text(await st.bus.read(42, COMMON.wire("SN"), 16)) == b"99000042"
    assert text(await st.bus.read(42, COMMON.wire("Md"), 16)) == b"BSM-WS36A-H01-1311-0000"
    sim.faults.reply_delay = 0.0
    assert text(await st.bus.read(42, COMMON.wire("Mn"), 16)) == b"BAUER Electronic"


async def test_a_cancelled_request_does_not_leave_its_reply_to_the_next(
    station: StationFactory,
) -> None:
    st = await station(link="rtu+tcp")
    sim = st.sim()
    sim.faults.reply_delay = 0.3
    task = asyncio.create_task(st.bus.read(42, COMMON.wire("Mn"), 16))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sim.faults.reply_delay = 0.1
    assert text(await st.bus.read(42, COMMON.wire("Md"), 16)) == b"BSM-WS36A-H01-1311-0000"
    assert text(await st.bus.read(42, COMMON.wire("SN"), 16)) == b"99000042"


async def test_a_reply_that_does_not_match_is_invalid_and_the_link_reopened(
    station: StationFactory,
) -> None:
    st = await station(link="rtu+tcp")
    await st.bus.connect()
    client = st.bus._client
    assert client is not None

    async def short_reply(*_: Any, **__: Any) -> ReadHoldingRegistersResponse:
        return ReadHoldingRegistersResponse(dev_id=42, registers=[1, 2])

    client.read_holding_registers = short_reply  # type: ignore[method-assign]
    st.bus.read_retries = 0
    with pytest.raises(MeterReplyInvalid, match="2 registers"):
        await st.bus.read(42, COMMON.wire("Mn"), 16)
    assert text(await st.bus.read(42, COMMON.wire("Mn"), 16)) == b"BAUER Electronic"
    assert st.bus._client is not client, "reopened after the mismatched reply"

    # with a retry (the default) the read is asked again on the reopened link
    st.bus.read_retries = 1
    garbled = st.bus._client
    assert garbled is not None
    garbled.read_holding_registers = short_reply  # type: ignore[method-assign]
    assert text(await st.bus.read(42, COMMON.wire("Mn"), 16)) == b"BAUER Electronic"
    assert st.bus.stats.read_retries == 1 and st.bus._client is not garbled

    client = st.bus._client
    assert client is not None

    async def other_write(*_: Any, **__: Any) -> WriteMultipleRegistersResponse:
        return WriteMultipleRegistersResponse(dev_id=42, address=1, count=1)

    client.write_registers = other_write  # type: ignore[method-assign]
    with pytest.raises(MeterReplyInvalid, match="does not answer writing"):
        await st.bus.write(42, regmap.SIGNING_METER.wire("DO"), [0])
    assert st.bus.stats.registers_written == 0


# ---- snapshots: never a second trigger once the first may have landed ----------------


async def session_begin(meter: BsmWs36a) -> int:
    await meter.identity()
    await meter.write_metadata("rfid:00aa11bb", "evse-id: DE*ABC*E1*1", "")
    return (await meter.take_snapshot(SnapshotKind.TURN_ON)).fields.rcnt


async def test_a_timed_out_turn_off_is_read_back_and_keeps_rcnt_plus_one(
    station: StationFactory,
) -> None:
    st = await station()
    sim, meter = st.sim(), fast(st, snapshot=0.3)
    begin = await session_begin(meter)
    sim.config.sign_delay = 0.8  # turn-off coordination is slow today
    with pytest.raises(SnapshotTimeout) as info:
        await meter.take_snapshot(SnapshotKind.TURN_OFF)
    err = info.value
    assert isinstance(err, SnapshotIncomplete) and err.action is Action.READ_BACK
    assert err.kind is SnapshotKind.TURN_OFF and err.after_rcnt == begin
    assert "do not trigger again" in str(err)

    end = await meter.resume_snapshot(SnapshotKind.TURN_OFF, err.after_rcnt, timeout=3)
    assert end is not None and end.fields.rcnt == begin + 1
    assert sim.nv.rcnt == begin + 1, "read back, not triggered a second time"
    assert parse_ocmf(end.ocmf).pagination == f"T{begin + 1}"
    # nothing newer than the end: None, and still no trigger
    assert await meter.resume_snapshot(SnapshotKind.TURN_OFF, end.fields.rcnt) is None
    assert sim.nv.rcnt == begin + 1


async def test_an_updating_model_is_waited_for_not_triggered_again(
    station: StationFactory,
) -> None:
    st = await station(sign_delay=0.3)
    sim, meter = st.sim(), fast(st)
    sim.trigger(SnapshotKind.CURRENT)  # e.g. by a take_snapshot that gave up
    st.bus.stats.reset()
    snap = await meter.take_snapshot(SnapshotKind.CURRENT)
    assert snap.fields.rcnt == 1 and sim.nv.rcnt == 1
    assert st.bus.stats.writes == 0


class LosingReplies(ModbusBus):
    """Loses the reply to the next snapshot trigger (after or before it reached the meter)."""

    arrives: bool = True
    armed: bool = True

    async def write(self, unit: int, address: int, values: Sequence[int]) -> None:
        if self.armed and list(values) == [SnapshotStatus.UPDATING]:
            self.armed = False
            if self.arrives:
                await super().write(unit, address, values)
            raise MeterNoReply(f"unit {unit}: no reply writing at {address}")
        await super().write(unit, address, values)


async def test_a_trigger_whose_reply_is_lost_is_followed_not_repeated(
    station: StationFactory,
) -> None:
    st = await station()
    sim = st.sim()
    bus = LosingReplies.from_url(st.url)
    assert isinstance(bus, LosingReplies)
    try:
        meter = BsmWs36a(bus, unit=42, timeouts=MeterTimeouts(poll_interval=0.01))
        snap = await meter.take_snapshot(SnapshotKind.CURRENT)
        assert snap.fields.rcnt == 1 and sim.nv.rcnt == 1

        bus.armed, bus.arrives = True, False  # this time the write never reached the meter
        with pytest.raises(SnapshotIncomplete) as info:
            await meter.take_snapshot(SnapshotKind.CURRENT)
        assert info.value.after_rcnt == 1 and sim.nv.rcnt == 1
        assert await meter.resume_snapshot(SnapshotKind.CURRENT, info.value.after_rcnt) is None
        again = await meter.take_snapshot(SnapshotKind.CURRENT)  # now a new trigger is safe
        assert again.fields.rcnt == 2
    finally:
        bus.close()


async def test_concurrent_read_snapshot_does_not_disturb_take_snapshot(
    station: StationFactory,
) -> None:
    st = await station(sign_delay=0.3)
    meter = fast(st, poll_interval=0.05)
    first = await meter.take_snapshot(SnapshotKind.TURN_ON)
    seen: list[str] = []

    async def monitor() -> None:  # e.g. a status page showing the last turn-on record
        for _ in range(40):
            try:
                seen.append(f"T{(await meter.read_snapshot(SnapshotKind.TURN_ON)).fields.rcnt}")
            except MeterBusy:
                seen.append("busy")
            await asyncio.sleep(0.01)

    mon = asyncio.create_task(monitor())
    await asyncio.sleep(0.02)
    await meter.take_snapshot(SnapshotKind.TURN_OFF)
    second = await meter.take_snapshot(SnapshotKind.TURN_ON)
    await mon
    assert second.fields.rcnt == first.fields.rcnt + 2
    assert "busy" in seen and f"T{first.fields.rcnt}" in seen


async def test_a_snapshot_replaced_while_it_is_read_is_busy_not_invalid(
    station: StationFactory,
) -> None:
    """read_snapshot reads the snapshot model, then the OCMF model: a new snapshot signed in
    between leaves an OCMF of a later snapshot, which no wait makes match. That is the meter
    being busy with a newer one (read again), not a faulty meter, and it is said at once."""
    st = await station(sign_delay=0.05)
    meter = fast(st, ocmf_lag=5.0)
    first = await meter.take_snapshot(SnapshotKind.TURN_ON)
    model = regmap.SNAPSHOT_MODELS[SnapshotKind.TURN_ON]
    stale = await meter._read_snapshot_block(model)  # what a reader got just before...
    await meter.take_snapshot(SnapshotKind.TURN_OFF)
    newer = await meter.take_snapshot(SnapshotKind.TURN_ON)  # ...a new one was signed
    real = meter._read_snapshot_block

    async def read_once_stale(m: Any) -> Any:
        meter._read_snapshot_block = real  # type: ignore[method-assign]
        return stale

    meter._read_snapshot_block = read_once_stale  # type: ignore[method-assign,assignment]
    started = asyncio.get_running_loop().time()
    with pytest.raises(MeterBusy, match=f"T{first.fields.rcnt} was replaced while it was read"):
        await meter.read_snapshot(SnapshotKind.TURN_ON)
    assert asyncio.get_running_loop().time() - started < 1.0  # not after the OCMF lag
    again = await meter.read_snapshot(SnapshotKind.TURN_ON)
    assert again.fields.rcnt == newer.fields.rcnt and again.ocmf == newer.ocmf


# ---- the OCMF must be the snapshot's own ------------------------------------------------


class Withheld:
    """OCMF text the simulator wanted to write."""

    def __init__(self) -> None:
        self.records: list[bytes | str | int] = []
        self.event = asyncio.Event()


def withhold_ocmf(sim: SimulatedBsm, kind: SnapshotKind) -> Withheld:
    """Keep the simulator from writing new OCMF text for `kind`; returns what it withheld."""
    withheld = Withheld()
    original = sim._put
    ocmf_model = regmap.OCMF_MODELS[kind]

    def put(model: Any, name: str, value: int | bytes | str) -> None:
        if model is ocmf_model and name == "O":
            withheld.records.append(value)
            withheld.event.set()
            return
        original(model, name, value)

    sim._put = put  # type: ignore[method-assign]
    return withheld


def release_ocmf(sim: SimulatedBsm, kind: SnapshotKind, record: bytes | str | int) -> None:
    SimulatedBsm._put(sim, regmap.OCMF_MODELS[kind], "O", record)


async def test_a_stale_ocmf_is_not_taken_for_the_new_snapshot(station: StationFactory) -> None:
    st = await station()
    sim = st.sim()
    key = load_public_key(sim.public_key_der.hex())
    meter = BsmWs36a(
        st.bus, unit=42, pinned_key=key, timeouts=MeterTimeouts(poll_interval=0.01, ocmf_lag=0.2)
    )
    await meter.identity()
    await meter.write_metadata("customer-A", "", "")
    first = await meter.take_snapshot(SnapshotKind.TURN_ON)
    await meter.take_snapshot(SnapshotKind.TURN_OFF)

    withheld = withhold_ocmf(sim, SnapshotKind.TURN_ON)
    await meter.write_metadata("customer-B", "", "")
    with pytest.raises(SnapshotIncomplete) as info:
        await meter.take_snapshot(SnapshotKind.TURN_ON)
    err = info.value
    assert isinstance(err.__cause__, MeterReplyInvalid)
    assert "PG 'T1'" in str(err) and err.after_rcnt == first.fields.rcnt + 1
    assert err.snapshot is not None and err.snapshot.ocmf == ""
    assert err.snapshot.fields.rcnt == 3 and err.snapshot.fields.meta1 == b"customer-B"

    release_ocmf(sim, SnapshotKind.TURN_ON, withheld.records[-1])  # the OCMF catches up
    snap = await meter.resume_snapshot(SnapshotKind.TURN_ON, err.after_rcnt)
    assert snap is not None and snap.fields.rcnt == 3 and sim.nv.rcnt == 3
    record = parse_ocmf(snap.ocmf)
    assert record.pagination == "T3" and record.identification == "customer-B"
    assert verify_ocmf(record, key).signature_valid


async def test_an_ocmf_that_lags_a_little_is_waited_for(station: StationFactory) -> None:
    st = await station()
    sim, meter = st.sim(), fast(st, ocmf_lag=2.0)
    await meter.identity()
    await meter.take_snapshot(SnapshotKind.CURRENT)
    withheld = withhold_ocmf(sim, SnapshotKind.CURRENT)

    async def late_ocmf() -> None:
        await withheld.event.wait()
        await asyncio.sleep(0.3)
        release_ocmf(sim, SnapshotKind.CURRENT, withheld.records[-1])

    helper = asyncio.create_task(late_ocmf())
    snap = await meter.take_snapshot(SnapshotKind.CURRENT)
    await helper
    assert parse_ocmf(snap.ocmf).pagination == "T2" == f"T{snap.fields.rcnt}"


@pytest.mark.parametrize(("point", "value"), [("St", SnapshotStatus.INVALID), ("Typ", 2)])
async def test_the_ocmf_model_must_show_valid_and_the_kind(
    station: StationFactory, point: str, value: int
) -> None:
    st = await station()
    sim, meter = st.sim(), fast(st, ocmf_lag=0.1)
    await meter.identity()
    await meter.take_snapshot(SnapshotKind.TURN_ON)
    sim._put(regmap.OCMF_MODELS[SnapshotKind.TURN_ON], point, value)
    with pytest.raises(MeterReplyInvalid, match="OCMF model shows Typ") as info:
        await meter.read_snapshot(SnapshotKind.TURN_ON)
    assert info.value.snapshot is not None and info.value.snapshot.fields.rcnt == 1


# ---- the clock and open transactions -----------------------------------------------------


async def test_set_clock_waits_for_a_turn_on_being_signed_and_is_refused(
    station: StationFactory,
) -> None:
    st = await station(sign_delay=0.4)
    sim, meter = st.sim(), fast(st)
    task = asyncio.create_task(meter.take_snapshot(SnapshotKind.TURN_ON))
    await asyncio.sleep(0.1)  # triggered, the meter still signs
    with pytest.raises(ClockSetRefused, match="transaction"):
        await meter.set_clock(force=True)
    assert task.done(), "set_clock waited for the snapshot to end"
    await task
    assert sim.nv.epoch_set_count == 0


async def test_a_turn_on_being_taken_is_an_open_transaction(station: StationFactory) -> None:
    st = await station(sign_delay=0.5)
    sim, meter = st.sim(), fast(st)
    assert not (await meter.transaction_state()).open
    sim.trigger(SnapshotKind.TURN_ON)  # by another master, or a driver that gave up on it
    state = await meter.transaction_state()
    assert state.open and "being taken" in state.reason
    with pytest.raises(ClockSetRefused, match="transaction"):
        await meter.set_clock(force=True)
    assert sim.nv.epoch_set_count == 0


# ---- metadata and the OCMF model's 496 registers ----------------------------------------


async def test_metadata_that_could_overflow_the_ocmf_is_refused_before_writing(
    station: StationFactory,
) -> None:
    st = await station()
    sim, meter = st.sim(), fast(st)
    with pytest.raises(MetadataRefused) as info:  # within 140/100/100 bytes, but escaped
        await meter.write_metadata('rfid:"quoted"|' * 10, "evse|" * 20, "x|" * 50)
    assert isinstance(info.value, ValueError) and isinstance(info.value, MeterError)
    assert info.value.action is Action.REFUSED and "OCMF record" in str(info.value)
    assert meter.cached_identity is not None, "the identity was read for the bound"
    assert sim.nv.meta == ["", "", ""] and sim.nv.rcnt == 0


async def test_the_longest_accepted_metadata_still_gets_its_ocmf(
    station: StationFactory,
) -> None:
    st = await station()
    sim, meter = st.sim(), fast(st)
    ident = await meter.identity()
    meta1, meta2 = b"rfid:", b"evse-id: DE*ABC*E1*1"
    while longest_ocmf_record(ident, meta1 + b"|", meta2, b"") < 992:
        meta1 += b"|"  # escaped as \u007c: six bytes each in the record
    assert 20 < len(meta1) < 140
    await meter.write_metadata(meta1, meta2, "")
    with pytest.raises(MetadataRefused):
        await meter.write_metadata(meta1 + b"|", meta2, "")
    snap = await meter.take_snapshot(SnapshotKind.TURN_ON)
    assert snap.ocmf and len(snap.ocmf.encode()) < regmap.OCMF_TEXT_REGISTERS * 2
    record = parse_ocmf(snap.ocmf)
    assert record.identification == meta1.decode()
    assert verify_ocmf(record, load_public_key(sim.public_key_der.hex())).signature_valid


def test_the_bound_covers_the_real_records() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    ident = OcmfIdentity("BAUER Electronic", "BSM-WS36A-H01-1311-0000", "1.9:32CA:AFF4", "f1d")
    from meter.snapshot import MeterIdentity

    meter_ident = MeterIdentity(
        ident.manufacturer, ident.model, "", ident.version_meter, "1", 42, "", "",
        ident.version_meter, ident.version_comm, "001BZR1521070006", b"", "00000000",
    )  # fmt: skip
    meta = (b'contract-id: \x01\\"|', b"evse-id: DE*ABC*E1*1", b"x" * 100)
    bound = longest_ocmf_record(meter_ident, *meta)
    for style in OcmfStyle:
        for rcnt, wh in ((1, 0), (4294967295, 4294967295)):
            fields = SnapshotFields(
                typ=2, rcr=wh, tot_wh_imp=wh, wh_sf=1, w=0, w_sf=1, ma1=b"001BZR1521070006",
                rcnt=rcnt, os=1, epoch=1700000000, tzo=-720, epoch_set_cnt=1, epoch_set_os=1,
                di=1, do=0, meta1=meta[0], meta2=meta[1], meta3=meta[2], evt=0x10000,
            )  # fmt: skip
            record = sign_and_assemble(key, build_payload(fields, ident, style))
            assert len(record.encode()) <= bound
    assert public_der(key)


# ---- readiness: event flags and the F.F error code ---------------------------------------


async def test_check_ready_fails_on_an_error_code(station: StationFactory) -> None:
    st = await station()
    sim, meter = st.sim(), fast(st)
    await meter.check_ready()
    sim.faults.error_code = "00000100"
    with pytest.raises(MeterFaultCode) as info:
        await meter.check_ready()
    assert info.value.code == "00000100" and info.value.action is Action.FAULT
    sim.faults.error_code = None
    sim.faults.events = 1 << 16
    with pytest.raises(MeterEventsSet):
        await meter.check_ready()
    assert await meter.error_code() == "00010000"


# ---- the simulator on the wire ----------------------------------------------------------


async def test_the_simulator_knows_only_function_codes_3_and_16(station: StationFactory) -> None:
    st = await station(request_timeout=0.5)
    sim = st.sim()
    port = int(st.url.rsplit(":", 1)[1])
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.5, retries=0)
    await client.connect()
    try:
        st_address = regmap.SNAPSHOT_MODELS[SnapshotKind.CURRENT].wire("St")
        calls: list[Callable[[], Any]] = [
            lambda: client.read_input_registers(40000, count=2, device_id=42),
            lambda: client.write_register(st_address, 2, device_id=42),
            lambda: client.read_coils(40000, count=1, device_id=42),
            lambda: client.write_coil(40000, True, device_id=42),
            lambda: client.diag_read_bus_message_count(device_id=42),
        ]
        for call in calls:
            reply = await call()
            assert reply.isError() and reply.exception_code == 0x01, reply
        assert sim.nv.rcnt == 0, "FC6 St=2 triggered nothing"
        ok = await client.read_holding_registers(40000, count=2, device_id=42)
        assert not ok.isError() and ok.registers == [0x5375, 0x6E53]
    finally:
        client.close()


async def test_the_simulator_labels_a_late_reply_with_its_own_request() -> None:
    a = SimulatedBsm(SimulatorConfig(unit=42))
    b = SimulatedBsm(SimulatorConfig(unit=43))
    sim_bus = SimulatedBus([a, b])
    port = free_port()
    await sim_bus.serve_tcp("127.0.0.1", port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        sn = COMMON.wire("SN")

        def request(tid: int, unit: int) -> bytes:
            return struct.pack(">HHHBBHH", tid, 0, 6, unit, 3, sn, 4)

        a.faults.reply_delay = 0.4
        writer.write(request(10, 42))
        await writer.drain()
        await asyncio.sleep(0.2)  # a master gives up on unit 42 and asks unit 43
        b.faults.reply_delay = 0.05
        writer.write(request(11, 43))
        await writer.drain()
        replies = {}
        for _ in range(2):
            head = await asyncio.wait_for(reader.readexactly(9), 3)
            tid, _, _, unit, _, count = struct.unpack(">HHHBBB", head)
            replies[tid] = (unit, await reader.readexactly(count))
        assert replies == {10: (42, b"99000042"), 11: (43, b"99000043")}
    finally:
        writer.close()
        await sim_bus.aclose()


# ---- the simulator's state file ---------------------------------------------------------


def _corruptions() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    def model(key: str, change: Callable[[str], str]) -> Callable[[dict[str, Any]], None]:
        def apply(data: dict[str, Any]) -> None:
            data["models"][key] = change(data["models"][key])

        return apply

    def setter(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda data: data.__setitem__(key, value)

    def drop(key: str) -> Callable[[dict[str, Any]], None]:
        return lambda data: data.pop(key)

    return [
        ("truncated image", model("snapshot-0", lambda h: h[:100])),
        ("image too long", model("snapshot-0", lambda h: h + "ffff" * 4)),
        ("image of another model", model("ocmf-1", lambda h: "fd85" + h[4:])),
        ("not hex", model("ocmf-2", lambda h: "zz" + h[2:])),
        ("unknown model", lambda d: d["models"].update({"snapshot-7": "00"})),
        ("missing model", lambda d: d["models"].pop("ocmf-4")),
        ("meta empty", setter("meta", [])),
        ("meta not hex", setter("meta", ["zz", "", ""])),
        ("meta too long", setter("meta", ["41" * 141, "", ""])),
        ("rcnt as text", setter("rcnt", "5")),
        ("rcnt a bool", setter("rcnt", True)),
        ("negative energy", setter("total_wh", -1.0)),
        ("do 2", setter("do", 2)),
        ("unknown key", setter("colour", "red")),
        ("missing key", drop("tzo")),
        ("models a list", setter("models", [])),
    ]


async def test_a_corrupt_state_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    cfg = SimulatorConfig(unit=42, key_file=tmp_path / "k.pem", state_file=tmp_path / "s.json")
    sim = SimulatedBsm(cfg)
    sim.trigger(SnapshotKind.CURRENT)
    await sim.aclose()
    good = json.loads(cfg.state_file.read_text())  # type: ignore[union-attr]
    assert SimulatedBsm(cfg).nv.power_downs == 1, "the file as written loads"
    path = tmp_path / "s.json"
    for label, corrupt in _corruptions():
        data = json.loads(json.dumps(good))
        corrupt(data)
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=re.escape(str(path))) as info:
            SimulatedBsm(cfg)
        assert "\n" not in str(info.value), label
    for raw in ("[]", "{", "null"):
        path.write_text(raw)
        with pytest.raises(ValueError, match=re.escape(str(path))):
            SimulatedBsm(cfg)


# ---- chargepoint verify: records are lines, split on "\n" only ---------------------------


def test_records_are_split_on_newlines_only(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    ident = OcmfIdentity("BAUER Electronic", "BSM", "1.9", "f1d")
    records = []
    for n, meta in enumerate(("Kunde\u2028Nord", "Linie\x85Zwei\x1cDrei\x0cVier"), start=1):
        fields = SnapshotFields(
            typ=n, rcr=0, tot_wh_imp=100, wh_sf=1, w=0, w_sf=1, ma1=b"001SIM1599000042",
            rcnt=n, os=1, epoch=1700000000, tzo=60, epoch_set_cnt=1, epoch_set_os=1, di=1,
            do=0, meta1=meta.encode(), meta2=b"", meta3=b"", evt=0,
        )  # fmt: skip
        payload = build_payload(fields, ident, OcmfStyle.KWH_TWO_DECIMALS)
        records.append(sign_and_assemble(key, payload))
    key_hex = public_der(key).hex()
    single = verify_input(records[0], key_hex)
    assert single.ok and len(single.lines) == 1, single.lines
    path = tmp_path / "records.txt"
    path.write_bytes(("\r\n".join(records) + "\r\n\r\n").encode())
    both = verify_input(str(path), key_hex)
    assert both.ok, both.lines
    assert [line.split(":")[0] for line in both.lines] == ["verified", "verified"]
    assert "record 2: meter 001SIM1599000042, T2," in both.lines[1]
