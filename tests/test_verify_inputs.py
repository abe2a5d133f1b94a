"""`chargepoint verify` reads every file the project writes, told apart by content, with the
key as the meter's label prints it: a real meter's session (tests/vectors) exported as CSV,
S.A.F.E. XML and Chargy JSON verifies; one changed digit does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chargepoint.cli.main import main
from tests.real_vectors import bsm_public_key_hex, bsm_vectors
from tests.signed_store import SignedStation, real_meter_station, signed_station

A_KEY = bsm_vectors()["public_keys"]["A_meter_001BZR1521070006"]
LABEL_KEY = A_KEY["x"] + A_KEY["y"]  # 128 hex characters, as on the meter's label
OTHER_METER_KEY = bsm_public_key_hex("B_meter_001BZR1521290137")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


@pytest.fixture
def real(tmp_path: Path) -> SignedStation:
    return real_meter_station(tmp_path / "station")


def exported(
    station: SignedStation, fmt: str, target: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    argv = ["transactions", "export", "--config", str(station.config), "--format", fmt]
    code, _ = run([*argv, "--id", "1", "-o", str(target)], capsys)
    assert code == 0
    return target


def change_a_digit(path: Path, after: str, start: str = "") -> None:
    """One digit of the value after `after` (searched from `start`) changed."""
    text = path.read_text()
    at = text.index(after, text.index(start)) + len(after)
    while not text[at].isdigit():
        at += 1
    path.write_text(text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1 :])


@pytest.mark.parametrize(
    "key",
    [
        LABEL_KEY,
        LABEL_KEY.upper(),
        " ".join(LABEL_KEY[i : i + 8] for i in range(0, 128, 8)),  # grouped as printed
        "04" + LABEL_KEY,
        A_KEY["der_hex"],
    ],
    ids=["label-x||y", "upper-case", "grouped", "04-prefixed", "der-hex"],
)
def test_the_key_as_printed_on_the_meter_verifies_a_real_record(
    key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    record = bsm_vectors()["ocmf_vectors"]["ostons_T4276"]["ocmf"]
    code, out = run(["verify", record, "--public-key", key], capsys)
    assert code == 0, out
    assert out.startswith("verified: meter 001BZR1521070006, T4276, B 0.00 kWh")


def test_a_changed_digit_of_the_label_key_fails(capsys: pytest.CaptureFixture[str]) -> None:
    record = bsm_vectors()["ocmf_vectors"]["ostons_T4276"]["ocmf"]
    wrong = LABEL_KEY[:-1] + ("1" if LABEL_KEY[-1] != "1" else "2")
    code, out = run(["verify", record, "--public-key", wrong], capsys)
    assert code == 1 and out.startswith("not verified: ")
    code, out = run(["verify", record, "--public-key", LABEL_KEY[:-2]], capsys)
    assert code == 1 and "128 hex characters" in out  # says which forms it takes


@pytest.mark.parametrize(
    ("fmt", "name", "first_line"),
    [
        ("csv", "sessions.dat", "session 1: verified, 150 Wh on meter 001BZR1521070006"),
        ("safe-xml", "sessions.txt", "transaction 1: verified, 150 Wh on meter 001BZR1521070006"),
        ("chargy", "session", ": verified, 150 Wh on meter 001BZR1521070006 (snapshots 4276"),
    ],
)
def test_every_export_of_a_real_session_verifies_whatever_its_name(
    real: SignedStation,
    fmt: str,
    name: str,
    first_line: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = exported(real, fmt, tmp_path / name, capsys)
    code, out = run(["verify", str(path), "--public-key", LABEL_KEY], capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert first_line in lines[0] and "key in the file" not in out
    assert lines[-1].endswith(": 1 verified, 0 failed")
    # no trusted key given: the file's own key is used, and the output says so
    code, out = run(["verify", str(path)], capsys)
    assert code == 0 and "against the key in the file" in out
    # another meter's key is not the one that signed it
    code, out = run(["verify", str(path), "--public-key", OTHER_METER_KEY], capsys)
    assert code == 1 and "FAILED" in out


@pytest.mark.parametrize(
    ("fmt", "after", "start"),
    [
        ("csv", '""XV"":', '""TX"":""E""'),  # the End record's total (quotes doubled in CSV)
        ("safe-xml", '"XV":', 'context="Transaction.End"'),
        ("chargy", '"value":', '"TotWhImp"'),  # the Begin snapshot's total register
    ],
)
def test_a_changed_digit_in_an_export_fails(
    real: SignedStation,
    fmt: str,
    after: str,
    start: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = exported(real, fmt, tmp_path / f"export.{fmt}", capsys)
    change_a_digit(path, after, start)
    code, out = run(["verify", str(path), "--public-key", LABEL_KEY], capsys)
    assert code == 1, out
    assert "FAILED" in out and out.splitlines()[-1].endswith("0 verified, 1 failed")


def test_records_one_per_line_are_recognised_by_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vectors = bsm_vectors()["ocmf_vectors"]
    path = tmp_path / "readings.xml"  # a misleading name: the content decides
    path.write_text(vectors["ostons_T4276"]["ocmf"] + "\n" + vectors["ostoffs_T4277"]["ocmf"])
    code, out = run(["verify", str(path), "--public-key", LABEL_KEY], capsys)
    assert code == 0, out
    assert [line.split(":")[0] for line in out.splitlines()] == ["verified", "verified"]


def test_quiet_prints_only_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    station = signed_station(tmp_path / "station", 5)
    xml = tmp_path / "all.xml"
    argv = ["transactions", "export", "--config", str(station.config), "--format", "safe-xml"]
    assert main([*argv, "-o", str(xml)]) == 0
    capsys.readouterr()
    code, out = run(["verify", str(xml), "--public-key", station.key_point_hex, "-q"], capsys)
    assert code == 0 and out == ""
    change_a_digit(xml, '"XV":', 'transactionId="3" context="Transaction.End"')
    code, out = run(["verify", str(xml), "--public-key", station.key_point_hex, "--quiet"], capsys)
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert lines[0].startswith("transaction 3: FAILED: End record")
    assert lines[1] == "5 transactions: 4 verified, 1 failed"
    record = bsm_vectors()["ocmf_vectors"]["ostons_T4276"]["ocmf"]
    code, out = run(["verify", record, "--public-key", LABEL_KEY, "--quiet"], capsys)
    assert code == 0 and out == ""


def test_a_chargy_document_of_another_meter_or_with_a_foreign_key_fails(
    real: SignedStation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = exported(real, "chargy", tmp_path / "session.json", capsys)
    doc = json.loads(path.read_text())
    # a forger's key put in the document: without a trusted key the output names the file key;
    # with the label's key the document fails
    for snap in doc["signedMeterValues"]:
        snap["meterInfo"]["publicKey"] = OTHER_METER_KEY
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    code, out = run(["verify", str(forged), "--public-key", LABEL_KEY], capsys)
    assert code == 1 and "not among the trusted keys" in out
    code, out = run(["verify", str(forged)], capsys)
    assert code == 1 and "FAILED" in out
    # a document of another session: the End of one, the Begin of another
    doc = json.loads(path.read_text())
    doc["signedMeterValues"] = [doc["signedMeterValues"][0]] * 2
    replayed = tmp_path / "replayed.json"
    replayed.write_text(json.dumps(doc))
    code, out = run(["verify", str(replayed), "--public-key", LABEL_KEY], capsys)
    assert code == 1 and "End is a snapshot of type 1" in out and "does not follow" in out


def test_a_file_key_in_label_form_matches_the_trusted_key(
    real: SignedStation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another tool's XML carrying the key as the bare point still matches the trusted key."""
    path = exported(real, "safe-xml", tmp_path / "session.xml", capsys)
    path.write_text(path.read_text().replace(real.key_hex, LABEL_KEY.upper()))
    code, out = run(["verify", str(path), "--public-key", A_KEY["der_hex"]], capsys)
    assert code == 0, out
    code, out = run(["verify", str(path), "--public-key", OTHER_METER_KEY], capsys)
    assert code == 1 and "not among the trusted keys" in out
