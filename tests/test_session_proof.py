"""A session's Begin and End as proof: real meter records pair, and every way two records can
fail to belong together is reported with its reason."""

from __future__ import annotations

import pytest

from meter.proof.keys import load_public_key
from meter.proof.session import ProofStatus, check_session
from tests.real_vectors import bsm_public_key_hex, bsm_vectors

KEY = load_public_key(bsm_public_key_hex("A_meter_001BZR1521070006"))
OTHER_KEY = load_public_key(bsm_public_key_hex("B_meter_001BZR1521290137"))


def ocmf(name: str) -> str:
    text: str = bsm_vectors()["ocmf_vectors"][name]["ocmf"]
    return text


BEGIN, END = ocmf("ostons_T4276"), ocmf("ostoffs_T4277")


def test_a_real_turn_on_and_turn_off_prove_their_energy() -> None:
    proof = check_session(BEGIN, END, KEY)
    assert proof.status is ProofStatus.VERIFIED and proof.reason == ""
    assert proof.energy_wh == 150 and proof.meter_serial == "001BZR1521070006"


def test_the_chargy_fixture_pair_verifies_too() -> None:
    proof = check_session(ocmf("chargy_fixture_T22107"), ocmf("chargy_fixture_T22108"), KEY)
    assert proof.status is ProofStatus.VERIFIED and proof.energy_wh == 150


def test_one_changed_digit_fails_with_the_record_named() -> None:
    assert '"RV":0.15' in END
    tampered = END.replace('"RV":0.15', '"RV":0.16')
    proof = check_session(BEGIN, tampered, KEY)
    assert proof.status is ProofStatus.FAILED and proof.reason.startswith("End record")


def test_the_other_meters_key_fails() -> None:
    proof = check_session(BEGIN, END, OTHER_KEY)
    assert proof.status is ProofStatus.FAILED and "Begin record" in proof.reason


def test_records_of_different_sessions_do_not_pair() -> None:
    swapped = check_session(END, BEGIN, KEY)
    assert swapped.status is ProofStatus.FAILED and "does not follow" in swapped.reason
    current = check_session(BEGIN, ocmf("oscs_T4278"), KEY)  # a "current" snapshot, T+2
    assert current.status is ProofStatus.FAILED


def test_a_clock_set_between_begin_and_end_fails() -> None:
    proof = check_session(BEGIN, END, KEY, {"epoch_set_cnt": 3}, {"epoch_set_cnt": 4})
    assert proof.status is ProofStatus.FAILED and "clock was set" in proof.reason


@pytest.mark.parametrize(("begin", "end"), [(None, END), (BEGIN, None), (None, None)])
def test_a_missing_record_is_unsigned(begin: str | None, end: str | None) -> None:
    proof = check_session(begin, end, KEY)
    assert proof.status is ProofStatus.UNSIGNED and "no signed" in proof.reason


def test_a_session_without_a_key_fails() -> None:
    assert check_session(BEGIN, END, None).status is ProofStatus.FAILED
