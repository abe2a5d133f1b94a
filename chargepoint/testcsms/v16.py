"""OCPP 1.6J: the answers the test CSMS gives to the CALLs a station sends.

StartTransaction gets a fresh transactionId from one counter starting at 1; a repeat with the
same connectorId, idTag, meterStart and timestamp (a resend after a lost answer) gets the same id
again (see `Transactions._start_transaction`). An idTag is Accepted when `accept_id_tags` is None
or holds it exactly, otherwise Invalid.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ocpp.v16 import ChargePoint as _ChargePoint16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import call_result as result16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import datatypes as datatypes16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16.enums import Action as Action16  # type: ignore[import-untyped, unused-ignore]

from chargepoint.testcsms.ocppj import SUBPROTOCOL_16, on, utc_now_text
from chargepoint.testcsms.session import Session


def id_tag_status(accept_id_tags: set[str] | None, id_tag: str) -> str:
    if accept_id_tags is None or id_tag in accept_id_tags:
        return "Accepted"
    return "Invalid"


class Ocpp16Session(Session, _ChargePoint16):  # type: ignore[misc, unused-ignore]
    """OCPP 1.6J: the answers a CSMS gives to the station-initiated CALLs."""

    subprotocol = SUBPROTOCOL_16
    error_code_map: ClassVar[dict[str, str]] = {"FormatViolation": "FormationViolation"}

    def _id_tag_info(self, id_tag: str) -> Any:
        answer = self.csms._tag_answer(id_tag)  # tag_answers (authorization.py) first
        if answer is not None:
            status, parent, expiry = answer
            return datatypes16.IdTagInfo(status=status, parent_id_tag=parent, expiry_date=expiry)
        return datatypes16.IdTagInfo(status=id_tag_status(self.csms.accept_id_tags, id_tag))

    @on(Action16.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return result16.BootNotification(
            current_time=utc_now_text(),
            interval=int(self.csms.heartbeat_interval),
            status=self.csms.boot_status,
        )

    @on(Action16.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return result16.Heartbeat(current_time=utc_now_text())

    @on(Action16.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return result16.Authorize(id_tag_info=self._id_tag_info(id_tag))

    @on(Action16.start_transaction)
    def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        call_unique_id: str,
        **_: Any,
    ) -> Any:
        transaction_id = self.csms._start_transaction(
            self.station_id, str(call_unique_id), (connector_id, id_tag, meter_start, timestamp)
        )
        return result16.StartTransaction(
            transaction_id=transaction_id, id_tag_info=self._id_tag_info(id_tag)
        )

    @on(Action16.stop_transaction)
    def on_stop_transaction(self, id_tag: str | None = None, **_: Any) -> Any:
        if id_tag is None:
            return result16.StopTransaction()
        return result16.StopTransaction(id_tag_info=self._id_tag_info(id_tag))

    @on(Action16.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return result16.MeterValues()

    @on(Action16.status_notification)
    def on_status_notification(self, **_: Any) -> Any:
        return result16.StatusNotification()

    @on(Action16.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return result16.DataTransfer(status="Accepted")

    @on(Action16.diagnostics_status_notification)
    def on_diagnostics_status_notification(self, **_: Any) -> Any:
        return result16.DiagnosticsStatusNotification()

    @on(Action16.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any) -> Any:
        return result16.FirmwareStatusNotification()

    # Security extension (OCPP 1.6 security whitepaper), answered so a station may use them.
    @on(Action16.security_event_notification)
    def on_security_event_notification(self, **_: Any) -> Any:
        return result16.SecurityEventNotification()

    @on(Action16.log_status_notification)
    def on_log_status_notification(self, **_: Any) -> Any:
        return result16.LogStatusNotification()

    @on(Action16.signed_firmware_status_notification)
    def on_signed_firmware_status_notification(self, **_: Any) -> Any:
        return result16.SignedFirmwareStatusNotification()

    @on(Action16.sign_certificate)
    def on_sign_certificate(self, **_: Any) -> Any:
        return result16.SignCertificate(status="Accepted")
