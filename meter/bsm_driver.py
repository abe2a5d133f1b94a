"""Async driver for the Bauer BSM-WS36A signing meter over a Modbus bus.

Reads are split at data-point boundaries and never exceed 125 registers; a snapshot is
read back with the fewest frames the register map allows, and the OCMF text only up to
its terminating NUL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from meter import bsm_registers as regmap
from meter.bsm_decode import snapshot_fields
from meter.bsm_ocmf import OcmfStyle, build_payload, max_record_length
from meter.bsm_signature import verify_snapshot_signature
from meter.bus import ModbusBus
from meter.errors import (
    ClockSetRefused,
    MeterError,
    MeterEventsSet,
    MeterNoReply,
    MeterReplyInvalid,
    PublicKeyMismatch,
    SnapshotTimeout,
    snapshot_error,
)
from meter.keys import PublicKeyInfo, load_public_key
from meter.ocmf import OcmfFormatError, parse_ocmf, verify_ocmf
from meter.snapshot import (
    MeterIdentity,
    SignedSnapshot,
    SnapshotFields,
    SnapshotKind,
    SnapshotStatus,
    scaled,
)
from meter.sunspec import (
    MAX_READ_REGISTERS,
    BlockView,
    ModelInstance,
    bytes_to_registers,
    plan_reads,
    registers_to_bytes,
    u32,
)

log = logging.getLogger("chargepoint.meter")

CLOCK_SET_MIN_INTERVAL_S = 24 * 3600
META_LIMITS = {1: 140, 2: 100, 3: 100}  # bytes (70/50/50 registers)


class SignatureInvalid(MeterError):
    """A snapshot read from the meter does not verify against the pinned key."""


@dataclass(frozen=True)
class MeterTimeouts:
    """Named timeouts of the meter state machine."""

    snapshot: float = 15.0  # trigger to valid; turn-on coordination alone may take 10 s
    poll_interval: float = 0.05  # between status polls while the meter signs


@dataclass(frozen=True)
class EnergyReading:
    total_wh: Decimal | None
    power_w: Decimal | None
    events: int


@dataclass(frozen=True)
class ClockState:
    epoch: int | None  # None while never set
    tzo_minutes: int | None
    set_count: int
    set_at_os: int
    operating_seconds: int

    @property
    def seconds_since_set(self) -> int | None:
        if self.set_count == 0:
            return None
        return self.operating_seconds - self.set_at_os


@dataclass(frozen=True)
class TransactionState:
    """What the meter's own snapshot counters say about an open transaction."""

    open: bool
    reason: str


class BsmWs36a:
    """One BSM-WS36A on a bus."""

    def __init__(
        self,
        bus: ModbusBus,
        unit: int = regmap.DEFAULT_UNIT,
        pinned_key: PublicKeyInfo | None = None,
        timeouts: MeterTimeouts | None = None,
    ) -> None:
        self.bus = bus
        self.unit = unit
        self.pinned_key = pinned_key
        self.timeouts = timeouts or MeterTimeouts()
        self._identity: MeterIdentity | None = None
        self._last_rcnt: int | None = None
        self._ocmf_style: OcmfStyle | None = None
        self._snapshot_lock = asyncio.Lock()

    # ---- plain reads -------------------------------------------------------------------

    async def _read_span(self, model: ModelInstance, first: str, last: str) -> BlockView:
        view: BlockView | None = None
        for req in plan_reads(model, model.span(first, last)):
            regs = await self.bus.read(self.unit, req.address, req.count)
            if view is None:
                view = BlockView(model, req.address, regs)
            else:
                view.merge(req.address, regs)
        assert view is not None
        return view

    async def identity(self) -> MeterIdentity:
        """Manufacturer, model, serials, MA1, both firmware versions and the firmware hash."""
        head = await self.bus.read(self.unit, regmap.MAP_WIRE_START, 70)  # SunS + common model
        if u32(head) != regmap.SUNSPEC_MARKER or head[2] != regmap.COMMON.model_id:
            raise MeterReplyInvalid(f"unit {self.unit}: no SunSpec device at 40001")
        common = BlockView(regmap.COMMON, regmap.COMMON.wire_start, head[2:])
        sm = await self._read_span(regmap.SIGNING_METER, "ID", "MA1")
        if sm.number("ID") != regmap.SIGNING_METER.model_id:
            raise MeterReplyInvalid(f"unit {self.unit}: signing meter model not at 40198")
        fw = await self._read_span(regmap.FIRMWARE_HASH, "ID", "B")
        if fw.number("ID") != regmap.FIRMWARE_HASH.model_id:
            raise MeterReplyInvalid(f"unit {self.unit}: firmware hash model not at 40500")
        fw_bytes = min(fw.number("BB"), 32)
        ident = MeterIdentity(
            manufacturer=_text(common.string("Mn")),
            model=_text(common.string("Md")),
            options=_text(common.string("Opt")),
            version=_text(common.string("Vr")),
            serial_number=_text(common.string("SN")),
            device_address=common.number("DA"),
            meter_serial=_text(sm.string("SNM")),
            comm_serial=_text(sm.string("SNC")),
            version_meter=_text(sm.string("VrM")),
            version_comm=_text(sm.string("VrC")),
            meter_address=_text(sm.string("MA1")),
            firmware_hash=fw.blob("B", fw_bytes),
            error_code=_text(sm.string("ErrM")),
        )
        self._identity = ident
        return ident

    @property
    def cached_identity(self) -> MeterIdentity | None:
        """The identity read last, if any."""
        return self._identity

    async def ensure_identity(self) -> MeterIdentity:
        """The identity, read once (the OCMF length prediction needs it)."""
        if self._identity is None:
            return await self.identity()
        return self._identity

    async def energy(self) -> EnergyReading:
        """Total imported energy (Wh), momentary power (W) and the event flags."""
        v = await self._read_span(regmap.AC_METER, "W", "Evt")
        wh_sf, w_sf = v.number("TotWh_SF"), v.number("W_SF")
        total = v.value("TotWhImp")
        power = v.value("W")
        return EnergyReading(
            total_wh=None
            if total is None or wh_sf == -0x8000
            else scaled(v.number("TotWhImp"), wh_sf),
            power_w=None if power is None or w_sf == -0x8000 else scaled(v.number("W"), w_sf),
            events=v.number("Evt"),
        )

    async def public_key(self) -> PublicKeyInfo:
        """The meter's public key; PublicKeyMismatch if a pinned key is set and differs."""
        v = await self._read_span(regmap.SIGNING_METER, "NPK", "PK")
        count = v.number("BPK")
        if not 0 < count <= v.number("NPK") * 2 or v.number("NPK") > 48:
            raise MeterReplyInvalid(f"unit {self.unit}: public key length {count} out of range")
        der = v.blob("PK", count)
        try:
            key = load_public_key(der.hex())
        except ValueError as exc:
            raise MeterReplyInvalid(f"unit {self.unit}: unreadable public key: {exc}") from exc
        if self.pinned_key is not None and key.der != self.pinned_key.der:
            raise PublicKeyMismatch(self.pinned_key.der_hex, key.der_hex)
        return key

    async def check_ready(self) -> PublicKeyInfo:
        """Fail with a typed error unless the meter may sign billable readings now."""
        reading = await self.energy()
        if reading.events:
            raise MeterEventsSet(reading.events)
        return await self.public_key()

    async def clock(self) -> ClockState:
        v = await self._read_span(regmap.SIGNING_METER, "OS", "EpochSetOS")
        epoch, tzo = v.number("Epoch"), v.number("TZO")
        unset = epoch == 0xFFFFFFFF or tzo == -0x8000
        return ClockState(
            epoch=None if unset else epoch,
            tzo_minutes=None if unset else tzo,
            set_count=v.number("EpochSetCnt"),
            set_at_os=v.number("EpochSetOS"),
            operating_seconds=v.number("OS"),
        )

    # ---- writes ------------------------------------------------------------------------

    async def write_metadata(
        self, meta1: str | bytes, meta2: str | bytes, meta3: str | bytes
    ) -> None:
        """Write all three metadata strings (empty clears one); Meta1 becomes the OCMF ID."""
        values = {1: _meta_bytes(1, meta1), 2: _meta_bytes(2, meta2), 3: _meta_bytes(3, meta3)}
        sm = regmap.SIGNING_METER
        regs12 = bytes_to_registers(values[1], 70) + bytes_to_registers(values[2], 50)
        await self.bus.write(self.unit, sm.wire("Meta1"), regs12)
        await self.bus.write(self.unit, sm.wire("Meta3"), bytes_to_registers(values[3], 50))
        log.info("unit %d: metadata written (Meta1 %d bytes)", self.unit, len(values[1]))

    async def set_digital_output(self, on: bool) -> None:
        await self.bus.write(self.unit, regmap.SIGNING_METER.wire("DO"), [1 if on else 0])

    async def transaction_state(self) -> TransactionState:
        """Open when a turn-on (or start) snapshot is newer than the matching turn-off (end)."""
        counters: dict[SnapshotKind, tuple[int, int]] = {}
        for kind in (
            SnapshotKind.TURN_ON,
            SnapshotKind.TURN_OFF,
            SnapshotKind.START,
            SnapshotKind.END,
        ):
            v = await self._read_span(regmap.SNAPSHOT_MODELS[kind], "St", "RCnt")
            counters[kind] = (v.number("St"), v.number("RCnt"))
        for begin, end in (
            (SnapshotKind.TURN_ON, SnapshotKind.TURN_OFF),
            (SnapshotKind.START, SnapshotKind.END),
        ):
            (st_b, rc_b), (_, rc_e) = counters[begin], counters[end]
            if st_b in (SnapshotStatus.VALID, SnapshotStatus.UPDATING) and rc_b > rc_e:
                return TransactionState(
                    True, f"{begin.name.lower()} snapshot T{rc_b} has no end yet"
                )
        return TransactionState(False, "no open turn-on or start snapshot")

    async def set_clock(
        self, when: datetime | None = None, tzo_minutes: int | None = None, force: bool = False
    ) -> ClockState:
        """Set Epoch and TZO together. Refused within 24 h of the last set unless forced,
        and always refused while a transaction is open on this meter."""
        state = await self.clock()
        since = state.seconds_since_set
        if since is not None and since < CLOCK_SET_MIN_INTERVAL_S and not force:
            raise ClockSetRefused(
                f"clock was set {since} s ago (meter operating seconds); setting it more "
                "often than once in 24 h shortens the meter's life (use force to override)"
            )
        tx = await self.transaction_state()
        if tx.open:
            raise ClockSetRefused(f"a transaction is open on this meter ({tx.reason})")
        when = when or datetime.now(UTC).astimezone()
        if tzo_minutes is None:
            offset = when.utcoffset()
            tzo_minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        if not -720 <= tzo_minutes <= 840:
            raise ClockSetRefused(f"time zone offset {tzo_minutes} min out of range")
        epoch = int(when.timestamp())
        values = [epoch >> 16, epoch & 0xFFFF, tzo_minutes & 0xFFFF]
        await self.bus.write(self.unit, regmap.SIGNING_METER.wire("Epoch"), values)
        log.info("unit %d: clock set to %d (TZO %+d min)", self.unit, epoch, tzo_minutes)
        return await self.clock()

    # ---- snapshots ---------------------------------------------------------------------

    async def take_snapshot(self, kind: SnapshotKind) -> SignedSnapshot:
        """Trigger a snapshot, wait until the meter has signed it, and read it back.

        Raises a SnapshotFailed subclass for each failure status, SnapshotTimeout when the
        meter keeps signing past the snapshot timeout, MeterEventsSet (with `.snapshot`)
        when the signed snapshot carries event flags.
        """
        async with self._snapshot_lock:
            model = regmap.SNAPSHOT_MODELS[kind]
            if self._last_rcnt is None:
                self._last_rcnt = await self._global_rcnt()
            started = time.monotonic()
            await self._trigger(kind, model)
            await self._wait_valid(kind, model, started)
            snap = await self._read_signed(kind, model)
            log.info(
                "unit %d: %s snapshot T%d signed in %.2f s",
                self.unit,
                kind.name.lower(),
                snap.fields.rcnt,
                time.monotonic() - started,
            )
            if not snap.fields.events_ok:
                err = MeterEventsSet(snap.fields.evt)
                err.snapshot = snap  # type: ignore[attr-defined]
                raise err
            return snap

    async def read_snapshot(self, kind: SnapshotKind) -> SignedSnapshot:
        """Read the last snapshot of a kind without triggering a new one."""
        model = regmap.SNAPSHOT_MODELS[kind]
        st = (await self.bus.read(self.unit, model.wire("St"), 1))[0]
        if st != SnapshotStatus.VALID:
            raise snapshot_error(kind, st)
        return await self._read_signed(kind, model, require_new=False)

    async def _global_rcnt(self) -> int:
        regs = await self.bus.read(self.unit, regmap.SIGNING_METER.wire("RCnt"), 2)
        return u32(regs)

    async def _trigger(self, kind: SnapshotKind, model: ModelInstance) -> None:
        address = model.wire("St")
        for attempt in (1, 2):
            try:
                await self.bus.write(self.unit, address, [SnapshotStatus.UPDATING])
                return
            except MeterNoReply:
                # The write may have reached the meter: writing again would take a second
                # snapshot and break RCnt +1 between begin and end. Look before retrying.
                log.warning(
                    "unit %d: no reply to %s trigger (attempt %d)", self.unit, kind.name, attempt
                )
                regs = await self.bus.read(self.unit, address, 18)  # St .. RCnt
                if regs[0] == SnapshotStatus.UPDATING or u32(regs, 16) > (self._last_rcnt or 0):
                    return
        raise MeterNoReply(f"unit {self.unit}: {kind.name.lower()} snapshot could not be triggered")

    async def _wait_valid(self, kind: SnapshotKind, model: ModelInstance, started: float) -> None:
        address = model.wire("St")
        deadline = started + self.timeouts.snapshot
        while True:
            await asyncio.sleep(self.timeouts.poll_interval)
            try:
                st = (await self.bus.read(self.unit, address, 1))[0]
            except MeterNoReply:
                st = SnapshotStatus.UPDATING  # the meter may hold its reply while it signs
            if st == SnapshotStatus.VALID:
                return
            if st != SnapshotStatus.UPDATING:
                raise snapshot_error(kind, st)
            if time.monotonic() >= deadline:
                raise SnapshotTimeout(
                    kind, SnapshotStatus.UPDATING, f"{self.timeouts.snapshot:.0f} s"
                )

    async def _read_signed(
        self, kind: SnapshotKind, model: ModelInstance, require_new: bool = True
    ) -> SignedSnapshot:
        view = await self._read_snapshot_block(model)
        fields = snapshot_fields(view)
        if fields.typ != kind:
            raise MeterReplyInvalid(
                f"unit {self.unit}: snapshot type {fields.typ} in the {kind.name} model"
            )
        if require_new and self._last_rcnt is not None and fields.rcnt <= self._last_rcnt:
            raise MeterReplyInvalid(
                f"unit {self.unit}: snapshot T{fields.rcnt} is not newer than T{self._last_rcnt}"
            )
        self._last_rcnt = max(fields.rcnt, self._last_rcnt or 0)
        signature = view.blob("Sig", view.number("BSig"))
        ocmf = await self._read_ocmf(kind, fields)
        snap = SignedSnapshot(kind, SnapshotStatus.VALID, fields, signature, ocmf)
        self._check_signatures(snap)
        return snap

    async def _read_snapshot_block(self, model: ModelInstance) -> BlockView:
        """Typ .. BSig plus only as many Sig registers as BSig says."""
        points = (*model.span("Typ", "BSig"), model.get("Sig"))
        sig_start = model.wire("Sig")
        view: BlockView | None = None
        for req in plan_reads(model, points):
            count = req.count
            if view is not None and req.address + req.count > sig_start:
                try:
                    bsig = view.number("BSig")
                except KeyError:
                    bsig = None
                if bsig is not None:
                    nsig, max_bytes = view.number("NSig"), model.get("Sig").size * 2
                    if not 0 < bsig <= min(nsig * 2, max_bytes):
                        raise MeterReplyInvalid(
                            f"unit {self.unit}: signature length {bsig} out of range"
                        )
                    count = min(count, sig_start + (bsig + 1) // 2 - req.address)
                    if count <= 0:
                        break
            regs = await self.bus.read(self.unit, req.address, count)
            if view is None:
                view = BlockView(model, req.address, regs)
            else:
                view.merge(req.address, regs)
        assert view is not None
        bsig = view.number("BSig")
        if not 0 < bsig <= view.number("NSig") * 2:
            raise MeterReplyInvalid(f"unit {self.unit}: signature length {bsig} out of range")
        return view

    def _predicted_ocmf_bytes(self, fields: SnapshotFields) -> int | None:
        if self._identity is None:
            return None
        style = self._ocmf_style or OcmfStyle.KWH_TWO_DECIMALS
        try:
            payload = build_payload(fields, self._identity.ocmf_identity(), style)
        except (ValueError, KeyError):
            return None
        return max_record_length(payload)

    async def _read_ocmf(self, kind: SnapshotKind, fields: SnapshotFields) -> str:
        """The OCMF text of a snapshot, read only up to its terminating NUL."""
        model = regmap.OCMF_MODELS[kind]
        start = model.wire("O")
        total = regmap.OCMF_TEXT_REGISTERS
        predicted = self._predicted_ocmf_bytes(fields)
        first = total if predicted is None else min(total, predicted // 2 + 1)
        data = b""
        offset = 0
        want = first
        while offset < total:
            if offset >= want:  # the prediction fell short: go on in full reads
                want = min(total, offset + MAX_READ_REGISTERS)
            count = min(MAX_READ_REGISTERS, want - offset)
            regs = await self.bus.read(self.unit, start + offset, count)
            chunk = registers_to_bytes(regs)
            data += chunk
            offset += count
            nul = data.find(b"\0")
            if nul >= 0:
                data = data[:nul]
                break
        if not data.startswith(b"OCMF|"):
            raise MeterReplyInvalid(
                f"unit {self.unit}: no OCMF record in the {kind.name} OCMF model"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MeterReplyInvalid(f"unit {self.unit}: OCMF text is not UTF-8: {exc}") from exc
        try:
            record = parse_ocmf(text)
        except OcmfFormatError as exc:
            raise MeterReplyInvalid(f"unit {self.unit}: unreadable OCMF: {exc}") from exc
        if record.readings:
            unit_name = str(record.readings[0].unit or "")
            self._ocmf_style = (
                OcmfStyle.KWH_TWO_DECIMALS if unit_name == "kWh" else OcmfStyle.WH_INTEGER
            )
        return text

    def _check_signatures(self, snap: SignedSnapshot) -> None:
        if self.pinned_key is None:
            return
        result = verify_snapshot_signature(snap.fields, snap.signature, self.pinned_key)
        if not result.valid:
            raise SignatureInvalid(
                f"unit {self.unit}: snapshot T{snap.fields.rcnt}: {result.reason}"
            )
        check = verify_ocmf(parse_ocmf(snap.ocmf), self.pinned_key)
        if not check.signature_valid:
            raise SignatureInvalid(f"unit {self.unit}: OCMF T{snap.fields.rcnt}: {check.reason}")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _meta_bytes(n: int, value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if b"\0" in raw:
        raise ValueError(f"Meta{n} must not contain NUL bytes")
    if len(raw) > META_LIMITS[n]:
        raise ValueError(f"Meta{n} is {len(raw)} bytes; the meter holds {META_LIMITS[n]}")
    return raw


__all__ = [
    "BsmWs36a",
    "ClockState",
    "EnergyReading",
    "MeterTimeouts",
    "SignatureInvalid",
    "TransactionState",
]
