"""`chargepoint status` on a store it cannot read says so in one line, with no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.station_harness import station_yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


def status(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chargepoint", "status", "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty (0 bytes)"),
        (b"\x13\x37" * 2000, "is not an SQLite database"),
    ],
    ids=["empty", "corrupt"],
)
def test_status_on_an_unreadable_store(tmp_path: Path, content: bytes, reason: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    store = state / "chargepoint.sqlite"
    store.write_bytes(content)
    config = station_yaml(tmp_path / "station.yaml", "ws://127.0.0.1:9/ocpp", state)
    done = status(config)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"store unreadable: {store}: {reason}"), done.stderr
    assert store.read_bytes() == content  # left exactly as it was


@pytest.mark.parametrize(
    "command",
    [["run"], ["status"], ["transactions", "list"], ["control", "plug", "1"]],
    ids=["run", "status", "transactions", "control"],
)
def test_a_state_dir_that_is_a_file_is_one_line_and_exit_78(
    tmp_path: Path, command: list[str]
) -> None:
    state = tmp_path / "state"
    state.write_text("not a directory\n")
    config = station_yaml(tmp_path / "station.yaml", "ws://127.0.0.1:9/ocpp", state)
    done = subprocess.run(
        [sys.executable, "-m", "chargepoint", *command, "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 78, done.stderr
    assert done.stderr == f"state directory {state}: not a directory\n"
    assert state.read_text() == "not a directory\n"
