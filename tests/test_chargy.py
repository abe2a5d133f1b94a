"""Chargy's container rebuilt from real BSM snapshots: the meter's own signatures verify from
the document alone."""

from __future__ import annotations

from meter.bsm import chargy
from meter.proof.keys import load_public_key
from tests.real_vectors import bsm_public_key_hex, bsm_vectors
from tests.test_bsm_signature import snapshot_fields

KEY_HEX = bsm_public_key_hex("A_meter_001BZR1521070006")


def real_document() -> dict[str, object]:
    vectors = bsm_vectors()["snapshot_vectors"]
    snaps = []
    for name in ("stons_4276", "stoffs_4277"):
        v = vectors[name]
        snaps.append(
            chargy.snapshot_object(
                snapshot_fields(v["fields"]),
                bytes.fromhex(v["signature_der_hex"]),
                KEY_HEX,
                "BAUER Electronic",
                "BSM-WS36A-H01-1311-0000",
                "1.9:32CA:AFF4, f1d3d06",
            )
        )
    return chargy.document("doc-1", "DE*BDO*E8025334492*2", {}, snaps)


def test_real_turn_on_and_turn_off_verify_from_the_document() -> None:
    doc = real_document()
    assert chargy.verify_document(doc, load_public_key(KEY_HEX)) == []
    begin = doc["signedMeterValues"][0]  # type: ignore[index]
    assert begin["contract"] == {"id": "12345678abcdef", "type": "rfid"}
    assert begin["measurementId"] == 4276 and begin["time"].endswith("+02:00")


def test_the_other_meters_key_or_a_changed_value_fails() -> None:
    doc = real_document()
    other = load_public_key(bsm_public_key_hex("B_meter_001BZR1521290137"))
    assert len(chargy.verify_document(doc, other)) == 2
    doc["signedMeterValues"][1]["additionalValues"][1]["measuredValue"]["value"] += 10  # type: ignore[index]
    problems = chargy.verify_document(doc, load_public_key(KEY_HEX))
    assert len(problems) == 1 and problems[0].startswith("End")
