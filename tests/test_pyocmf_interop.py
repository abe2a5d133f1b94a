"""pyocmf (an independent OCMF verifier from PyPI) must agree with our verifier on real data."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from pyocmf import OCMF, SignatureVerificationError

from meter.proof.keys import load_public_key
from meter.proof.ocmf import parse_ocmf, verify_ocmf
from tests.real_vectors import bsm_public_key_hex, bsm_vectors, multivendor_vectors


def pyocmf_verifies(ocmf: str, public_key_der_hex: str) -> bool:
    """Whether pyocmf accepts the record's signature with the given DER (hex) key.

    A key on another curve than SA names counts as not verified; a record pyocmf cannot
    parse raises its own error, so a test sees why.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyocmf's SpecWarning for lenient input
        record = OCMF.from_string(ocmf)
        try:
            return bool(record.verify_signature(public_key_der_hex))
        except SignatureVerificationError:
            return False


def _bsm_records() -> list[Any]:
    return [
        pytest.param(entry["ocmf"], bsm_public_key_hex(entry["public_key"]), id=name)
        for name, entry in bsm_vectors()["ocmf_vectors"].items()
        if entry["public_key"] is not None
    ]


def _multivendor_records() -> list[Any]:
    return [
        pytest.param(record["ocmf"], example["public_key_der_hex"], id=f"{name}-{index}")
        for name, example in multivendor_vectors().items()
        if name.startswith("example_")
        for index, record in enumerate(example["records"])
    ]


def _tamper_payload(ocmf: str) -> str:
    """Change one digit of the first reading value (the payload stays valid JSON)."""
    start = ocmf.index('"RV"') + 4
    pos = next(i for i in range(start, len(ocmf)) if ocmf[i].isdigit())
    digit = "1" if ocmf[pos] != "1" else "2"
    return ocmf[:pos] + digit + ocmf[pos + 1 :]


@pytest.mark.parametrize(("ocmf", "key_hex"), _bsm_records())
def test_pyocmf_and_we_verify_real_bsm_records(ocmf: str, key_hex: str) -> None:
    assert pyocmf_verifies(ocmf, key_hex)
    assert verify_ocmf(parse_ocmf(ocmf), load_public_key(key_hex)).signature_valid


@pytest.mark.parametrize(("ocmf", "key_hex"), _multivendor_records())
def test_pyocmf_and_we_verify_real_multivendor_records(ocmf: str, key_hex: str) -> None:
    assert pyocmf_verifies(ocmf, key_hex)
    assert verify_ocmf(parse_ocmf(ocmf), load_public_key(key_hex)).signature_valid


@pytest.mark.parametrize(("ocmf", "key_hex"), _bsm_records())
def test_pyocmf_and_we_reject_a_tampered_bsm_record(ocmf: str, key_hex: str) -> None:
    tampered = _tamper_payload(ocmf)
    assert tampered != ocmf
    assert not pyocmf_verifies(tampered, key_hex)
    assert not verify_ocmf(parse_ocmf(tampered), load_public_key(key_hex)).signature_valid


def test_pyocmf_and_we_reject_the_other_meters_key() -> None:
    record = bsm_vectors()["ocmf_vectors"]["ostons_T4276"]["ocmf"]
    other = bsm_public_key_hex("B_meter_001BZR1521290137")
    assert not pyocmf_verifies(record, other)
    assert not verify_ocmf(parse_ocmf(record), load_public_key(other)).signature_valid


def test_pyocmf_reports_a_curve_mismatch_as_not_verified() -> None:
    record = bsm_vectors()["ocmf_vectors"]["ostons_T4276"]["ocmf"]
    brainpool = multivendor_vectors()["example_C"]["public_key_der_hex"]
    assert not pyocmf_verifies(record, brainpool)
