"""The command line as an operator uses it: a simulated meter in its own process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.cli.main import main
from tests.conftest import free_port


class SimProcess:
    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chargepoint", "simulate-meter", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.lines = [self.proc.stdout.readline().strip()]
        if not self.lines[0]:
            raise AssertionError(f"simulator did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]

    def public_key(self) -> str:
        return self.lines[0].split()[-1]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[SimProcess, str]]:
    port = free_port()
    sim = SimProcess(
        [
            "--listen",
            f"tcp://127.0.0.1:{port}",
            "--framer",
            "rtu",
            "--sign-delay",
            "0.05",
            "--key",
            str(tmp_path / "meter.key"),
        ]
    )
    try:
        yield sim, f"rtu+tcp://127.0.0.1:{port}"
    finally:
        if sim.proc.poll() is None:
            sim.stop()


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_simulator_prints_its_key_and_keeps_it_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    args = ["--listen", f"tcp://127.0.0.1:{port}", "--key", str(tmp_path / "k.pem")]
    first = SimProcess(args)
    key = first.public_key()
    assert key.startswith("3059301306072a8648ce3d020106082a8648ce3d030107034200")
    assert first.stop() == 0, "SIGTERM ends the simulator cleanly"
    second = SimProcess(args)
    try:
        assert second.public_key() == key
    finally:
        second.stop()


def test_meter_commands_and_verify_round_trip(
    simulator: tuple[SimProcess, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sim, url = simulator
    info = run_json(capsys, ["meter", "--url", url, "info"])
    assert info["manufacturer"] == "BAUER Electronic" and info["device_address"] == 42
    assert len(info["firmware_hash"]) == 64
    assert run_json(capsys, ["meter", "--url", url, "pubkey"])["public_key"] == sim.public_key()
    clock = run_json(capsys, ["meter", "--url", url, "set-clock", "--tzo", "60"])
    assert clock["set_count"] == 1 and clock["tzo_minutes"] == 60

    snap = run_json(
        capsys,
        ["meter", "--url", url, "snapshot", "turn-on", "--meta1", "rfid:0a1b2c3d", "--meta2", "x"],
    )
    assert snap["kind"] == "turn-on" and snap["status"] == "valid"
    assert snap["fields"]["meta1"] == "rfid:0a1b2c3d"
    assert snap["energy_since_turn_on_wh"] == 0
    ocmf = snap["ocmf"]

    assert main(["verify", ocmf, "--public-key", sim.public_key()]) == 0
    out = capsys.readouterr().out
    assert out.startswith("verified:") and out.count("\n") == 1
    assert f"meter {info['meter_address']}," in out, out
    assert f", T{snap['response_counter']}," in out and snap["response_counter"] == 1, out
    assert "B 0.00 kWh (total " in out, out
    assert snap["time"] is not None and snap["time"].endswith("+01:00")
    assert f" at {snap['time']}," in out, out

    tampered = ocmf.replace('"RV":0.00', '"RV":0.01')
    assert tampered != ocmf
    assert main(["verify", tampered, "--public-key", sim.public_key()]) == 1
    assert capsys.readouterr().out.startswith("not verified:")

    record_file = tmp_path / "begin.ocmf"
    record_file.write_text(ocmf + "\n")
    key_file = tmp_path / "meter.pub"
    key_file.write_text(sim.public_key())
    assert main(["verify", str(record_file), "--public-key", str(key_file)]) == 0
    capsys.readouterr()

    state = run_json(capsys, ["meter", "--url", url, "transaction"])
    assert state["open"] is True


def test_meter_errors_are_one_line_saying_what_to_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()  # nobody listens here
    code = main(["meter", "--url", f"tcp://127.0.0.1:{port}", "--timeout", "0.5", "energy"])
    assert code == 3
    err = capsys.readouterr().err.strip()
    assert err == (
        f"meter: cannot open tcp://127.0.0.1:{port}: connection refused or no answer "
        "(is the gateway on and reachable?)"
    )
    assert main(["meter", "--url", "ftp://x", "energy"]) == 2
    assert "scheme" in capsys.readouterr().err


def test_snapshot_with_event_flags_prints_the_signed_snapshot_and_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    sim = SimProcess(
        [
            "--listen",
            f"tcp://127.0.0.1:{port}",
            "--sign-delay",
            "0.05",
            "--key",
            str(tmp_path / "meter.key"),
            "--fault",
            "events=0x40000",
        ]
    )
    try:
        code = main(["meter", "--url", f"tcp://127.0.0.1:{port}", "snapshot", "current"])
        captured = capsys.readouterr()
    finally:
        sim.stop()
    assert code == 3
    assert "meter reports event flags 0x00040000" in captured.err
    assert "must not be used for billing" in captured.err and captured.err.count("\n") == 1
    data = json.loads(captured.out)
    assert data["kind"] == "current" and data["events"] == 0x40000
    assert data["error"]["type"] == "MeterEventsSet" and data["error"]["action"] == "fault"
    assert data["ocmf"].startswith("OCMF|")
    assert main(["verify", data["ocmf"], "--public-key", sim.public_key()]) == 1
    assert "signature valid but not billable" in capsys.readouterr().out


def test_simulator_refuses_a_corrupt_state_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "unit-42.json"
    state.write_text('{"version": 1, "meta": []}')
    args = ["simulate-meter", "--listen", f"tcp://127.0.0.1:{free_port()}"]
    assert main([*args, "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simulate-meter: meter state file ") and str(state) in err
    assert err.count("\n") == 1 and "Traceback" not in err
