"""The check behind `chargepoint verify (OCMF-STRING | FILE) --public-key HEX|FILE`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from meter.proof.keys import PublicKeyInfo, load_public_key
from meter.proof.ocmf import OcmfFormatError, OcmfReading, OcmfRecord, parse_ocmf, verify_ocmf
from meter.proof.test_signature import TEST_MARKER, is_test_signature

MAX_INPUT_FILE = 16 * 1024 * 1024


@dataclass(frozen=True)
class VerifyOutcome:
    """`ok` only when every record's signature is valid and every reading billable."""

    ok: bool
    lines: list[str] = field(default_factory=list)


def _fail(reason: str) -> VerifyOutcome:
    return VerifyOutcome(False, [f"not verified: {reason}"])


_BLANK = " \t\r\n"  # ASCII white space only: an OCMF payload may hold U+2028, U+0085, ...


def _lines(text: str) -> list[str]:
    """The non-blank lines of `text`, split on "\n" only (a trailing "\r" is dropped).

    Not str.splitlines(): it also splits on U+2028, U+0085, \x1c-\x1e, \v and \f, which a
    record's metadata may hold unescaped (JSON allows them in strings).
    """
    return [line.strip(_BLANK) for line in text.split("\n") if line.strip(_BLANK)]


def _records_from(source: str) -> list[str]:
    """The OCMF records of `source`: the string itself, or the non-empty lines of a file."""
    text = source.strip(_BLANK)
    if text.startswith("OCMF|"):
        return _lines(text)
    if not text:
        raise ValueError("no OCMF record given")
    path = Path(text).expanduser()
    try:
        if not path.is_file():
            raise ValueError(f"{text!r} is neither an OCMF record nor a readable file")
        if path.stat().st_size > MAX_INPUT_FILE:
            raise ValueError(f"file {path} is too large")
        content = path.read_text(encoding="utf-8-sig")  # tolerate a leading BOM
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"file {path} is not UTF-8 text") from None
    records = _lines(content)
    if not records:
        raise ValueError(f"file {path} holds no OCMF record")
    return records


def _time_text(reading: OcmfReading) -> str:
    spec = "milliseconds" if reading.time.microsecond else "seconds"
    return reading.time.isoformat(timespec=spec)


def _describe_reading(reading: OcmfReading) -> str:
    text = f"{reading.tx or '?'} {reading.value} {reading.unit or ''}".rstrip()
    if reading.xv is not None:
        text += f" (total {reading.xv} {reading.xu or ''}".rstrip() + ")"
    return f"{text} at {_time_text(reading)}"


def _describe(record: OcmfRecord, key: PublicKeyInfo) -> str:
    meter = record.meter_serial or record.gateway_serial or "?"
    readings = ", ".join(_describe_reading(r) for r in record.readings)
    return (
        f"meter {meter}, {record.pagination or 'no PG'}, {readings}, "
        f"{record.algorithm}, key sha256:{key.fingerprint[:16]}..."
    )


def _check_record(text: str, key: PublicKeyInfo, label: str) -> tuple[bool, str]:
    try:
        record = parse_ocmf(text)
    except OcmfFormatError as exc:
        return False, f"not verified: {label}malformed record: {exc}"
    result = verify_ocmf(record, key)
    if not result.signature_valid:
        return False, f"not verified: {label}{result.reason}"
    if not result.billable:
        problems = [
            f"{reading.tx or '?'} reading: {'; '.join(reading.problems)}"
            for reading in result.readings
            if not reading.billable
        ]
        return False, f"signature valid but not billable: {label}{'; '.join(problems)}"
    line = f"verified: {label}{_describe(record, key)}"
    if is_test_signature(record):
        line += f" -- TEST signature by the station, {TEST_MARKER}"
    if result.warnings:
        line += f" (warning: {'; '.join(result.warnings)})"
    return True, line


def verify_input(source: str, public_key_spec: str) -> VerifyOutcome:
    """Verify one OCMF record, or every record of a file (one per line), with the given key.

    Never raises for bad input: every problem becomes a `not verified: ...` line.
    """
    try:
        key = load_public_key(public_key_spec)
    except ValueError as exc:  # KeyFormatError, or any other unreadable key
        return _fail(f"public key: {exc}")
    try:
        records = _records_from(source)
    except ValueError as exc:
        return _fail(str(exc))
    lines: list[str] = []
    ok = True
    for index, text in enumerate(records, start=1):
        label = f"record {index}: " if len(records) > 1 else ""
        good, line = _check_record(text, key, label)
        ok = ok and good
        lines.append(line)
    return VerifyOutcome(ok, lines)
