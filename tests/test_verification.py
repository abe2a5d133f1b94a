"""`chargepoint verify`'s check: what a user sees for good, unbillable and bad input."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from meter.proof.keys import load_public_key
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
