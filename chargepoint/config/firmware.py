"""The `firmware:` and `diagnostics:` sections: how firmware updates are downloaded, checked and
installed, and how the diagnostics archive is built and uploaded."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, StrictBool, StrictFloat, StrictInt

from chargepoint.config.base import ConfigModel

__all__ = ["SIMULATED_INSTALLER", "DiagnosticsConfig", "FirmwareConfig"]

SIMULATED_INSTALLER = "simulated"


class FirmwareConfig(ConfigModel):
    """Firmware updates requested by the CSMS (1.6 UpdateFirmware / SignedUpdateFirmware,
    2.0.1 UpdateFirmware)."""

    allow_unsigned_update: StrictBool = Field(
        default=False,
        description="accept OCPP 1.6's plain UpdateFirmware (no signature). `false`: the "
        "station answers it with CALLERROR NotSupported and starts nothing, as the 1.6 "
        "security whitepaper asks of a station with secure firmware update; only "
        "SignedUpdateFirmware is accepted",
    )
    install_command: str = Field(
        default="",
        description="the installer: run with the downloaded file's path as its last argument; "
        "exit code 0 is Installed, anything else InstallationFailed; the daemon then exits so "
        "that systemd restarts it on the new firmware. `simulated`: keep the file under the "
        "state directory, record its name as the new firmware version and restart the CSMS "
        "session as a reboot would (no hardware). Empty: every installation fails",
    )
    install_timeout: StrictFloat = Field(
        default=600.0, gt=0, description="seconds the installer may run before it is killed"
    )
    max_download_bytes: StrictInt = Field(
        default=256 * 1024 * 1024, gt=0, description="a larger firmware file is DownloadFailed"
    )
    transfer_timeout: StrictFloat = Field(
        default=60.0,
        gt=0,
        description="seconds a download may go without receiving a byte before the attempt "
        "fails (then it is retried as the CSMS asked)",
    )
    default_retries: StrictInt = Field(
        default=3, ge=0, description="retries of a download when the CSMS names none"
    )
    default_retry_interval: StrictFloat = Field(
        default=60.0,
        ge=0,
        description="seconds between download attempts when the CSMS names no interval",
    )
    idle_timeout: StrictFloat = Field(
        default=24 * 3600.0,
        gt=0,
        description="seconds the installation waits for open sessions to end before it fails "
        "(sessions are never cut: connectors are Unavailable for new ones meanwhile)",
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of extra CAs trusted for https download and upload servers "
        "(besides the system's)",
    )


class DiagnosticsConfig(ConfigModel):
    """The daemon's own log files and the diagnostics/log archive uploaded on request
    (1.6 GetDiagnostics / GetLog, 2.0.1 GetLog)."""

    log_file_bytes: StrictInt = Field(
        default=1_000_000,
        ge=10_000,
        description="size of each rotating log file under `<state_dir>/logs/` (besides the "
        "journal); they go into the diagnostics archive",
    )
    log_files: StrictInt = Field(
        default=5, ge=1, description="rotated log files kept (the oldest is deleted)"
    )
    retries: StrictInt = Field(
        default=3, ge=0, description="upload retries when the CSMS names none"
    )
    retry_interval: StrictFloat = Field(
        default=30.0, ge=0, description="seconds between upload attempts when the CSMS names none"
    )
    transfer_timeout: StrictFloat = Field(
        default=60.0, gt=0, description="seconds an upload may stall before the attempt fails"
    )
