"""Outbox messages of firmware and log jobs (chargepoint.core.firmware / diagnostics) as the
CSMS's version spells them: 1.6 FirmwareStatusNotification (plain UpdateFirmware),
SignedFirmwareStatusNotification, DiagnosticsStatusNotification and LogStatusNotification;
2.0.1 FirmwareStatusNotification and LogStatusNotification; and the requests both versions
spell alike (the firmware object of SignedUpdateFirmware / UpdateFirmware, GetLog)."""

from __future__ import annotations

from typing import Any, Final

from chargepoint.core.diagnostics import LOG_KIND, LogRequest, LogType, LogUploads
from chargepoint.core.firmware import (
    FIRMWARE_KIND,
    PLAIN_STATUSES,
    FirmwareRequest,
    FirmwareStatus,
    FirmwareUpdates,
)

UPDATE_KINDS: Final = frozenset({FIRMWARE_KIND, LOG_KIND})
_DIAGNOSTICS_16: Final = {"Uploading": "Uploading", "Uploaded": "Uploaded", "Idle": "Idle"}


def update_message(kind: str, data: dict[str, Any], version: str) -> tuple[str, dict[str, Any]]:
    """(action, payload) of an outbox message of a kind in UPDATE_KINDS."""
    status = str(data["status"])
    request_id = int(data.get("request_id") or 0)
    if kind == FIRMWARE_KIND:
        if version == "1.6" and data.get("legacy"):
            return "FirmwareStatusNotification", {"status": status}
        action = (
            "SignedFirmwareStatusNotification"
            if version == "1.6"
            else ("FirmwareStatusNotification")
        )
        return action, {"status": status, "requestId": request_id}
    if version == "1.6" and data.get("diagnostics"):
        return "DiagnosticsStatusNotification", {
            "status": _DIAGNOSTICS_16.get(status, "UploadFailed")
        }
    return "LogStatusNotification", {"status": status, "requestId": request_id}


def firmware_trigger(firmware: FirmwareUpdates | None, version: str) -> tuple[str, dict[str, Any]]:
    """TriggerMessage FirmwareStatusNotification: Idle, or the running job's last status."""
    job = firmware.job if firmware is not None else None
    status = firmware.current_status() if firmware is not None else FirmwareStatus.IDLE
    if job is None or status is FirmwareStatus.IDLE:
        return "FirmwareStatusNotification", {"status": "Idle"}
    data = {"status": status.value, "request_id": job.request.request_id, "legacy": False}
    if version == "1.6" and job.request.legacy:
        shown = status if status in PLAIN_STATUSES else FirmwareStatus.INSTALLING
        data = {"status": shown.value, "legacy": True}
    return update_message(FIRMWARE_KIND, data, version)


def log_trigger(
    logs: LogUploads | None, version: str, diagnostics: bool
) -> tuple[str, dict[str, Any]]:
    """TriggerMessage DiagnosticsStatusNotification (1.6) / LogStatusNotification: Uploading
    while a job of that kind runs, else Idle."""
    current = logs.current if logs is not None and logs.busy() else None
    if current is None or current.diagnostics != diagnostics:
        action = "DiagnosticsStatusNotification" if diagnostics else "LogStatusNotification"
        return action, {"status": "Idle"}
    data = {"status": "Uploading", "request_id": current.request_id, "diagnostics": diagnostics}
    return update_message(LOG_KIND, data, version)


def firmware_request(
    firmware: dict[str, Any],
    request_id: int,
    retries: int | None,
    retry_interval: int | None,
    *,
    signed: bool,
) -> FirmwareRequest:
    """The job of a 1.6 SignedUpdateFirmware / 2.0.1 UpdateFirmware (`firmware`: FirmwareType)."""
    return FirmwareRequest(
        location=firmware["location"],
        retrieve_at=firmware["retrieve_date_time"],
        install_at=firmware.get("install_date_time"),
        signing_certificate=firmware.get("signing_certificate"),
        signature=firmware.get("signature"),
        request_id=request_id,
        retries=retries,
        retry_interval=retry_interval,
        signed=signed,
    )


async def request_log(
    logs: LogUploads | None,
    log: dict[str, Any],
    log_type: str,
    request_id: int,
    retries: int | None,
    retry_interval: int | None,
) -> tuple[str, str | None]:
    """GetLog (1.6 security extension and 2.0.1 alike): (status, filename); Rejected without
    log uploads, AcceptedCanceled when a running job was cancelled for this one."""
    if logs is None:
        return "Rejected", None
    cancelled, name = await logs.request(
        LogRequest(
            location=log["remote_location"],
            log_type=LogType(log_type),
            request_id=request_id,
            oldest=log.get("oldest_timestamp"),
            latest=log.get("latest_timestamp"),
            retries=retries,
            retry_interval=retry_interval,
        )
    )
    return ("AcceptedCanceled" if cancelled else "Accepted"), name
