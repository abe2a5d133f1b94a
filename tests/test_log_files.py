"""The daemon's own rotating log files (for the diagnostics archive): size-capped, a fixed
number kept; and the firmware settings of the shipped configurations."""

from __future__ import annotations

import logging
from pathlib import Path

from chargepoint.config import load_config
from chargepoint.service.logsetup import add_file_log
from tests.real_vectors import REPO_ROOT


def test_rotating_log_files_are_size_capped(tmp_path: Path) -> None:
    handler = add_file_log(tmp_path / "logs", max_bytes=10_000, backups=2)
    logger = logging.getLogger("chargepoint.test_log_files")
    logger.setLevel(logging.INFO)
    try:
        for n in range(2000):
            logger.info("line %d %s", n, "x" * 40)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["chargepoint.log", "chargepoint.log.1", "chargepoint.log.2"]
    assert all((tmp_path / "logs" / f).stat().st_size <= 10_000 for f in files)
    assert "line 1999" in (tmp_path / "logs" / "chargepoint.log").read_text()


def test_shipped_configs_firmware_settings() -> None:
    simulator = load_config(REPO_ROOT / "config" / "simulator.yaml").config.firmware
    production = load_config(REPO_ROOT / "config" / "bsm-rs485.yaml").config.firmware
    assert simulator.allow_unsigned_update and simulator.install_command == "simulated"
    assert not production.allow_unsigned_update
    assert production.install_command not in ("", "simulated")
