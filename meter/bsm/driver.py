"""Async driver for the Bauer BSM-WS36A signing meter over a Modbus bus.

Reads are split at data-point boundaries and never exceed 125 registers; a snapshot is
read back with the fewest frames the register map allows, and the OCMF text only up to
its terminating NUL.

A snapshot is triggered at most once per `take_snapshot` call, and never again once the
trigger may have reached the meter: every later failure is `SnapshotIncomplete` (read it
back with `resume_snapshot`), because a second snapshot between a session's begin and end
breaks the RCnt +1 rule transparency software checks (field guide 1.4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from meter.bsm import registers as regmap
from meter.bsm.decode import snapshot_fields
from meter.bsm.ocmf import OcmfStyle, build_payload, max_record_length
from meter.bsm.signature import verify_snapshot_signature
from meter.errors import (
    ClockSetRefused,
    MetadataRefused,
    MeterBusy,
    MeterConnectionError,
    MeterError,
    MeterEventsSet,
    MeterFaultCode,
    MeterNoReply,
    MeterReplyInvalid,
    ModbusExceptionReply,
    PublicKeyMismatch,
    SignatureInvalid,
    SnapshotFailed,
    SnapshotIncomplete,
    SnapshotTimeout,
    snapshot_error,
)
from meter.interface import ClockState, EnergyReading, TransactionState
from meter.modbus.bus import ModbusBus
from meter.modbus.sunspec import (
    MAX_READ_REGISTERS,
    BlockView,
    ModelInstance,
    bytes_to_registers,
    plan_reads,
    registers_to_bytes,
    u32,
)
from meter.proof.keys import PublicKeyInfo, load_public_key
from meter.proof.ocmf import OcmfFormatError, OcmfRecord, parse_ocmf, verify_ocmf
from meter.snapshot import (
    MeterIdentity,
    SignedSnapshot,
    SnapshotFields,
    SnapshotKind,
    SnapshotStatus,
    scaled,
)

log = logging.getLogger("chargepoint.meter")

CLOCK_SET_MIN_INTERVAL_S = 24 * 3600
META_LIMITS = {1: 140, 2: 100, 3: 100}  # bytes (70/50/50 registers)
OCMF_TEXT_BYTES = regmap.OCMF_TEXT_REGISTERS * 2  # the record and its terminating NUL
ERRM_OK = ("", "00000000")
_ST_TO_RCNT = 18  # St .. RCnt of a snapshot model
# Retried while polling: the meter may hold (or garble) a reply while it signs.
_TRANSIENT = (MeterNoReply, MeterReplyInvalid, MeterConnectionError)
# Definite outcomes of a snapshot read back; anything else after a trigger is incomplete.
_DEFINITE = (SnapshotFailed, SnapshotIncomplete, MeterEventsSet, SignatureInvalid)


@dataclass(frozen=True)
class MeterTimeouts:
    """Named timeouts of the meter state machine."""

    snapshot: float = 15.0  # trigger to valid; turn-on coordination alone may take 10 s
    poll_interval: float = 0.05  # between status polls while the meter signs
    ocmf_lag: float = 2.0  # how long the OCMF model may lag behind its snapshot model


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

    async def error_code(self) -> str:
        """ErrM, the F.F error code: "00000000" (or empty) while the meter is fine."""
        v = await self._read_span(regmap.SIGNING_METER, "ErrM", "ErrM")
        return _text(v.string("ErrM")).strip()

    async def check_ready(self) -> PublicKeyInfo:
        """Fail with a typed error unless the meter may sign billable readings now:
        MeterEventsSet (Evt flags), MeterFaultCode (F.F code), PublicKeyMismatch."""
        reading = await self.energy()
        if reading.events:
            raise MeterEventsSet(reading.events)
        code = await self.error_code()
        if code not in ERRM_OK:
            raise MeterFaultCode(code)
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
        """Write all three metadata strings (empty clears one); Meta1 becomes the OCMF ID.

        MetadataRefused (a ValueError) for a string the meter cannot hold, or when the
        OCMF record of a snapshot with this metadata could outgrow the OCMF model's text
        (the meter would then sign a snapshot without OCMF). Reads the identity once.
        """
        values = {1: _meta_bytes(1, meta1), 2: _meta_bytes(2, meta2), 3: _meta_bytes(3, meta3)}
        identity = await self.ensure_identity()
        longest = longest_ocmf_record(identity, values[1], values[2], values[3])
        if longest >= OCMF_TEXT_BYTES:
            raise MetadataRefused(
                f"Meta1-3 ({len(values[1])}/{len(values[2])}/{len(values[3])} bytes) could make "
                f"an OCMF record of {longest} bytes; the meter holds {OCMF_TEXT_BYTES - 1} "
                "(shorten the metadata; escaped characters count more)"
            )
        sm = regmap.SIGNING_METER
        regs12 = bytes_to_registers(values[1], 70) + bytes_to_registers(values[2], 50)
        await self.bus.write(self.unit, sm.wire("Meta1"), regs12)
        await self.bus.write(self.unit, sm.wire("Meta3"), bytes_to_registers(values[3], 50))
        log.info("unit %d: metadata written (Meta1 %d bytes)", self.unit, len(values[1]))

    async def set_digital_output(self, on: bool) -> None:
        await self.bus.write(self.unit, regmap.SIGNING_METER.wire("DO"), [1 if on else 0])

    async def transaction_state(self) -> TransactionState:
        """Open when a turn-on (or start) snapshot is being taken, or is newer than the
        matching turn-off (end)."""
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
            if st_b == SnapshotStatus.UPDATING:
                return TransactionState(True, f"a {begin.name.lower()} snapshot is being taken")
            if st_b == SnapshotStatus.VALID and rc_b > rc_e:
                return TransactionState(
                    True, f"{begin.name.lower()} snapshot T{rc_b} has no end yet"
                )
        return TransactionState(False, "no open turn-on or start snapshot")

    async def set_clock(
        self, when: datetime | None = None, tzo_minutes: int | None = None, force: bool = False
    ) -> ClockState:
        """Set Epoch and TZO together. Refused within 24 h of the last set unless forced,
        and always refused while a transaction is open on this meter. Holds the snapshot
        lock throughout, so no snapshot of this driver starts between check and write."""
        async with self._snapshot_lock:
            return await self._set_clock(when, tzo_minutes, force)

    async def _set_clock(
        self, when: datetime | None, tzo_minutes: int | None, force: bool
    ) -> ClockState:
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

        Before the trigger: plain errors (MeterNoReply, ...), nothing was triggered.
        The trigger write refused by the meter: ModbusExceptionReply.
        After the trigger: a SnapshotFailed subclass for each failure status (nothing
        signed); MeterEventsSet / SignatureInvalid with `.snapshot` when the signed snapshot
        carries event flags or does not verify; SnapshotIncomplete (SnapshotTimeout when the
        meter keeps signing) for anything else: then call `resume_snapshot(kind,
        err.after_rcnt)`, never take_snapshot again for the same purpose.
        If the model is already updating (an earlier trigger), it is waited for, not
        triggered again.
        """
        async with self._snapshot_lock:
            model = regmap.SNAPSHOT_MODELS[kind]
            baseline = await self._global_rcnt()
            status = (await self.bus.read(self.unit, model.wire("St"), 1))[0]
            started = time.monotonic()
            if status == SnapshotStatus.UPDATING:
                # An earlier trigger is still being served: wait for it, trigger nothing.
                after = u32(await self.bus.read(self.unit, model.wire("RCnt"), 2))
                log.warning(
                    "unit %d: %s snapshot already updating: waiting for it, no new trigger",
                    self.unit,
                    _name(kind),
                )
            else:
                after = baseline
                await self._trigger(kind, model, baseline)
            snap = await self._finish(kind, model, after, started + self.timeouts.snapshot)
            if snap is None:
                raise SnapshotIncomplete(
                    kind, after, f"the meter shows no {_name(kind)} snapshot after it"
                )
            log.info(
                "unit %d: %s snapshot T%d signed in %.2f s",
                self.unit,
                _name(kind),
                snap.fields.rcnt,
                time.monotonic() - started,
            )
            return snap

    async def resume_snapshot(
        self, kind: SnapshotKind, after_rcnt: int, timeout: float | None = None
    ) -> SignedSnapshot | None:
        """The snapshot a failed `take_snapshot` left behind (SnapshotIncomplete.after_rcnt).

        Waits (polling St, up to `timeout`, default the snapshot timeout) until the model is
        no longer updating, then returns its snapshot if it is newer than T`after_rcnt`, or
        None when the meter shows no newer snapshot of this kind (nothing was signed: a new
        trigger is safe). Raises a SnapshotFailed subclass for a failure status,
        MeterEventsSet / SignatureInvalid with `.snapshot`, SnapshotIncomplete
        (SnapshotTimeout) when it is still not in hand. Triggers nothing.
        """
        async with self._snapshot_lock:
            model = regmap.SNAPSHOT_MODELS[kind]
            wait = self.timeouts.snapshot if timeout is None else timeout
            return await self._finish(
                kind, model, after_rcnt, time.monotonic() + wait, first_poll_now=True
            )

    async def read_snapshot(self, kind: SnapshotKind) -> SignedSnapshot:
        """Read the last snapshot of a kind without triggering a new one.

        MeterBusy while the meter is taking one of this kind; a SnapshotFailed subclass
        when its status is a failure. Changes no state `take_snapshot` depends on.
        """
        snap = await self._read_back(kind, regmap.SNAPSHOT_MODELS[kind], None, reading=True)
        assert snap is not None
        return snap

    async def _global_rcnt(self) -> int:
        regs = await self.bus.read(self.unit, regmap.SIGNING_METER.wire("RCnt"), 2)
        return u32(regs)

    async def _trigger(self, kind: SnapshotKind, model: ModelInstance, baseline: int) -> None:
        """Write St=2 once. If no good reply came, the write may still have reached the
        meter: look, and never write it a second time."""
        address = model.wire("St")
        try:
            await self.bus.write(self.unit, address, [SnapshotStatus.UPDATING])
            return
        except ModbusExceptionReply:
            raise  # the meter answered and refused: nothing was triggered
        except MeterError as exc:
            log.warning("unit %d: no good reply to the %s trigger: %s", self.unit, _name(kind), exc)
            try:
                regs = await self.bus.read(self.unit, address, _ST_TO_RCNT)  # St .. RCnt
            except MeterError as look:
                raise SnapshotIncomplete(
                    kind, baseline, f"trigger unanswered ({exc}); status unreadable ({look})"
                ) from exc
            if regs[0] == SnapshotStatus.UPDATING or u32(regs, 16) > baseline:
                log.info("unit %d: the %s trigger reached the meter", self.unit, _name(kind))
                return
            raise SnapshotIncomplete(
                kind, baseline, f"trigger unanswered ({exc}); the meter shows none under way"
            ) from exc

    async def _finish(
        self,
        kind: SnapshotKind,
        model: ModelInstance,
        after_rcnt: int,
        deadline: float,
        first_poll_now: bool = False,
    ) -> SignedSnapshot | None:
        """Wait for St to leave 'updating', read the snapshot back if newer than after_rcnt."""
        try:
            await self._wait_done(kind, model, after_rcnt, deadline, first_poll_now)
            snap = await self._read_back(kind, model, after_rcnt)
        except _DEFINITE:
            raise
        except MeterError as exc:
            raise SnapshotIncomplete(
                kind, after_rcnt, f"{type(exc).__name__}: {exc}", exc.snapshot
            ) from exc
        if snap is not None and not snap.fields.events_ok:
            raise MeterEventsSet(snap.fields.evt, snap)
        return snap

    async def _wait_done(
        self,
        kind: SnapshotKind,
        model: ModelInstance,
        after_rcnt: int,
        deadline: float,
        first_poll_now: bool,
    ) -> None:
        address = model.wire("St")
        problem = ""
        first = True
        while True:
            if not (first and first_poll_now):
                await asyncio.sleep(self.timeouts.poll_interval)
            first = False
            try:
                st = (await self.bus.read(self.unit, address, 1))[0]
            except _TRANSIENT as exc:
                st = SnapshotStatus.UPDATING  # the meter may hold its reply while it signs
                problem = f"; last poll: {type(exc).__name__}: {exc}"
            if st == SnapshotStatus.VALID:
                return
            if st != SnapshotStatus.UPDATING:
                raise snapshot_error(kind, st)
            if time.monotonic() >= deadline:
                raise SnapshotTimeout(kind, after_rcnt, f"still updating at the deadline{problem}")

    async def _read_back(
        self,
        kind: SnapshotKind,
        model: ModelInstance,
        after_rcnt: int | None,
        reading: bool = False,
    ) -> SignedSnapshot | None:
        """The snapshot in the model with its OCMF; None if not newer than after_rcnt.
        `reading`: only read (read_snapshot), nothing triggered: a newer snapshot may replace
        this one while it is read (MeterBusy)."""
        view = await self._read_snapshot_block(model)
        st = view.number("St")
        if st == SnapshotStatus.UPDATING:
            raise MeterBusy(f"unit {self.unit}: the {_name(kind)} snapshot is updating")
        if st != SnapshotStatus.VALID:
            raise snapshot_error(kind, st)
        fields = snapshot_fields(view)
        if fields.typ != kind:
            raise MeterReplyInvalid(
                f"unit {self.unit}: snapshot type {fields.typ} in the {_name(kind)} model"
            )
        if after_rcnt is not None and fields.rcnt <= after_rcnt:
            log.info(
                "unit %d: %s snapshot T%d is not newer than T%d",
                self.unit,
                _name(kind),
                fields.rcnt,
                after_rcnt,
            )
            return None
        signature = view.blob("Sig", view.number("BSig"))
        try:
            ocmf = await self._read_ocmf(kind, fields, reading)
        except MeterError as exc:
            exc.snapshot = SignedSnapshot(kind, SnapshotStatus.VALID, fields, signature, "")
            raise
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

    async def _read_ocmf(
        self, kind: SnapshotKind, fields: SnapshotFields, reading: bool = False
    ) -> str:
        """The OCMF text of this snapshot, read only up to its terminating NUL.

        The OCMF model must show St valid and the snapshot's Typ, and its record the
        snapshot's PG (T<RCnt>), ID (Meta1) and XT (Typ). The OCMF may lag behind the
        snapshot model: it is read again for up to `ocmf_lag` before MeterReplyInvalid.
        `reading` (nothing triggered, the snapshot lock not held): an OCMF of a newer snapshot
        means this one was replaced while it was read: MeterBusy at once (read it again).
        """
        deadline = time.monotonic() + self.timeouts.ocmf_lag
        while True:
            text, problem = await self._read_ocmf_once(kind, fields)
            if not problem:
                return text
            newer, problem = problem.startswith(_NEWER), problem.removeprefix(_NEWER)
            if reading and newer:
                raise MeterBusy(
                    f"unit {self.unit}: the {_name(kind)} snapshot T{fields.rcnt} was "
                    f"replaced while it was read ({problem})"
                )
            if time.monotonic() >= deadline:
                raise MeterReplyInvalid(
                    f"unit {self.unit}: the {_name(kind)} OCMF does not belong to "
                    f"snapshot T{fields.rcnt}: {problem}"
                )
            log.info("unit %d: %s OCMF not ready: %s", self.unit, _name(kind), problem)
            await asyncio.sleep(self.timeouts.poll_interval)

    async def _read_ocmf_once(self, kind: SnapshotKind, fields: SnapshotFields) -> tuple[str, str]:
        """(text, "") or ("", why it is not this snapshot's OCMF)."""
        model = regmap.OCMF_MODELS[kind]
        start = model.wire("Typ")  # Typ and St come along in the first frame
        head = model.wire("O") - start
        total = head + regmap.OCMF_TEXT_REGISTERS
        predicted = self._predicted_ocmf_bytes(fields)
        want = total if predicted is None else min(total, head + predicted // 2 + 1)
        data = b""
        offset = 0
        while offset < total:
            if offset >= want:  # the prediction fell short: go on in full reads
                want = min(total, offset + MAX_READ_REGISTERS)
            count = min(MAX_READ_REGISTERS, want - offset)
            regs = await self.bus.read(self.unit, start + offset, count)
            if offset == 0:
                typ, st = regs[0], regs[1]
                if st != SnapshotStatus.VALID or typ != kind:
                    return "", f"the OCMF model shows Typ {typ}, St {st}"
                regs = regs[head:]
            data += registers_to_bytes(regs)
            offset += count
            nul = data.find(b"\0")
            if nul >= 0:
                data = data[:nul]
                break
        if not data.startswith(b"OCMF|"):
            return "", "no OCMF record"
        try:
            text = data.decode("utf-8")
            record = parse_ocmf(text)
        except UnicodeDecodeError as exc:
            return "", f"OCMF text is not UTF-8: {exc}"
        except OcmfFormatError as exc:
            return "", f"unreadable OCMF: {exc}"
        problem = _ocmf_mismatch(record, fields)
        if problem:
            return "", problem
        if record.readings:
            unit_name = str(record.readings[0].unit or "")
            self._ocmf_style = (
                OcmfStyle.KWH_TWO_DECIMALS if unit_name == "kWh" else OcmfStyle.WH_INTEGER
            )
        return text, ""

    def _check_signatures(self, snap: SignedSnapshot) -> None:
        if self.pinned_key is None:
            return
        result = verify_snapshot_signature(snap.fields, snap.signature, self.pinned_key)
        if not result.valid:
            raise SignatureInvalid(
                f"unit {self.unit}: snapshot T{snap.fields.rcnt}: {result.reason}", snap
            )
        check = verify_ocmf(parse_ocmf(snap.ocmf), self.pinned_key)
        if not check.signature_valid:
            raise SignatureInvalid(
                f"unit {self.unit}: OCMF T{snap.fields.rcnt}: {check.reason}", snap
            )


def _name(kind: SnapshotKind) -> str:
    return kind.name.lower().replace("_", "-")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _meta_bytes(n: int, value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if b"\0" in raw:
        raise MetadataRefused(f"Meta{n} must not contain NUL bytes")
    if len(raw) > META_LIMITS[n]:
        raise MetadataRefused(f"Meta{n} is {len(raw)} bytes; the meter holds {META_LIMITS[n]}")
    return raw


_NEWER = "newer: "  # how _ocmf_mismatch begins when the record is of a later snapshot


def _ocmf_mismatch(record: OcmfRecord, fields: SnapshotFields) -> str:
    """Why an OCMF record is not the one of this snapshot ("" when it is); it begins with
    _NEWER when the record is of a later snapshot (its PG names a higher RCnt)."""
    pg = record.payload.get("PG")
    if pg != f"T{fields.rcnt}":
        number = pg[1:] if isinstance(pg, str) and pg.startswith("T") else ""
        later = number.isascii() and number.isdigit() and int(number) > fields.rcnt
        return f"{_NEWER if later else ''}PG {pg!r}, the snapshot is T{fields.rcnt}"
    ident = record.payload.get("ID")
    meta1 = fields.meta1.decode("utf-8", errors="replace")
    if ident != meta1:
        return f"ID {ident!r}, the snapshot's Meta1 is {meta1!r}"
    xt = record.readings[0].xt if record.readings else None
    if xt != fields.typ:
        return f"XT {xt!r}, the snapshot's Typ is {fields.typ}"
    return ""


def longest_ocmf_record(identity: MeterIdentity, meta1: bytes, meta2: bytes, meta3: bytes) -> int:
    """Upper bound of the OCMF record (UTF-8 bytes) a snapshot with this metadata gets.

    Worst case of every field the meter prints as a number (RCnt, RCR, TotWhImp at the
    largest scale factors the meter uses, event flags set), in both OCMF styles (newer
    firmware adds X2/X3), with the longest DER signature.
    """
    longest = 0
    for style in OcmfStyle:
        for wh_sf in (0, 1, 2, 3):
            fields = SnapshotFields(
                typ=int(SnapshotKind.TURN_ON),
                rcr=0xFFFFFFFF,
                tot_wh_imp=0xFFFFFFFF,
                wh_sf=wh_sf,
                w=-0x7FFF,
                w_sf=1,
                ma1=identity.meter_address.encode("utf-8"),
                rcnt=0xFFFFFFFF,
                os=0xFFFFFFFE,
                epoch=0x7FFFFFFF,
                tzo=-720,
                epoch_set_cnt=0xFFFFFFFE,
                epoch_set_os=0xFFFFFFFE,
                di=1,
                do=1,
                meta1=meta1,
                meta2=meta2,
                meta3=meta3,
                evt=1,
            )
            payload = build_payload(fields, identity.ocmf_identity(), style)
            longest = max(longest, max_record_length(payload))
    return longest


__all__ = [
    "BsmWs36a",
    "ClockState",
    "EnergyReading",
    "MeterTimeouts",
    "SignatureInvalid",
    "TransactionState",
    "longest_ocmf_record",
]
