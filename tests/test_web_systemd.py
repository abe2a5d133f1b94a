"""systemd/chargepoint-web.service as systemd reads it: `systemd-analyze verify` without a
warning, `systemd-analyze security` under the same exposure threshold as the daemon's unit,
real `chargepoint` commands, and no way to the serial line or to writing the store."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from chargepoint.cli.main import build_parser
from tests.real_vectors import REPO_ROOT
from tests.test_systemd_unit import EXPOSURE_THRESHOLD, SYSTEM_UNITS
from tests.tools import require_tool

UNIT = REPO_ROOT / "systemd" / "chargepoint-web.service"


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@pytest.fixture
def root(tmp_path: Path) -> Path:
    require_tool("systemd-analyze", "Debian package systemd")
    system = next((p for p in SYSTEM_UNITS if (p / "sysinit.target").exists()), None)
    if system is None:
        pytest.fail("systemd-analyze is there but the system's unit files are not")
    root = tmp_path / "root"
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    exe = root / shlex.split(settings()["ExecStart"][0])[0].lstrip("/")
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
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def test_security_exposure_is_below_the_threshold(root: Path) -> None:
    result = analyze("security", "--offline=yes", f"--root={root}", UNIT.name)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= EXPOSURE_THRESHOLD, result.stdout


def test_it_runs_the_web_command_without_devices_or_write_access() -> None:
    s = settings()
    parser = build_parser()
    pre = parser.parse_args(shlex.split(s["ExecStartPre"][0])[1:])
    run = parser.parse_args(shlex.split(s["ExecStart"][0])[1:])
    assert pre.command == "check-config" and run.command == "web"
    assert pre.config == run.config == Path("/etc/chargepoint/station.yaml")
    assert s["RestartPreventExitStatus"] == ["78"]
    assert s["User"] == ["chargepoint"] and "SupplementaryGroups" not in s  # no dialout
    assert s["PrivateDevices"] == ["yes"] and "DeviceAllow" not in s
    assert s["ProtectSystem"] == ["strict"] and "ReadWritePaths" not in s
    assert "StateDirectory" not in s  # the daemon's; this one only reads it
    credential = s["LoadCredential"][0].partition(":")[0]
    assert f"/run/credentials/{UNIT.name}/{credential}" in UNIT.read_text()
