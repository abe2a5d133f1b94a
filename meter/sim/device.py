"""A simulated BSM-WS36A: the device's register map, behaviour and non-volatile state.

This module knows nothing of Modbus transports; `meter.sim.server` puts one or more of
these devices on a bus. The device:
- holds the full register map (wire 40000 .. 44293) with the real model lengths;
- accepts metadata, clock, DO and snapshot-trigger writes, ignores writes to read-only
  registers and rejects writes that cover a data point only in part;
- takes a snapshot on St=2 (switch-measurement coordination for turn-on/turn-off), signs
  it after a configurable delay with a real P-256 key (snapshot signature and OCMF);
- integrates energy at a configurable power while its output (DO and DOE) is on;
- keeps key, counters, clock setting and the last snapshots in a state file, as the
  device's EEPROM does through a power loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from meter.bsm import registers as regmap
from meter.bsm.ocmf import OcmfStyle, build_payload, sign_and_assemble
from meter.bsm.signature import sign_snapshot
from meter.modbus.sunspec import (
    ModelInstance,
    Point,
    PointType,
    bytes_to_registers,
    decode_string,
    u32,
)
from meter.proof.keys import load_or_create_private_key, public_der
from meter.snapshot import OcmfIdentity, SnapshotFields, SnapshotKind, SnapshotStatus

log = logging.getLogger("chargepoint.meter.simulator")

ILLEGAL_ADDRESS = 0x02
BASE = regmap.MAP_WIRE_START
SIZE = regmap.MAP_WIRE_END - regmap.MAP_WIRE_START
ENERGY_SAVE_INTERVAL_S = 10.0
STATE_VERSION = 1


@dataclass
class SimulatorConfig:
    """What a simulated meter is and how it behaves."""

    unit: int = regmap.DEFAULT_UNIT
    serial: str = ""  # 8 digits; derived from the unit id when empty
    sign_delay: float = 2.0  # seconds from trigger to a valid snapshot
    power_w: float = 11000.0  # drawn while the output is on
    ocmf_style: OcmfStyle = OcmfStyle.KWH_TWO_DECIMALS
    manufacturer: str = "BAUER Electronic"
    model: str = "BSM-WS36A-H01-1311-0000"
    version_meter: str = "1.9:32CA:AFF4"
    version_comm: str = "f1d3d06"
    initial_energy_wh: float = 1230.0  # the factory test leaves some energy on the register
    key_file: Path | None = None  # P-256 key, created once when missing
    state_file: Path | None = None  # non-volatile state; None keeps everything in memory

    def serial_number(self) -> str:
        return self.serial or f"9900{self.unit:04d}"

    @property
    def wh_sf(self) -> int:
        """Resolution of the energy registers: 10 Wh on newer firmware, 1 Wh on older."""
        return 1 if self.ocmf_style is OcmfStyle.KWH_TWO_DECIMALS else 0


@dataclass
class Faults:
    """Injected faults; change them at any time."""

    snapshot_status: SnapshotStatus | None = None  # every snapshot ends with this status
    events: int = 0  # Evt flags in the AC meter model and in new snapshots
    error_code: str | None = None  # F.F code in ErrM; None: 00010000 with events, else 00000000
    no_reply: bool = False  # the meter does not answer at all
    reply_delay: float = 0.0  # extra seconds before every reply
    doe_high: bool = True  # charge release input (the contactor closes only with DOE high)
    contactor_welded: bool = False  # the contactor stays closed whatever DO says
    crc_errors: int = 0  # the next N replies go out with a broken CRC (line noise)


@dataclass
class NonVolatile:
    """What the real device keeps through a power loss."""

    version: int = STATE_VERSION
    rcnt: int = 0
    total_wh: float = 0.0
    rcr_wh: float = 0.0
    operating_seconds: float = 0.0
    power_downs: int = 0
    clock_offset: float | None = None  # meter epoch minus host time, None while never set
    tzo: int = -0x8000
    epoch_set_count: int = 0
    epoch_set_os: int = 0
    do: int = 0
    meta: list[str] = field(default_factory=lambda: ["", "", ""])  # hex
    models: dict[str, str] = field(default_factory=dict)  # snapshot/OCMF model images, hex


class SimulatedBsm:
    """One simulated meter; thread-unsafe, lives on one event loop."""

    def __init__(
        self, config: SimulatorConfig, private_key: ec.EllipticCurvePrivateKey | None = None
    ) -> None:
        self.config = config
        self.faults = Faults()
        if private_key is None:
            if config.key_file is None:
                private_key = ec.generate_private_key(ec.SECP256R1())
            else:
                private_key = load_or_create_private_key(config.key_file)
        self.private_key = private_key
        self.public_key_der = public_der(private_key)
        self.regs = [0] * SIZE
        self.nv = NonVolatile(total_wh=config.initial_energy_wh)
        self._mono_start = time.monotonic()
        self._os_base = 0.0
        self._last_energy_update = time.monotonic()
        self._last_energy_save = time.monotonic()
        self._power_now = 0.0
        self._issued_rcnt = 0
        self._tasks: dict[SnapshotKind, asyncio.Task[None]] = {}
        self._background_save: asyncio.Task[None] | None = None
        self._save_lock = asyncio.Lock()
        self._di_changed: tuple[int, int, int] = (0xFFFFFFFF, 0xFFFFFFFF, -0x8000)
        self._do_changed: tuple[int, int, int] = (0xFFFFFFFF, 0xFFFFFFFF, -0x8000)
        self._build_static()
        self._load_state()
        self.refresh()

    # ---- identity and static registers ------------------------------------------------

    @property
    def meter_address(self) -> str:
        return f"001SIM15{self.config.serial_number()}"

    @property
    def ocmf_identity(self) -> OcmfIdentity:
        c = self.config
        return OcmfIdentity(c.manufacturer, c.model, c.version_meter, c.version_comm)

    def _put(self, model: ModelInstance, name: str, value: int | bytes | str) -> None:
        p = model.get(name)
        self._put_point(model, p, value)

    def _put_point(self, model: ModelInstance, p: Point, value: int | bytes | str) -> None:
        at = model.wire_start + p.offset - BASE
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, bytes):
            self.regs[at : at + p.size] = bytes_to_registers(value, p.size)
        elif p.size == 2:
            value &= 0xFFFFFFFF
            self.regs[at : at + 2] = [value >> 16, value & 0xFFFF]
        else:
            self.regs[at] = value & 0xFFFF

    def _get(self, model: ModelInstance, name: str) -> list[int]:
        p = model.get(name)
        at = model.wire_start + p.offset - BASE
        return self.regs[at : at + p.size]

    def _build_static(self) -> None:
        c = self.config
        self.regs[0:2] = [regmap.SUNSPEC_MARKER >> 16, regmap.SUNSPEC_MARKER & 0xFFFF]
        for m in regmap.ALL_MODELS:
            self._put(m, "ID", m.model_id)
            self._put(m, "L", m.length)
            for p in m.points:
                if p.type is PointType.PAD:
                    self._put_point(m, p, 0x8000)
        end = regmap.END_MODEL_ADDRESS - 1 - BASE
        self.regs[end : end + 2] = [0xFFFF, 0]
        cm = regmap.COMMON
        self._put(cm, "Mn", c.manufacturer)
        self._put(cm, "Md", c.model)
        self._put(cm, "Vr", c.version_meter)
        self._put(cm, "SN", c.serial_number())
        self._put(cm, "DA", c.unit)
        sh = regmap.SERIAL_HEADER
        self._put(sh, "St", 1)
        self._put(sh, "Ctl", 0xFFFF)
        self._put(sh, "Typ", 2)
        si = regmap.SERIAL_INTERFACE
        self._put(si, "Rte", 19200)
        for name, v in (("Bits", 8), ("Pty", 2), ("Dup", 1), ("Flw", 0), ("Typ", 2), ("Pcol", 1)):
            self._put(si, name, v)
        ac = regmap.AC_METER
        for name, v in (
            ("A_SF", -2),
            ("V_SF", -1),
            ("Hz_SF", -2),
            ("W_SF", 1),
            ("VA_SF", 1),
            ("VAR_SF", 1),
            ("PF_SF", -2),
            ("TotWh_SF", c.wh_sf),
        ):
            self._put(ac, name, v)
        for name in ("PhVphA", "PhVphB", "PhVphC"):
            self._put(ac, name, 2300)
        self._put(ac, "Hz", 5000)
        for name in ("VA", "VAphA", "VAphB", "VAphC", "VAR", "VARphA", "VARphB", "VARphC"):
            self._put(ac, name, 0)
        sm = regmap.SIGNING_METER
        self._put(sm, "ErrM", "00000000")
        self._put(sm, "SNM", f"00000000{c.serial_number()}")
        self._put(sm, "SNC", hashlib.sha256(c.serial_number().encode()).hexdigest()[:16])
        self._put(sm, "VrM", c.version_meter)
        self._put(sm, "VrC", c.version_comm)
        self._put(sm, "MA1", self.meter_address)
        self._put(sm, "RCR_SF", c.wh_sf)
        self._put(sm, "NPK", 48)
        self._put(sm, "BPK", len(self.public_key_der))
        self._put(sm, "PK", self.public_key_der)
        fw = regmap.FIRMWARE_HASH
        self._put(fw, "Typ", 0)
        self._put(fw, "NB", 16)
        self._put(fw, "BB", 32)
        self._put(
            fw, "B", hashlib.sha256(f"simulated comm module {c.version_comm}".encode()).digest()
        )
        for kind in SnapshotKind:
            snap, ocmf = regmap.SNAPSHOT_MODELS[kind], regmap.OCMF_MODELS[kind]
            self._put(snap, "Typ", kind)
            self._put(snap, "St", SnapshotStatus.INVALID)
            self._put(snap, "NSig", 48)
            self._put(ocmf, "Typ", kind)
            self._put(ocmf, "St", SnapshotStatus.INVALID)

    # ---- time, energy and the contactor ------------------------------------------------

    @property
    def operating_seconds(self) -> int:
        return int(self._os_base + time.monotonic() - self._mono_start)

    @property
    def epoch(self) -> int:
        if self.nv.clock_offset is None:
            return 0xFFFFFFFF
        return int(time.time() + self.nv.clock_offset)

    @property
    def contactor_closed(self) -> bool:
        return self.faults.contactor_welded or (bool(self.nv.do) and self.faults.doe_high)

    @property
    def di(self) -> int:
        """NC feedback contact of the contactor: 1 while the contactor is open."""
        return 0 if self.contactor_closed else 1

    def set_power(self, watts: float) -> None:
        """What the load would draw through a closed contactor."""
        self._update_energy()
        self.config.power_w = watts

    def _update_energy(self, save: bool = True) -> None:
        now = time.monotonic()
        dt = now - self._last_energy_update
        self._last_energy_update = now
        self._power_now = self.config.power_w if self.contactor_closed else 0.0
        if dt > 0 and self._power_now:
            wh = self._power_now * dt / 3600.0
            self.nv.total_wh += wh
            self.nv.rcr_wh += wh
        if save and now - self._last_energy_save > ENERGY_SAVE_INTERVAL_S:
            self._last_energy_save = now
            self._persist_soon()

    def _energy_register(self, wh: float) -> int:
        return int(wh // (10**self.config.wh_sf)) & 0xFFFFFFFF

    def _set_do(self, value: int) -> None:
        self._update_energy()
        value &= 1
        if value != self.nv.do:
            before_di = self.di
            self.nv.do = value
            stamp = (self.operating_seconds, self.epoch, self.nv.tzo)
            self._do_changed = stamp
            if self.di != before_di:
                self._di_changed = stamp

    def refresh(self) -> None:
        """Bring the measured and counted registers up to date (before every read)."""
        self._update_energy()
        ac, sm = regmap.AC_METER, regmap.SIGNING_METER
        watts = self._power_now
        amps = watts / (3 * 230.0)
        self._put(ac, "W", _int16_power(watts / 10))
        for name in ("WphA", "WphB", "WphC"):
            self._put(ac, name, _int16_power(watts / 30))
        self._put(ac, "A", round(amps * 300))
        for name in ("AphA", "AphB", "AphC"):
            self._put(ac, name, round(amps * 100))
        for name in ("PFphA", "PFphB", "PFphC"):
            self._put(ac, name, 100 if watts else 0)
        self._put(ac, "TotWhImp", self._energy_register(self.nv.total_wh))
        self._put(ac, "Evt", self.faults.events)
        code = self.faults.error_code
        if code is None:
            code = "00000000" if not self.faults.events else "00010000"
        self._put(sm, "ErrM", code)
        self._put(sm, "RCR", self._energy_register(self.nv.rcr_wh))
        self._put(sm, "PDCnt", self.nv.power_downs)
        self._put(sm, "RCnt", self.nv.rcnt)
        self._put(sm, "OS", self.operating_seconds)
        self._put(sm, "Epoch", self.epoch)
        self._put(sm, "TZO", self.nv.tzo)
        self._put(sm, "EpochSetCnt", self.nv.epoch_set_count)
        self._put(sm, "EpochSetOS", self.nv.epoch_set_os)
        self._put(sm, "DI", self.di)
        self._put(sm, "DO", self.nv.do)
        for prefix, stamp in (("DI", self._di_changed), ("DO", self._do_changed)):
            self._put(sm, f"{prefix}ChgOS", stamp[0])
            self._put(sm, f"{prefix}ChgEpoch", stamp[1])
            self._put(sm, f"{prefix}ChgTZO", stamp[2])

    # ---- register access ---------------------------------------------------------------

    def read(self, address: int, count: int) -> list[int]:
        self.refresh()
        at = address - BASE
        return self.regs[at : at + count]

    async def write(self, address: int, values: list[int]) -> int | None:
        """Apply a FC16 write and keep it non-volatile; returns a Modbus exception code."""
        code = self.apply_write(address, values)
        if code is None:
            await self.persist()
        return code

    def apply_write(self, address: int, values: list[int]) -> int | None:
        """Apply a FC16 write to the registers; returns a Modbus exception code or None."""
        at, end = address, address + len(values)
        if at < BASE or end > BASE + SIZE:
            return ILLEGAL_ADDRESS
        self.refresh()
        touched: list[tuple[ModelInstance, Point]] = []
        for m in regmap.ALL_MODELS:
            if end <= m.wire_start or at >= m.wire_end:
                continue
            for p in m.points:
                p_start = m.wire_start + p.offset
                p_end = p_start + p.size
                if p_end <= at or p_start >= end:
                    continue
                if p.type is not PointType.BLOB and (p_start < at or p_end > end):
                    return ILLEGAL_ADDRESS  # a data point must be written whole
                touched.append((m, p))
        for m, p in touched:
            if not p.writable:
                continue  # the device silently ignores read-only registers
            p_start = m.wire_start + p.offset
            raw = values[p_start - at : p_start - at + p.size]
            self._write_point(m, p, raw)
        self.refresh()
        return None

    def _write_point(self, m: ModelInstance, p: Point, raw: list[int]) -> None:
        if m is regmap.SIGNING_METER:
            if p.name == "Epoch":
                epoch = u32(raw)
                self.nv.clock_offset = epoch - time.time()
                self.nv.epoch_set_count += 1
                self.nv.epoch_set_os = self.operating_seconds
                if self.nv.tzo == -0x8000:
                    self.nv.tzo = 0
                log.info("unit %d: clock set to %d", self.config.unit, epoch)
            elif p.name == "TZO":
                self.nv.tzo = raw[0] - 0x10000 if raw[0] & 0x8000 else raw[0]
            elif p.name == "DO":
                self._set_do(raw[0])
            elif p.name in ("Meta1", "Meta2", "Meta3"):
                idx = int(p.name[-1]) - 1
                self.nv.meta[idx] = decode_string(raw).hex()
                self._put_point(m, p, bytes.fromhex(self.nv.meta[idx]))
            return
        if p.name == "St" and m.model_id == 64901 and raw[0] == SnapshotStatus.UPDATING:
            self.trigger(next(k for k, sm in regmap.SNAPSHOT_MODELS.items() if sm is m))
        # DA and Rte are accepted but do not move the simulated meter.

    # ---- snapshots ---------------------------------------------------------------------

    def snapshot_status(self, kind: SnapshotKind) -> SnapshotStatus:
        return SnapshotStatus(self._get(regmap.SNAPSHOT_MODELS[kind], "St")[0])

    def trigger(self, kind: SnapshotKind) -> None:
        """St=2 written: collect the values now, sign after the signing delay."""
        running = self._tasks.get(kind)
        if running is not None and not running.done():
            return  # already updating
        snap_model, ocmf_model = regmap.SNAPSHOT_MODELS[kind], regmap.OCMF_MODELS[kind]
        self._put(snap_model, "St", SnapshotStatus.UPDATING)
        self._put(ocmf_model, "St", SnapshotStatus.UPDATING)
        failure = self._coordinate(kind)
        fields = None if failure is not None else self._collect(kind)
        loop = asyncio.get_running_loop()
        self._tasks[kind] = loop.create_task(self._finish(kind, fields, failure))
        log.info("unit %d: %s snapshot triggered", self.config.unit, kind.name.lower())

    def _coordinate(self, kind: SnapshotKind) -> SnapshotStatus | None:
        """Switch-measurement coordination; returns a failure status or None."""
        if self.faults.snapshot_status is not None:
            return self.faults.snapshot_status
        if kind in (SnapshotKind.TURN_ON, SnapshotKind.TURN_OFF):
            self._set_do(0)
            if self.di != 1:  # contactor still closed: feedback wrong
                return SnapshotStatus.WRONG_CONTACTOR_FEEDBACK
            if kind is SnapshotKind.TURN_ON:
                self.nv.rcr_wh = 0.0
        return None

    def _collect(self, kind: SnapshotKind) -> SnapshotFields:
        self.refresh()
        # RCnt is committed with the signed snapshot: one cut off by a power loss is not counted
        self._issued_rcnt = max(self._issued_rcnt, self.nv.rcnt) + 1
        meta = [bytes.fromhex(h) for h in self.nv.meta]
        fields = SnapshotFields(
            typ=int(kind),
            rcr=self._energy_register(self.nv.rcr_wh),
            tot_wh_imp=self._energy_register(self.nv.total_wh),
            wh_sf=self.config.wh_sf,
            w=_int16_power(self._power_now / 10),
            w_sf=1,
            ma1=self.meter_address.encode(),
            rcnt=self._issued_rcnt,
            os=self.operating_seconds,
            epoch=self.epoch,
            tzo=self.nv.tzo,
            epoch_set_cnt=self.nv.epoch_set_count,
            epoch_set_os=self.nv.epoch_set_os,
            di=self.di,
            do=self.nv.do,
            meta1=meta[0],
            meta2=meta[1],
            meta3=meta[2],
            evt=self.faults.events,
        )
        if kind is SnapshotKind.TURN_ON:
            self._set_do(1)  # switching demand on: the contactor closes once DOE is high
        return fields

    async def _finish(
        self, kind: SnapshotKind, fields: SnapshotFields | None, failure: SnapshotStatus | None
    ) -> None:
        await asyncio.sleep(self.config.sign_delay)
        snap_model, ocmf_model = regmap.SNAPSHOT_MODELS[kind], regmap.OCMF_MODELS[kind]
        if fields is None:
            status = failure if failure is not None else SnapshotStatus.GENERAL_ERROR
            self._put(snap_model, "St", status)
            self._put(ocmf_model, "St", status)
            log.info(
                "unit %d: %s snapshot failed: %s", self.config.unit, kind.name.lower(), status.name
            )
            return
        self.write_signed(kind, fields)
        self.nv.rcnt = max(self.nv.rcnt, fields.rcnt)
        # Like the device, keep the signed snapshot non-volatile before it reads as valid.
        state = self._state()
        self._put(snap_model, "St", SnapshotStatus.UPDATING)
        self._put(ocmf_model, "St", SnapshotStatus.UPDATING)
        await self.persist(state)
        self._put(snap_model, "St", SnapshotStatus.VALID)
        self._put(ocmf_model, "St", SnapshotStatus.VALID)

    def write_signed(self, kind: SnapshotKind, fields: SnapshotFields) -> None:
        """Sign a snapshot and put it, with its OCMF, into the two models."""
        snap_model, ocmf_model = regmap.SNAPSHOT_MODELS[kind], regmap.OCMF_MODELS[kind]
        signature = sign_snapshot(self.private_key, fields)
        payload = build_payload(fields, self.ocmf_identity, self.config.ocmf_style)
        record = sign_and_assemble(self.private_key, payload).encode("utf-8")
        if len(record) >= regmap.OCMF_TEXT_REGISTERS * 2:
            record = b""  # does not fit: the device would leave the OCMF empty
        for name, v in (
            ("RCR", fields.rcr),
            ("TotWhImp", fields.tot_wh_imp),
            ("Wh_SF", fields.wh_sf),
            ("W", fields.w),
            ("W_SF", fields.w_sf),
            ("MA1", fields.ma1),
            ("RCnt", fields.rcnt),
            ("OS", fields.os),
            ("Epoch", fields.epoch),
            ("TZO", fields.tzo),
            ("EpochSetCnt", fields.epoch_set_cnt),
            ("EpochSetOS", fields.epoch_set_os),
            ("DI", fields.di),
            ("DO", fields.do),
            ("Meta1", fields.meta1),
            ("Meta2", fields.meta2),
            ("Meta3", fields.meta3),
            ("Evt", fields.evt),
            ("BSig", len(signature)),
            ("Sig", signature),
        ):
            self._put(snap_model, name, v)
        self._put(ocmf_model, "O", record)
        self._put(snap_model, "St", SnapshotStatus.VALID)
        self._put(ocmf_model, "St", SnapshotStatus.VALID)
        log.info("unit %d: %s snapshot T%d valid", self.config.unit, kind.name.lower(), fields.rcnt)

    async def aclose(self) -> None:
        """Power down cleanly: finish nothing, keep the state."""
        tasks = [*self._tasks.values(), *([self._background_save] if self._background_save else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.persist()

    # ---- non-volatile state ------------------------------------------------------------

    async def persist(self, state: dict[str, Any] | None = None) -> None:
        """Write the non-volatile state (in a worker thread, in order)."""
        path = self.config.state_file
        if path is None:
            return
        data = state if state is not None else self._state()
        async with self._save_lock:
            await asyncio.to_thread(_atomic_write_json, path, data)

    def _persist_soon(self) -> None:
        if self.config.state_file is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._background_save is None or self._background_save.done():
            self._background_save = loop.create_task(self.persist())

    def _state(self) -> dict[str, Any]:
        """The non-volatile state as it is now, ready to be written."""
        self._update_energy(save=False)
        self.nv.operating_seconds = float(self.operating_seconds)
        models: dict[str, str] = {}
        for kind in SnapshotKind:
            for label, m in (
                ("snapshot", regmap.SNAPSHOT_MODELS[kind]),
                ("ocmf", regmap.OCMF_MODELS[kind]),
            ):
                at = m.wire_start - BASE
                image = self.regs[at : at + m.length + 2]
                if label == "snapshot" and image[3] == SnapshotStatus.UPDATING:
                    image = [*image[:3], SnapshotStatus.INVALID, *image[4:]]
                if label == "ocmf" and image[3] == SnapshotStatus.UPDATING:
                    image = [*image[:3], SnapshotStatus.INVALID, *image[4:]]
                models[f"{label}-{int(kind)}"] = bytes(
                    b for r in image for b in r.to_bytes(2, "big")
                ).hex()
        self.nv.models = models
        return asdict(self.nv)

    def _load_state(self) -> None:
        path = self.config.state_file
        if path is None or not path.exists():
            return
        try:
            nv, images = parse_state(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"meter state file {path} is unusable: {exc}") from None
        nv.power_downs += 1
        self.nv = nv
        self._os_base = nv.operating_seconds
        for m, image in images:
            at = m.wire_start - BASE
            self.regs[at : at + len(image)] = image
        sm = regmap.SIGNING_METER
        for idx, name in enumerate(("Meta1", "Meta2", "Meta3")):
            self._put(sm, name, bytes.fromhex(nv.meta[idx]))
        log.info("unit %d: state restored from %s (T%d)", self.config.unit, path, nv.rcnt)


def _state_models() -> dict[str, ModelInstance]:
    models: dict[str, ModelInstance] = {}
    for kind in SnapshotKind:
        models[f"snapshot-{int(kind)}"] = regmap.SNAPSHOT_MODELS[kind]
        models[f"ocmf-{int(kind)}"] = regmap.OCMF_MODELS[kind]
    return models


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_META_LIMITS = (140, 100, 100)  # bytes of Meta1..3


def _number(name: str, value: Any, low: float, high: float, integer: bool = True) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (integer and not isinstance(value, int))
    ):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} {value} is out of range")


def _hex_bytes(name: str, value: Any) -> bytes:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise ValueError(f"{name} must be a string of hex byte pairs")
    return bytes.fromhex(value)


def parse_state(data: Any) -> tuple[NonVolatile, list[tuple[ModelInstance, list[int]]]]:
    """Check a state file's whole structure; ValueError naming the first problem.

    Returns the non-volatile state and the snapshot/OCMF model images (ID, L and payload)
    to put back into the register map.
    """
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    expected = {f.name for f in dataclass_fields(NonVolatile)}
    unknown, missing = set(data) - expected, expected - set(data)
    if unknown or missing:
        raise ValueError(
            f"keys differ: unknown {sorted(unknown) or '-'}, missing {sorted(missing) or '-'}"
        )
    if data["version"] != STATE_VERSION or isinstance(data["version"], bool):
        raise ValueError(f"version {data['version']!r}, expected {STATE_VERSION}")
    u32_max = 0xFFFFFFFF
    for name in ("rcnt", "power_downs", "epoch_set_count", "epoch_set_os"):
        _number(name, data[name], 0, u32_max)
    for name in ("total_wh", "rcr_wh", "operating_seconds"):
        _number(name, data[name], 0, 1e15, integer=False)
    if data["clock_offset"] is not None:
        _number("clock_offset", data["clock_offset"], -1e12, 1e12, integer=False)
    _number("tzo", data["tzo"], -0x8000, 0x7FFF)
    _number("do", data["do"], 0, 1)
    meta = data["meta"]
    if not isinstance(meta, list) or len(meta) != 3:
        raise ValueError("meta must be a list of 3 hex strings")
    for n, (text, limit) in enumerate(zip(meta, _META_LIMITS, strict=True), start=1):
        raw = _hex_bytes(f"meta {n}", text)
        if len(raw) > limit or b"\0" in raw:
            raise ValueError(f"meta {n} is not a Meta{n} the meter can hold")
    models = data["models"]
    wanted = _state_models()
    if not isinstance(models, dict) or set(models) != set(wanted):
        got = sorted(models) if isinstance(models, dict) else type(models).__name__
        raise ValueError(f"models must hold exactly {sorted(wanted)}, not {got}")
    images: list[tuple[ModelInstance, list[int]]] = []
    for key, m in wanted.items():
        raw = _hex_bytes(f"model {key}", models[key])
        if len(raw) != (m.length + 2) * 2:
            raise ValueError(f"model {key} has {len(raw) // 2} registers, expected {m.length + 2}")
        image = [int.from_bytes(raw[k : k + 2], "big") for k in range(0, len(raw), 2)]
        if image[0] != m.model_id or image[1] != m.length:
            raise ValueError(f"model {key} starts with {image[:2]}, not [{m.model_id}, {m.length}]")
        images.append((m, image))
    return NonVolatile(**data), images


def _int16_power(tens_of_watts: float) -> int:
    """W register value (W_SF 1), clamped to what an int16 can hold."""
    return max(-32767, min(32767, round(tens_of_watts)))


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
