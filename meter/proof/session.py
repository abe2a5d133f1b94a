"""Whether a session's signed Begin and End prove it: the check a driver or auditor relies on.

A session is *verified* when both records verify against the key it was signed with, are
billable, and belong together: the same meter, the same metadata (identification and the
other session fields), pagination one apart (BSM: RCnt + 1, "T41" then "T42"), and, where
the meter's snapshot fields are known, the same clock-set counter (a clock set between
Begin and End would let the two times disagree). It is *failed* with a one-line reason
otherwise, and *unsigned* when a record is missing (a session that ended without a signed
End, or a test station whose meter cannot sign).

Nothing here re-serialises a record: the checks read the parsed payload of the bytes kept.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from meter.proof.keys import PublicKeyInfo
from meter.proof.ocmf import OcmfFormatError, OcmfRecord, parse_ocmf, verify_ocmf
from meter.proof.test_signature import is_test_signature

# payload fields that must be equal in Begin and End (the rest are per reading or counters)
SESSION_FIELDS = ("FV", "GI", "GS", "GV", "MV", "MM", "MS", "MF", "IS", "IL", "IF", "IT", "ID")
_PAGINATION = re.compile(r"^([A-Z])(\d+)$")
_KWH_UNITS = {"kWh": Decimal(1000), "Wh": Decimal(1)}
TEST_SIGNATURE = "TEST signature by the station, NOT calibration-law compliant"


class ProofStatus(enum.StrEnum):
    VERIFIED = "verified"
    FAILED = "failed"
    UNSIGNED = "unsigned"


@dataclass(frozen=True)
class SessionProof:
    status: ProofStatus
    reason: str  # "" when verified (a station test signature is named here too)
    energy_wh: int | None  # the energy the records prove (End - Begin)
    meter_serial: str | None

    @property
    def mark(self) -> str:
        return self.status.value if not self.reason else f"{self.status.value}: {self.reason}"


def _failed(reason: str, serial: str | None = None) -> SessionProof:
    return SessionProof(ProofStatus.FAILED, reason, None, serial)


def _pagination(record: OcmfRecord) -> tuple[str, int] | None:
    match = _PAGINATION.match(record.pagination or "")
    return (match.group(1), int(match.group(2))) if match else None


def _wh(value: Decimal, unit: str | None) -> Decimal | None:
    scale = _KWH_UNITS.get(unit or "")
    return value * scale if scale is not None else None


def _energy_wh(begin: OcmfRecord, end: OcmfRecord) -> int | None:
    """End minus Begin of the first reading's register (RV, in Wh)."""
    b, e = begin.readings[0], end.readings[0]
    if b.obis != e.obis or b.unit != e.unit:
        return None
    start, stop = _wh(b.value, b.unit), _wh(e.value, e.unit)
    if start is None or stop is None:
        return None
    return int((stop - start).to_integral_value())


def _check_one(text: str, key: PublicKeyInfo, label: str) -> tuple[OcmfRecord | None, str]:
    try:
        record = parse_ocmf(text)
    except OcmfFormatError as exc:
        return None, f"{label} record malformed: {exc}"
    result = verify_ocmf(record, key)
    if not result.signature_valid:
        return None, f"{label} record: {result.reason}"
    if not result.billable:
        problems = "; ".join(p for r in result.readings for p in r.problems)
        return None, f"{label} record not billable: {problems}"
    return record, ""


def check_session(
    begin_ocmf: str | None,
    end_ocmf: str | None,
    key: PublicKeyInfo | None,
    begin_fields: dict[str, Any] | None = None,
    end_fields: dict[str, Any] | None = None,
) -> SessionProof:
    """The proof a session's two records give, checked against the key it was signed with.

    `begin_fields`/`end_fields` are the meter's snapshot fields when known (BSM: they hold
    `epoch_set_cnt`, the clock-set counter the OCMF does not carry)."""
    if not begin_ocmf or not end_ocmf:
        missing = "Begin" if not begin_ocmf else "End"
        return SessionProof(ProofStatus.UNSIGNED, f"no signed {missing} record", None, None)
    if key is None:
        return _failed("no public key known for this session")
    begin, why = _check_one(begin_ocmf, key, "Begin")
    if begin is None:
        return _failed(why)
    end, why = _check_one(end_ocmf, key, "End")
    serial = begin.meter_serial or begin.gateway_serial
    if end is None:
        return _failed(why, serial)
    for name in SESSION_FIELDS:
        if begin.payload.get(name) != end.payload.get(name):
            return _failed(
                f"Begin and End differ in {name} ({begin.payload.get(name)!r} / "
                f"{end.payload.get(name)!r}): not one session",
                serial,
            )
    b_page, e_page = _pagination(begin), _pagination(end)
    if b_page is None or e_page is None:
        return _failed(f"pagination {begin.pagination!r} / {end.pagination!r} unreadable", serial)
    if b_page[0] != e_page[0] or e_page[1] != b_page[1] + 1:
        return _failed(
            f"End {end.pagination} does not follow Begin {begin.pagination} (expected "
            f"{b_page[0]}{b_page[1] + 1}): a record of another session",
            serial,
        )
    if begin.readings[0].tx not in (None, "B") or end.readings[0].tx not in (None, "E"):
        return _failed(
            f"readings are {begin.readings[0].tx}/{end.readings[0].tx}, not Begin/End", serial
        )
    if begin.readings[0].time > end.readings[0].time:
        return _failed("End is signed before Begin", serial)
    if begin_fields and end_fields:
        b_cnt, e_cnt = begin_fields.get("epoch_set_cnt"), end_fields.get("epoch_set_cnt")
        if b_cnt is not None and e_cnt is not None and b_cnt != e_cnt:
            return _failed(
                f"the meter clock was set during the session (set counter {b_cnt} -> {e_cnt})",
                serial,
            )
    energy = _energy_wh(begin, end)
    if energy is None:
        return _failed("Begin and End readings are not the same register", serial)
    if energy < 0:
        return _failed(f"the register went backwards ({energy} Wh)", serial)
    if is_test_signature(begin) or is_test_signature(end):
        return SessionProof(ProofStatus.VERIFIED, TEST_SIGNATURE, energy, serial)
    return SessionProof(ProofStatus.VERIFIED, "", energy, serial)
