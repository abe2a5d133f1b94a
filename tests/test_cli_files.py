"""What a new user meets on the command line: the files `transactions export` writes (never
through a link, over a FIFO or over a kept file; `-o -`; `| head`), selections that select
nothing, progress on a terminal, `--version`, `-v` after the command, a help text for every
option, and what `transactions list` and the exports call things."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chargepoint import __version__
from chargepoint.cli import progress
from chargepoint.cli.main import build_parser, main, parse_args
from tests.real_vectors import REPO_ROOT
from tests.signed_store import (
    METER_SERIAL,
    STATION_ID,
    SignedStation,
    real_meter_station,
    signed_station,
)


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class NotTerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def station(tmp_path: Path) -> SignedStation:
    """20 closed sessions on connectors 1 and 2, and one open session (21) on connector 1."""
    return signed_station(tmp_path / "station", 20, connectors=(1, 2), open_sessions=1)


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run without a terminal on stdin and stderr unless one says otherwise."""
    monkeypatch.setattr(sys, "stdin", NotTerminal(""))


def export(station: SignedStation, *args: str) -> list[str]:
    return ["transactions", "export", "--config", str(station.config), *args]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- 1. the file written --------------------------------------------------------------------


def test_an_existing_file_is_kept_without_force_and_without_a_terminal(
    station: SignedStation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "sessions.csv"
    target.write_text("my own notes\n")
    code, _, err = run(export(station, "-o", str(target)), capsys)
    assert code == 1
    assert target.read_text() == "my own notes\n"
    assert "exists" in err and "--force" in err and "not a terminal" in err
    code, _, err = run(export(station, "-o", str(target), "--force"), capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 20


def test_on_a_terminal_the_user_is_asked_before_a_file_is_replaced(
    station: SignedStation,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "sessions.csv"
    target.write_text("keep me\n")
    target.chmod(0o640)
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, _, err = run(export(station, "-o", str(target)), capsys)
    assert code == 1 and target.read_text() == "keep me\n"
    assert "replace it? [y/N]" in err and "kept" in err
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, _, err = run(export(station, "-o", str(target)), capsys)
    assert code == 0, err
    assert target.read_text().startswith("session,connector,")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replaced file's mode is kept


def test_a_symlink_is_not_written_through_unless_forced(
    station: SignedStation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "export.csv"
    link.symlink_to(victim)
    code, _, err = run(export(station, "-o", str(link)), capsys)
    assert code == 1 and "symbolic link" in err and "--force" in err
    assert victim.read_text() == "precious\n" and link.is_symlink()
    # asked for: the file the link points to is written, the link stays a link
    code, _, err = run(export(station, "-o", str(link), "--force"), capsys)
    assert code == 0, err
    assert link.is_symlink() and victim.read_text().startswith("session,")


def test_a_fifo_is_neither_replaced_nor_written_unless_forced(
    station: SignedStation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run(export(station, "-o", str(fifo)), capsys)
    assert code == 1 and "FIFO" in err and "--force" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "station"]


def test_a_new_file_appears_complete_or_not_at_all(
    station: SignedStation,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chargepoint.cli import transactions

    target = tmp_path / "out" / "sessions.csv"
    target.parent.mkdir()

    def broken(out: io.StringIO, sessions: Iterator[object]) -> int:
        out.write("session,connector\n1,1\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(transactions, "write_csv", broken)
    code, _, err = run(export(station, "-o", str(target)), capsys)
    assert code == 1 and "No space left" in err
    assert list(target.parent.iterdir()) == []  # no half file, no temporary left behind
    monkeypatch.undo()
    monkeypatch.setattr(sys, "stdin", NotTerminal(""))
    code, _, err = run(export(station, "-o", str(target)), capsys)
    assert code == 0 and [p.name for p in target.parent.iterdir()] == ["sessions.csv"]
    assert "exported 20 sessions to" in err


def test_dash_is_standard_output(
    station: SignedStation,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(export(station, "-o", "-"), capsys)
    assert code == 0, err
    assert not (tmp_path / "-").exists()
    assert len(list(csv.DictReader(io.StringIO(out)))) == 20
    assert err == ""  # nothing "exported to -"


def test_a_reader_that_stops_early_ends_the_export_quietly(tmp_path: Path) -> None:
    """`chargepoint transactions export ... | head -1`: exit 0, no traceback."""
    big = signed_station(tmp_path, 150)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chargepoint",
            "transactions",
            "export",
            "--config",
            str(big.config),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    header = proc.stdout.readline()
    proc.stdout.close()  # as head does after its lines
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert header.startswith(b"session,connector,")
    assert code == 0, err
    assert err == "", err  # neither a BrokenPipeError traceback nor "Exception ignored"


# ---- 2. selections that select nothing, counts -------------------------------------------


def test_an_unknown_session_id_fails_and_names_the_sessions_there_are(
    station: SignedStation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "one.csv"
    code, _, err = run(export(station, "--id", "99", "-o", str(target)), capsys)
    assert code == 1
    assert not target.exists()
    assert "no session 99" in err and "sessions 1-20" in err and "still open: 21" in err
    code, _, err = run(export(station, "--id", "21", "-o", str(target)), capsys)
    assert code == 1 and "session 21 is still open" in err and not target.exists()


def test_a_connector_without_sessions_fails_and_names_the_connectors_with_sessions(
    station: SignedStation, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(export(station, "--connector", "3"), capsys)
    assert code == 1 and out == ""
    assert "no closed sessions on connector 3" in err and "connectors 1, 2" in err
    config = str(station.config)
    code, out, err = run(["transactions", "list", "--config", config, "--connector", "3"], capsys)
    assert code == 1 and out == "" and "connector 3" in err


def test_counts_say_one_session_not_one_sessions(
    station: SignedStation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(export(station, "--id", "1", "-o", str(tmp_path / "1.csv")), capsys)
    assert code == 0 and "exported 1 session to" in err
    xml = tmp_path / "1.xml"
    code, _, err = run(export(station, "--id", "1", "--format", "safe-xml", "-o", str(xml)), capsys)
    assert code == 0 and "exported 1 session (2 signed values) to" in err
    code, out, _ = run(["verify", str(xml)], capsys)
    assert code == 0 and out.splitlines()[-1] == "1 transaction: 1 verified, 0 failed"
    code, out, _ = run(["transactions", "prune", "--config", str(station.config)], capsys)
    assert code == 0 and out.startswith("removed 0 sessions closed before")
    assert "retention 6 years" in out


# ---- 3. progress ------------------------------------------------------------------------


def test_a_long_export_shows_progress_on_a_terminal_only(
    station: SignedStation,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress, "DELAY_S", 0.0)  # as if the export took longer than that
    target = tmp_path / "all.csv"
    monkeypatch.setattr(sys, "stderr", terminal := Terminal())
    assert main(export(station, "-o", str(target))) == 0
    shown = terminal.getvalue()
    assert " sessions" in shown and "sessions/s" in shown, shown
    assert shown.rstrip().endswith(f"exported 20 sessions to {target}")
    # scripts: --quiet on a terminal shows nothing at all
    monkeypatch.setattr(sys, "stderr", terminal := Terminal())
    assert main(export(station, "-o", str(target), "--force", "--quiet")) == 0
    assert terminal.getvalue() == ""
    # not a terminal (a log file, a pipe): no progress, only the summary
    monkeypatch.setattr(sys, "stderr", log := NotTerminal())
    assert main(export(station, "-o", str(target), "--force")) == 0
    assert log.getvalue() == f"exported 20 sessions to {target}\n"


# ---- 4. what users reach for ------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"chargepoint {__version__}"


def test_verbose_is_accepted_after_the_command_too() -> None:
    assert parse_args(["run", "--config", "x.yaml", "-v"]).verbose == 1
    assert parse_args(["-v", "run", "--config", "x.yaml", "-v"]).verbose == 2
    assert parse_args(["transactions", "list", "--config", "x.yaml", "-vv"]).verbose == 2
    assert parse_args(["meter", "--url", "tcp://h:1", "info", "--verbose"]).verbose == 1
    assert parse_args(["status", "--config", "x.yaml"]).verbose == 0


def _parsers(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser, dict[str, str | None]]]:
    yield path, parser, {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub, {name: helps.get(name)}
                for item in _parsers(sub, f"{path} {name}"):
                    if item[1] is not sub:
                        yield item


def test_every_command_and_every_option_has_a_help_text() -> None:
    missing: list[str] = []
    for path, parser, command_help in _parsers(build_parser(), "chargepoint"):
        for name, text in command_help.items():
            if not text:
                missing.append(f"{path}: the command {name}")
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


# ---- 6. what things are called ----------------------------------------------------------


def test_list_calls_an_open_session_open(
    station: SignedStation, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["transactions", "list", "--config", str(station.config)], capsys)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 21
    assert lines[-1].split()[0] == "21" and lines[-1].rstrip().endswith("open")
    assert "unsigned" not in lines[-1]
    assert all(line.rstrip().endswith("verified") for line in lines[:-1])


def test_csv_gives_the_signed_meter_time_beside_the_controller_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = real_meter_station(tmp_path)
    code, out, _ = run(export(real), capsys)
    assert code == 0
    reader = csv.DictReader(io.StringIO(out))
    old_columns = [
        "session",
        "connector",
        "evse_id",
        "id_tag",
        "started_at",
        "stopped_at",
        "meter_serial",
        "meter_start_wh",
        "meter_stop_wh",
        "energy_wh",
        "verification",
        "verification_reason",
        "stop_reason",
        "csms_transaction_id",
        "public_key_hex",
        "begin_ocmf",
        "end_ocmf",
    ]
    names = list(reader.fieldnames or [])
    assert [n for n in names if n in old_columns] == old_columns  # kept, same order
    (row,) = reader
    # the controller's clock (UTC) and the meter's signed time (its offset) side by side
    assert row["started_at"] == "2022-07-08T08:00:27.400Z"
    assert row["begin_signed_meter_time"] == "2022-07-08T10:00:28+02:00"
    assert row["end_signed_meter_time"] == "2022-07-08T10:05:52+02:00"
    assert names.index("begin_signed_meter_time") == names.index("stopped_at") + 1


def test_chargy_export_names_the_meter_by_its_serial_and_the_station_by_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = real_meter_station(tmp_path / "a")
    code, out, _ = run(export(real, "--format", "chargy", "--id", "1"), capsys)
    assert code == 0
    doc = json.loads(out)
    assert STATION_ID not in json.dumps(doc["chargingStationInfo"])
    assert {s["meterInfo"]["meterId"] for s in doc["signedMeterValues"]} == {METER_SERIAL}
    assert doc["chargingStationInfo"]["controllerSoftwareVersion"].startswith("chargepoint")
    serial = real_meter_station(tmp_path / "b", station_serial="2020-24-T-042")
    code, out, _ = run(export(serial, "--format", "chargy", "--id", "1"), capsys)
    assert json.loads(out)["chargingStationInfo"]["serialNumber"] == "2020-24-T-042"
