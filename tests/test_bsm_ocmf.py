"""The BSM meter's own OCMF, byte for byte against real records (field guide 1.6)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from meter.bsm.ocmf import (
    MAX_SIGNATURE_DER_LEN,
    OcmfStyle,
    assemble,
    build_payload,
    format_energy,
    json_string,
    max_record_length,
    sign_and_assemble,
)
from meter.proof.keys import PublicKeyInfo, load_public_key, public_der
from meter.proof.ocmf import parse_ocmf, verify_ocmf
from meter.snapshot import INT16_NA, UINT32_NA, OcmfIdentity, SnapshotFields
from tests.real_vectors import bsm_public_key_hex, bsm_vectors, multivendor_vectors
from tests.test_bsm_signature import snapshot_fields
from tests.test_pyocmf_interop import pyocmf_verifies

NEW_FW = OcmfIdentity("BAUER Electronic", "BSM-WS36A-H01-1311-0000", "1.9:32CA:AFF4", "f1d3d06")
OLD_FW = OcmfIdentity("BAUER Electronic", "BSM-WS36A-H01-1311-0000", "1.8:33C4:DB63", "08d1aa3")
CEST = timezone(timedelta(hours=2))


def _real_payload(ocmf_name: str) -> str:
    return parse_ocmf(bsm_vectors()["ocmf_vectors"][ocmf_name]["ocmf"]).payload_bytes.decode()


def _fields(snapshot_name: str) -> SnapshotFields:
    return snapshot_fields(bsm_vectors()["snapshot_vectors"][snapshot_name]["fields"])


def _epoch(when: tuple[int, int, int, int, int, int]) -> int:
    """Epoch of a local CEST time (year, month, day, hour, minute, second)."""
    return int(datetime(*when, tzinfo=CEST).timestamp())


@pytest.mark.parametrize(
    ("snapshot", "ocmf"),
    [
        ("stons_4276", "ostons_T4276"),
        ("stoffs_4277", "ostoffs_T4277"),
        ("scs_4278", "oscs_T4278"),
    ],
)
def test_kwh_style_payload_equals_the_real_record(snapshot: str, ocmf: str) -> None:
    payload = build_payload(_fields(snapshot), NEW_FW, OcmfStyle.KWH_TWO_DECIMALS)
    assert payload == _real_payload(ocmf)


def test_real_record_reassembles_byte_for_byte() -> None:
    for name in ("ostons_T4276", "ostoffs_T4277", "oscs_T4278"):
        real = bsm_vectors()["ocmf_vectors"][name]["ocmf"]
        record = parse_ocmf(real)
        assert assemble(record.payload_bytes.decode(), record.signature_bytes) == real


def _old_firmware_fields(typ: int, rcr: int, total: int, rcnt: int, epoch: int) -> SnapshotFields:
    # Adapted from chargy_hasharray_22111 (same meter, same session) to the signed values the
    # older firmware's records T22107/T22108 carry in the OCMF itself.
    return dataclasses.replace(
        _fields("chargy_hasharray_22111"),
        typ=typ,
        rcr=rcr,
        tot_wh_imp=total,
        wh_sf=0,
        rcnt=rcnt,
        epoch=epoch,
        tzo=120,
        meta1=b"chargeIT up 12*4, id: 12345678abcdef",
        meta2=b"demo data 2",  # the old firmware never prints X2/X3
        meta3=b"",
    )


@pytest.mark.parametrize(
    ("ocmf", "typ", "rcr", "total", "rcnt", "when"),
    [
        ("chargy_fixture_T22107", 1, 0, 88200, 22107, (2020, 10, 8, 10, 22, 39)),
        ("chargy_fixture_T22108", 2, 150, 88350, 22108, (2020, 10, 8, 10, 27, 37)),
    ],
)
def test_wh_style_payload_equals_the_real_old_firmware_record(
    ocmf: str,
    typ: int,
    rcr: int,
    total: int,
    rcnt: int,
    when: tuple[int, int, int, int, int, int],
) -> None:
    fields = _old_firmware_fields(typ, rcr, total, rcnt, _epoch(when))
    assert fields.ma1 == b"001BZR1521070003"
    assert build_payload(fields, OLD_FW, OcmfStyle.WH_INTEGER) == _real_payload(ocmf)


def test_unset_clock_and_empty_meta1_equal_the_real_everest_record() -> None:
    fields = dataclasses.replace(
        _fields("chargy_hasharray_22111"),
        typ=0,
        rcr=1940,
        tot_wh_imp=9040,
        wh_sf=0,
        ma1=b"001BZR1521070019",
        rcnt=565,
        epoch=UINT32_NA,
        tzo=INT16_NA,
        meta1=b"",
        meta2=b"",
        meta3=b"",
    )
    identity = dataclasses.replace(OLD_FW, version_meter="1.9:32CA:AFF4", version_comm="6d1dd3c")
    payload = build_payload(fields, identity, OcmfStyle.WH_INTEGER)
    assert payload == _real_payload("everest_invalid_time_T565_UNVERIFIED")
    assert '"TM":"1970-01-01T00:00:00,000+0000 U"' in payload


def test_meter_event_prints_error_state_as_the_real_record_with_an_event() -> None:
    # multivendor example_H: a BSM whose meter had an event prints ST "E" and EF "Et".
    example = multivendor_vectors()["example_H"]
    real = parse_ocmf(example["records"][0]["ocmf"]).payload_bytes.decode()
    fields = dataclasses.replace(
        _fields("stons_4276"),
        typ=3,
        rcr=0,
        tot_wh_imp=76040,
        wh_sf=0,
        rcnt=2,
        epoch=_epoch((2021, 10, 7, 15, 29, 55)),
        evt=1 << 19,
    )
    identity = dataclasses.replace(NEW_FW, version_comm="6d1dd3c-dirty")
    assert build_payload(fields, identity, OcmfStyle.WH_INTEGER) == real
    good = build_payload(dataclasses.replace(fields, evt=0), identity, OcmfStyle.WH_INTEGER)
    assert '"EF":"","ST":"G"' in good


def test_clock_not_set_by_tzo_sentinel_alone() -> None:
    fields = dataclasses.replace(_fields("scs_4278"), tzo=INT16_NA)
    payload = build_payload(fields, NEW_FW, OcmfStyle.KWH_TWO_DECIMALS)
    assert '"TM":"1970-01-01T00:00:00,000+0000 U"' in payload


def test_negative_offset_is_printed_minus_hhmm() -> None:
    fields = dataclasses.replace(
        _fields("scs_4278"), epoch=_epoch((2022, 7, 8, 10, 6, 49)), tzo=-90
    )
    payload = build_payload(fields, NEW_FW, OcmfStyle.KWH_TWO_DECIMALS)
    assert '"TM":"2022-07-08T06:36:49,000-0130 S"' in payload


def test_x2_x3_only_when_non_empty_and_only_in_kwh_style() -> None:
    base = _fields("scs_4278")
    only3 = build_payload(dataclasses.replace(base, meta2=b""), NEW_FW, OcmfStyle.KWH_TWO_DECIMALS)
    assert '"X2"' not in only3 and '"X3":"csc-sw-version: v1.2.34"' in only3
    old = build_payload(base, NEW_FW, OcmfStyle.WH_INTEGER)
    assert '"X2"' not in old and '"X3"' not in old
    assert '"RV":150,' in old and '"XV":100000,' in old and '"RU":"Wh"' in old


@pytest.mark.parametrize(
    ("wh", "kwh", "wh_text"),
    [
        ("0", "0.00", "0"),
        ("99840", "99.84", "99840"),
        ("100000", "100.00", "100000"),
        ("1E+1", "0.01", "10"),
        ("88355", "88.35", "88355"),
    ],
)
def test_energy_formats(wh: str, kwh: str, wh_text: str) -> None:
    assert format_energy(Decimal(wh), OcmfStyle.KWH_TWO_DECIMALS) == kwh
    assert format_energy(Decimal(wh), OcmfStyle.WH_INTEGER) == wh_text


def test_unavailable_scale_factor_cannot_be_printed() -> None:
    fields = dataclasses.replace(_fields("scs_4278"), wh_sf=INT16_NA)
    with pytest.raises(ValueError, match="scale factor"):
        build_payload(fields, NEW_FW, OcmfStyle.KWH_TWO_DECIMALS)


def _fresh_key() -> tuple[ec.EllipticCurvePrivateKey, PublicKeyInfo]:
    private = ec.generate_private_key(ec.SECP256R1())
    return private, load_public_key(public_der(private))


@pytest.mark.parametrize("style", list(OcmfStyle))
def test_signed_record_verifies_with_us_and_with_pyocmf(style: OcmfStyle) -> None:
    private, key = _fresh_key()
    payload = build_payload(_fields("stoffs_4277"), NEW_FW, style)
    record = sign_and_assemble(private, payload)
    assert record.startswith(f"OCMF|{payload}|" + '{"SA":"ECDSA-secp256r1-SHA256","SD":"30')
    sd = json.loads(record.rsplit("|", 1)[1])["SD"]
    assert sd == sd.lower()
    result = verify_ocmf(parse_ocmf(record), key)
    assert result.signature_valid and result.billable, result.reason
    assert pyocmf_verifies(record, key.der_hex)
    assert not pyocmf_verifies(record, bsm_public_key_hex("A_meter_001BZR1521070006"))
    assert len(record.encode()) <= max_record_length(payload)


def test_max_record_length_is_the_longest_signature() -> None:
    payload = build_payload(_fields("scs_4278"), NEW_FW, OcmfStyle.KWH_TWO_DECIMALS)
    longest = assemble(payload, b"\x30" * MAX_SIGNATURE_DER_LEN)
    assert max_record_length(payload) == len(longest.encode())
    real = bsm_vectors()["ocmf_vectors"]["oscs_T4278"]["ocmf"]
    assert len(real) <= max_record_length(payload)


NASTY = b'quote " backslash \\ bar | newline \n tab \t bell \x07 del \x7f end'


def test_metadata_with_quote_backslash_bar_and_newline_round_trips() -> None:
    private, key = _fresh_key()
    fields = dataclasses.replace(_fields("stons_4276"), meta1=NASTY, meta2=b"|", meta3=b'"')
    payload = build_payload(fields, NEW_FW, OcmfStyle.KWH_TWO_DECIMALS)
    record = sign_and_assemble(private, payload)
    assert record.count("|") == 2  # no bare bar inside the payload
    assert "\n" not in record
    parsed = parse_ocmf(record)
    assert parsed.payload_bytes == payload.encode()
    assert parsed.identification == NASTY.decode()
    assert (parsed.payload["X2"], parsed.payload["X3"]) == ("|", '"')
    assert verify_ocmf(parsed, key).signature_valid
    assert pyocmf_verifies(record, key.der_hex)


def test_escaping_choices() -> None:
    assert json_string(b'a"b\\c|d\ne') == '"a\\"b\\\\c\\u007cd\\u000ae"'
    assert json_string("Zähler €") == '"Zähler €"'  # non-ASCII kept as UTF-8
    assert json_string(b"\xff") == '"\ufffd"'  # invalid UTF-8 becomes U+FFFD


def test_every_ascii_character_round_trips_through_json() -> None:
    text = "".join(chr(c) for c in range(128)) + "äöü€"
    literal = json_string(text)
    assert json.loads(literal) == text
    assert "|" not in literal
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in literal)


def test_non_ascii_metadata_survives_signing() -> None:
    private, key = _fresh_key()
    fields = dataclasses.replace(_fields("stons_4276"), meta1="Zähler Süd".encode())
    record = sign_and_assemble(private, build_payload(fields, NEW_FW, OcmfStyle.WH_INTEGER))
    parsed = parse_ocmf(record.encode("utf-8"))
    assert parsed.identification == "Zähler Süd"
    assert verify_ocmf(parsed, key).signature_valid
