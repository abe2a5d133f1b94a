"""The `verify` line of a meter's usual record, found in one pass.

A meter's file holds records by the ten thousand, nearly all of one shape: one good reading
(TX, RV, RU, the total XV/XU, ST "G", no EF), a synchronised time to the millisecond, its
serial and pagination, the signature section `{"SA":"...","SD":"<hex>"}`. For such a record
`usual_line` gives, with the signature checked, exactly the line the general path
(verification._check_record) gives, without building the record and reading objects. For
anything else, an invalid signature included, it gives None and the general path decides:
that path is the rule, this one only its shortcut (tests/test_usual_record.py holds both to
the same lines on real and altered records).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from meter.proof.keys import PublicKeyInfo
from meter.proof.ocmf import (
    OCMF_PREFIX,
    READING_REASONS,
    meter_signature,
    scan_payload,
    signature_method,
)
from meter.proof.test_signature import TEST_MARKER

# TM as a BSM writes it: to the millisecond (",000"), an offset without colon, synchronised
_USUAL_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[,.]000[+-][0-9]{4} S"
)
_TEXT_OR_NONE = (str, type(None))
_NUMBER = (Decimal, int)  # a fraction as the decoder gives it, or a whole number (older BSM: Wh)


def record_label(number: int) -> str:
    """How a line names its record: "record N: " in a file of several (`number` from 1),
    nothing for the only one (0)."""
    return f"record {number}: " if number else ""


def usual_line(text: str, key: PublicKeyInfo, number: int) -> str | None:
    """`verified: ...` for a meter's usual record whose signature is valid, else None.

    `text` is the record as the general path gets it (stripped), `number` its number in a
    file of several (0: the only one)."""
    if not text.startswith(OCMF_PREFIX) or text[5:6] != "{":
        return None
    try:
        payload, end = scan_payload(text, 5)
    except (ValueError, StopIteration, RecursionError):
        return None
    if type(payload) is not dict or text[end : end + 1] != "|":
        return None
    signed = meter_signature(text, end + 1)
    if signed is None:
        return None
    algorithm, _, signature_bytes = signed
    get = payload.get
    meter, pagination, rd = get("MS"), get("PG"), get("RD")
    model, gateway = get("MM", ""), get("GI", "")
    if not (
        type(meter) is type(pagination) is type(model) is type(gateway) is str
        and meter
        and pagination
        and TEST_MARKER not in model
        and TEST_MARKER not in gateway
        and type(rd) is list
        and len(rd) == 1
        and type(rd[0]) is dict
    ):
        return None
    reading = rd[0].get
    tm, tx, unit, xu = reading("TM"), reading("TX"), reading("RU"), reading("XU")
    value, xv, xt = reading("RV"), reading("XV"), reading("XT")
    if not (
        type(tm) is type(tx) is type(unit) is type(xu) is str
        and type(value) in _NUMBER
        and type(xv) in _NUMBER
        and (xt is None or type(xt) is int)
        and reading("ST") == "G"
        and reading("EF") in ("", None)
        and type(reading("RI")) in _TEXT_OR_NONE
        and type(reading("RT")) in _TEXT_OR_NONE
        and type(reading("XI")) in _TEXT_OR_NONE
        and tx in READING_REASONS
        and unit
        and xu
        and not unit[-1].isspace()
        and not xu[-1].isspace()
        and _USUAL_TIME.fullmatch(tm)
        and tm[26] < "6"
        and (tm[23] == "+" or tm[24:28] != "0000")
    ):
        return None
    try:
        datetime.fromisoformat(tm[:28])  # a date and offset that exist
    except ValueError:
        return None
    checked_with = _CHECKED_WITH.get((algorithm, key.der)) or _checked_with(algorithm, key)
    if checked_with is None:
        return None
    method, tail = checked_with
    try:
        key.key.verify(signature_bytes, text[5:end].encode(), method)
    except InvalidSignature:
        return None
    return (
        f"verified: {record_label(number)}meter {meter}, {pagination}, "
        f"{tx} {value!s} {unit} (total {xv!s} {xu}) at {tm[:19]}{tm[23:26]}:{tm[26:28]}, "
        f"{tail}"
    )


# (SA, key DER) -> the signature method and the line's end, for the SAs a key can check (a
# file's records repeat one or two): a dictionary lookup per record, not a cached call
_CHECKED_WITH: dict[tuple[str, bytes], tuple[ec.ECDSA, str]] = {}


def _checked_with(algorithm: str, key: PublicKeyInfo) -> tuple[ec.ECDSA, str] | None:
    method = signature_method(algorithm, None, key.curve_name)
    if type(method) is str:
        return None  # the general path names why
    assert isinstance(method, ec.ECDSA)
    tail = f"{algorithm}, key sha256:{key.fingerprint[:16]}..."
    _CHECKED_WITH[algorithm, key.der] = method, tail
    return method, tail
