"""`chargepoint check-config` and the other daemon commands as a new user meets them: overrides
from the command line count before the file is judged, and check-config names a state
directory that cannot be used and a serial device that is not there."""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path

import pytest

from chargepoint.cli import run as run_commands
from chargepoint.cli.config_commands import (
    StateDirError,
    add_check_config_parser,
    prepare_state_dir,
    report_state_dir_error,
)
from chargepoint.cli.main import main
from chargepoint.config import EXIT_CONFIG, load_config
from tests.real_vectors import REPO_ROOT

SECRET = "correct-horse-battery-staple-42"

# security profile 2 in the file, but a ws:// URL (a lab CSMS): valid only with --csms-url wss://
PROFILE_2_LAB = f"""\
station:
  id: CP-1
csms:
  url: ws://127.0.0.1:9000/ocpp
  security_profile: 2
  password: {SECRET}
meter_buses:
  - name: sim
    url: simulator
simulator: {{}}
connectors:
  - id: 1
    evse_id: DE*XYZ*E0001*1
    meter:
      bus: sim
store:
  state_dir: state
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def check_config(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargepoint")
    add_check_config_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check-config", *argv])
    code: int = args.func(args)
    return code


# --- overrides count before validation -------------------------------------------------------


def test_check_config_validates_the_file_with_the_csms_url_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, PROFILE_2_LAB)
    assert check_config(["--config", str(path)]) == EXIT_CONFIG
    assert "security profile 2 needs a wss:// URL" in capsys.readouterr().err
    assert check_config(["--config", str(path), "--csms-url", "wss://csms.example.com/ocpp"]) == 0
    out, err = capsys.readouterr()
    assert out == f"config OK: {path}\n"
    assert "wss://" not in err


def test_run_status_and_control_load_the_file_with_the_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, PROFILE_2_LAB)
    parser = argparse.ArgumentParser(prog="chargepoint")
    sub = parser.add_subparsers(dest="command", required=True)
    run_commands.add_run_parsers(sub)
    args = parser.parse_args(
        [
            "run",
            "--config",
            str(path),
            "--csms-url",
            "wss://csms.example.com/ocpp",
            "--ocpp-version",
            "2.0.1",
            "--state-dir",
            str(tmp_path / "st"),
        ]
    )
    cfg = run_commands.load(args).config
    assert cfg.csms.url == "wss://csms.example.com/ocpp"
    assert cfg.csms.ocpp_version == "2.0.1"
    assert cfg.store.state_dir == tmp_path / "st"


def test_ocpp_version_override_replaces_a_bad_value_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PROFILE_2_LAB.replace("  security_profile: 2\n", '  ocpp_version: "1.5"\n').replace(
        f"  password: {SECRET}\n", ""
    )
    path = write(tmp_path, text)
    assert check_config(["--config", str(path)]) == EXIT_CONFIG
    assert "csms.ocpp_version" in capsys.readouterr().err
    assert check_config(["--config", str(path), "--ocpp-version", "2.0.1"]) == 0


def test_a_bad_override_is_named_as_the_command_line_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the file's own problems keep their lines; the override's has none: it is not in the file
    text = PROFILE_2_LAB.replace("  id: CP-1\n", "  id: CP-1\n  colour: blue\n").replace(
        "ws://127.0.0.1", "wss://127.0.0.1"
    )
    path = write(tmp_path, text)
    argv = ["--config", str(path), "--csms-url", "ws://127.0.0.1:9000/ocpp"]
    assert check_config(argv) == EXIT_CONFIG
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:3: station.colour: unknown key 'colour' (known keys: id, vendor, model, serial)",
        f"{path}: csms.url: security profile 2 needs a wss:// URL (TLS) "
        "(value given on the command line)",
    ]


def test_a_warning_about_an_override_names_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, PROFILE_2_LAB.replace("security_profile: 2", "security_profile: 1"))
    assert load_config(path).warnings == []  # the file alone: nothing to warn about
    parser = argparse.ArgumentParser()
    run_commands.add_common_options(parser)
    parser.add_argument("--csms-url")
    args = parser.parse_args(
        ["--config", str(path), "--csms-url", "ws://csms.example.com/ocpp/CP-1"]
    )
    warnings = run_commands.load(args).warnings
    assert (
        f"{path}: csms.url: ends with the station id, which is appended again: give the URL "
        "without it (value given on the command line)" in warnings
    )


# --- the state directory ---------------------------------------------------------------------


def test_check_config_creates_the_state_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, PROFILE_2_LAB.replace("ws://", "wss://"))
    assert check_config(["--config", str(path)]) == 0
    assert (tmp_path / "state").is_dir()
    deep = tmp_path / "a" / "b" / "state"
    assert check_config(["--config", str(path), "--state-dir", str(deep)]) == 0
    assert deep.is_dir()


def test_state_directory_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PROFILE_2_LAB.replace("ws://", "wss://"))
    (tmp_path / "state").write_text("not a directory\n")
    assert check_config(["--config", str(path)]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"state directory {tmp_path / 'state'}: not a directory\n"


def test_state_directory_below_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PROFILE_2_LAB.replace("ws://", "wss://"))
    (tmp_path / "file").write_text("x")
    state = tmp_path / "file" / "state"
    assert check_config(["--config", str(path), "--state-dir", str(state)]) == EXIT_CONFIG
    assert capsys.readouterr().err == f"state directory {state}: not a directory\n"


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
    ],
)
def test_state_directory_that_cannot_be_created(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: OSError,
    cause: str,
) -> None:
    def refuse(
        self: Path, mode: int = 0o777, parents: bool = False, exist_ok: bool = False
    ) -> None:
        raise error

    monkeypatch.setattr(Path, "mkdir", refuse)
    state = tmp_path / "state"
    with pytest.raises(StateDirError) as info:
        prepare_state_dir(state)
    assert str(info.value) == f"state directory {state}: {cause}"
    assert (info.value.path, info.value.cause) == (state, cause)
    assert report_state_dir_error(info.value) == EXIT_CONFIG == 78
    assert capsys.readouterr().err == f"state directory {state}: {cause}\n"
    path = write(tmp_path, PROFILE_2_LAB.replace("ws://", "wss://"))
    assert check_config(["--config", str(path)]) == EXIT_CONFIG
    assert capsys.readouterr().err == f"state directory {state}: {cause}\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_state_directory_without_write_permission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(StateDirError, match="permission denied"):
            prepare_state_dir(locked / "state")
        with pytest.raises(StateDirError, match="permission denied"):
            prepare_state_dir(locked)
    finally:
        locked.chmod(0o700)


def test_prepare_state_dir_returns_the_directory(tmp_path: Path) -> None:
    assert prepare_state_dir(tmp_path / "x" / "y") == tmp_path / "x" / "y"
    assert prepare_state_dir(tmp_path / "x" / "y") == tmp_path / "x" / "y"  # again: fine
    assert (tmp_path / "x" / "y").is_dir()


# --- serial devices --------------------------------------------------------------------------

SERIAL = PROFILE_2_LAB.replace("ws://", "wss://").replace(
    "    url: simulator\nsimulator: {}\n", "    url: serial://{device}?baudrate=19200&parity=E\n"
)


def test_missing_serial_device_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = tmp_path / "ttyUSB9"
    path = write(tmp_path, SERIAL.replace("{device}", str(device)))
    assert check_config(["--config", str(path)]) == EXIT_CONFIG
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        f"{path}:9: meter_buses[0].url: no such device {device} (check the cable / udev name)"
        in err.splitlines()
    )


def test_the_start_check_of_the_service_can_skip_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # systemd runs check-config before each start, and exit 78 prevents restarts: a USB
    # adapter that shows up late must not keep the daemon down for good
    device = tmp_path / "ttyUSB9"
    path = write(tmp_path, SERIAL.replace("{device}", str(device)))
    assert check_config(["--config", str(path), "--no-device-check"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("config OK")


def test_serial_device_that_is_no_character_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = tmp_path / "ttyUSB0"
    device.write_text("")
    path = write(tmp_path, SERIAL.replace("{device}", str(device)))
    assert check_config(["--config", str(path)]) == EXIT_CONFIG
    assert (
        f"{path}:9: meter_buses[0].url: {device} is not a serial device (not a character device)"
        in capsys.readouterr().err.splitlines()
    )


def test_character_device_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, SERIAL.replace("{device}", "/dev/null"))
    assert check_config(["--config", str(path)]) == 0
    assert capsys.readouterr().out == f"config OK: {path}\n"


def test_every_host_problem_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    device = tmp_path / "ttyUSB9"
    path = write(tmp_path, SERIAL.replace("{device}", str(device)))
    (tmp_path / "state").write_text("")
    assert check_config(["--config", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err.splitlines()
    assert f"state directory {tmp_path / 'state'}: not a directory" in err
    assert any(f"meter_buses[0].url: no such device {device}" in line for line in err)


@pytest.mark.skipif(Path("/dev/ttyUSB0").exists(), reason="this machine has /dev/ttyUSB0")
def test_the_rs485_example_on_a_machine_without_the_adapter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = REPO_ROOT / "config" / "bsm-rs485.yaml"
    code = main(["check-config", "--config", str(path), "--state-dir", str(tmp_path)])
    assert code == EXIT_CONFIG
    err = capsys.readouterr().err.splitlines()
    assert any(
        line.startswith(f"{path}:")
        and line.endswith(
            "meter_buses[0].url: no such device /dev/ttyUSB0 (check the cable / udev name)"
        )
        for line in err
    ), err


def test_network_and_simulated_buses_are_not_checked_for_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SERIAL.replace("serial://{device}?baudrate=19200&parity=E", "tcp://192.0.2.1:502")
    assert check_config(["--config", str(write(tmp_path, text))]) == 0
