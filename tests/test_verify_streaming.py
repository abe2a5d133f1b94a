"""`chargepoint verify` of a meter's file of records: read as a stream (no size limit for the
file, only for one line), printed as it goes, and with `--jobs N` checked in N processes with
the very same output, in the file's order."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.cli.main import main
from meter.bsm.ocmf import sign_and_assemble
from meter.proof.keys import public_der
from meter.proof.verification import MAX_INPUT_FILE, check_records
from tests.real_vectors import bsm_public_key_hex, bsm_vectors

A_KEY = bsm_public_key_hex("A_meter_001BZR1521070006")
PAYLOAD = (
    '{"FV":"1.0","GI":"BAUER Electronic BSM-WS36A-H01-1311-0000","GS":"001BZR1521070006",'
    '"PG":"T%(rcnt)d","MV":"BAUER Electronic","MM":"BSM-WS36A-H01-1311-0000",'
    '"MS":"001BZR1521070006","IS":true,"IT":"UNDEFINED","ID":"rfid:%(rcnt)08x",'
    '"RD":[{"TM":"2026-03-01T10:%(minute)02d:00,000+0100 %(sync)s","TX":"%(tx)s",'
    '"RV":%(rv)s,"RI":"1-0:1.8.0*198","RU":"kWh","XV":%(xv)s,"XI":"1-0:1.8.0*255",'
    '"XU":"kWh","XT":1,"RT":"AC","EF":"%(ef)s","ST":"G"}]}'
)


def _record(key: ec.EllipticCurvePrivateKey, n: int) -> str:
    fields = {
        "rcnt": n,
        "minute": n % 60,
        "sync": "U" if n % 7 == 0 else "S",  # a warning now and then
        "tx": "B" if n % 2 else "E",
        "rv": f"{n % 100 / 10:.2f}",
        "xv": f"{1000 + n / 100:.2f}",
        "ef": "Et" if n % 97 == 0 else "",  # not billable
    }
    record = sign_and_assemble(key, PAYLOAD % fields)
    if n % 53 == 0:  # tampered after signing
        record = record.replace('"RU":"kWh"', '"RU":"Wh"', 1)
    if n % 89 == 0:
        record = "OCMF|garbage"
    return record


@pytest.fixture(scope="module")
def meter_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """700 records of one meter (several chunks of work), some of them bad."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("meter") / "records.ocmf"
    path.write_text("\n".join(_record(key, n) for n in range(1, 701)) + "\n")
    return path, public_der(key).hex()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


def test_jobs_give_the_same_output_in_the_same_order(
    meter_file: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, key = meter_file
    code, one = run(["verify", str(path), "--public-key", key], capsys)
    lines = one.splitlines()
    assert code == 1 and len(lines) == 700
    assert [line.split(": ")[1] for line in lines] == [f"record {n}" for n in range(1, 701)]
    assert sum(line.startswith("verified: ") for line in lines) == 700 - 7 - 13 - 7
    assert lines[96].startswith("signature valid but not billable: record 97: ")
    assert lines[52].startswith("not verified: record 53: signature does not match")
    assert lines[88].startswith("not verified: record 89: malformed record: ")
    assert "(warning: time status U (unsynchronised))" in lines[6]

    code2, two = run(["verify", str(path), "--public-key", key, "--jobs", "2"], capsys)
    assert (code2, two) == (code, one)
    code_all, every_core = run(["verify", str(path), "--public-key", key, "-j", "0"], capsys)
    assert (code_all, every_core) == (code, one)
    quiet = ["verify", str(path), "--public-key", key, "--quiet"]
    _, quiet_one = run(quiet, capsys)
    _, quiet_two = run([*quiet, "--jobs", "2"], capsys)
    assert quiet_one == quiet_two
    assert quiet_one.splitlines() == [line for line in lines if not line.startswith("verified")]


def test_negative_jobs_are_refused(
    meter_file: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, key = meter_file
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", str(path), "--public-key", key, "--jobs", "-1"])
    assert exit_info.value.code == 2
    assert "0 for one per core" in capsys.readouterr().err


def test_lines_come_out_before_the_file_is_read_to_its_end(meter_file: tuple[Path, str]) -> None:
    path, key = meter_file
    lines = check_records(str(path), key)
    good, first = next(lines)
    assert good and first.startswith("verified: record 1: ")
    lines.close()  # the rest is never checked


def test_a_file_larger_than_one_record_may_be_is_read_line_by_line(tmp_path: Path) -> None:
    """The file's size is no limit (it was 16 MiB, read whole); a line longer than that is
    named and skipped, and the records around it verify."""
    vectors = bsm_vectors()["ocmf_vectors"]
    path = tmp_path / "big.ocmf"
    with path.open("w") as f:
        f.write(vectors["ostons_T4276"]["ocmf"] + "\n")
        f.write("x" * (MAX_INPUT_FILE + 10) + "\n")
        f.write(vectors["ostoffs_T4277"]["ocmf"] + "\n")
    lines = list(check_records(str(path), A_KEY))
    assert [good for good, _ in lines] == [True, False, True]
    assert lines[1][1] == "not verified: record 2: line longer than 16 MiB"
    assert lines[2][1].startswith("verified: record 3: ")


def test_line_ends_and_byte_order_mark_as_any_text_editor_writes_them(tmp_path: Path) -> None:
    vectors = bsm_vectors()["ocmf_vectors"]
    records = [vectors[name]["ocmf"] for name in ("ostons_T4276", "ostoffs_T4277", "oscs_T4278")]
    path = tmp_path / "windows.ocmf"
    path.write_bytes(b"\xef\xbb\xbf" + f"{records[0]}\r\n\r\n{records[1]}\r{records[2]}".encode())
    lines = [line for _, line in check_records(str(path), A_KEY)]
    assert len(lines) == 3
    assert all(line.startswith(f"verified: record {n}: ") for n, line in enumerate(lines, 1))


def test_a_bad_byte_late_in_the_file_names_the_file_not_the_records_before(
    tmp_path: Path,
) -> None:
    record = bsm_vectors()["ocmf_vectors"]["ostons_T4276"]["ocmf"]
    path = tmp_path / "broken.ocmf"
    path.write_bytes(f"{record}\n{record}\n".encode() + b"\xff\n")
    assert list(check_records(str(path), A_KEY)) == [
        (False, f"not verified: file {path} is not UTF-8 text")
    ]
