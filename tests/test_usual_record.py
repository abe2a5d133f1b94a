"""`verify`'s one-pass shortcut for a meter's usual record gives the general path's line, or
nothing: on the real meters' records, other makers' records, and records altered in every
field the shortcut reads (each re-signed, so that only the field differs)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from meter.bsm.ocmf import sign_and_assemble
from meter.proof.keys import PublicKeyInfo, load_public_key, public_der
from meter.proof.usual_record import usual_line
from meter.proof.verification import check_in_full
from tests.real_vectors import bsm_public_key_hex, bsm_vectors, multivendor_vectors

# one field of the real T4276 record's payload, and what it is replaced with (JSON text)
PAYLOAD_CHANGES: dict[str, list[str]] = {
    '"TM":"2022-07-08T10:00:28,000+0200 S"': [
        '"TM":"2022-07-08T10:00:28.000+0200 S"',
        '"TM":"2022-07-08T10:00:28,000-0000 S"',
        '"TM":"2022-07-08T10:00:28,000+0000 S"',
        '"TM":"2022-07-08T10:00:28,000-0230 S"',
        '"TM":"2022-07-08T10:00:28,000+0260 S"',
        '"TM":"2022-07-08T10:00:28,120+0200 S"',
        '"TM":"2022-07-08T10:00:28+0200 S"',
        '"TM":"2022-07-08T10:00:28,000+02:00 S"',
        '"TM":"2022-07-08T10:00:28,000+0200 U"',
        '"TM":"2022-02-30T10:00:28,000+0200 S"',
        '"TM":"2022-07-08T10:00:28,000+2500 S"',
        '"TM":"2022-07-08T10:00:28,000+0200 S\\n"',
        '"TM":"\\u0662022-07-08T10:00:28,000+0200 S"',
        '"TM":"2022-07-08 10:00:28,000+0200 S"',
        '"TM":1',
    ],
    '"TX":"B"': ['"TX":"E"', '"TX":"X"', '"TX":"Q"', '"TX":""', '"TX":null', '"TX":1'],
    '"RV":0.00': [
        '"RV":0',
        '"RV":true',
        '"RV":12345678901234567890123',
        '"RV":1.5E2',
        '"RV":0.0000001',
        '"RV":-0.00',
        '"RV":"0.00"',
    ],
    '"XV":99.84': ['"XV":99', '"XV":1e3', '"XV":null', '"XV":"99.84"'],
    '"RU":"kWh"': ['"RU":"kWh "', '"RU":" kWh"', '"RU":""', '"RU":null', '"RU":"kWh\\u2028"'],
    '"XU":"kWh"': ['"XU":"kWh\\t"', '"XU":""', '"XU":5'],
    '"ST":"G"': ['"ST":"E"', '"ST":null', '"ST":"g"'],
    '"EF":""': ['"EF":"E"', '"EF":null', '"EF":0', '"EF":[]'],
    '"XT":1': ['"XT":true', '"XT":null', '"XT":1.0'],
    '"RI":"1-0:1.8.0*198"': ['"RI":null', '"RI":198'],
    '"RT":"AC"': ['"RT":null', '"RT":["AC"]'],
    '"XI":"1-0:1.8.0*255"': ['"XI":{}'],
    '"MS":"001BZR1521070006"': ['"MS":""', '"MS":null', '"MS":7', '"M_":"x"'],
    '"PG":"T4276"': ['"PG":""', '"PG":4276', '"PG":"T4276","PG":"T1"'],
    '"MM":"BSM-WS36A-H01-1311-0000"': [
        '"MM":"NOT calibration-law compliant: signed by the station, not by the meter"',
        '"MM":5',
    ],
    '"GI":"BAUER Electronic BSM-WS36A-H01-1311-0000"': [
        '"GI":"chargepoint station TEST signature NOT calibration-law compliant"',
        '"GI":null',
    ],
    '"RD":[{': ['"RD":[{"TM":"2022-07-08T10:00:29,000+0200 S","RV":1.00,"TX":"E"},{'],
}


def _real(name: str) -> str:
    record: str = bsm_vectors()["ocmf_vectors"][name]["ocmf"]
    return record


def _payload_variants(key: ec.EllipticCurvePrivateKey) -> Iterator[str]:
    record = _real("ostons_T4276")
    payload = record[5 : record.rindex("|")]
    for field, changes in PAYLOAD_CHANGES.items():
        assert field in payload, field
        for change in changes:
            yield sign_and_assemble(key, payload.replace(field, change, 1))


def _signature_variants() -> Iterator[str]:
    record = _real("ostons_T4276")
    payload, _, section = record.rpartition("|")
    sd = json.loads(section)["SD"]
    for changed in [
        section.replace(sd, sd.upper()),
        section.replace(sd, f"{sd[:20]} {sd[20:]}"),
        section.replace(sd, ""),
        section.replace(sd, sd[:-1]),
        section.replace(sd, sd[:-2] + "zz"),
        section.replace(sd, "\u0663" + sd[1:]),
        section.replace(sd, sd[:10] + "\\u0030" + sd[11:]),
        section.replace(sd, sd[:-2] + ("00" if sd[-2:] != "00" else "01")),
        section.replace('"SA":"ECDSA', '"SA":"\\u0045CDSA'),
        section.replace("secp256r1", "secp384r1"),
        section.replace("secp256r1", "brainpoolP256r1"),
        section.replace("ECDSA-secp256r1-SHA256", ""),
        section.replace('","SD', '", "SD'),
        f'{{"SD":"{sd}"}}',
        f'{{"SD":"{sd}","SA":"ECDSA-secp256r1-SHA256"}}',
        section[:-1] + ',"SE":"hex"}',
        section[:-1] + ',"SM":"application/x-der"}',
        section + " ",
        section[:-2] + '"}|{"SD":"00"}',
        section.replace(',"SD":"', ',"SD":"}'),
    ]:
        yield f"{payload}|{changed}"


def _cases() -> Iterator[tuple[str, PublicKeyInfo]]:
    keys = {
        name: load_public_key(bsm_public_key_hex(name)) for name in bsm_vectors()["public_keys"]
    }
    for vector in bsm_vectors()["ocmf_vectors"].values():
        for key in keys.values():
            yield vector["ocmf"], key
    for example in multivendor_vectors().values():
        if isinstance(example, dict):
            key = load_public_key(example["public_key_der_hex"])
            for record in example["records"]:
                yield record["ocmf"], key
    a_key = keys["A_meter_001BZR1521070006"]
    for record in _signature_variants():
        yield record, a_key
    signer = ec.generate_private_key(ec.SECP256R1())
    signer_key = load_public_key(public_der(signer).hex())
    for record in _payload_variants(signer):
        yield record, signer_key


def test_the_shortcut_gives_the_general_line_or_nothing() -> None:
    taken = declined = 0
    for (record, key), number in itertools.product(_cases(), (0, 12)):
        general = check_in_full(record, key, number)
        line = usual_line(record, key, number)
        if line is None:
            declined += 1
        else:
            taken += 1
            assert (True, line) == general, record
    # both ways are exercised: the real BSM records and many altered ones take the shortcut
    assert taken >= 40
    assert declined >= 100


@pytest.mark.parametrize("name", ["ostons_T4276", "ostoffs_T4277", "chargy_fixture_T22107"])
def test_a_real_meter_record_takes_the_shortcut(name: str) -> None:
    vector = bsm_vectors()["ocmf_vectors"][name]
    key = load_public_key(bsm_public_key_hex(vector["public_key"]))
    line = usual_line(vector["ocmf"], key, 3)
    assert line is not None
    assert line.startswith("verified: record 3: meter 001BZR15")
    assert (True, line) == check_in_full(vector["ocmf"], key, 3)


def test_a_bad_signature_is_left_to_the_general_path() -> None:
    vector = bsm_vectors()["ocmf_vectors"]["ostons_T4276"]
    other = load_public_key(bsm_public_key_hex("B_meter_001BZR1521290137"))
    assert usual_line(vector["ocmf"], other, 0) is None
    good, line = check_in_full(vector["ocmf"], other, 0)
    assert not good
    assert line.startswith("not verified: signature does not match the payload and key")
