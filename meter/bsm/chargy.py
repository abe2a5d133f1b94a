"""Chargy's own JSON container for BSM-WS36A snapshots (chargeIT mobility's "charging-station
json" with "bsm-ws36a-json" snapshot objects, as the meter maker's bsm-python documents it).

Where it helps: Chargy checks the meter's snapshot signature itself (the abstract data
representation of every signed field, field guide 1.5), independent of the OCMF text. Each
snapshot object carries every field that went into the digest, in digest order, with its raw
value, scale factor exponent and DLMS unit code, plus the meter's DER signature.

`document(...)` builds one charging process (Begin and End snapshots); `verify_document(...)`
rebuilds the fields from a document and checks both signatures with a given key, so an export
can be checked without Chargy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from meter.bsm.signature import CURRENT_LAYOUT, Unit, _Num, _Scale, verify_snapshot_signature
from meter.proof.keys import PublicKeyInfo
from meter.snapshot import SnapshotFields, SnapshotKind

DOCUMENT_CONTEXT = "https://www.chargeit-mobility.com/contexts/charging-station-json-v1"
SNAPSHOT_CONTEXT = "https://www.chargeit-mobility.com/contexts/bsm-ws36a-json-v0"
# field (our attribute) -> the meter's data point name and its OBIS id where it has one
_NAMES: dict[str, tuple[str, str | None]] = {
    "typ": ("Typ", None),
    "rcr": ("RCR", "1-0:1.8.0*198"),
    "tot_wh_imp": ("TotWhImp", "1-0:1.8.0*255"),
    "w": ("W", "1-0:16.7.0*255"),
    "ma1": ("MA1", None),
    "rcnt": ("RCnt", None),
    "os": ("OS", None),
    "epoch": ("Epoch", None),
    "tzo": ("TZO", None),
    "epoch_set_cnt": ("EpochSetCnt", None),
    "epoch_set_os": ("EpochSetOS", None),
    "di": ("DI", None),
    "do": ("DO", None),
    "meta1": ("Meta1", None),
    "meta2": ("Meta2", None),
    "meta3": ("Meta3", None),
    "evt": ("Evt", None),
}
_BY_NAME = {name: attr for attr, (name, _) in _NAMES.items()}
_STRINGS = ("ma1", "meta1", "meta2", "meta3")


class ChargyFormatError(ValueError):
    """A document this reader cannot rebuild snapshot fields from."""


def _text(raw: bytes) -> str:
    return raw.decode("iso-8859-1")


def _measured(fields: SnapshotFields, spec: Any) -> dict[str, Any]:
    attr = spec.attr
    name, obis = _NAMES[attr]
    measurand: dict[str, Any] = {"name": name}
    if obis:
        measurand["id"] = obis
    if not isinstance(spec, _Num):
        value: dict[str, Any] = {
            "unitEncoded": int(Unit.NONE),
            "value": _text(getattr(fields, attr)),
            "valueType": "String",
            "valueEncoding": "ISO-8859-1",
        }
        return {"measurand": measurand, "measuredValue": value}
    scale = 0 if spec.scale is _Scale.NONE else int(getattr(fields, spec.scale.value))
    raw = int(getattr(fields, attr))
    if spec.signed and raw >= 0x8000:
        raw -= 0x10000
    value = {
        "scale": scale,
        "unitEncoded": int(spec.unit),
        "value": raw,
        "valueType": "Integer32" if spec.signed else "UnsignedInteger32",
    }
    if spec.unit is not Unit.NONE:
        value["unit"] = spec.unit.name
    return {"measurand": measurand, "measuredValue": value}


def _time(fields: SnapshotFields) -> str | None:
    if fields.epoch == 0xFFFFFFFF:
        return None
    tzo = fields.tzo - 0x10000 if fields.tzo >= 0x8000 else fields.tzo
    zone = timezone(timedelta(minutes=tzo))
    return datetime.fromtimestamp(fields.epoch, UTC).astimezone(zone).isoformat()


def _contract(fields: SnapshotFields) -> dict[str, str] | None:
    for meta in (fields.meta1, fields.meta2, fields.meta3):
        text = _text(meta)
        if text.startswith("contract-id:"):
            body = text.removeprefix("contract-id:").strip()
            kind, sep, ident = body.partition(":")
            return {"id": ident, "type": kind} if sep else {"id": body}
    return None


def snapshot_object(
    fields: SnapshotFields,
    signature: bytes,
    public_key_hex: str,
    manufacturer: str,
    model: str,
    firmware: str,
) -> dict[str, Any]:
    values = [_measured(fields, spec) for spec in CURRENT_LAYOUT]
    obj: dict[str, Any] = {
        "@context": SNAPSHOT_CONTEXT,
        "@id": f"{_text(fields.ma1)}-{fields.rcnt}",
    }
    time = _time(fields)
    if time is not None:
        obj["time"] = time
    obj.update(
        {
            "meterInfo": {
                "firmwareVersion": firmware,
                "publicKey": public_key_hex,
                "meterId": _text(fields.ma1),
                "manufacturer": manufacturer,
                "type": model,
            },
            "contract": _contract(fields),
            "measurementId": fields.rcnt,
            "value": next(v for v in values if v["measurand"]["name"] == "RCR"),
            "additionalValues": values,
            "signature": signature.hex(),
        }
    )
    return obj


def document(
    document_id: str,
    evse_id: str,
    station: dict[str, str],
    snapshots: list[dict[str, Any]],
) -> dict[str, Any]:
    """One charging process: `snapshots` are the Begin then the End snapshot objects."""
    return {
        "@context": DOCUMENT_CONTEXT,
        "@id": document_id,
        "chargePointInfo": {"evseId": evse_id},
        "chargingStationInfo": station,
        "signedMeterValues": snapshots,
    }


def document_id(station_id: str, local_id: int) -> str:
    """A stable UUID per station and session (the same export gives the same id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chargepoint:{station_id}:{local_id}"))


def fields_of(obj: dict[str, Any]) -> tuple[SnapshotFields, bytes]:
    """Rebuild the signed fields and the signature from a snapshot object."""
    raw: dict[str, Any] = {"wh_sf": 0, "w_sf": 0}
    try:
        for item in obj["additionalValues"]:
            attr = _BY_NAME[item["measurand"]["name"]]
            measured = item["measuredValue"]
            if attr in _STRINGS:
                raw[attr] = str(measured["value"]).encode("iso-8859-1")
                continue
            value = int(measured["value"])
            if attr in ("w", "tzo") and value < 0:
                value += 0x10000  # back to the raw int16 register word
            raw[attr] = value
            if attr in {"tot_wh_imp", "rcr"}:
                raw["wh_sf"] = int(measured.get("scale", 0))
            if attr == "w":
                raw["w_sf"] = int(measured.get("scale", 0))
        signature = bytes.fromhex(obj["signature"])
        return SnapshotFields(**raw), signature
    except (KeyError, TypeError, ValueError) as exc:
        raise ChargyFormatError(f"snapshot {obj.get('@id')!r}: {exc}") from None


@dataclass(frozen=True)
class DocumentCheck:
    """What a document's two snapshots prove: `problems` is empty when both signatures verify
    and the snapshots belong together and are billable."""

    problems: list[str]
    meter_serial: str | None = None
    begin_rcnt: int | None = None
    end_rcnt: int | None = None
    energy_wh: Decimal | None = None  # End RCR minus Begin RCR, scaled


_BEGIN_KINDS = (SnapshotKind.TURN_ON, SnapshotKind.START)
_END_KINDS = (SnapshotKind.TURN_OFF, SnapshotKind.END)


def _pair_problems(begin: SnapshotFields, end: SnapshotFields) -> list[str]:
    """The transparency software's rules for a Begin/End pair (field guide 1.4)."""
    problems: list[str] = []
    if begin.typ not in _BEGIN_KINDS:
        problems.append(f"Begin is a snapshot of type {begin.typ}, not a turn-on or start")
    if end.typ not in _END_KINDS:
        problems.append(f"End is a snapshot of type {end.typ}, not a turn-off or end")
    if begin.ma1 != end.ma1:
        problems.append(
            f"Begin and End come from different meters ({_text(begin.ma1)!r} / {_text(end.ma1)!r})"
        )
    for name in ("meta1", "meta2", "meta3"):
        if getattr(begin, name) != getattr(end, name):
            problems.append(f"Begin and End differ in {name.capitalize()}: not one session")
    if end.rcnt != begin.rcnt + 1:
        problems.append(f"End RCnt {end.rcnt} does not follow Begin {begin.rcnt}")
    if begin.epoch_set_cnt != end.epoch_set_cnt:
        problems.append(
            "the meter clock was set during the session (EpochSetCnt "
            f"{begin.epoch_set_cnt} -> {end.epoch_set_cnt})"
        )
    for label, fields in (("Begin", begin), ("End", end)):
        if fields.evt:
            problems.append(f"{label} not billable: meter event flags 0x{fields.evt:08x}")
    return problems


def check_document(doc: dict[str, Any], key: PublicKeyInfo) -> DocumentCheck:
    """Both snapshot signatures checked with `key`, then the pair rules."""
    snaps = doc.get("signedMeterValues") if isinstance(doc, dict) else None
    if not isinstance(snaps, list) or len(snaps) != 2:
        count = len(snaps) if isinstance(snaps, list) else 0
        return DocumentCheck([f"{count} snapshots, expected a Begin and an End"])
    problems: list[str] = []
    rebuilt: list[SnapshotFields] = []
    for label, obj in zip(("Begin", "End"), snaps, strict=True):
        if not isinstance(obj, dict):
            problems.append(f"{label}: not a snapshot object")
            continue
        try:
            fields, signature = fields_of(obj)
        except ChargyFormatError as exc:
            problems.append(f"{label}: {exc}")
            continue
        check = verify_snapshot_signature(fields, signature, key)
        if not check.valid:
            problems.append(f"{label}: {check.reason}")
        rebuilt.append(fields)
    if len(rebuilt) != 2:
        return DocumentCheck(problems)
    begin, end = rebuilt
    problems.extend(_pair_problems(begin, end))
    start, stop = begin.energy_since_turn_on_wh, end.energy_since_turn_on_wh
    energy = None if start is None or stop is None else stop - start
    return DocumentCheck(problems, _text(begin.ma1), begin.rcnt, end.rcnt, energy)


def verify_document(doc: dict[str, Any], key: PublicKeyInfo) -> list[str]:
    """Problems with the document's snapshots (empty when both verify and pair)."""
    return check_document(doc, key).problems


def document_key(doc: dict[str, Any]) -> str | None:
    """The public key the document's snapshots name (meterInfo.publicKey), if they agree."""
    keys = {
        str(obj.get("meterInfo", {}).get("publicKey") or "").strip().lower()
        for obj in doc.get("signedMeterValues") or []
        if isinstance(obj, dict) and isinstance(obj.get("meterInfo"), dict)
    }
    return keys.pop() if len(keys) == 1 and "" not in keys else None


def is_document(data: object) -> bool:
    """Whether parsed JSON looks like Chargy's charging-station container."""
    return isinstance(data, dict) and isinstance(data.get("signedMeterValues"), list)
