"""OCPP 2.0.1: the answers the test CSMS gives to the CALLs a station sends.

The station names its transactions (`transactionInfo.transactionId`, a string), so the CSMS
assigns nothing. Id tokens are checked against `accept_id_tags` case-insensitively (the 2.0.1
spec says IdToken is case insensitive); a token of type "NoAuthorization" is always Accepted.
"""

from __future__ import annotations

from typing import Any

from ocpp.v201 import ChargePoint as _ChargePoint201  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as result201  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import datatypes as datatypes201  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201.enums import Action as Action201  # type: ignore[import-untyped, unused-ignore]

from chargepoint.testcsms.ocppj import SUBPROTOCOL_201, on, utc_now_text
from chargepoint.testcsms.session import Session


def id_token_status(accept_id_tags: set[str] | None, id_token: str, token_type: str) -> str:
    """OCPP 2.0.1: IdToken is case insensitive; NoAuthorization carries an empty token."""
    if accept_id_tags is None or token_type == "NoAuthorization":
        return "Accepted"
    wanted = id_token.casefold()
    if any(tag.casefold() == wanted for tag in accept_id_tags):
        return "Accepted"
    return "Invalid"


class Ocpp201Session(Session, _ChargePoint201):  # type: ignore[misc, unused-ignore]
    """OCPP 2.0.1: the answers a CSMS gives to the station-initiated CALLs.

    The library hands the payload over with snake_case keys, nested objects as dicts (so an
    idToken arrives as {"id_token": ..., "type": ...}). Error codes are the library's, which
    are 2.0.1's ("FormatViolation", "OccurrenceConstraintViolation", ...).
    """

    subprotocol = SUBPROTOCOL_201

    def _id_token_info(self, id_token: dict[str, Any]) -> Any:
        answer = self.csms._tag_answer(str(id_token.get("id_token", "")))
        if answer is not None:  # tag_answers (authorization.py) first
            status_, group, expiry = answer
            return datatypes201.IdTokenInfoType(
                status=status_,
                group_id_token=datatypes201.IdTokenType(id_token=group, type="Central")
                if group
                else None,
                cache_expiry_date_time=expiry,
            )
        status = id_token_status(
            self.csms.accept_id_tags,
            str(id_token.get("id_token", "")),
            str(id_token.get("type", "")),
        )
        return datatypes201.IdTokenInfoType(status=status)

    @on(Action201.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return result201.BootNotification(
            current_time=utc_now_text(),
            interval=int(self.csms.heartbeat_interval),
            status=self.csms.boot_status,
        )

    @on(Action201.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return result201.Heartbeat(current_time=utc_now_text())

    @on(Action201.status_notification)
    def on_status_notification(self, **_: Any) -> Any:
        return result201.StatusNotification()

    @on(Action201.notify_report)
    def on_notify_report(self, **_: Any) -> Any:
        return result201.NotifyReport()

    @on(Action201.notify_event)
    def on_notify_event(self, **_: Any) -> Any:
        return result201.NotifyEvent()

    @on(Action201.notify_monitoring_report)
    def on_notify_monitoring_report(self, **_: Any) -> Any:
        return result201.NotifyMonitoringReport()

    @on(Action201.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        return result201.Authorize(id_token_info=self._id_token_info(id_token))

    @on(Action201.transaction_event)
    def on_transaction_event(self, id_token: dict[str, Any] | None = None, **_: Any) -> Any:
        # idTokenInfo is required in the answer when the request carried an idToken.
        if id_token is None:
            return result201.TransactionEvent()
        return result201.TransactionEvent(id_token_info=self._id_token_info(id_token))

    @on(Action201.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return result201.MeterValues()

    @on(Action201.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return result201.DataTransfer(status="Accepted")

    @on(Action201.security_event_notification)
    def on_security_event_notification(self, **_: Any) -> Any:
        return result201.SecurityEventNotification()

    @on(Action201.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any) -> Any:
        return result201.FirmwareStatusNotification()

    @on(Action201.log_status_notification)
    def on_log_status_notification(self, **_: Any) -> Any:
        return result201.LogStatusNotification()

    @on(Action201.sign_certificate)
    def on_sign_certificate(self, **_: Any) -> Any:
        return result201.SignCertificate(status="Accepted")

    @on(Action201.reservation_status_update)
    def on_reservation_status_update(self, **_: Any) -> Any:
        return result201.ReservationStatusUpdate()

    @on(Action201.notify_charging_limit)
    def on_notify_charging_limit(self, **_: Any) -> Any:
        return result201.NotifyChargingLimit()

    @on(Action201.cleared_charging_limit)
    def on_cleared_charging_limit(self, **_: Any) -> Any:
        return result201.ClearedChargingLimit()

    @on(Action201.report_charging_profiles)
    def on_report_charging_profiles(self, **_: Any) -> Any:
        return result201.ReportChargingProfiles()

    @on(Action201.notify_customer_information)
    def on_notify_customer_information(self, **_: Any) -> Any:
        return result201.NotifyCustomerInformation()

    @on(Action201.notify_display_messages)
    def on_notify_display_messages(self, **_: Any) -> Any:
        return result201.NotifyDisplayMessages()
