"""OCPP 1.6 firmware management and diagnostics over the version-free core
(chargepoint.core.firmware, chargepoint.core.diagnostics):

- UpdateFirmware (plain, unsigned): accepted only with `firmware.allow_unsigned_update`;
  otherwise CALLERROR NotSupported and nothing starts (1.6 security whitepaper: a station with
  secure firmware update refuses it). FirmwareStatusNotification Downloading, Downloaded,
  Installing, Installed, DownloadFailed, InstallationFailed.
- SignedUpdateFirmware (security extension): Accepted, Rejected, AcceptedCanceled,
  InvalidCertificate; SignedFirmwareStatusNotification with the requestId.
- GetDiagnostics: the archive's fileName; DiagnosticsStatusNotification Uploading, Uploaded,
  UploadFailed.
- GetLog (security extension, DiagnosticsLog and SecurityLog): Accepted or AcceptedCanceled
  and the filename; LogStatusNotification with the requestId.

The statuses travel through the durable outbox (chargepoint.csms.update_messages).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ocpp.exceptions import NotSupportedError
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from chargepoint.config import StationConfig
from chargepoint.core.diagnostics import LogRequest, LogUploads
from chargepoint.core.firmware import FirmwareRequest, FirmwareUpdates
from chargepoint.csms.routing import on
from chargepoint.csms.update_messages import firmware_request, request_log

logger = logging.getLogger("chargepoint.ocpp")


class _Adapter(Protocol):
    config: StationConfig
    firmware: FirmwareUpdates | None
    logs: LogUploads | None


class UpdateHandlers16:
    """Mixin for the 1.6 StationChargePoint (`self.adapter` is its adapter)."""

    @property
    def _updates_adapter(self) -> _Adapter:
        adapter: _Adapter = self.adapter  # type: ignore[attr-defined]
        return adapter

    @on(Action.update_firmware)
    async def on_update_firmware(
        self,
        location: str,
        retrieve_date: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.UpdateFirmware:
        adapter = self._updates_adapter
        firmware = adapter.firmware
        if firmware is None or not adapter.config.firmware.allow_unsigned_update:
            logger.warning("unsigned UpdateFirmware refused: only SignedUpdateFirmware is accepted")
            raise NotSupportedError(
                details={
                    "cause": "unsigned firmware updates are disabled; use SignedUpdateFirmware"
                }
            )
        answer = await firmware.request(
            FirmwareRequest(
                location=location,
                retrieve_at=retrieve_date,
                retries=retries,
                retry_interval=retry_interval,
                legacy=True,
            )
        )
        if answer.value == "Rejected":  # 1.6 has no way to say so: the running job goes on
            logger.warning("UpdateFirmware ignored: the running update is installing")
        return call_result.UpdateFirmware()

    @on(Action.signed_update_firmware)
    async def on_signed_update_firmware(
        self,
        request_id: int,
        firmware: dict[str, Any],
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.SignedUpdateFirmware:
        updates = self._updates_adapter.firmware
        if updates is None:
            return call_result.SignedUpdateFirmware(status="Rejected")
        answer = await updates.request(
            firmware_request(firmware, request_id, retries, retry_interval, signed=True)
        )
        return call_result.SignedUpdateFirmware(status=answer.value)

    @on(Action.get_diagnostics)
    async def on_get_diagnostics(
        self,
        location: str,
        retries: int | None = None,
        retry_interval: int | None = None,
        start_time: str | None = None,
        stop_time: str | None = None,
        **_: Any,
    ) -> call_result.GetDiagnostics:
        logs = self._updates_adapter.logs
        if logs is None:
            return call_result.GetDiagnostics()
        _cancelled, name = await logs.request(
            LogRequest(
                location=location,
                oldest=start_time,
                latest=stop_time,
                retries=retries,
                retry_interval=retry_interval,
                diagnostics=True,
            )
        )
        return call_result.GetDiagnostics(file_name=name)

    @on(Action.get_log)
    async def on_get_log(
        self,
        log: dict[str, Any],
        log_type: str,
        request_id: int,
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.GetLog:
        status, name = await request_log(
            self._updates_adapter.logs, log, log_type, request_id, retries, retry_interval
        )
        return call_result.GetLog(status=status, filename=name)


__all__ = ["UpdateHandlers16"]
