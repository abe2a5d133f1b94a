"""OCPP 1.6J adapter over the version-free core: connection, boot, handlers, outbox sender."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, unpack
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as LibChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chargepoint.config import StationConfig
from chargepoint.core import events
from chargepoint.core.auth import Authorizer, AuthStatus, IdTagInfo
from chargepoint.core.diagnostics import LogUploads
from chargepoint.core.firmware import FirmwareUpdates, reported_version
from chargepoint.core.security import StationSecurity
from chargepoint.core.security_events import SecurityEventType
from chargepoint.core.settings import SetResult, Settings
from chargepoint.core.station import Station
from chargepoint.core.status import StatusReport
from chargepoint.core.tasks import cancel_and_wait
from chargepoint.core.transaction import StopReason
from chargepoint.csms.ocpp16 import messages as m
from chargepoint.csms.ocpp16.authorization import AuthorizationHandlers16
from chargepoint.csms.ocpp16.security import SecurityHandlers16, attach_security
from chargepoint.csms.ocpp16.smart_charging import (
    SmartChargingHandlers16,
    attach_smart_charging,
    remote_start_profile,
)
from chargepoint.csms.ocpp16.updates import UpdateHandlers16
from chargepoint.csms.secured_link import OUTBOX_KIND, open_secured, security_event_message
from chargepoint.csms.session import (
    CSMS_FRAME,
    CsmsCallError,
    CsmsSessionLoop,
    clip,
    library_logger,
    limit_frame_lines,
    message_id_of,
)
from chargepoint.csms.transaction_flags import TransactionFlags
from chargepoint.csms.update_messages import (
    UPDATE_KINDS,
    firmware_trigger,
    log_trigger,
    update_message,
)
from chargepoint.store import AsyncStore, OutboxMessage, utc_now

log = logging.getLogger("chargepoint.ocpp")
SUBPROTOCOL = "ocpp1.6"
RESET_FLUSH_TIMEOUT_S = 30.0
CACHED_TRANSACTION_IDS = 4096  # CSMS transactionIds kept in memory at most
# 1.6 spells the generic JSON error "FormationViolation"; the library uses 2.0.1's name.
_ERROR_CODE_16 = {"FormatViolation": "FormationViolation"}


SECRET_KEYS = frozenset({"AuthorizationKey"})
_ACTIONS = frozenset(a.value for a in Action)


def redacted(action: str, payload: Any) -> str:
    """The payload for the log, without secrets the CSMS may send (AuthorizationKey)."""
    if (
        action == "ChangeConfiguration"
        and isinstance(payload, dict)
        and payload.get("key") in SECRET_KEYS
    ):
        payload = {**payload, "value": "***"}
    return clip(json.dumps(payload))


_VALUE = re.compile(r"""(['"]value['"]\s*:\s*)(['"])(?:\\.|(?!\2).)*\2""")


def _redact_secrets(text: str) -> str:
    """A library log line without the AuthorizationKey a ChangeConfiguration carried."""
    return _VALUE.sub(r"\1'***'", text) if "authorizationkey" in text.lower() else text


# The library's logger for this adapter's sessions (see CsmsFrameLog)
_lib_log = library_logger("chargepoint.ocpp.library", _redact_secrets)
limit_frame_lines(log)


def _id_tag_info(raw: dict[str, Any] | None) -> IdTagInfo | None:
    if not raw:
        return None
    try:
        status = AuthStatus(raw.get("status", "Invalid"))
    except ValueError:
        status = AuthStatus.INVALID
    return IdTagInfo(status, raw.get("expiryDate"), raw.get("parentIdTag"))


class StationChargePoint(
    AuthorizationHandlers16,
    SecurityHandlers16,
    UpdateHandlers16,
    SmartChargingHandlers16,
    LibChargePoint,  # type: ignore[misc]
):
    """The station's side of one websocket session (handlers for CSMS calls)."""

    def __init__(self, station_id: str, ws: ClientConnection, adapter: Ocpp16Adapter) -> None:
        super().__init__(
            station_id, ws, response_timeout=adapter.config.csms.call_timeout, logger=_lib_log
        )
        self.adapter = adapter

    async def route_message(self, raw_msg: str) -> None:
        """Answer frames that are not OCPP-J with a CALLERROR and keep the connection."""
        try:
            await self._route_message(raw_msg)
        except RecursionError:
            # json and the library recurse once per nesting level: a frame nested deeper
            # than the stack allows is malformed, not the end of the connection
            log.warning(
                "bad frame from the CSMS (FormationViolation, nested too deeply): %.200s",
                raw_msg,
                extra=CSMS_FRAME,
            )
            self.adapter.security.events.record_soon(
                SecurityEventType.INVALID_MESSAGES, "FormationViolation"
            )
            reply = [4, message_id_of(raw_msg), "FormationViolation", "nested too deeply", {}]
            await self._send(json.dumps(reply))

    async def _route_message(self, raw_msg: str) -> None:
        try:
            msg = unpack(raw_msg)
        except OCPPError as exc:
            unique_id = "-1"
            with contextlib.suppress(ValueError, TypeError, IndexError):
                parsed = json.loads(raw_msg)
                if (
                    isinstance(parsed, list)
                    and isinstance(parsed[1], str | int)
                    and not isinstance(parsed[1], bool)  # JSON true/false is no message id
                ):
                    unique_id = str(parsed[1])
            code = _ERROR_CODE_16.get(exc.code, exc.code)
            log.warning("bad frame from the CSMS (%s): %.200s", code, raw_msg, extra=CSMS_FRAME)
            self.adapter.security.events.record_soon(SecurityEventType.INVALID_MESSAGES, code)
            reply = json.dumps([4, unique_id, code, str(exc.description or code), {}])
            await self._send(reply)
            return
        if not isinstance(msg, Call):
            if self.adapter.reply_expected(msg.unique_id):
                self.adapter.take_reply(msg, len(raw_msg))
            else:
                # an answer to no CALL the station waits on: the library would queue it
                # for the next CALL to skip, or keep it for good
                log.debug("reply to no outstanding CALL dropped: %.100s", raw_msg, extra=CSMS_FRAME)
            return
        parsed_msg = json.loads(raw_msg)
        if parsed_msg[0] == 2:
            log.info("<- %s %s", parsed_msg[2], redacted(parsed_msg[2], parsed_msg[3]))
            if self.adapter.registration == "Rejected":
                # 1.6 4.2: while Rejected the station does not answer the Central System
                log.warning("boot Rejected: %s from the CSMS left unanswered", parsed_msg[2])
                return
            if parsed_msg[2] not in _ACTIONS:
                # OCPP-J 4.2.3: an action the receiver does not know is NotImplemented (the
                # library says NotSupported, which is for known but unsupported actions)
                log.warning(
                    "%.100s from the CSMS answered with NotImplemented",
                    parsed_msg[2],
                    extra=CSMS_FRAME,
                )
                unknown = [4, parsed_msg[1], "NotImplemented", f"unknown {parsed_msg[2]}", {}]
                await self._send(json.dumps(unknown))
                return
        await super().route_message(raw_msg)

    async def _send(self, message: str) -> None:
        if message.startswith("[4"):  # 1.6 names the generic error FormationViolation
            with contextlib.suppress(ValueError, IndexError, TypeError):
                frame = json.loads(message)
                if frame[2] in _ERROR_CODE_16:
                    frame[2] = _ERROR_CODE_16[frame[2]]
                    message = json.dumps(frame)
        await self._connection.send(message)

    # ---- CSMS -> station ---------------------------------------------------------------

    @on(Action.remote_start_transaction)
    def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, charging_profile: Any = None
    ) -> call_result.RemoteStartTransaction:
        station = self.adapter.station
        if self.adapter.registration != "Accepted":
            return call_result.RemoteStartTransaction(status="Rejected")
        if connector_id is not None and connector_id not in station.connectors:
            return call_result.RemoteStartTransaction(status="Rejected")
        profile = None
        if charging_profile is not None:
            profile = remote_start_profile(self.adapter, charging_profile)
            if profile is None:
                return call_result.RemoteStartTransaction(status="Rejected")
        ok = station.remote_start(id_tag, connector_id, charging_profile=profile)
        return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        if self.adapter.registration != "Accepted":
            return call_result.RemoteStopTransaction(status="Rejected")
        local_id = self.adapter.local_id_for(transaction_id)
        station = self.adapter.station
        c = station.transaction_by_local_id(local_id) if local_id is not None else None
        if c is None:
            return call_result.RemoteStopTransaction(status="Rejected")
        station.stop_transaction(c.id, StopReason.REMOTE)
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.change_configuration)
    async def on_change_configuration(
        self, key: str, value: str
    ) -> call_result.ChangeConfiguration:
        result, why = await self.adapter.settings.change(key, value)
        if result is not SetResult.ACCEPTED:
            shown = "***" if key in SECRET_KEYS else value
            log.info("ChangeConfiguration %s=%s: %s (%s)", key, shown, result, why)
        return call_result.ChangeConfiguration(status=result.value)

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> call_result.GetConfiguration:
        settings = self.adapter.settings
        wanted = key if key else settings.keys()
        known = [k for k in wanted if settings.known(k)]
        unknown = [k for k in wanted if not settings.known(k)]
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": settings.readonly(k), "value": settings.raw(k)[:500]}
                for k in known
            ],
            unknown_key=unknown or None,
        )

    @on(Action.change_availability)
    async def on_change_availability(
        self,
        connector_id: int,
        type: str,
    ) -> call_result.ChangeAvailability:
        station = self.adapter.station
        if connector_id != 0 and connector_id not in station.connectors:
            return call_result.ChangeAvailability(status="Rejected")
        status = await station.change_availability(connector_id, type == "Operative")
        return call_result.ChangeAvailability(status=status)

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str) -> None:
        self.adapter.start_reset(hard=type == "Hard")

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int) -> call_result.UnlockConnector:
        station = self.adapter.station
        if connector_id not in station.connectors:
            return call_result.UnlockConnector(status="NotSupported")
        station.stop_transaction(connector_id, StopReason.UNLOCK_COMMAND)
        return call_result.UnlockConnector(status="Unlocked")

    @on(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.clear_cache)
    async def on_clear_cache(self) -> call_result.ClearCache:
        cleared = await self.adapter.authorizer.clear()
        return call_result.ClearCache(status="Accepted" if cleared else "Rejected")

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None
    ) -> call_result.TriggerMessage:
        supported = {
            "BootNotification",
            "Heartbeat",
            "MeterValues",
            "StatusNotification",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
        }
        if requested_message not in supported:
            return call_result.TriggerMessage(status="NotImplemented")
        if (
            connector_id is not None
            and connector_id != 0
            and (connector_id not in self.adapter.station.connectors)
        ):
            return call_result.TriggerMessage(status="Rejected")
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger_message(
        self, requested_message: str, connector_id: int | None = None
    ) -> None:
        self.adapter.start_triggered(requested_message, connector_id)


class Ocpp16Adapter(CsmsSessionLoop[StationChargePoint]):
    """Keeps the CSMS session alive and drains the durable outbox in order."""

    firmware: FirmwareUpdates | None = None  # set by the daemon
    logs: LogUploads | None = None

    def __init__(
        self,
        config: StationConfig,
        station: Station,
        settings: Settings,
        store: AsyncStore,
        authorizer: Authorizer,
        security: StationSecurity | None = None,
    ) -> None:
        super().__init__(config, call, store)
        self.security = security or StationSecurity(config, store)
        self.station = station
        self.settings = settings
        self.authorizer = authorizer
        self._csms_ids: dict[int, int] = {}  # CSMS transactionId -> local id
        self._local_ids: dict[int, int] = {}  # local id -> CSMS transactionId, as stored
        self._tx_flags = TransactionFlags(store, "ocpp16")  # "key_sent" per transaction
        self._heartbeat_interval = settings.number("HeartbeatInterval")
        self.last_boot_status = ""
        self.registration = ""  # the last BootNotification answer: Accepted/Pending/Rejected
        self._connector0 = "Available"
        station.is_online = self.accepted.is_set
        station.outbox_changed = self._outbox_event.set
        station.volatile_meter_values = self._volatile_meter_values
        station.subscribe_status(self._on_status)
        settings.subscribe(self._on_setting)
        authorizer.online = self.authorize_online
        self.security_keys = attach_security(self)
        attach_smart_charging(self)

    # ---- bookkeeping -------------------------------------------------------------------

    def local_id_for(self, csms_transaction_id: int) -> int | None:
        return self._csms_ids.get(csms_transaction_id)

    async def load_transaction_ids(self) -> None:
        for row in await self.store.open_transactions():
            if row.csms_transaction_id is not None:
                self._csms_ids[row.csms_transaction_id] = row.local_id

    def _on_setting(self, key: str, value: str) -> None:
        if key == "HeartbeatInterval":
            self._heartbeat_interval = int(value)

    def _on_status(self, report: StatusReport) -> None:
        self._volatile.put_nowait(("StatusNotification", self._status_payload(report)))
        self._outbox_event.set()
        self._update_connector0()

    def connector0_status(self) -> str:
        """The charge point as a whole: Unavailable when every connector is."""
        reports = self.station.status_reports()
        if reports and all(r.status.value == "Unavailable" for r in reports):
            return "Unavailable"
        return "Available"

    def _connector0_payload(self) -> dict[str, Any]:
        return {
            "connectorId": 0,
            "errorCode": "NoError",
            "status": self._connector0,
            "timestamp": utc_now(),
        }

    def _update_connector0(self) -> None:
        status = self.connector0_status()
        if status != self._connector0:
            self._connector0 = status
            self._volatile.put_nowait(("StatusNotification", self._connector0_payload()))

    @staticmethod
    def _status_payload(report: StatusReport) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "connectorId": report.connector_id,
            "errorCode": report.error_code.value,
            "status": report.status.value,
            "timestamp": utc_now(),
        }
        if report.info:
            payload["info"] = report.info[:50]
        return payload

    def _volatile_meter_values(
        self, connector_id: int, context: str, samples: list[events.Sample]
    ) -> None:
        payload = m.meter_values(
            events.meter_values(
                connector_id=connector_id, timestamp=utc_now(), context=context, samples=samples
            ),
            None,
        )
        self._volatile.put_nowait(("MeterValues", payload))
        self._outbox_event.set()

    # ---- calls -------------------------------------------------------------------------

    async def authorize_online(self, id_tag: str) -> IdTagInfo | None:
        if not self.accepted.is_set():
            return None
        try:
            answer = await self.send("Authorize", {"idTag": id_tag})
        except (CsmsCallError, TimeoutError, ConnectionError, ConnectionClosed) as exc:
            log.warning("Authorize for %s failed: %s", id_tag, exc)
            return None
        return _id_tag_info(answer.get("idTagInfo"))

    # ---- connection lifecycle ----------------------------------------------------------

    async def _prepare(self) -> None:
        await self.load_transaction_ids()
        await self.security_keys.load()

    async def _open(self) -> ClientConnection:
        ping = self.settings.number("WebSocketPingInterval")
        return await open_secured(
            self.security, self.config.station.id, SUBPROTOCOL, ping if ping > 0 else None
        )

    def _make_cp(self, ws: ClientConnection) -> StationChargePoint:
        return StationChargePoint(self.config.station.id, ws, self)

    async def _work(self) -> None:
        await self._boot()
        self.station.resetting = False  # a reset ends with the new boot
        self._connector0 = self.connector0_status()
        self._volatile.put_nowait(("StatusNotification", self._connector0_payload()))
        for report in self.station.status_reports():
            self._on_status(report)
        heartbeat = asyncio.create_task(self._heartbeats(), name="heartbeat")
        try:
            await self._drain_forever()
        finally:
            await cancel_and_wait([heartbeat])

    def _boot_payload(self) -> dict[str, Any]:
        first_meter = self.station.connectors[min(self.station.connectors)].meter
        payload: dict[str, Any] = {
            "chargePointVendor": self.config.station.vendor,
            "chargePointModel": self.config.station.model,
            "firmwareVersion": reported_version(Path(self.config.store.state_dir)),
            "meterType": "BSM-WS36A",
        }
        if self.config.station.serial:
            payload["chargePointSerialNumber"] = self.config.station.serial
        identity = first_meter.driver.cached_identity
        if identity is not None:
            payload["meterSerialNumber"] = identity.meter_address
        return payload

    async def _boot(self) -> None:
        """BootNotification until Accepted; nothing else is sent before (Pending/Rejected)."""
        payload = self._boot_payload()
        while True:
            answer = await self.send("BootNotification", payload)
            status = str(answer.get("status"))
            self.last_boot_status = status
            self.registration = status
            interval = int(answer.get("interval", 0))
            if status == "Accepted":
                if interval > 0:
                    self._heartbeat_interval = interval
                    await self.settings.change("HeartbeatInterval", str(interval))
                log.info("boot accepted by the CSMS (heartbeat %d s)", self._heartbeat_interval)
                self.accepted.set()
                return
            wait = interval if interval > 0 else 60
            log.warning("boot %s by the CSMS; trying again in %d s", status, wait)
            await asyncio.sleep(wait)

    # ---- the sender --------------------------------------------------------------------

    def _volatile_answered(self, action: str, answer: dict[str, Any]) -> None:
        if action == "BootNotification":  # triggered by the CSMS
            self.registration = str(answer.get("status"))

    async def _send_durable(self, message: OutboxMessage) -> None:
        built = await self._build(message)
        if built is None:
            return
        action, payload = built
        try:
            answer = await self.send(action, payload, quiet=self.draining_backlog)
        except TimeoutError:
            # no answer is no refusal: keep the message and reconnect (1.6: only a CSMS that
            # fails to process a transaction message lets the station give up on it)
            log.warning("%s (outbox #%d) unanswered; reconnecting", action, message.seq)
            raise
        except CsmsCallError as exc:
            attempts = await self.store.record_attempt(message.seq, str(exc))
            limit = self.settings.number("TransactionMessageAttempts")
            if attempts >= limit:
                log.error(
                    "%s (outbox #%d) failed %d times; kept and flagged: %s",
                    action,
                    message.seq,
                    attempts,
                    exc,
                )
                await self.store.mark_failed(message.seq, str(exc))
            else:
                await asyncio.sleep(
                    self.settings.number("TransactionMessageRetryInterval") * attempts
                )
            return
        await self._handle_answer(message, action, answer)
        await self.store.mark_sent(message.seq, response=answer)
        if (
            message.kind == events.TRANSACTION_BEGIN_SIGNED
            and m.payload_carries_key(payload)
            and message.local_tx_id is not None
        ):
            await self._tx_flags.set("key_sent", message.local_tx_id)

    async def _build(self, message: OutboxMessage) -> tuple[str, dict[str, Any]] | None:
        data = message.data
        if message.kind == OUTBOX_KIND:
            return security_event_message(data, "1.6")
        if message.kind in UPDATE_KINDS:
            return update_message(message.kind, data, "1.6")
        kind = message.kind
        if kind == events.TRANSACTION_STARTED:
            return "StartTransaction", m.start_transaction(data)
        local_id = message.local_tx_id
        tx_id = await self._csms_transaction_id(local_id) if local_id is not None else None
        if tx_id is None:
            reason = "its StartTransaction was never accepted by the CSMS"
            log.error("outbox #%d (%s) cannot be sent: %s", message.seq, kind, reason)
            await self.store.mark_failed(message.seq, reason)
            return None
        value_format = self.config.csms.signed_value_format
        key_mode = str(
            data.get("public_key_mode") or self.settings.raw("PublicKeyWithSignedMeterValue")
        )
        if kind == events.TRANSACTION_BEGIN_SIGNED:
            with_key = key_mode != "Never"
            return "MeterValues", m.begin_signed_meter_values(data, tx_id, with_key, value_format)
        if kind == events.TRANSACTION_METER_VALUES:
            return "MeterValues", m.meter_values(data, tx_id)
        if kind == events.TRANSACTION_ENDED:
            assert local_id is not None
            key_sent = await self._tx_flags.get("key_sent", local_id)
            sign = data.get("sign_readings")
            return "StopTransaction", m.stop_transaction(
                data,
                tx_id,
                sign_readings=self.settings.flag("SampledDataSignReadings")
                if sign is None
                else bool(sign),
                key_mode=key_mode,
                key_already_sent=key_sent,
                value_format=value_format,
            )
        log.error("outbox #%d: unknown event kind %s; flagged", message.seq, kind)
        await self.store.mark_failed(message.seq, f"unknown event kind {kind}")
        return None

    async def _csms_transaction_id(self, local_id: int) -> int | None:
        """The CSMS's transactionId of a transaction, as stored (kept here once known: only
        this adapter stores it, in _handle_answer), None before the CSMS gave one."""
        known = self._local_ids.get(local_id)
        if known is not None:
            return known
        row = await self.store.transaction(local_id)
        tx_id = row.csms_transaction_id if row is not None else None
        if tx_id is not None:
            if len(self._local_ids) >= CACHED_TRANSACTION_IDS:
                self._local_ids.clear()
            self._local_ids[local_id] = tx_id
        return tx_id

    async def _handle_answer(
        self, message: OutboxMessage, action: str, answer: dict[str, Any]
    ) -> None:
        if action == "StartTransaction" and message.local_tx_id is not None:
            tx_id = int(answer["transactionId"])
            self._local_ids.pop(message.local_tx_id, None)  # until it is on disk
            await self.store.set_csms_transaction_id(message.local_tx_id, tx_id)
            self._local_ids[message.local_tx_id] = tx_id
            self._csms_ids[tx_id] = message.local_tx_id
            info = _id_tag_info(answer.get("idTagInfo"))
            if info is not None:
                await self.authorizer.remember(str(message.data["id_tag"]), info)
                if info.status is not AuthStatus.ACCEPTED:
                    log.warning("CSMS answered StartTransaction %d with %s", tx_id, info.status)
                    await self.station.deauthorized(message.local_tx_id)
        elif action == "StopTransaction":
            info = _id_tag_info(answer.get("idTagInfo"))
            id_tag = message.data.get("id_tag")
            if info is not None and id_tag:
                await self.authorizer.remember(str(id_tag), info)

    # ---- TriggerMessage / Reset ----------------------------------------------------------

    def start_triggered(self, requested: str, connector_id: int | None) -> None:
        self._own(self.triggered(requested, connector_id), f"TriggerMessage {requested}")

    def start_reset(self, hard: bool) -> None:
        self.security.events.record_soon(
            SecurityEventType.RESET_OR_REBOOT, f"{'hard' if hard else 'soft'} reset by the CSMS"
        )
        self._own(self.reset(hard), "reset")

    async def triggered(self, requested: str, connector_id: int | None) -> None:
        targets = [connector_id] if connector_id else sorted(self.station.connectors)
        if requested == "BootNotification":
            self._volatile.put_nowait(("BootNotification", self._boot_payload()))
        elif requested == "StatusNotification" and connector_id in (None, 0):
            self._volatile.put_nowait(("StatusNotification", self._connector0_payload()))
            if connector_id is None:
                for report in self.station.status_reports():
                    self._on_status(report)
        elif requested == "Heartbeat":
            self._volatile.put_nowait(("Heartbeat", {}))
        elif requested == "StatusNotification":
            for report in self.station.status_reports():
                if report.connector_id in targets:
                    self._on_status(report)
        elif requested == "MeterValues":
            for cid in targets:
                try:
                    samples = await self.station.read_meter(cid)
                except Exception as exc:
                    log.warning("triggered MeterValues for connector %d failed: %s", cid, exc)
                    continue
                self._volatile_meter_values(cid, "Trigger", samples)
        elif requested == "DiagnosticsStatusNotification":
            self._volatile.put_nowait(log_trigger(self.logs, "1.6", diagnostics=True))
        elif requested == "FirmwareStatusNotification":
            self._volatile.put_nowait(firmware_trigger(self.firmware, "1.6"))
        self._outbox_event.set()

    async def reset(self, hard: bool) -> None:
        """End every session (signed) and deliver its StopTransaction before the reset, then
        start a new OCPP session with a fresh boot (1.6 5.14)."""
        log.warning("%s reset requested by the CSMS", "hard" if hard else "soft")
        await self.station.end_all(StopReason.HARD_RESET if hard else StopReason.SOFT_RESET)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESET_FLUSH_TIMEOUT_S
        while await self.store.outbox_length() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        ws = self.ws
        if ws is not None:
            await ws.close()
