"""`chargepoint verify`'s check: what a user sees for good, unbillable and bad input."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from meter.proof.keys import load_public_key, public_der
from meter.proof.ocmf import OcmfReading, OcmfRecord, parse_ocmf, parse_time
from meter.proof.verification import verify_input
from tests.real_vectors import bsm_public_key_hex, bsm_vectors, multivendor_vectors

A_KEY = bsm_public_key_hex("A_meter_001BZR1521070006")
B_KEY = bsm_public_key_hex("B_meter_001BZR1521290137")


def _bsm(name: str) -> str:
    record: str = bsm_vectors()["ocmf_vectors"][name]["ocmf"]
    return record


def test_verified_record_is_one_clear_line() -> None:
    outcome = verify_input(_bsm("ostons_T4276"), A_KEY)
    assert outcome.ok
    (line,) = outcome.lines
    fingerprint = load_public_key(A_KEY).fingerprint
    assert line.startswith(
        "verified: meter 001BZR1521070006, T4276, "
        "B 0.00 kWh (total 99.84 kWh) at 2022-07-08T10:00:28+02:00, "
    )
    assert f"key sha256:{fingerprint[:16]}" in line
    assert "\n" not in line


def test_file_with_begin_and_end_records(tmp_path: Path) -> None:
    path = tmp_path / "session.txt"
    path.write_text(f"\n{_bsm('ostons_T4276')}\n\n{_bsm('ostoffs_T4277')}\n")
    outcome = verify_input(str(path), A_KEY)
    assert outcome.ok
    assert len(outcome.lines) == 2
    assert outcome.lines[0].startswith("verified: record 1: meter 001BZR1521070006, T4276, B ")
    assert "E 0.15 kWh (total 100.00 kWh) at 2022-07-08T10:05:52+02:00" in outcome.lines[1]


@pytest.mark.parametrize(
    "key_form",
    [
        pytest.param(lambda h, p: f"oca:base16:asn1:{h}", id="oca"),
        pytest.param(
            lambda h, p: base64.b64encode(f"oca:base16:asn1:{h}".encode()).decode(), id="ocpp"
        ),
        pytest.param(lambda h, p: str(p), id="key-file"),
    ],
)
def test_key_in_other_forms(tmp_path: Path, key_form: Callable[[str, Path], str]) -> None:
    key_file = tmp_path / "meter.hex"
    key_file.write_text(A_KEY + "\n")
    outcome = verify_input(_bsm("oscs_T4278"), key_form(A_KEY, key_file))
    assert outcome.ok, outcome.lines


def test_old_firmware_wh_record() -> None:
    outcome = verify_input(_bsm("chargy_fixture_T22108"), A_KEY)
    assert outcome.ok
    assert "meter 001BZR1521070003, T22108, E 150 Wh (total 88350 Wh)" in outcome.lines[0]


def test_valid_signature_with_meter_error_is_not_billable() -> None:
    example = multivendor_vectors()["example_H"]
    outcome = verify_input(example["records"][0]["ocmf"], example["public_key_der_hex"])
    assert not outcome.ok
    (line,) = outcome.lines
    assert line.startswith("signature valid but not billable: ")
    assert "ST 'E'" in line and "EF 'Et'" in line


def test_unsynchronised_time_verifies_with_a_warning() -> None:
    example = multivendor_vectors()["example_B"]
    outcome = verify_input(example["records"][0]["ocmf"], example["public_key_der_hex"])
    assert outcome.ok
    assert outcome.lines[0].startswith("verified: meter ******240084S, T9289, B 268.978 kWh")
    assert "warning: time status U (unsynchronised)" in outcome.lines[0]


def test_wrong_key_is_not_verified() -> None:
    outcome = verify_input(_bsm("ostons_T4276"), B_KEY)
    assert not outcome.ok
    (line,) = outcome.lines
    assert line.startswith("not verified: signature does not match")


def test_key_on_another_curve_is_not_verified() -> None:
    brainpool = multivendor_vectors()["example_C"]["public_key_der_hex"]
    outcome = verify_input(_bsm("ostons_T4276"), brainpool)
    assert not outcome.ok
    assert outcome.lines[0].startswith("not verified: key is on brainpoolP256r1")


def test_tampered_record_is_not_verified() -> None:
    tampered = _bsm("ostoffs_T4277").replace('"RV":0.15', '"RV":0.16')
    outcome = verify_input(tampered, A_KEY)
    assert not outcome.ok
    assert outcome.lines[0].startswith("not verified: ")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("OCMF|{not json}|{}", "not verified: malformed record: payload is not valid JSON"),
        ('OCMF|{"FV":"1.0"}|{"SD":"30"}', "not verified: malformed record: payload has no RD"),
        ("", "not verified: no OCMF record given"),
        ("/nonexistent/file.ocmf", "not verified: '/nonexistent/file.ocmf' is neither"),
    ],
)
def test_bad_records_are_one_not_verified_line(source: str, expected: str) -> None:
    outcome = verify_input(source, A_KEY)
    assert not outcome.ok
    (line,) = outcome.lines
    assert line.startswith(expected)


@pytest.mark.parametrize("spec", ["", "zz", "3059", "/nonexistent/key.pem", "oca:base16:asn1:"])
def test_bad_key_is_one_not_verified_line(spec: str) -> None:
    outcome = verify_input(_bsm("ostons_T4276"), spec)
    assert not outcome.ok
    (line,) = outcome.lines
    assert line.startswith("not verified: public key: ")


def test_mixed_file_fails_and_names_the_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_text(_bsm("ostons_T4276") + "\nOCMF|garbage\n")
    outcome = verify_input(str(path), A_KEY)
    assert not outcome.ok
    assert outcome.lines[0].startswith("verified: record 1: ")
    assert outcome.lines[1].startswith("not verified: record 2: malformed record: ")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\n  \n", "holds no OCMF record"),
        (b"\xff\xfe\x00binary", "is not UTF-8 text"),
        (b"hello\n", "malformed record: record does not start with 'OCMF|'"),
    ],
)
def test_unusable_files_are_not_verified(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    outcome = verify_input(str(path), A_KEY)
    assert not outcome.ok
    assert expected in outcome.lines[0]
    assert outcome.lines[0].startswith("not verified: ")


def test_directory_is_not_verified(tmp_path: Path) -> None:
    outcome = verify_input(str(tmp_path), A_KEY)
    assert not outcome.ok
    assert outcome.lines[0].startswith("not verified: ")


# A file of records is parsed by the ten thousand, on a path made fast for what meters write;
# whatever else a record holds is read field by field and named as it always was.
_PAYLOAD = '{"FV":"1.0","MS":"M1","PG":"T1","RD":[%s]}'
_READING = '{"TM":"2024-01-02T03:04:05,000+0100 S","TX":"B","RV":1.5,"RU":"kWh","EF":"","ST":"G"}'
_SIGNATURE = '{"SA":"ECDSA-secp256r1-SHA256","SD":"3006020101020101"}'


def _with(old: str, new: str) -> str:
    return f"OCMF|{_PAYLOAD % _READING.replace(old, new, 1)}|{_SIGNATURE}"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_with('"TX":"B","RV":1.5,', '"TX":5,'), "reading 1: TX is not a string"),
        (_with('"TX":"B"', '"TX":"Q"'), "reading 1: TX 'Q' is not one of ABCELPRSTX"),
        (_with('"RV":1.5', '"RV":true'), "reading 1: RV is a boolean, not a number"),
        (_with('"RV":1.5', '"RV":null'), "reading 1: RV None is not a number"),
        (_with('"RV":1.5', '"RV":1.5,"XV":"x"'), "reading 1: XV 'x' is not a number"),
        (_with('"RV":1.5', '"RV":1.5,"XT":1.0'), "reading 1: XT is not an integer"),
        (_with('"ST":"G"', '"ST":1'), "reading 1: ST is not a string"),
        (_with('"RU":"kWh","EF":""', '"RU":["kWh"],"EF":0'), "reading 1: EF is not a string"),
        (_with('"RU":"kWh"', '"XI":7'), "reading 1: XI is not a string"),
        (
            _with('"RV":1.5', '"RV":NaN'),
            "payload is not valid JSON: NaN is not a valid JSON number",
        ),
        (
            _with("+0100 S", "+2400 S"),
            "reading 1: TM '2024-01-02T03:04:05,000+2400 S' is not a valid time: offset must be",
        ),
        (
            _with("2024-01-02", "2024-02-30"),
            "reading 1: TM '2024-02-30T03:04:05,000+0100 S' is not a valid time: day is out of",
        ),
        (
            _with("01-02T03", "01-02T24"),
            "reading 1: TM '2024-01-02T24:04:05,000+0100 S' is not a valid time: hour must be",
        ),
        (_with("+0100 S", "+0100 X"), "reading 1: TM '2024-01-02T03:04:05,000+0100 X' has unknown"),
        (
            _SIGNATURE.join(("OCMF|" + _PAYLOAD % _READING + "|", " x")),
            "signature section is not valid JSON: Extra data",
        ),
        (
            f"OCMF|{_PAYLOAD % _READING}|\ufeff{_SIGNATURE}",
            "signature section is not valid JSON: Unexpected UTF-8 BOM",
        ),
        (
            f'OCMF|{_PAYLOAD % _READING}|{{"SD":"3006","SA":null}}',
            "signature field SA is not a string",
        ),
        (
            f'OCMF|{_PAYLOAD % _READING}|{{"SD":"3006","SM":5}}',
            "signature field SM is not a string",
        ),
        (
            f'OCMF|{_PAYLOAD % _READING}|{{"SD":"3006",}}',
            "signature section is not valid JSON: Expecting property name",
        ),
        (f'OCMF|{_PAYLOAD % _READING}|{{"SD":NaN}}', "signature data SD is not a non-empty string"),
    ],
)
def test_a_field_of_the_wrong_kind_is_named(record: str, reason: str) -> None:
    outcome = verify_input(record, A_KEY)
    (line,) = outcome.lines
    assert not outcome.ok
    assert line.startswith(f"not verified: malformed record: {reason}"), line


def _time_reference(text: str) -> tuple[datetime, str]:
    """TM read step by step: date and clock, the fraction padded, the offset from its digits."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:[,.](\d{1,6}))?"
        r"([+-])(\d{2}):?(\d{2}) ([A-Z])\n?",
        text,
    )
    assert match is not None
    date, clock, frac, sign, hours, minutes, flag = match.groups()
    moment = datetime.fromisoformat(f"{date}T{clock}.{(frac or '0').ljust(6, '0')}")
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return moment.replace(tzinfo=timezone(-offset if sign == "-" else offset)), flag


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-02T03:04:05,000+0100 S",
        "2024-01-02T03:04:05.1+01:00 U",
        "2024-01-02T03:04:05+0000 R",
        "2024-01-02T03:04:05,123456-0000 I",
        "2024-12-31T23:59:59,999999+2359 S",
        "2024-01-02T03:04:05,5-0130 S",
        "2024-01-02T03:04:05,000+0575 S",  # 5 h 75 min, as timedelta adds them up
        "2024-01-02T03:04:05,000+0\u0661\u0660\u0660 S",  # Arabic-Indic digits in the offset
        "2024-01-02T03:04:05,000+0100 S\n",
    ],
)
def test_a_meter_time_is_read_the_same_on_the_fast_path(text: str) -> None:
    moment, flag = parse_time(text)
    expected, expected_flag = _time_reference(text)
    assert (moment, moment.utcoffset(), flag) == (expected, expected.utcoffset(), expected_flag)
    assert moment.isoformat() == expected.isoformat()


def test_parsed_records_are_what_their_classes_build() -> None:
    """The parser builds records and readings from a tuple, without their generated __new__
    (it costs more than the rest of a reading): they must be equal to what the class builds,
    field for field, of the types the fields name, and stay immutable."""
    records = [entry["ocmf"] for entry in bsm_vectors()["ocmf_vectors"].values()]
    for example in multivendor_vectors().values():
        if isinstance(example, dict):
            records += [record["ocmf"] for record in example.get("records", [])]
    assert len(records) > 10
    for text in records:
        record = parse_ocmf(text)
        items: list[OcmfRecord | OcmfReading] = [record, *record.readings]
        for item in items:
            assert type(item) in (OcmfRecord, OcmfReading)
            assert len(item) == len(type(item)._fields)
            rebuilt = type(item)(**item._asdict())
            assert rebuilt == item and rebuilt._asdict() == item._asdict()
        for reading in record.readings:
            assert type(reading.time) is datetime and type(reading.value) is Decimal
            assert type(reading.billable) is bool and reading.billable == (not reading.problems)
        assert type(record.payload_bytes) is bytes and type(record.signature_bytes) is bytes
        assert record.signature_bytes == parse_ocmf(text).signature_bytes
        with pytest.raises(AttributeError):
            record.readings[0].value = Decimal(0)  # type: ignore[misc]


@pytest.mark.parametrize("section", ["payload", "signature"])
def test_a_record_nested_too_deeply_is_one_line_not_a_crash(tmp_path: Path, section: str) -> None:
    deep = '{"a":' + "[" * 100_000 + "]" * 100_000 + "}"
    good = _bsm("ostons_T4276")
    head, _, signature = good.rpartition("|")
    bad = f"OCMF|{deep}|{signature}" if section == "payload" else f"{head}|{deep}"
    path = tmp_path / "deep.ocmf"
    path.write_text(f"{good}\n{bad}\n{good}\n")
    outcome = verify_input(str(path), A_KEY)
    assert [line.split(":")[0] for line in outcome.lines] == [
        "verified",
        "not verified",
        "verified",
    ]
    assert outcome.lines[1] == (
        f"not verified: record 2: malformed record: {section} is not valid JSON: nested too deeply"
        if section == "payload"
        else "not verified: record 2: malformed record: signature section is not valid JSON: "
        "nested too deeply"
    )


@pytest.mark.parametrize(
    "tm",
    [
        "2024-01-02T03:04:05,000+0100 S",
        "2024-01-02T03:04:05.000-0130 S",
        "2024-01-02T03:04:05,000+0000 S",
        "2024-01-02T03:04:05,000-0000 S",  # isoformat: +00:00
        "2024-01-02T03:04:05,000+0575 S",  # isoformat: +06:15
        "2024-01-02T03:04:05,000+0\u0661\u0660\u0660 S",
        "2024-01-02T03:04:05,00+01:00 S",
        "2024-01-02T03:04:05,001+0100 S",
        "2024-01-02T03:04:05,5+0100 S",
        "2024-01-02T03:04:05+0100 S",
        "2024-01-02T03:04:05,000000+23:59 S",
    ],
)
def test_the_time_of_a_verified_reading_is_printed_as_iso_8601(tm: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    payload = _PAYLOAD % _READING.replace("2024-01-02T03:04:05,000+0100 S", tm)
    sd = private.sign(payload.encode(), ec.ECDSA(hashes.SHA256())).hex()
    record = f'OCMF|{payload}|{{"SA":"ECDSA-secp256r1-SHA256","SD":"{sd}"}}'
    outcome = verify_input(record, public_der(private).hex())
    moment, _ = parse_time(tm)
    spec = "milliseconds" if moment.microsecond else "seconds"
    assert outcome.ok, outcome.lines
    assert f" at {moment.isoformat(timespec=spec)}, " in outcome.lines[0]
