"""The BSM snapshot signature against real meter snapshots (bsm-vectors.json)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from meter.bsm.signature import (
    abstract_representation,
    legacy_abstract_representation,
    sign_snapshot,
    snapshot_digest,
    verify_snapshot_signature,
)
from meter.proof.keys import PublicKeyInfo, load_public_key
from meter.snapshot import INT16_NA, UINT32_NA, LegacySnapshotFields, SnapshotFields
from tests.real_vectors import bsm_public_key_hex, bsm_vectors

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
LEGACY = "manual_appendix_d_legacy_fw17"


def snapshot_fields(values: dict[str, Any]) -> SnapshotFields:
    """SnapshotFields from a vector's `fields` (register names as in the manual)."""
    return SnapshotFields(
        typ=values["Typ"],
        rcr=values["RCR"],
        tot_wh_imp=values["TotWhImp"],
        wh_sf=values["Wh_SF"],
        w=values["W"],
        w_sf=values["W_SF"],
        ma1=values["MA1"].encode(),
        rcnt=values["RCnt"],
        os=values["OS"],
        epoch=values["Epoch"],
        tzo=values["TZO"],
        epoch_set_cnt=values["EpochSetCnt"],
        epoch_set_os=values["EpochSetOS"],
        di=values["DI"],
        do=values["DO"],
        meta1=values["Meta1"].encode(),
        meta2=values["Meta2"].encode(),
        meta3=values["Meta3"].encode(),
        evt=values["Evt"],
    )


def _sentinel(text: str) -> int:
    """'0xffffffff (n/a)' -> 0xffffffff; '0x8000 ...' is an int16 register -> -32768."""
    raw = int(text.split(maxsplit=1)[0], 16)
    return raw - 0x10000 if raw == 0x8000 else raw


def legacy_fields(values: dict[str, Any]) -> LegacySnapshotFields:
    return LegacySnapshotFields(
        typ=values["Typ"],
        tot_wh_imp=values["TotWhImp"],
        wh_sf=values["Wh_SF"],
        w=values["W"],
        w_sf=values["W_SF"],
        ma1=values["MA1"].encode(),
        rcnt=values["RCnt"],
        os=values["OS"],
        epoch=values["Epoch"],
        tzo=values["TZO"],
        epoch_set_cnt=values["EpochSetCnt"],
        epoch_set_os=values["EpochSetOS"],
        di=values["DI"],
        do=values["DO"],
        di_chg_os=_sentinel(values["DIChgOS"]),
        di_chg_epoch=_sentinel(values["DIChgEpoch"]),
        di_chg_tzo=_sentinel(values["DIChgTZO"]),
        do_chg_os=_sentinel(values["DOChgOS"]),
        do_chg_epoch=_sentinel(values["DOChgEpoch"]),
        do_chg_tzo=_sentinel(values["DOChgTZO"]),
        meta1=values["Meta1"].encode(),
        meta2=values["Meta2"].encode(),
        meta3=values["Meta3"].encode(),
        evt=values["Evt"],
    )


def _vector(name: str) -> dict[str, Any]:
    entry: dict[str, Any] = bsm_vectors()["snapshot_vectors"][name]
    return entry


def _key(name: str) -> PublicKeyInfo:
    return load_public_key(bsm_public_key_hex(_vector(name)["public_key"]))


def _signature(name: str) -> bytes:
    return bytes.fromhex(_vector(name)["signature_der_hex"])


CURRENT = [name for name in bsm_vectors()["snapshot_vectors"] if name != LEGACY]


@pytest.mark.parametrize("name", CURRENT)
def test_real_snapshot_representation_digest_and_signature(name: str) -> None:
    fields = snapshot_fields(_vector(name)["fields"])
    assert abstract_representation(fields).hex() == _vector(name)["abstract_hex"]
    assert snapshot_digest(fields).hex() == _vector(name)["sha256"]
    result = verify_snapshot_signature(fields, _signature(name), _key(name))
    assert result.valid, result.reason


def test_legacy_firmware_snapshot_from_the_manual() -> None:
    fields = legacy_fields(_vector(LEGACY)["fields"])
    assert legacy_abstract_representation(fields).hex() == _vector(LEGACY)["abstract_hex"]
    assert snapshot_digest(fields).hex() == _vector(LEGACY)["sha256"]
    result = verify_snapshot_signature(fields, _signature(LEGACY), _key(LEGACY))
    assert result.valid, result.reason


def test_legacy_tzo_given_as_raw_register_word_hashes_the_same() -> None:
    fields = legacy_fields(_vector(LEGACY)["fields"])
    raw_words = dataclasses.replace(fields, di_chg_tzo=0x8000, do_chg_tzo=0x8000)
    assert legacy_abstract_representation(raw_words) == legacy_abstract_representation(fields)


@pytest.mark.parametrize(
    "change",
    [
        {"rcr": 16},
        {"tot_wh_imp": 10001},
        {"wh_sf": 0},
        {"w": 1},
        {"ma1": b"001BZR1521070007"},
        {"rcnt": 4279},
        {"epoch": 1657267610},
        {"tzo": 60},
        {"epoch_set_cnt": 3140},
        {"meta1": b"contract-id: rfid:12345678abcdeF"},
        {"meta2": b""},
        {"meta3": b"csc-sw-version: v1.2.35"},
        {"evt": 1},
    ],
)
def test_changed_field_fails(change: dict[str, Any]) -> None:
    fields = dataclasses.replace(snapshot_fields(_vector("scs_4278")["fields"]), **change)
    result = verify_snapshot_signature(fields, _signature("scs_4278"), _key("scs_4278"))
    assert not result.valid
    assert "does not match" in result.reason


@pytest.mark.parametrize("position", [0, 5, 20, 40, -1])
def test_changed_signature_byte_fails_without_exception(position: int) -> None:
    sig = bytearray(_signature("stons_4276"))
    sig[position] ^= 0x01
    fields = snapshot_fields(_vector("stons_4276")["fields"])
    result = verify_snapshot_signature(fields, bytes(sig), _key("stons_4276"))
    assert not result.valid
    assert result.reason


@pytest.mark.parametrize(
    "signature",
    [b"", b"\x30\x00", b"\x00" * 71, bytes.fromhex("3045022100"), b"not a signature"],
)
def test_malformed_signature_is_invalid_with_reason(signature: bytes) -> None:
    fields = snapshot_fields(_vector("stons_4276")["fields"])
    result = verify_snapshot_signature(fields, signature, _key("stons_4276"))
    assert not result.valid
    assert "malformed" in result.reason


def test_trailing_bytes_after_der_signature_are_malformed() -> None:
    fields = snapshot_fields(_vector("stons_4276")["fields"])
    sig = _signature("stons_4276") + b"\x00"
    result = verify_snapshot_signature(fields, sig, _key("stons_4276"))
    assert not result.valid


@pytest.mark.parametrize(
    ("snapshot", "other_key"),
    [("stons_4276", "B_meter_001BZR1521290137"), ("meterB_101", "A_meter_001BZR1521070006")],
)
def test_other_meters_key_fails(snapshot: str, other_key: str) -> None:
    fields = snapshot_fields(_vector(snapshot)["fields"])
    result = verify_snapshot_signature(
        fields, _signature(snapshot), load_public_key(bsm_public_key_hex(other_key))
    )
    assert not result.valid


def test_high_and_low_s_forms_both_verify() -> None:
    # stoffs_4277 is a real high-S signature (72 bytes); its low-S twin must verify too.
    sig = _signature("stoffs_4277")
    r, s = decode_dss_signature(sig)
    assert s > P256_ORDER // 2
    twin = encode_dss_signature(r, P256_ORDER - s)
    fields = snapshot_fields(_vector("stoffs_4277")["fields"])
    key = _key("stoffs_4277")
    assert len(sig) == 72 and len(twin) in (70, 71)
    assert verify_snapshot_signature(fields, sig, key).valid
    assert verify_snapshot_signature(fields, twin, key).valid


def test_signing_with_a_fresh_key_round_trips() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = PublicKeyInfo.from_key(private.public_key())
    fields = snapshot_fields(_vector("scs_4278")["fields"])
    sig = sign_snapshot(private, fields)
    assert 8 <= len(sig) <= 72
    assert verify_snapshot_signature(fields, sig, key).valid
    assert not verify_snapshot_signature(dataclasses.replace(fields, rcr=16), sig, key).valid
    legacy = legacy_fields(_vector(LEGACY)["fields"])
    assert verify_snapshot_signature(legacy, sign_snapshot(private, legacy), key).valid


def test_signed_int16_fields_are_sign_extended() -> None:
    fields = dataclasses.replace(
        snapshot_fields(_vector("scs_4278")["fields"]), w=-5, w_sf=-1, tzo=-90
    )
    rep = abstract_representation(fields)
    assert bytes.fromhex("fffffffb" + "ff" + "1b") in rep  # W -5, scale -1, unit W
    assert bytes.fromhex("ffffffa6" + "00" + "06") in rep  # TZO -90 min
    as_words = dataclasses.replace(fields, w=0xFFFB, tzo=0xFFA6)
    assert abstract_representation(as_words) == rep


def test_not_available_values_are_hashed_raw() -> None:
    fields = dataclasses.replace(
        snapshot_fields(_vector("scs_4278")["fields"]),
        epoch=UINT32_NA,
        tzo=INT16_NA,
        w=INT16_NA,
        tot_wh_imp=0,
    )
    rep = abstract_representation(fields)
    assert bytes.fromhex("ffffffff0007") in rep  # Epoch n/a, unit s
    assert bytes.fromhex("ffff80000006") in rep  # TZO n/a, unit min
    assert bytes.fromhex("ffff8000011b") in rep  # W n/a, real W_SF 1, unit W
    assert bytes.fromhex("00000000011e") in rep  # TotWhImp acc32 n/a with Wh_SF 1


def test_strings_are_length_prefixed_without_trailing_nuls() -> None:
    fields = snapshot_fields(_vector("chargy_hasharray_22111")["fields"])
    padded = dataclasses.replace(fields, meta1=b"demo data 1\x00\x00")
    assert abstract_representation(padded) == abstract_representation(fields)
    rep = abstract_representation(fields)
    assert b"\x00\x00\x00\x0bdemo data 1" + b"\x00" * 8 in rep  # Meta2, Meta3 empty


@pytest.mark.parametrize("change", [{"rcr": 2**32}, {"tzo": 70000}, {"wh_sf": INT16_NA}])
def test_unrepresentable_fields_are_invalid_not_an_exception(change: dict[str, Any]) -> None:
    fields = dataclasses.replace(snapshot_fields(_vector("scs_4278")["fields"]), **change)
    with pytest.raises(ValueError):
        abstract_representation(fields)
    result = verify_snapshot_signature(fields, _signature("scs_4278"), _key("scs_4278"))
    assert not result.valid
    assert "cannot be hashed" in result.reason


def test_digest_is_sha256_of_the_representation() -> None:
    fields = snapshot_fields(_vector("meterB_102")["fields"])
    assert snapshot_digest(fields) == hashlib.sha256(abstract_representation(fields)).digest()
