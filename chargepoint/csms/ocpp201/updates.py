"""OCPP 2.0.1 firmware management (block L) and log upload (block N) over the version-free
core (chargepoint.core.firmware, chargepoint.core.diagnostics):

- UpdateFirmware: Accepted, Rejected, AcceptedCanceled (a job not yet installing is
  cancelled), InvalidCertificate (the signing certificate does not chain to an installed
  ManufacturerRootCertificate; security event InvalidFirmwareSigningCertificate). A request
  without signature is a non-secure update (L02), accepted only with
  `firmware.allow_unsigned_update`. FirmwareStatusNotification with the requestId; after the
  installation the station boots with reason FirmwareUpdate.
- GetLog (DiagnosticsLog, SecurityLog): Accepted or AcceptedCanceled and the filename;
  LogStatusNotification with the requestId.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from chargepoint.config import StationConfig
from chargepoint.core.diagnostics import LogUploads
from chargepoint.core.firmware import FirmwareUpdates
from chargepoint.csms.routing import on
from chargepoint.csms.update_messages import firmware_request, request_log

logger = logging.getLogger("chargepoint.ocpp")


class _Adapter(Protocol):
    config: StationConfig
    firmware: FirmwareUpdates | None
    logs: LogUploads | None


class UpdateHandlers201:
    """Mixin for the 2.0.1 StationChargePoint (`self.adapter` is its adapter)."""

    @property
    def _updates_adapter(self) -> _Adapter:
        adapter: _Adapter = self.adapter  # type: ignore[attr-defined]
        return adapter

    @on(Action.update_firmware)
    async def on_update_firmware(
        self,
        request_id: int,
        firmware: dict[str, Any],
        retries: int | None = None,
        retry_interval: int | None = None,
        **_: Any,
    ) -> call_result.UpdateFirmware:
        adapter = self._updates_adapter
        updates = adapter.firmware
        if updates is None:
            return call_result.UpdateFirmware(status="Rejected")
        signed = "signature" in firmware or "signing_certificate" in firmware
        if signed and not ("signature" in firmware and "signing_certificate" in firmware):
            return call_result.UpdateFirmware(status="Rejected")
        if not signed and not adapter.config.firmware.allow_unsigned_update:
            logger.warning("UpdateFirmware without signature refused (non-secure updates disabled)")
            return call_result.UpdateFirmware(
                status="Rejected",
                status_info={"reason_code": "NoSignature"},
            )
        answer = await updates.request(
            firmware_request(firmware, request_id, retries, retry_interval, signed=signed)
        )
        return call_result.UpdateFirmware(status=answer.value)

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


__all__ = ["UpdateHandlers201"]
