"""OCMF parsing and verification on real records of several makers and curves."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from meter.proof.keys import PublicKeyInfo, load_public_key
from meter.proof.ocmf import OcmfFormatError, OcmfRecord, parse_ocmf, parse_time, verify_ocmf
from tests.real_vectors import bsm_public_key_hex, bsm_vectors, multivendor_vectors


def _all_records() -> list[Any]:
    params = []
    for name, entry in bsm_vectors()["ocmf_vectors"].items():
        if entry["public_key"] is None:
            continue  # UNVERIFIED: the meter's key was never published
        params.append(pytest.param(entry["ocmf"], bsm_public_key_hex(entry["public_key"]), id=name))
    for name, example in multivendor_vectors().items():
        if name.startswith("example_"):
            for index, record in enumerate(example["records"]):
                key = example["public_key_der_hex"]
                params.append(pytest.param(record["ocmf"], key, id=f"{name}-{index}"))
    return params


def _example(name: str, index: int = 0) -> tuple[str, PublicKeyInfo]:
    example = multivendor_vectors()[name]
    return example["records"][index]["ocmf"], load_public_key(example["public_key_der_hex"])


def _bsm(name: str) -> tuple[str, PublicKeyInfo]:
    entry = bsm_vectors()["ocmf_vectors"][name]
    return entry["ocmf"], load_public_key(bsm_public_key_hex(entry["public_key"]))


def _tamper_payload(ocmf: str) -> str:
    """Change one digit of the first reading value; the payload stays valid JSON."""
    start = ocmf.index('"RV"') + 4
    pos = next(i for i in range(start, len(ocmf)) if ocmf[i].isdigit())
    digit = "1" if ocmf[pos] != "1" else "2"
    return ocmf[:pos] + digit + ocmf[pos + 1 :]


def _signed(
    payload: str,
    sa: str | None = "ECDSA-secp256r1-SHA256",
    curve: ec.EllipticCurve | None = None,
    digest: hashes.HashAlgorithm | None = None,
) -> tuple[str, PublicKeyInfo]:
    """A record over `payload` signed with a fresh key (P-256 unless given)."""
    private = ec.generate_private_key(curve or ec.SECP256R1())
    sd = private.sign(payload.encode("utf-8"), ec.ECDSA(digest or hashes.SHA256())).hex()
    signature = {"SD": sd} if sa is None else {"SA": sa, "SD": sd}
    record = f"OCMF|{payload}|{json.dumps(signature, separators=(',', ':'))}"
    return record, PublicKeyInfo.from_key(private.public_key())


def _payload(reading: str = "", **extra: str) -> str:
    head = '{"FV":"1.0","GI":"test","GS":"G1","PG":"T1","MS":"M1","IS":false,"ID":""'
    for key, value in extra.items():
        head += f',"{key}":{value}'
    rd = reading or (
        '{"TM":"2024-01-02T03:04:05,000+0100 S","TX":"B","RV":1.5,"RI":"1-b:1.8.0",'
        '"RU":"kWh","RT":"AC","EF":"","ST":"G"}'
    )
    return head + ',"RD":[' + rd + "]}"


@pytest.mark.parametrize(("ocmf", "key_hex"), _all_records())
def test_every_real_record_verifies(ocmf: str, key_hex: str) -> None:
    result = verify_ocmf(parse_ocmf(ocmf), load_public_key(key_hex))
    assert result.signature_valid, result.reason


@pytest.mark.parametrize(("ocmf", "key_hex"), _all_records())
def test_one_changed_payload_byte_fails(ocmf: str, key_hex: str) -> None:
    tampered = _tamper_payload(ocmf)
    assert tampered != ocmf
    result = verify_ocmf(parse_ocmf(tampered), load_public_key(key_hex))
    assert not result.signature_valid
    assert not result.billable
    assert "does not match" in result.reason


@pytest.mark.parametrize(("ocmf", "key_hex"), _all_records())
def test_payload_bytes_are_exactly_the_signed_section(ocmf: str, key_hex: str) -> None:
    record = parse_ocmf(ocmf)
    start = len("OCMF|")
    end = ocmf.rindex("|")
    assert record.payload_bytes == ocmf[start:end].encode()
    assert record.raw == ocmf


def test_bsm_payload_hash_matches_the_vector() -> None:
    import hashlib

    for name in ("ostons_T4276", "ostoffs_T4277", "oscs_T4278"):
        entry = bsm_vectors()["ocmf_vectors"][name]
        digest = hashlib.sha256(parse_ocmf(entry["ocmf"]).payload_bytes).hexdigest()
        assert digest == entry["payload_sha256"]


def test_another_key_on_the_same_curve_fails() -> None:
    ocmf, _ = _example("example_B")
    _, other = _example("example_A")
    result = verify_ocmf(parse_ocmf(ocmf), other)
    assert not result.signature_valid
    assert "does not match" in result.reason


def test_other_bsm_meters_key_fails() -> None:
    ocmf, _ = _bsm("ostons_T4276")
    other = load_public_key(bsm_public_key_hex("B_meter_001BZR1521290137"))
    assert not verify_ocmf(parse_ocmf(ocmf), other).signature_valid


def test_key_on_another_curve_than_sa_is_a_mismatch() -> None:
    ocmf, _ = _bsm("ostons_T4276")
    _, brainpool = _example("example_C")
    result = verify_ocmf(parse_ocmf(ocmf), brainpool)
    assert not result.signature_valid
    assert "brainpoolP256r1" in result.reason and "secp256r1" in result.reason


def test_example_h_signature_valid_but_not_billable() -> None:
    for index in (0, 1):
        ocmf, key = _example("example_H", index)
        result = verify_ocmf(parse_ocmf(ocmf), key)
        assert result.signature_valid
        assert not result.billable
        assert "ST 'E'" in result.reason and "'Et'" in result.reason
        (reading,) = result.readings
        assert (reading.status, reading.error_flags, reading.billable) == ("E", "Et", False)
        assert len(reading.problems) == 2


def test_example_a_one_record_two_readings() -> None:
    ocmf, key = _example("example_A")
    record = parse_ocmf(ocmf)
    assert [r.tx for r in record.readings] == ["B", "E"]
    assert [r.value for r in record.readings] == [Decimal("0.2596"), Decimal("0.2597")]
    assert [r.time_status for r in record.readings] == ["I", "R"]
    assert record.readings[0].time == datetime(2019, 8, 13, 10, 3, 15, tzinfo=UTC)
    assert record.algorithm == "ECDSA-secp256r1-SHA256"  # SA absent: default
    assert record.encoding == "hex"
    result = verify_ocmf(record, key)
    assert result.signature_valid and result.billable
    assert len(result.readings) == 2


def test_example_g_secp256k1_spaces_and_string_readings() -> None:
    ocmf, key = _example("example_G")
    record = parse_ocmf(ocmf)
    assert b'"FV" : "1.0"' in record.payload_bytes  # kept as received, not re-serialised
    assert record.algorithm == "ECDSA-secp256k1-SHA256"
    assert [r.value for r in record.readings] == [Decimal(v) for v in ("0.0", "1.0", "1.0", "2.0")]
    assert all(isinstance(r.value, Decimal) for r in record.readings)
    assert record.readings[0].obis == "1-0:98.8.0.FF"
    assert record.readings[0].reading_type == "DC"
    result = verify_ocmf(record, key)
    assert result.signature_valid and result.billable, result.reason


def test_example_d_p384_with_sha256_verifies() -> None:
    for index in (0, 1):
        ocmf, key = _example("example_D", index)
        record = parse_ocmf(ocmf)
        assert record.algorithm == "ECDSA-secp384r1-SHA256"
        assert key.curve_name == "secp384r1"
        assert verify_ocmf(record, key).signature_valid


def test_bsm_record_properties_and_reading() -> None:
    record = parse_ocmf(_bsm("ostons_T4276")[0])
    assert record.version == "1.0"
    assert record.gateway_serial == record.meter_serial == "001BZR1521070006"
    assert record.pagination == "T4276"
    assert record.identification == "contract-id: rfid:12345678abcdef"
    assert record.signature_bytes[:1] == b"\x30" and len(record.signature_bytes) == 72
    (reading,) = record.readings
    assert reading.time_text == "2022-07-08T10:00:28,000+0200 S"
    assert reading.time == datetime(2022, 7, 8, 10, 0, 28, tzinfo=timezone(timedelta(hours=2)))
    assert (reading.tx, reading.value, reading.unit) == ("B", Decimal("0.00"), "kWh")
    assert str(reading.value) == "0.00"
    assert (reading.xv, reading.xu, reading.xi, reading.xt) == (
        Decimal("99.84"),
        "kWh",
        "1-0:1.8.0*255",
        1,
    )
    assert reading.obis == "1-0:1.8.0*198"
    assert reading.billable and reading.problems == [] and reading.warnings == []


def test_unsynchronised_time_is_a_warning_not_a_billing_failure() -> None:
    record = parse_ocmf(
        bsm_vectors()["ocmf_vectors"]["everest_invalid_time_T565_UNVERIFIED"]["ocmf"]
    )
    (reading,) = record.readings
    assert reading.time_status == "U"
    assert reading.billable
    assert any("unsynchronised" in w for w in reading.warnings)
    ocmf, key = _example("example_B")
    result = verify_ocmf(parse_ocmf(ocmf), key)
    assert result.billable and result.warnings


def test_lower_case_and_base64_signature_data_verify() -> None:
    ocmf, key = _example("example_B")
    record = parse_ocmf(ocmf)
    payload = record.payload_bytes.decode()
    lower = f'OCMF|{payload}|{{"SD":"{record.signature["SD"].lower()}"}}'
    assert verify_ocmf(parse_ocmf(lower), key).signature_valid
    b64 = base64.b64encode(record.signature_bytes).decode()
    as_b64 = f'OCMF|{payload}|{{"SE":"base64","SD":"{b64}"}}'
    parsed = parse_ocmf(as_b64)
    assert parsed.signature_bytes == record.signature_bytes
    assert verify_ocmf(parsed, key).signature_valid


def test_surrounding_whitespace_is_stripped_only() -> None:
    ocmf, key = _bsm("oscs_T4278")
    record = parse_ocmf(f"\n  {ocmf} \r\n")
    assert record.raw == ocmf
    assert verify_ocmf(record, key).signature_valid
    assert parse_ocmf(ocmf.encode()).payload_bytes == record.payload_bytes


@pytest.mark.parametrize(
    "identification",
    ['"a|b"', '"x\\"|\\"y"', '"back\\\\slash|"', '"\\u007c escaped"', '"line\\nbreak"'],
)
def test_bars_and_escapes_inside_payload_strings_split_correctly(identification: str) -> None:
    payload = _payload().replace('"ID":""', f'"ID":{identification}')
    ocmf, key = _signed(payload)
    record = parse_ocmf(ocmf)
    assert record.payload_bytes == payload.encode()
    assert record.identification == json.loads(identification)
    assert verify_ocmf(record, key).signature_valid


def test_signed_record_with_a_meter_error_is_not_billable() -> None:
    reading = (
        '{"TM":"2024-01-02T03:04:05,000+0100 S","TX":"E","RV":"2","RU":"Wh","EF":"E","ST":"G"}'
    )
    ocmf, key = _signed(_payload(reading))
    result = verify_ocmf(parse_ocmf(ocmf), key)
    assert result.signature_valid and not result.billable
    assert "EF 'E'" in result.reason


@pytest.mark.parametrize(
    ("sa", "curve", "digest"),
    [
        ("ECDSA-secp384r1-SHA384", ec.SECP384R1(), hashes.SHA384()),
        ("ECDSA-brainpool256r1-SHA256", ec.BrainpoolP256R1(), hashes.SHA256()),
        ("ECDSA-brainpoolP384r1-SHA256", ec.BrainpoolP384R1(), hashes.SHA256()),
        ("ECDSA-secp256k1-SHA256", ec.SECP256K1(), hashes.SHA256()),
    ],
)
def test_other_algorithms_verify_and_need_their_hash(
    sa: str, curve: ec.EllipticCurve, digest: hashes.HashAlgorithm
) -> None:
    ocmf, key = _signed(_payload(), sa=sa, curve=curve, digest=digest)
    assert verify_ocmf(parse_ocmf(ocmf), key).signature_valid
    other_hash = "SHA512" if sa.endswith("SHA256") else "SHA256"
    wrong = ocmf.replace(sa, sa.rsplit("-", 1)[0] + "-" + other_hash)
    assert not verify_ocmf(parse_ocmf(wrong), key).signature_valid


def test_unsupported_algorithm_and_malformed_der_are_invalid() -> None:
    payload = _payload()
    ocmf, key = _signed(payload, sa="ECDSA-secp192k1-SHA256")
    result = verify_ocmf(parse_ocmf(ocmf), key)
    assert not result.signature_valid and "unsupported" in result.reason
    bad_der = f'OCMF|{payload}|{{"SD":"{"00" * 70}"}}'
    result = verify_ocmf(parse_ocmf(bad_der), key)
    assert not result.signature_valid and "malformed" in result.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "does not start with 'OCMF|'"),
        ("ocmf|{}|{}", "does not start with 'OCMF|'"),
        ("OCMF", "does not start with 'OCMF|'"),
        ('OCMF|{"RD":[|{"SD":"30"}', "payload is not valid JSON"),
        ('OCMF|["RD"]|{"SD":"30"}', "does not start with '{'"),
        ('OCMF|{"FV":"1.0"}|{"SD":"3000"}', "no RD"),
        ('OCMF|{"RD":[]}|{"SD":"3000"}', "RD is not a non-empty list"),
        (f"OCMF|{_payload()}", "no signature section"),
        (f"OCMF|{_payload()}|{{}}", "no SD"),
        (f'OCMF|{_payload()}|{{"SD":"xyz"}}', "not valid hex"),
        (f'OCMF|{_payload()}|{{"SD":"30", "SE":"rot13"}}', "not valid rot13"),
        (f'OCMF|{_payload()}|{{"SD":"3000"', "signature section is not valid JSON"),
        (f'OCMF|{_payload()}|{{"SD":"3000"}}|3059', "section after the signature"),
        (f'OCMF|{_payload()}|{{"SD":"3000"}}|{{"PK":"3059"}}', "section after the signature"),
        (f'OCMF|{_payload()} |{{"SD":"3000"}}', "expected '|' after the payload"),
        (
            'OCMF|{"RD":[{"TM":"2024-01-02 03:04:05","RV":1}]}|{"SD":"3000"}',
            "reading 1: TM",
        ),
        ('OCMF|{"RD":[{"TM":"2024-01-02T03:04:05,000+0100 S"}]}|{"SD":"3000"}', "no RV"),
        (
            'OCMF|{"RD":[{"TM":"2024-01-02T03:04:05,000+0100 S","RV":"x"}]}|{"SD":"3000"}',
            "RV 'x' is not a number",
        ),
        (
            'OCMF|{"RD":[{"TM":"2024-01-02T03:04:05,000+0100 S","RV":true}]}|{"SD":"3000"}',
            "boolean",
        ),
        (
            'OCMF|{"RD":[{"TM":"2024-01-02T03:04:05,000+0100 S","RV":1,"TX":"Q"}]}|{"SD":"30"}',
            "TX 'Q'",
        ),
        (
            'OCMF|{"RD":[{"TM":"2024-13-02T03:04:05,000+0100 S","RV":1}]}|{"SD":"3000"}',
            "not a valid time",
        ),
    ],
)
def test_malformed_records_raise_a_one_line_reason(text: str, reason: str) -> None:
    with pytest.raises(OcmfFormatError) as caught:
        parse_ocmf(text)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_non_utf8_bytes_are_a_format_error() -> None:
    with pytest.raises(OcmfFormatError, match="UTF-8"):
        parse_ocmf(b"OCMF|{\xff}|{}")


@pytest.mark.parametrize(
    ("text", "expected", "flag"),
    [
        (
            "2022-07-08T10:00:28,000+0200 S",
            datetime(2022, 7, 8, 8, 0, 28, tzinfo=UTC),
            "S",
        ),
        (
            "2019-06-26T08:57:44,337+0000 U",
            datetime(2019, 6, 26, 8, 57, 44, 337000, tzinfo=UTC),
            "U",
        ),
        ("2024-03-01T00:30:00,000-0130 R", datetime(2024, 3, 1, 2, 0, tzinfo=UTC), "R"),
    ],
)
def test_time_with_offset_and_flag(text: str, expected: datetime, flag: str) -> None:
    moment, got_flag = parse_time(text)
    assert moment == expected
    assert got_flag == flag
    assert moment.utcoffset() is not None


def test_record_is_immutable() -> None:
    record: OcmfRecord = parse_ocmf(_bsm("oscs_T4278")[0])
    with pytest.raises(AttributeError):
        record.raw = "x"  # type: ignore[misc]
