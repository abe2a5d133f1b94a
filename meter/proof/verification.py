"""The check behind `chargepoint verify (OCMF-STRING | FILE) --public-key HEX|FILE`.

A file is read as a stream, a line at a time, and each record's line is given out as soon as
it is checked: memory does not grow with the file. With `jobs` > 1 the records are checked in
worker processes, in chunks, and the lines still come out in the file's order.
"""

from __future__ import annotations

import codecs
import itertools
import os
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from meter.proof.keys import PublicKeyInfo, load_public_key
from meter.proof.ocmf import (
    DEFAULT_ALGORITHM,
    OcmfFormatError,
    OcmfReading,
    OcmfRecord,
    parse_ocmf,
    reading_warnings,
    signature_problem,
)
from meter.proof.test_signature import TEST_MARKER, is_test_signature
from meter.proof.usual_record import record_label, usual_line

if TYPE_CHECKING:
    from concurrent.futures import Future

MAX_INPUT_FILE = 16 * 1024 * 1024  # a Chargy document, read whole; and one line of an OCMF file
_READ_CHUNK = 1024 * 1024
_JOB_CHUNK = 256  # records per task given to a worker
_JOB_CHUNK_CHARS = 1024 * 1024  # ... or fewer when they are long


@dataclass(frozen=True)
class VerifyOutcome:
    """`ok` only when every record's signature is valid and every reading billable."""

    ok: bool
    lines: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """The lines that say a record did not verify or is not billable."""
        return [line for line in self.lines if not line.startswith("verified: ")]


_BLANK = " \t\r\n"  # ASCII white space only: an OCMF payload may hold U+2028, U+0085, ...


def _lines(text: str) -> list[str]:
    """The non-blank lines of `text`, split on "\n" only (a trailing "\r" is dropped).

    Not str.splitlines(): it also splits on U+2028, U+0085, \x1c-\x1e, \v and \f, which a
    record's metadata may hold unescaped (JSON allows them in strings).
    """
    return [line.strip(_BLANK) for line in text.split("\n") if line.strip(_BLANK)]


def _records_from(source: str) -> Iterator[_Item]:
    """The OCMF records of `source`: the string itself, or the non-empty lines of a file.

    What makes the source unusable (no such file, not UTF-8, no record) raises ValueError
    here, before the first record is given; the file's records are then read as they are
    needed."""
    text = source.strip(_BLANK)
    if text.startswith("OCMF|"):
        return iter(_lines(text))
    if not text:
        raise ValueError("no OCMF record given")
    path = Path(text).expanduser()
    try:
        if not path.is_file():
            raise ValueError(f"{text!r} is neither an OCMF record nor a readable file")
        if not _holds_text(path):
            raise ValueError(f"file {path} holds no OCMF record")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"file {path} is not UTF-8 text") from None
    return _file_records(path)


def _holds_text(path: Path) -> bool:
    """Whether the file holds anything but white space; raises UnicodeDecodeError when it is
    not UTF-8 (a first pass in constant memory, so that such a file gives one line, as
    before, rather than the records up to the bad byte)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    found = False
    with path.open("rb") as f:
        while chunk := f.read(_READ_CHUNK):
            if found and chunk.isascii() and not decoder.getstate()[0]:
                continue  # ASCII is UTF-8, and no sequence is left open before it
            text = decoder.decode(chunk)  # every chunk: the bad byte may come late
            found = found or bool(text.strip(_BLANK))
        decoder.decode(b"", final=True)
    return found


@dataclass(frozen=True)
class _Unusable:
    """A line of a file that is no record to check, and why."""

    reason: str


_Item = str | _Unusable


def _file_records(path: Path) -> Iterator[_Item]:
    """The non-blank lines of a UTF-8 file as read_text() splits them (universal newlines, a
    leading BOM dropped), one at a time; a line longer than MAX_INPUT_FILE is not held."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            while line := f.readline(MAX_INPUT_FILE):
                if len(line) == MAX_INPUT_FILE and not line.endswith("\n"):
                    while (rest := f.readline(MAX_INPUT_FILE)) and not rest.endswith("\n"):
                        pass
                    yield _Unusable(f"line longer than {MAX_INPUT_FILE // 2**20} MiB")
                    continue
                record = line.strip(_BLANK)
                if record:
                    yield record
    except (OSError, UnicodeDecodeError) as exc:  # the file changed since it was checked
        yield _Unusable(f"cannot read the rest of {path}: {getattr(exc, 'strerror', None) or exc}")


def _numbered(records: Iterator[_Item]) -> Iterator[tuple[int, _Item]]:
    """(number, record): numbered from 1 when the source holds more than one record, else 0
    (its lines say "record N: " only then)."""
    head = list(itertools.islice(records, 2))
    if len(head) < 2:
        yield from ((0, text) for text in head)
        return
    yield from enumerate(itertools.chain(head, records), start=1)


def _time_text(reading: OcmfReading) -> str:
    """The reading's time as isoformat() gives it: to the second, or the millisecond when it
    has a fraction."""
    time = reading.time
    if time.microsecond:
        return time.isoformat(timespec="milliseconds")
    tm = reading.time_text
    # TM as a BSM writes it, 2022-07-08T10:00:28,000+0200 S (parsed, so its digits are valid):
    # what isoformat() prints is in it, unless the offset is -0000 or not in ASCII digits
    if (
        len(tm) == 30
        and tm[19:23] in (",000", ".000")
        and tm[24:28].isascii()
        and tm[26] < "6"
        and (tm[23] == "+" or tm[24:28] != "0000")
    ):
        return f"{tm[:19]}{tm[23:26]}:{tm[26:28]}"
    return time.isoformat()


def _describe_reading(reading: OcmfReading) -> str:
    text = f"{reading.tx or '?'} {reading.value!s} {reading.unit or ''}".rstrip()
    if reading.xv is not None:
        text += f" (total {reading.xv!s} {reading.xu or ''}".rstrip() + ")"
    return f"{text} at {_time_text(reading)}"


def _describe(record: OcmfRecord, key: PublicKeyInfo) -> str:
    payload = record.payload
    meter = payload.get("MS")
    if type(meter) is not str or not meter:  # as a BSM writes it, or what the record says
        meter = record.meter_serial or record.gateway_serial or "?"
    pagination = payload.get("PG")
    if type(pagination) is not str or not pagination:
        pagination = record.pagination or "no PG"
    described = ", ".join(_describe_reading(r) for r in record.readings)
    algorithm = record.signature.get("SA") or DEFAULT_ALGORITHM  # a string (parse_ocmf)
    return (
        f"meter {meter}, {pagination}, {described}, "
        f"{algorithm}, key sha256:{key.fingerprint[:16]}..."
    )


def _check_record(text: _Item, key: PublicKeyInfo, number: int) -> tuple[bool, str]:
    """What verify_ocmf finds, as a line (without building its result: a file's records are
    checked by the ten thousand); `number` is the record's in a file of several, else 0."""
    if type(text) is not str:
        assert isinstance(text, _Unusable)
        return False, f"not verified: {record_label(number)}{text.reason}"
    line = usual_line(text, key, number)  # a meter's usual record, in one pass
    if line is not None:
        return True, line
    return check_in_full(text, key, number)


def check_in_full(text: str, key: PublicKeyInfo, number: int) -> tuple[bool, str]:
    """_check_record's rule for any record: parsed into its record and readings."""
    try:
        record = parse_ocmf(text)
    except OcmfFormatError as exc:
        return False, f"not verified: {record_label(number)}malformed record: {exc}"
    failure = signature_problem(record, key)
    if failure is not None:
        return False, f"not verified: {record_label(number)}{failure}"
    readings = record.readings
    if len(readings) == 1:
        billable = readings[0].billable
        warnings = readings[0].warnings
    else:
        billable = all(reading.billable for reading in readings)
        warnings = reading_warnings(readings)
    if not billable:
        problems = [
            f"{reading.tx or '?'} reading: {'; '.join(reading.problems)}"
            for reading in readings
            if not reading.billable
        ]
        label = record_label(number)
        return False, f"signature valid but not billable: {label}{'; '.join(problems)}"
    line = f"verified: {record_label(number)}{_describe(record, key)}"
    if is_test_signature(record):
        line += f" -- TEST signature by the station, {TEST_MARKER}"
    if warnings:
        line += f" (warning: {'; '.join(warnings)})"
    return True, line


def check_records(
    source: str, public_key_spec: str, jobs: int = 1
) -> Generator[tuple[bool, str], None, None]:
    """(good, line) for one OCMF record, or for every record of a file (one per line), checked
    with the given key, each given as soon as it is known and in the file's order. `jobs` > 1
    checks them in that many worker processes (0: one per core).

    Never raises for bad input: every problem becomes a `not verified: ...` line.
    """
    try:
        key = load_public_key(public_key_spec)
    except ValueError as exc:  # KeyFormatError, or any other unreadable key
        yield False, f"not verified: public key: {exc}"
        return
    try:
        records = _numbered(_records_from(source))
    except ValueError as exc:
        yield False, f"not verified: {exc}"
        return
    workers = (os.cpu_count() or 1) if jobs == 0 else jobs
    if workers > 1:
        yield from _in_workers(records, key, workers)
    else:
        for number, text in records:
            yield _check_record(text, key, number)


def verify_input(source: str, public_key_spec: str) -> VerifyOutcome:
    """Verify one OCMF record, or every record of a file (one per line), with the given key.

    Never raises for bad input: every problem becomes a `not verified: ...` line.
    """
    lines: list[str] = []
    ok = True
    for good, line in check_records(source, public_key_spec):
        ok = ok and good
        lines.append(line)
    return VerifyOutcome(ok, lines)


def _chunks(records: Iterator[tuple[int, _Item]]) -> Iterator[list[tuple[int, _Item]]]:
    chunk: list[tuple[int, _Item]] = []
    chars = 0
    for item in records:
        chunk.append(item)
        chars += len(item[1]) if isinstance(item[1], str) else 0
        if len(chunk) == _JOB_CHUNK or chars >= _JOB_CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _in_workers(
    records: Iterator[tuple[int, _Item]], key: PublicKeyInfo, workers: int
) -> Iterator[tuple[bool, str]]:
    """The records checked in `workers` processes, a chunk per task, a few tasks ahead of the
    one whose lines are given out (memory stays flat); lines in input order."""
    from concurrent.futures import ProcessPoolExecutor  # only here: it costs time to import

    pending: deque[Future[list[tuple[bool, str]]]] = deque()
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(key.der,)) as pool:
        try:
            for chunk in _chunks(records):
                pending.append(pool.submit(_check_chunk, chunk))
                if len(pending) >= 2 * workers:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


_WORKER_KEY: dict[str, PublicKeyInfo] = {}  # in a worker process: "key" -> the key to check with


def _start_worker(der: bytes) -> None:
    """A worker's key, loaded once (the DER the parent loaded: it cannot fail)."""
    key = load_der_public_key(der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    _WORKER_KEY["key"] = PublicKeyInfo.from_key(key)


def _check_chunk(chunk: Iterable[tuple[int, _Item]]) -> list[tuple[bool, str]]:
    key = _WORKER_KEY["key"]
    return [_check_record(text, key, number) for number, text in chunk]
