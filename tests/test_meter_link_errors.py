"""A meter bus that cannot be opened says why, in words a person can act on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meter.errors import Action, MeterConnectionError
from meter.modbus.bus import ModbusBus
from meter.modbus.link import serial_device_problem
from meter.modbus.loopback import free_port


async def test_missing_serial_device_names_the_device_and_what_to_check(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    bus = ModbusBus.from_url(f"serial://{device}", request_timeout=0.5)
    with pytest.raises(MeterConnectionError) as err:
        await bus.read(42, 40000, 2)
    assert str(err.value) == f"no such device {device} (check the cable / udev name)"
    assert err.value.action is Action.RETRY  # it may appear (USB adapter plugged in later)


async def test_a_regular_file_is_not_a_serial_device(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    device.write_text("")
    bus = ModbusBus.from_url(f"serial://{device}", request_timeout=0.5)
    with pytest.raises(MeterConnectionError, match="is not a serial device"):
        await bus.read(42, 40000, 2)


def test_character_devices_and_pyserial_urls_pass() -> None:
    assert serial_device_problem("/dev/null") is None  # a character device we may open
    assert serial_device_problem("socket://127.0.0.1:5020") is None  # not a file at all


def test_meter_command_says_what_is_wrong_without_library_noise(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    done = subprocess.run(
        [sys.executable, "-m", "chargepoint", "meter", "--url", f"serial://{device}", "info"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr == f"meter: no such device {device} (check the cable / udev name)\n"


def test_unreachable_gateway_names_the_cause() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chargepoint",
            "meter",
            "--url",
            f"tcp://127.0.0.1:{free_port()}",
            "info",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "pymodbus" not in done.stderr  # the library's own lines only with -vv
    assert "connection refused or no answer" in done.stderr
    assert "what to do" not in done.stderr
