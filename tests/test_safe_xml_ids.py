"""A transaction that comes twice in a transparency-software XML is refused, wherever in the
file it comes again, while the ids met so far take memory per gap, not per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from chargepoint.cli.main import main
from meter.bsm.ocmf import sign_and_assemble
from meter.proof.keys import public_der
from meter.proof.safe_xml import BEGIN, END, SignedValue, dumps
from meter.proof.safe_xml_check import SeenIds

PAYLOAD = (
    '{"FV":"1.0","GI":"BAUER Electronic BSM-WS36A-H01-1311-0000","GS":"001BZR1521070006",'
    '"PG":"T%(pg)d","MV":"BAUER Electronic","MM":"BSM-WS36A-H01-1311-0000",'
    '"MS":"001BZR1521070006","IS":true,"IT":"UNDEFINED","ID":"rfid:0000%(tid)04d",'
    '"RD":[{"TM":"2026-03-01T10:00:00,000+0100 S","TX":"%(tx)s","RV":%(v)s,'
    '"RI":"1-0:1.8.0*198","RU":"kWh","XV":%(v)s,"XI":"1-0:1.8.0*255","XU":"kWh","XT":1,'
    '"RT":"AC","EF":"","ST":"G"}]}'
)


@given(st.lists(st.integers(min_value=0, max_value=80), max_size=120))
def test_seen_ids_tell_a_repeated_id_in_any_order(ids: list[int]) -> None:
    seen, reference = SeenIds(), set[int]()
    for tid in ids:
        assert seen.add(tid) is (tid not in reference)
        reference.add(tid)
    assert seen.runs <= max(1, len(reference))


def test_an_ascending_export_takes_one_run_per_gap() -> None:
    seen = SeenIds()
    for tid in [*range(1, 50_001), *range(50_003, 100_001)]:
        assert seen.add(tid)
    assert seen.runs == 2
    assert not seen.add(50_000)
    assert seen.add(50_001) and seen.add(50_002)
    assert seen.runs == 1


KEY = ec.generate_private_key(ec.SECP256R1())


def _pair(tid: int) -> list[SignedValue]:
    key = public_der(KEY).hex()
    values = []
    for context, tx, pg, wh in ((BEGIN, "B", 2 * tid, 1000), (END, "E", 2 * tid + 1, 1000 + tid)):
        fields = {"tid": tid, "pg": pg, "tx": tx, "v": f"{wh / 1000:.3f}"}
        record = sign_and_assemble(KEY, PAYLOAD % fields)
        values.append(SignedValue(tid, context, record, key))
    return values


@pytest.mark.parametrize("order", [[3, 4, 5, 4], [5, 3, 4, 3], [1, 2, 3, 1]])
def test_verify_refuses_a_file_naming_a_transaction_twice(
    order: list[int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sessions.xml"
    path.write_text(dumps(v for tid in order for v in _pair(tid)), encoding="utf-8")
    assert main(["verify", str(path), "--public-key", public_der(KEY).hex()]) == 1
    out = capsys.readouterr().out
    assert f"transaction {order[-1]} appears twice in the file" in out


def test_verify_takes_the_same_sessions_in_any_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sessions.xml"
    path.write_text(dumps(v for tid in [5, 3, 4, 9, 1] for v in _pair(tid)), encoding="utf-8")
    assert main(["verify", str(path), "--public-key", public_der(KEY).hex()]) == 0
    assert "5 transactions: 5 verified, 0 failed" in capsys.readouterr().out
