"""systemd/chargepoint.service as systemd reads it: `systemd-analyze verify` without a single
warning, `systemd-analyze security` under the exposure threshold, the commands it runs are real
`chargepoint` commands, and the sysusers file creates the service's user."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from chargepoint.cli.main import build_parser
from tests.real_vectors import REPO_ROOT
from tests.tools import require_tool

UNIT = REPO_ROOT / "systemd" / "chargepoint.service"
SYSUSERS = REPO_ROOT / "systemd" / "chargepoint.sysusers"
EXPOSURE_THRESHOLD = 2.0  # systemd-analyze's 0-10 scale: "OK" is below 4.0, "MEDIUM" to 6.9
SYSTEM_UNITS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))


def unit_settings() -> dict[str, list[str]]:
    """Every `Key=value` of the unit, values in order (repeated keys add up)."""
    settings: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)
    return settings


def commands() -> dict[str, list[str]]:
    settings = unit_settings()
    return {key: shlex.split(settings[key][0]) for key in ("ExecStart", "ExecStartPre")}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A file system root with the system's units, this unit, and its executable (verify
    checks that the commands exist)."""
    require_tool("systemd-analyze", "Debian package systemd")
    system = next((p for p in SYSTEM_UNITS if (p / "sysinit.target").exists()), None)
    if system is None:
        pytest.fail("systemd-analyze is there but the system's unit files are not")
    root = tmp_path / "root"
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    for argv in commands().values():
        exe = root / argv[0].lstrip("/")
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_verify_reports_nothing(root: Path) -> None:
    result = analyze("verify", f"--root={root}", UNIT.name)
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), (
        f"systemd-analyze verify complains about {UNIT}:\n{result.stdout}{result.stderr}"
    )


def test_verify_catches_a_broken_unit(root: Path) -> None:
    """The check above can fail: a misspelt option is a warning, a missing binary an error."""
    broken = root / "etc/systemd/system" / UNIT.name
    broken.write_text(broken.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"))
    result = analyze("verify", f"--root={root}", UNIT.name)
    assert "ProtectHomes" in result.stderr
    (root / commands()["ExecStart"][0].lstrip("/")).unlink()
    assert analyze("verify", f"--root={root}", UNIT.name).returncode != 0


def test_security_exposure_is_below_the_threshold(root: Path) -> None:
    threshold = round(EXPOSURE_THRESHOLD * 10)
    result = analyze(
        "security", "--offline=yes", f"--root={root}", f"--threshold={threshold}", UNIT.name
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    exposure = float(match.group(1))
    assert result.returncode == 0 and exposure <= EXPOSURE_THRESHOLD, (
        f"exposure {exposure} over {EXPOSURE_THRESHOLD}:\n{result.stdout}"
    )


def test_the_service_notifies_restarts_and_keeps_its_secrets() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"] and s["WatchdogSec"]
    assert s["Restart"] == ["on-failure"]
    assert s["RestartPreventExitStatus"] == ["78"]  # a broken config is not retried
    assert s["StateDirectory"] == ["chargepoint"]
    assert s["User"] == ["chargepoint"] and s["SupplementaryGroups"] == ["dialout"]
    assert s["DevicePolicy"] == ["closed"]
    assert {v.split()[0] for v in s["DeviceAllow"]} >= {"char-ttyUSB", "char-ttyS", "char-ttyAMA"}
    credential, _, source = s["LoadCredential"][0].partition(":")
    assert credential == "csms-password" and source.startswith("/etc/chargepoint/")
    # what would break the serial line is not there
    assert "PrivateDevices" not in s and "PrivateUsers" not in s


def test_the_unit_runs_real_commands_on_one_config() -> None:
    parser = build_parser()
    found = commands()
    pre = parser.parse_args(found["ExecStartPre"][1:])
    run = parser.parse_args(found["ExecStart"][1:])
    assert pre.command == "check-config" and run.command == "run"
    # a USB adapter that appears late must not keep the service down (exit 78 stops restarts)
    assert pre.no_device_check
    assert pre.config == run.config == Path("/etc/chargepoint/station.yaml")


def test_the_credential_path_the_docs_name_is_where_systemd_puts_it() -> None:
    credential = unit_settings()["LoadCredential"][0].partition(":")[0]
    path = f"/run/credentials/{UNIT.name}/{credential}"
    assert path in UNIT.read_text()
    assert path in (REPO_ROOT / "docs" / "operations.md").read_text()


def test_sysusers_creates_the_service_user(tmp_path: Path) -> None:
    sysusers = require_tool("systemd-sysusers", "Debian package systemd")
    conf = tmp_path / "usr/lib/sysusers.d/chargepoint.conf"
    conf.parent.mkdir(parents=True)
    shutil.copy(SYSUSERS, conf)
    (tmp_path / "etc").mkdir()
    result = subprocess.run(
        [sysusers, f"--root={tmp_path}", conf.name],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc/passwd").read_text().splitlines()
    entry = next(line.split(":") for line in passwd if line.startswith("chargepoint:"))
    assert entry[5] == "/var/lib/chargepoint"
    assert entry[6].endswith("nologin")
    assert "chargepoint:" in (tmp_path / "etc/group").read_text()
