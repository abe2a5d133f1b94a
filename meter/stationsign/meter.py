"""TEST MODE for stations whose meter cannot sign: the station signs the meter's readings with
its own key pair. Such records prove nothing under calibration law and say so everywhere.

`StationSignedMeter` is the BSM driver with its signing replaced: readings come from the meter
(energy, identity, clock), but the turn-on / turn-off "snapshots" are made here, in the BSM's
OCMF layout, signed with a P-256 key kept in a key file, with the manufacturer and model
fields (`MV`, `MM`, and so `GI`) naming the station test signature and ``NOT
calibration-law compliant``. The counter RCnt, the last snapshot of each kind and an open
turn-on are kept in a state file, so begin/end pairing (RCnt + 1) and recovery after a power
loss work as with a real meter.

`is_test_signature(record)` tells the marker apart; every output of the project checks it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meter.bsm.driver import BsmWs36a, MeterTimeouts
from meter.bsm.ocmf import OcmfStyle, build_payload, sign_and_assemble
from meter.errors import MeterError
from meter.interface import TransactionState
from meter.modbus.bus import ModbusBus
from meter.proof.keys import PublicKeyInfo, load_or_create_private_key, load_public_key, public_der
from meter.proof.test_signature import TEST_MANUFACTURER, TEST_MODEL
from meter.snapshot import (
    OcmfIdentity,
    SignedSnapshot,
    SnapshotFields,
    SnapshotKind,
    SnapshotStatus,
)

_START_KINDS = (SnapshotKind.TURN_ON,)


class NoStationSnapshot(MeterError):
    """The station never made a snapshot of this kind."""


class StationSignedMeter(BsmWs36a):
    """A BSM driver whose snapshots the station signs (test mode)."""

    def __init__(
        self,
        bus: ModbusBus,
        unit: int,
        key_file: Path,
        state_file: Path,
        timeouts: MeterTimeouts | None = None,
    ) -> None:
        super().__init__(bus, unit=unit, pinned_key=None, timeouts=timeouts)
        self._key = load_or_create_private_key(key_file)
        self.pinned_key = load_public_key(public_der(self._key))
        self._state_file = state_file
        self._state: dict[str, Any] = self._load_state()
        self._meta: tuple[bytes, bytes, bytes] = (b"", b"", b"")

    # ---- state ---------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return {"rcnt": 0, "open_turn_on": False, "last": {}}
        except ValueError as exc:
            raise ValueError(f"{self._state_file}: test-signer state unreadable: {exc}") from None
        return data if isinstance(data, dict) else {"rcnt": 0, "open_turn_on": False, "last": {}}

    def _save_state(self) -> None:
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_name(self._state_file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w") as f:
            json.dump(self._state, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self._state_file)

    # ---- what the station uses instead of the meter's signing ------------------------------

    async def public_key(self) -> PublicKeyInfo:
        assert self.pinned_key is not None
        return self.pinned_key

    async def check_ready(self) -> PublicKeyInfo:
        await self.energy()  # the meter must answer: its readings are what gets signed
        return await self.public_key()

    async def write_metadata(
        self, meta1: str | bytes, meta2: str | bytes, meta3: str | bytes
    ) -> None:
        def raw(value: str | bytes) -> bytes:
            return value.encode("utf-8") if isinstance(value, str) else value

        self._meta = (raw(meta1), raw(meta2), raw(meta3))

    async def transaction_state(self) -> TransactionState:
        if self._state.get("open_turn_on"):
            return TransactionState(True, "a station-signed turn-on without its turn-off")
        return TransactionState(False, "")

    async def take_snapshot(self, kind: SnapshotKind) -> SignedSnapshot:
        reading = await self.energy()
        identity = await self.ensure_identity()
        if reading.total_wh is None:
            raise ValueError("the meter reports no energy register value")
        rcnt = int(self._state.get("rcnt", 0)) + 1
        now = int(time.time())
        offset = datetime.now(UTC).astimezone().utcoffset()
        start = kind in _START_KINDS
        last_on = self._state.get("last", {}).get(str(int(SnapshotKind.TURN_ON)))
        begin_total = int(last_on["fields"]["tot_wh_imp"]) if last_on and not start else None
        total = int(reading.total_wh)
        fields = SnapshotFields(
            typ=int(kind),
            rcr=0 if begin_total is None else max(total - begin_total, 0),
            tot_wh_imp=total,
            wh_sf=0,
            w=int(reading.power_w or 0),
            w_sf=0,
            ma1=identity.meter_address.encode("utf-8"),
            rcnt=rcnt,
            os=0,
            epoch=now,
            tzo=int(offset.total_seconds() // 60) if offset else 0,
            epoch_set_cnt=0,
            epoch_set_os=0,
            di=0,
            do=0,
            meta1=self._meta[0],
            meta2=self._meta[1],
            meta3=self._meta[2],
            evt=reading.events,
        )
        ocmf_identity = OcmfIdentity(
            TEST_MANUFACTURER, TEST_MODEL, identity.version_meter, identity.version_comm
        )
        payload = build_payload(fields, ocmf_identity, OcmfStyle.KWH_TWO_DECIMALS)
        ocmf = sign_and_assemble(self._key, payload)
        signature = bytes.fromhex(json.loads(ocmf.rsplit("|", 1)[1])["SD"])
        snap = SignedSnapshot(kind, SnapshotStatus.VALID, fields, signature, ocmf)
        self._state["rcnt"] = rcnt
        self._state["open_turn_on"] = start
        last = self._state.setdefault("last", {})
        last[str(int(kind))] = {
            "fields": {
                k: (v.hex() if isinstance(v, bytes) else v) for k, v in asdict(fields).items()
            },
            "ocmf": ocmf,
        }
        self._save_state()
        return snap

    async def resume_snapshot(
        self, kind: SnapshotKind, after_rcnt: int, timeout: float | None = None
    ) -> SignedSnapshot | None:
        try:
            snap = await self.read_snapshot(kind)
        except NoStationSnapshot:
            return None
        return snap if snap.fields.rcnt > after_rcnt else None

    async def read_snapshot(self, kind: SnapshotKind) -> SignedSnapshot:
        kept = self._state.get("last", {}).get(str(int(kind)))
        if not kept:
            raise NoStationSnapshot(f"no station-signed {kind.name} snapshot yet")
        raw = dict(kept["fields"])
        for name in ("ma1", "meta1", "meta2", "meta3"):
            raw[name] = bytes.fromhex(raw[name])
        fields = SnapshotFields(**raw)
        ocmf = str(kept["ocmf"])
        signature = bytes.fromhex(json.loads(ocmf.rsplit("|", 1)[1])["SD"])
        return SignedSnapshot(kind, SnapshotStatus.VALID, fields, signature, ocmf)
