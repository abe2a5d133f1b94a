"""OCMF records of any maker: parse without re-serialising, verify, judge billability.

A record is `OCMF|<payload JSON>|<signature JSON>`; the signature covers the exact payload
bytes, so the payload is kept byte for byte as received (field guide 2).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from meter.proof.keys import PublicKeyInfo

OCMF_PREFIX = "OCMF|"
DEFAULT_ALGORITHM = "ECDSA-secp256r1-SHA256"
DEFAULT_ENCODING = "hex"
READING_REASONS = frozenset("BCEXLRAPST")
TIME_FLAGS = {
    "S": "synchronised",
    "U": "unsynchronised",
    "I": "informative (clock not synchronised)",
    "R": "relative",
}

_TIME_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:[,.](?P<frac>\d{1,6}))?"
    r"(?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2})"
    r" (?P<flag>[A-Z])$"
)

# OCMF names the curve and the hash; SHA-256 is paired even with P-384 ("secp384r1-SHA256").
_SA_CURVES = {
    "secp192r1": "secp192r1",
    "secp256r1": "secp256r1",
    "secp384r1": "secp384r1",
    "secp521r1": "secp521r1",
    "secp256k1": "secp256k1",
    "brainpoolp256r1": "brainpoolP256r1",
    "brainpool256r1": "brainpoolP256r1",
    "brainpoolp384r1": "brainpoolP384r1",
    "brainpool384r1": "brainpoolP384r1",
    "brainpoolp512r1": "brainpoolP512r1",
    "brainpool512r1": "brainpoolP512r1",
}
_SA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


class OcmfFormatError(ValueError):
    """A record is not well-formed OCMF; the message is a one-line reason."""


class OcmfReading(NamedTuple):
    """One entry of the payload's RD list (immutable).

    Billing rule: a reading is unfit for billing when ST is not "G" or EF holds any flag.
    An unsynchronised ("U"), informative ("I") or relative ("R") time is only a warning: the
    S.A.F.E. Transparenzsoftware still verifies such records (real SEAL/KEBA/DZG test data
    carries "U"/"I"/"R"), and pyocmf, which follows it, reports time status as a warning too.

    A named tuple rather than a frozen dataclass: a meter's file holds readings by the ten
    thousand, and a tuple is built in a fifth of the time a dataclass instance takes.
    """

    time_text: str  # TM as printed
    time: datetime  # TM with its UTC offset
    time_status: str  # the sync flag letter after TM: S, U, I or R
    tx: str | None  # TX: B, C, E, X, L, R, A, P, S or T
    value: Decimal  # RV
    unit: str | None  # RU
    obis: str | None  # RI
    status: str | None  # ST, "G" = good
    error_flags: str  # EF, "" = none
    reading_type: str | None  # RT, AC or DC
    xv: Decimal | None  # BSM extension: total register value
    xu: str | None  # its unit
    xi: str | None  # its OBIS id
    xt: int | None  # snapshot type
    billable: bool
    problems: list[str]
    warnings: list[str]


class OcmfRecord(NamedTuple):
    """A parsed record (immutable); `payload_bytes` are exactly the signed bytes."""

    raw: str
    payload_bytes: bytes
    payload: dict[str, Any]
    signature: dict[str, Any]
    readings: list[OcmfReading]
    signature_bytes: bytes  # SD decoded per SE (by parse_ocmf, which checks it)

    @property
    def algorithm(self) -> str:
        return str(self.signature.get("SA") or DEFAULT_ALGORITHM)

    @property
    def encoding(self) -> str:
        return str(self.signature.get("SE") or DEFAULT_ENCODING)

    @property
    def gateway_serial(self) -> str | None:
        return _opt_str(self.payload.get("GS"))

    @property
    def meter_serial(self) -> str | None:
        return _opt_str(self.payload.get("MS"))

    @property
    def pagination(self) -> str | None:
        return _opt_str(self.payload.get("PG"))

    @property
    def identification(self) -> str | None:
        return _opt_str(self.payload.get("ID"))

    @property
    def version(self) -> str | None:
        return _opt_str(self.payload.get("FV"))


@dataclass(frozen=True)
class OcmfVerification:
    """Outcome of `verify_ocmf`; `reason` is one line."""

    signature_valid: bool
    billable: bool
    reason: str
    readings: list[OcmfReading]
    warnings: list[str] = field(default_factory=list)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _decode_sd(text: str, encoding: str) -> bytes:
    enc = encoding.lower()
    if enc == "hex":
        return bytes.fromhex(text)
    if enc == "base64":
        return base64.b64decode(text, validate=True)
    raise ValueError(f"unsupported signature encoding SE {encoding!r}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
# what raw_decode and json.loads call, called directly: (value, end) of the JSON value at an
# index (a payload's fractions as Decimal), or StopIteration when none starts there
scan_payload: Callable[[str, int], tuple[Any, int]] = vars(_DECODER)["scan_once"]
_SCAN_JSON: Callable[[str, int], tuple[Any, int]] = vars(json.JSONDecoder())["scan_once"]


def parse_ocmf(data: str | bytes) -> OcmfRecord:
    """Split and parse a record, keeping the payload bytes as received.

    Raises OcmfFormatError with a one-line reason.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise OcmfFormatError("record is not UTF-8 text") from None
    text = data.strip()
    if not text.startswith(OCMF_PREFIX):
        raise OcmfFormatError("record does not start with 'OCMF|'")
    payload_text, payload, signature_text = _split(text)
    if not isinstance(payload, dict):
        raise OcmfFormatError("payload is not a JSON object")
    signature, signature_bytes = _parse_signature(signature_text)
    readings = _parse_readings(payload)
    return _new_record((text, payload_text.encode(), payload, signature, readings, signature_bytes))


# a record and a reading built from a tuple of every field, in order, without the generated
# __new__'s call per argument (the parser builds them by the ten thousand)
_new_record: Callable[[tuple[Any, ...]], OcmfRecord] = functools.partial(tuple.__new__, OcmfRecord)
_new_reading: Callable[[tuple[Any, ...]], OcmfReading] = functools.partial(
    tuple.__new__, OcmfReading
)


def _split(text: str) -> tuple[str, Any, str]:
    """(payload text, its parsed JSON, signature text): the payload's end is found by JSON
    grammar, so a `|` inside a payload string is harmless. The payload is parsed once, here:
    the object raw_decode returns for that exact span is what decoding the span would give."""
    start = len(OCMF_PREFIX)
    if text[start : start + 1] != "{":
        raise OcmfFormatError("payload section does not start with '{'")
    try:
        payload, end = scan_payload(text, start)
    except ValueError as exc:
        raise OcmfFormatError(f"payload is not valid JSON: {exc}") from None
    except StopIteration as stop:  # as raw_decode words it
        reason = json.JSONDecodeError("Expecting value", text, stop.value)
        raise OcmfFormatError(f"payload is not valid JSON: {reason}") from None
    except RecursionError:
        raise OcmfFormatError("payload is not valid JSON: nested too deeply") from None
    if end >= len(text):
        raise OcmfFormatError("no signature section after the payload")
    if text[end] != "|":
        raise OcmfFormatError(f"expected '|' after the payload, found {text[end]!r}")
    rest = text[end + 1 :]
    if "|" in rest:
        head, _, _ = rest.partition("|")
        if _is_json_object(head):
            raise OcmfFormatError(
                "unexpected section after the signature (public keys travel out of band)"
            )
    return text[start:end], payload, rest


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


_SA_HEAD = '{"SA":"'
_SD_AFTER_SA = '","SD":"'
# every SA this verifier knows, as a meter spells it
_KNOWN_ALGORITHMS = frozenset(
    f"ECDSA-{curve}-{hash_name}" for curve in _SA_CURVES for hash_name in _SA_HASHES
)


def meter_signature(text: str, start: int = 0) -> tuple[str, str, bytes] | None:
    """(SA, SD, SD decoded) of the signature section `text[start:]` when it is as a BSM writes
    it, `{"SA":"<algorithm>","SD":"<hex>"}` with an algorithm this verifier knows, read without
    the JSON decoder; None for any other text. What it gives is what the decoder gives: SD
    holds hex digits only (no escapes to undo)."""
    if not (text.startswith(_SA_HEAD, start) and text.endswith('"}')):
        return None
    middle = text.find(_SD_AFTER_SA, start + 7)
    if middle < 0:
        return None
    algorithm = text[start + 7 : middle]
    sd = text[middle + 8 : -2]
    if not (sd and algorithm in _KNOWN_ALGORITHMS):
        return None
    try:
        signature_bytes = bytes.fromhex(sd)
    except ValueError:
        return None  # the decoder's way names why
    if len(sd) != 2 * len(signature_bytes):
        return None  # white space between the bytes: left to the decoder's way
    return algorithm, sd, signature_bytes


def _parse_signature(text: str) -> tuple[dict[str, Any], bytes]:
    """The signature section and its SD decoded per SE."""
    meters = meter_signature(text)
    if meters is not None:
        return {"SA": meters[0], "SD": meters[1]}, meters[2]
    try:  # a meter's section is one object, nothing around it: what json.loads gives
        signature, end = _SCAN_JSON(text, 0)
        if end != len(text):
            raise ValueError("white space or more after the object")
    except (StopIteration, ValueError, RecursionError):
        signature = _load_signature(text)  # the same, or json.loads' reason why not
    if not isinstance(signature, dict):
        raise OcmfFormatError("signature section is not a JSON object")
    get = signature.get
    sd = get("SD")
    if sd is None:
        raise OcmfFormatError("signature section has no SD (signature data)")
    if not isinstance(sd, str) or not sd:
        raise OcmfFormatError("signature data SD is not a non-empty string")
    if not (type(get("SA", "")) is type(get("SE", "")) is type(get("SM", "")) is str):
        for key in ("SA", "SE", "SM"):
            if key in signature and not isinstance(signature[key], str):
                raise OcmfFormatError(f"signature field {key} is not a string")
    encoding = get("SE") or DEFAULT_ENCODING  # a string (checked above)
    try:
        if encoding == "hex":  # as a BSM writes it
            return signature, bytes.fromhex(sd)
        return signature, _decode_sd(sd, encoding)
    except (ValueError, binascii.Error) as exc:
        raise OcmfFormatError(f"signature data SD is not valid {encoding}: {exc}") from None


def _load_signature(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OcmfFormatError(f"signature section is not valid JSON: {exc}") from None
    except RecursionError:
        raise OcmfFormatError("signature section is not valid JSON: nested too deeply") from None


def _parse_readings(payload: dict[str, Any]) -> list[OcmfReading]:
    if "RD" not in payload:
        raise OcmfFormatError("payload has no RD (readings)")
    rd = payload["RD"]
    if not isinstance(rd, list) or not rd:
        raise OcmfFormatError("payload RD is not a non-empty list of readings")
    if len(rd) == 1 and type(rd[0]) is dict:  # one reading, as most meters sign
        try:
            return [_parse_reading(rd[0])]
        except OcmfFormatError as exc:
            raise OcmfFormatError(f"reading 1: {exc}") from None
    readings = []
    for index, item in enumerate(rd, start=1):
        if not isinstance(item, dict):
            raise OcmfFormatError(f"reading {index} is not a JSON object")
        try:
            readings.append(_parse_reading(item))
        except OcmfFormatError as exc:
            raise OcmfFormatError(f"reading {index}: {exc}") from None
    return readings


def parse_time(text: str) -> tuple[datetime, str]:
    """Parse an OCMF TM such as `2022-07-08T10:00:28,000+0200 S` into (time, sync flag)."""
    match = _TIME_RE.match(text)
    if match is None:
        raise OcmfFormatError(f"TM {text!r} is not 'YYYY-MM-DDTHH:MM:SS,fff+hhmm F'")
    flag = match[7]
    try:
        # the matched time with its offset is ISO 8601 as fromisoformat reads it (the comma,
        # 1-6 digits of fraction, +hhmm), in one call; what it refuses the steps below name
        moment = datetime.fromisoformat(text[: match.end(6)])
    except ValueError:
        moment = _time_in_steps(text, match)
    if flag not in TIME_FLAGS:
        raise OcmfFormatError(f"TM {text!r} has unknown sync flag {flag!r}")
    return moment, flag


def _time_in_steps(text: str, match: re.Match[str]) -> datetime:
    """The time of a TM the regex matched, its date and its offset read apart, so that the
    reason names what is wrong."""
    date, clock, frac, sign, hours, minutes, _ = match.groups()
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}.{(frac or '0').ljust(6, '0')}")
        tz = _zone(sign, hours, minutes)
    except ValueError as exc:
        raise OcmfFormatError(f"TM {text!r} is not a valid time: {exc}") from None
    return moment.replace(tzinfo=tz)


@functools.lru_cache(maxsize=64)
def _zone(sign: str, hours: str, minutes: str) -> timezone:
    """The fixed-offset zone of a TM (a meter's file repeats one or two offsets)."""
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-offset if sign == "-" else offset)


def _decimal(value: Any, name: str) -> Decimal:
    if type(value) is Decimal:  # a JSON fraction, as the decoder gives it
        return value
    if isinstance(value, bool):
        raise OcmfFormatError(f"{name} is a boolean, not a number")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise OcmfFormatError(f"{name} {value!r} is not a number") from None
        if number.is_finite():
            return number
    raise OcmfFormatError(f"{name} {value!r} is not a number")


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OcmfFormatError(f"{key} is not a string")
    return value


# the reading's text fields in the order their types are checked
_READING_TEXTS = ("TX", "ST", "EF", "RU", "RI", "RT", "XU", "XI")
_TEXT_TYPES = frozenset({str, type(None)})


def _parse_reading(item: dict[str, Any]) -> OcmfReading:
    # the checks in this order: a reading with several faults names the first of them
    get = item.get
    tm = get("TM")
    if type(tm) is not str:
        raise OcmfFormatError("no TM (time)" if tm is None else "TM is not a string")
    moment, flag = parse_time(tm)
    texts = (get("TX"), get("ST"), get("EF"), get("RU"), get("RI"), get("RT"), get("XU"), get("XI"))
    tx, status, error_flags, unit, obis, reading_type, xu, xi = texts
    value, xv, xt = get("RV"), get("XV"), get("XT")
    if not (
        type(value) is Decimal
        and (xv is None or type(xv) is Decimal)
        and (xt is None or type(xt) is int)
        and _TEXT_TYPES.issuperset(map(type, texts))
        and (tx is None or tx in READING_REASONS)
    ):  # what a meter's JSON always is, tested at once; anything else field by field
        value, xv = _checked_values(item, tx)
    if status == "G" and not error_flags:  # a meter's good reading
        problems: list[str] = []
    else:
        problems = _problems(status, error_flags)
    return _new_reading(
        (
            tm,
            moment,
            flag,
            tx,
            value,
            unit,
            obis,
            status,
            error_flags or "",
            reading_type,
            xv,
            xu,
            xi,
            xt,
            not problems,
            problems,
            [] if flag == "S" else [f"time status {flag} ({TIME_FLAGS[flag]})"],
        )
    )


def _problems(status: str | None, error_flags: str | None) -> list[str]:
    """Why a reading is unfit for billing."""
    problems = []
    if status is None:
        problems.append("no meter status ST")
    elif status != "G":
        problems.append(f"meter status ST {status!r} is not 'G' (good)")
    if error_flags:
        problems.append(f"error flags EF {error_flags!r} set")
    return problems


def _checked_values(item: dict[str, Any], tx: Any) -> tuple[Decimal, Decimal | None]:
    """(RV, XV) as numbers, each field of a reading checked in turn; raises OcmfFormatError
    naming the first that is wrong."""
    if tx is not None and not isinstance(tx, str):
        raise OcmfFormatError("TX is not a string")
    if tx is not None and tx not in READING_REASONS:
        raise OcmfFormatError(f"TX {tx!r} is not one of {''.join(sorted(READING_REASONS))}")
    if "RV" not in item:
        raise OcmfFormatError("no RV (reading value)")
    value = _decimal(item["RV"], "RV")
    xv_raw = item.get("XV")
    xv = None if xv_raw is None else _decimal(xv_raw, "XV")
    xt_raw = item.get("XT")
    if xt_raw is not None and (isinstance(xt_raw, bool) or not isinstance(xt_raw, int)):
        raise OcmfFormatError("XT is not an integer")
    for key in _READING_TEXTS[1:]:
        _text(item, key)
    return value, xv


@functools.lru_cache(maxsize=32)
def algorithm_parts(algorithm: str) -> tuple[str, type[hashes.HashAlgorithm]]:
    """(curve name as cryptography spells it, hash class) for an OCMF SA value.

    Raises ValueError for an algorithm this verifier does not support.
    """
    parts = algorithm.strip().split("-")
    if len(parts) != 3 or parts[0].upper() != "ECDSA":
        raise ValueError(f"unsupported signature algorithm {algorithm!r}")
    curve = _SA_CURVES.get(parts[1].lower())
    hash_cls = _SA_HASHES.get(parts[2].upper())
    if curve is None or hash_cls is None:
        raise ValueError(f"unsupported signature algorithm {algorithm!r}")
    return curve, hash_cls


def signature_problem(record: OcmfRecord, key: PublicKeyInfo) -> str | None:
    """None when the record's signature is valid for `key`, else the reason it is not."""
    get = record.signature.get  # SA and SM are strings when present (parse_ocmf checks)
    algorithm = get("SA") or DEFAULT_ALGORITHM
    method = signature_method(algorithm, get("SM"), key.curve_name)
    if type(method) is str:
        return method
    assert isinstance(method, ec.ECDSA)
    signature = record.signature_bytes
    try:
        key.key.verify(signature, record.payload_bytes, method)
    except InvalidSignature:
        # only strict DER verifies (OpenSSL re-encodes and compares), so the DER is looked
        # at only to name why a signature failed
        try:
            decode_dss_signature(signature)
        except ValueError:
            return f"malformed DER signature ({len(signature)} bytes)"
        return (
            f"signature does not match the payload and key sha256:{key.fingerprint[:16]}"
            f" ({algorithm})"
        )
    return None


@functools.lru_cache(maxsize=64)
def signature_method(algorithm: str, mime: str | None, key_curve: str) -> ec.ECDSA | str:
    """The signature algorithm a record's SA and SM name for a key on `key_curve`, or why it
    cannot be checked with that key (a file's records repeat one or two of them)."""
    try:
        curve, hash_cls = algorithm_parts(algorithm)
    except ValueError as exc:
        return str(exc)
    if key_curve != curve:
        return f"key is on {key_curve} but SA {algorithm} needs {curve}"
    if mime is not None and mime.lower() != "application/x-der":
        return f"unsupported signature mime type SM {mime!r}"
    return ec.ECDSA(hash_cls())


def reading_warnings(readings: list[OcmfReading]) -> list[str]:
    """The readings' warnings, each once, in their order."""
    if len(readings) == 1:
        return readings[0].warnings.copy()
    warnings = [w for reading in readings for w in reading.warnings]
    return list(dict.fromkeys(warnings)) if len(warnings) > 1 else warnings


def verify_ocmf(record: OcmfRecord, key: PublicKeyInfo) -> OcmfVerification:
    """Verify the signature over the exact payload bytes and judge the readings' billability."""
    failure = signature_problem(record, key)
    readings = record.readings
    warnings = reading_warnings(readings)
    if failure is not None:
        return OcmfVerification(False, False, failure, readings, warnings)
    if all(reading.billable for reading in readings):
        reason = f"signature valid ({record.algorithm}), {len(readings)} billable reading(s)"
        return OcmfVerification(True, True, reason, readings, warnings)
    problems = [
        f"reading {index} ({reading.tx or '?'}): {'; '.join(reading.problems)}"
        for index, reading in enumerate(readings, start=1)
        if not reading.billable
    ]
    reason = "signature valid, not billable: " + "; ".join(problems)
    return OcmfVerification(True, False, reason, readings, warnings)
