"""Firmware updates and log uploads on the CSMS side, for OCPP 1.6J and 2.0.1 alike.

Each command builds the station's version of the message from version-free arguments and
`call()`s it (both directions schema-checked) and returns the station's answer as on the wire:

- `update_firmware`: 1.6 UpdateFirmware (plain), 1.6 SignedUpdateFirmware (when a signature
  and certificate are given), 2.0.1 UpdateFirmware;
- `get_diagnostics` (1.6 only) and `get_log` (1.6 security extension and 2.0.1);
- `firmware_statuses` / `log_statuses`: what the station reported, in order.
"""

from __future__ import annotations

from typing import Any

from chargepoint.testcsms.commands import Commands

_FIRMWARE_ACTIONS = ("FirmwareStatusNotification", "SignedFirmwareStatusNotification")
_LOG_ACTIONS = ("LogStatusNotification", "DiagnosticsStatusNotification")


def _optional(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class UpdateCommands(Commands):
    async def update_firmware(
        self,
        station_id: str,
        location: str,
        retrieve: str,
        *,
        request_id: int = 1,
        install: str | None = None,
        certificate: str | None = None,
        signature: str | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
        signed16: bool | None = None,
    ) -> dict[str, Any]:
        """UpdateFirmware (1.6 plain unless `signed16` or a signature is given: then
        SignedUpdateFirmware) or 2.0.1 UpdateFirmware."""
        retry = _optional(retries=retries, retryInterval=retry_interval)
        firmware = _optional(
            location=location,
            retrieveDateTime=retrieve,
            installDateTime=install,
            signingCertificate=certificate,
            signature=signature,
        )
        if str(self._info[station_id]["ocpp_version"]) == "2.0.1":
            payload = {"requestId": request_id, "firmware": firmware, **retry}
            return await self.call(station_id, "UpdateFirmware", payload)
        if signed16 if signed16 is not None else signature is not None:
            payload = {"requestId": request_id, "firmware": firmware, **retry}
            return await self.call(station_id, "SignedUpdateFirmware", payload)
        return await self.call(
            station_id, "UpdateFirmware", {"location": location, "retrieveDate": retrieve, **retry}
        )

    async def get_diagnostics(
        self,
        station_id: str,
        location: str,
        *,
        start: str | None = None,
        stop: str | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> dict[str, Any]:
        payload = _optional(
            location=location,
            startTime=start,
            stopTime=stop,
            retries=retries,
            retryInterval=retry_interval,
        )
        return await self.call(station_id, "GetDiagnostics", payload)

    async def get_log(
        self,
        station_id: str,
        location: str,
        *,
        log_type: str = "DiagnosticsLog",
        request_id: int = 1,
        oldest: str | None = None,
        latest: str | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> dict[str, Any]:
        log = _optional(remoteLocation=location, oldestTimestamp=oldest, latestTimestamp=latest)
        payload = {
            "log": log,
            "logType": log_type,
            "requestId": request_id,
            **_optional(retries=retries, retryInterval=retry_interval),
        }
        return await self.call(station_id, "GetLog", payload)

    def firmware_statuses(self, station_id: str, after: int = 0) -> list[str]:
        return [
            str(r.payload["status"])
            for r in self.received[after:]
            if r.station_id == station_id and r.action in _FIRMWARE_ACTIONS
        ]

    def log_statuses(self, station_id: str, after: int = 0) -> list[str]:
        return [
            str(r.payload["status"])
            for r in self.received[after:]
            if r.station_id == station_id and r.action in _LOG_ACTIONS
        ]
