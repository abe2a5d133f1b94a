"""The test CSMS's OCPP 2.0.1 side, against a minimal client built on the ocpp library's v201."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

import pytest
from ocpp import routing as ocpp_routing  # type: ignore[import-untyped, unused-ignore]
from ocpp.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    InternalError,
    OCPPError,
)
from ocpp.v16 import ChargePoint as ChargePoint16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import call as call16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import ChargePoint as ChargePoint201  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call, call_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201.enums import Action  # type: ignore[import-untyped, unused-ignore]
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from chargepoint.testcsms import (
    CallErrorReply,
    Received,
    SchemaViolation,
    StationNotConnected,
    TestCsms,
)
from tests.conftest import free_port

_F = TypeVar("_F", bound=Callable[..., Any])
OCPP16 = [Subprotocol("ocpp1.6")]
OCPP201 = [Subprotocol("ocpp2.0.1")]
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# A real OCMF record from a BSM-WS36A (shape only; nothing here verifies it).
OCMF = (
    'OCMF|{"FV":"1.0","GI":"BSM-WS36A-H01-1311-0000","GS":"0000000000000001","GV":"1.10",'
    '"PG":"T4276","IS":false,"IL":"NONE","IF":[],"IT":"UNDEFINED","ID":"","RD":[{"TM":'
    '"2026-11-02T10:00:00,000+0000 S","TX":"B","RV":1.0,"RI":"1-0:1.8.0","RU":"kWh",'
    '"RT":"AC","EF":"","ST":"G"}]}|{"SD":"3045022100AB"}'
)


def _on(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], ocpp_routing.on(action))


def utc(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Client201(ChargePoint201):  # type: ignore[misc, unused-ignore]
    """A 2.0.1 station with a few variables; it records the CSMS's requests in `requests`."""

    def __init__(self, station_id: str, connection: ClientConnection) -> None:
        super().__init__(station_id, connection)
        self.variables: dict[tuple[str, str], str] = {
            ("OCPPCommCtrlr", "HeartbeatInterval"): "60",
            ("FiscalMetering", "PublicKey"): "3059301306072a8648ce3d0201",
        }
        self.requests: list[tuple[str, dict[str, Any]]] = []

    @_on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in get_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            result: dict[str, Any] = {
                "component": item["component"],
                "variable": item["variable"],
                "attribute_status": "Accepted" if key in self.variables else "UnknownVariable",
            }
            if key in self.variables:
                result["attribute_value"] = self.variables[key]
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @_on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            known = key in self.variables
            if known:
                self.variables[key] = item["attribute_value"]
            results.append(
                {
                    "component": item["component"],
                    "variable": item["variable"],
                    "attribute_status": "Accepted" if known else "UnknownVariable",
                }
            )
        return call_result.SetVariables(set_variable_result=results)

    @_on(Action.get_base_report)
    def on_get_base_report(self, **kwargs: Any) -> Any:
        self.requests.append(("GetBaseReport", kwargs))
        return call_result.GetBaseReport(status="Accepted")

    @_on(Action.reset)
    def on_reset(self, **kwargs: Any) -> Any:
        self.requests.append(("Reset", kwargs))
        return call_result.Reset(status="Scheduled" if kwargs["type"] == "OnIdle" else "Accepted")

    @_on(Action.trigger_message)
    def on_trigger_message(self, **kwargs: Any) -> Any:
        self.requests.append(("TriggerMessage", kwargs))
        return call_result.TriggerMessage(status="Accepted")

    @_on(Action.change_availability)
    def on_change_availability(self, **kwargs: Any) -> Any:
        self.requests.append(("ChangeAvailability", kwargs))
        return call_result.ChangeAvailability(status="Accepted")

    @_on(Action.unlock_connector)
    def on_unlock_connector(self, **kwargs: Any) -> Any:
        self.requests.append(("UnlockConnector", kwargs))
        return call_result.UnlockConnector(status="Unlocked")

    @_on(Action.request_start_transaction)
    def on_request_start_transaction(self, **kwargs: Any) -> Any:
        self.requests.append(("RequestStartTransaction", kwargs))
        return call_result.RequestStartTransaction(status="Accepted", transaction_id="tx-remote")

    @_on(Action.request_stop_transaction)
    def on_request_stop_transaction(self, **kwargs: Any) -> Any:
        self.requests.append(("RequestStopTransaction", kwargs))
        return call_result.RequestStopTransaction(status="Accepted")

    @_on(Action.data_transfer)
    def on_data_transfer(self, **kwargs: Any) -> Any:
        self.requests.append(("DataTransfer", kwargs))
        return call_result.DataTransfer(status="Accepted", data=kwargs.get("data"))


@pytest.fixture
async def csms() -> AsyncIterator[TestCsms]:
    server = TestCsms(heartbeat_interval=60, accept_id_tags={"TAG1"})
    await server.start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def station(
    server: TestCsms,
    station_id: str = "CS-1",
    subprotocols: Sequence[Subprotocol] = OCPP201,
    **connect_args: Any,
) -> AsyncIterator[Client201]:
    ws: ClientConnection = await connect(
        f"{server.url}/{quote(station_id, safe='*-_=:+|@.')}",
        subprotocols=list(subprotocols),
        **connect_args,
    )
    # The library does not check the negotiated subprotocol; a station must.
    assert ws.subprotocol == "ocpp2.0.1"
    cp = Client201(station_id, ws)
    reader = asyncio.create_task(cp.start())
    try:
        await server.wait_connected(station_id, timeout=5)
        yield cp
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await reader
        await ws.close()


async def boot(cp: Client201) -> Any:
    return await cp.call(
        call.BootNotification(
            charging_station={"model": "Model", "vendor_name": "Vendor"}, reason="PowerUp"
        ),
        suppress=False,
    )


def signed_value(value: float, context: str, public_key: str = "") -> dict[str, Any]:
    """An Energy.Active.Import.Register sampledValue with the OCMF record signed (snake_case)."""
    return {
        "value": value,
        "context": context,
        "measurand": "Energy.Active.Import.Register",
        "unit_of_measure": {"unit": "Wh"},
        "signed_meter_value": {
            "signed_meter_data": base64.b64encode(OCMF.encode()).decode(),
            "signing_method": "ECDSA-secp256r1-SHA256",
            "encoding_method": "OCMF",
            "public_key": public_key,
        },
    }


async def transaction_event(
    cp: Client201,
    event_type: str,
    seq_no: int,
    transaction_id: str = "tx-1",
    trigger_reason: str = "Authorized",
    id_token: str | None = None,
    sampled: list[dict[str, Any]] | None = None,
    **info: Any,
) -> Any:
    return await cp.call(
        call.TransactionEvent(
            event_type=event_type,
            timestamp=now_text(),
            trigger_reason=trigger_reason,
            seq_no=seq_no,
            transaction_info={"transaction_id": transaction_id, **info},
            evse={"id": 1, "connector_id": 1},
            id_token=None if id_token is None else {"id_token": id_token, "type": "ISO14443"},
            meter_value=None
            if sampled is None
            else [{"timestamp": now_text(), "sampled_value": sampled}],
        ),
        suppress=False,
    )


async def handshake_status(url: str, **connect_args: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        await connect(url, **connect_args)
    return int(info.value.response.status_code)


# ---------------------------------------------------------------------------------------------


async def test_provisioning_messages_are_answered_per_schema(csms: TestCsms) -> None:
    async with station(csms) as cp:
        info = csms.connection_info("CS-1")
        assert info["subprotocol"] == "ocpp2.0.1"
        assert info["ocpp_version"] == "2.0.1"
        assert info["offered_subprotocols"] == ["ocpp2.0.1"]
        assert csms.ocpp_version("CS-1") == "2.0.1"

        # The client validates every answer against the 2.0.1 schema (suppress=False raises).
        booted = await boot(cp)
        assert (booted.status, booted.interval) == ("Accepted", 60)
        assert abs(utc(booted.current_time) - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
        utc((await cp.call(call.Heartbeat(), suppress=False)).current_time)

        await cp.call(
            call.StatusNotification(
                timestamp=now_text(), connector_status="Available", evse_id=1, connector_id=1
            ),
            suppress=False,
        )
        await cp.call(
            call.NotifyReport(
                request_id=1,
                generated_at=now_text(),
                seq_no=0,
                report_data=[
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                        "variable_attribute": [{"type": "Actual", "value": "60"}],
                    }
                ],
            ),
            suppress=False,
        )
        await cp.call(
            call.NotifyEvent(
                generated_at=now_text(),
                seq_no=0,
                event_data=[
                    {
                        "event_id": 1,
                        "timestamp": now_text(),
                        "trigger": "Delta",
                        "actual_value": "Faulted",
                        "event_notification_type": "HardWiredNotification",
                        "component": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
                        "variable": {"name": "AvailabilityState"},
                    }
                ],
            ),
            suppress=False,
        )
        await cp.call(
            call.SecurityEventNotification(type="StartupOfTheDevice", timestamp=now_text()),
            suppress=False,
        )
        await cp.call(call.FirmwareStatusNotification(status="Installed"), suppress=False)
        await cp.call(call.LogStatusNotification(status="Uploaded", request_id=3), suppress=False)
        data = await cp.call(call.DataTransfer(vendor_id="x", data="y"), suppress=False)
        assert data.status == "Accepted"
        await cp.call(
            call.MeterValues(
                evse_id=1,
                meter_value=[{"timestamp": now_text(), "sampled_value": [{"value": 1234.5}]}],
            ),
            suppress=False,
        )

    assert csms.sent_errors == []
    assert all(csms.answered(r) for r in csms.received)
    assert [r.action for r in csms.received] == [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "NotifyReport",
        "NotifyEvent",
        "SecurityEventNotification",
        "FirmwareStatusNotification",
        "LogStatusNotification",
        "DataTransfer",
        "MeterValues",
    ]
    assert {r.ocpp_version for r in csms.received} == {"2.0.1"}
    # Recorded as on the wire: camelCase, nested objects too.
    assert csms.messages("BootNotification")[0].payload == {
        "chargingStation": {"model": "Model", "vendorName": "Vendor"},
        "reason": "PowerUp",
    }
    # The raw answers: exactly the schema's fields, camelCase.
    answers = [json.loads(f.text) for f in csms.frames if f.direction == "out"]
    assert set(answers[0][2]) == {"currentTime", "interval", "status"}
    assert [a[2] for a in answers[2:8]] == [{}] * 6
    assert csms.transaction_log() == {}
    assert csms.transaction_log_201() == {}


async def test_authorize_accepts_only_the_listed_tokens(csms: TestCsms) -> None:
    async def authorize(cp: Client201, token: str, token_type: str = "ISO14443") -> str:
        answer = await cp.call(
            call.Authorize(id_token={"id_token": token, "type": token_type}), suppress=False
        )
        # Nested objects of answers come as dicts with snake_case keys.
        return str(answer.id_token_info["status"])

    async with station(csms) as cp:
        assert await authorize(cp, "TAG1") == "Accepted"
        assert await authorize(cp, "tag1") == "Accepted"  # IdToken is case insensitive
        assert await authorize(cp, "OTHER") == "Invalid"
        assert await authorize(cp, "", "NoAuthorization") == "Accepted"
        csms.accept_id_tags = None
        assert await authorize(cp, "OTHER") == "Accepted"
    assert csms.messages("Authorize")[0].payload == {
        "idToken": {"idToken": "TAG1", "type": "ISO14443"}
    }


async def test_transaction_events_are_logged_per_transaction(csms: TestCsms) -> None:
    async with station(csms) as cp:
        begin = signed_value(1000.0, "Transaction.Begin")
        started = await transaction_event(
            cp,
            "Started",
            0,
            id_token="TAG1",
            sampled=[begin],
            charging_state="EVConnected",
        )
        assert started.id_token_info == {"status": "Accepted"}
        periodic = {"value": 1500.0, "context": "Sample.Periodic"}
        updated = await transaction_event(
            cp, "Updated", 1, trigger_reason="MeterValuePeriodic", sampled=[periodic]
        )
        assert updated.id_token_info is None  # no idToken in the request: none in the answer
        end = signed_value(2000.0, "Transaction.End", public_key="cHVibGljIGtleQ==")
        ended = await transaction_event(
            cp,
            "Ended",
            2,
            trigger_reason="StopAuthorized",
            id_token="TAG1",
            sampled=[begin, end],
            stopped_reason="Local",
        )
        assert ended.id_token_info == {"status": "Accepted"}
        # A second transaction with a token the CSMS does not know.
        bad = await transaction_event(cp, "Started", 0, transaction_id="tx-2", id_token="NOPE")
        assert bad.id_token_info == {"status": "Invalid"}

    assert csms.sent_errors == []
    log = csms.transaction_log_201()
    assert set(log) == {"tx-1", "tx-2"}
    tx = log["tx-1"]
    assert tx["station_id"] == "CS-1"
    assert tx["seq_nos"] == [0, 1, 2]
    assert [e["eventType"] for e in tx["events"]] == ["Started", "Updated", "Ended"]
    assert tx["started"] is tx["events"][0]
    assert tx["ended"] is tx["events"][2]
    assert tx["ended_count"] == 1
    assert tx["ended"]["transactionInfo"] == {"transactionId": "tx-1", "stoppedReason": "Local"}
    # The signed value as it went over the wire.
    sampled = tx["ended"]["meterValue"][0]["sampledValue"]
    assert [s["context"] for s in sampled] == ["Transaction.Begin", "Transaction.End"]
    signed = sampled[1]["signedMeterValue"]
    assert set(signed) == {"signedMeterData", "signingMethod", "encodingMethod", "publicKey"}
    assert base64.b64decode(signed["signedMeterData"]).decode() == OCMF
    assert sampled[1]["value"] == 2000.0
    assert sampled[1]["unitOfMeasure"] == {"unit": "Wh"}
    assert log["tx-2"]["ended"] is None
    assert log["tx-2"]["ended_count"] == 0
    # The 1.6 log does not see 2.0.1 transactions.
    assert csms.transaction_log() == {}


async def test_transaction_event_schema_is_enforced(csms: TestCsms) -> None:
    async with station(csms) as cp:
        base = {
            "eventType": "Started",
            "timestamp": now_text(),
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "tx-1"},
        }
        sampled = {
            "value": 1.0,
            "signedMeterValue": {
                "signedMeterData": "QQ==",
                "signingMethod": "",
                "encodingMethod": "OCMF",
            },
        }
        bad_frames = [
            ("no-seq", {k: v for k, v in base.items() if k != "seqNo"}),
            ("int-id", {**base, "transactionInfo": {"transactionId": 7}}),
            (
                "no-key",
                {**base, "meterValue": [{"timestamp": now_text(), "sampledValue": [sampled]}]},
            ),
            (
                "str-value",
                {
                    **base,
                    "meterValue": [{"timestamp": now_text(), "sampledValue": [{"value": "1"}]}],
                },
            ),
            ("extra", {**base, "connectorId": 1}),
            ("long", {**base, "transactionInfo": {"transactionId": "x" * 37}}),
        ]
        # The library client validates its own CALLs, so write the bad frames on its socket.
        for uid, payload in bad_frames:
            await cp._connection.send(json.dumps([2, uid, "TransactionEvent", payload]))
        for _ in range(200):
            if len(csms.sent_errors) == len(bad_frames):
                break
            await asyncio.sleep(0.01)
    assert [(e.unique_id, e.code) for e in csms.sent_errors] == [
        ("no-seq", "ProtocolError"),  # the library's code for a missing required field
        ("int-id", "TypeConstraintViolation"),
        ("no-key", "ProtocolError"),
        ("str-value", "TypeConstraintViolation"),
        ("extra", "FormatViolation"),  # 2.0.1 spelling, not 1.6's "FormationViolation"
        ("long", "TypeConstraintViolation"),
    ]
    assert csms.transaction_log_201() == {}


async def test_call_round_trip(csms: TestCsms) -> None:
    async with station(csms) as cp:
        answer = await csms.call(
            "CS-1",
            "GetVariables",
            {
                "getVariableData": [
                    {"component": {"name": "FiscalMetering"}, "variable": {"name": "PublicKey"}},
                    {"component": {"name": "Nope"}, "variable": {"name": "Nope"}},
                ]
            },
        )
        assert answer == {
            "getVariableResult": [
                {
                    "component": {"name": "FiscalMetering"},
                    "variable": {"name": "PublicKey"},
                    "attributeStatus": "Accepted",
                    "attributeValue": "3059301306072a8648ce3d0201",
                },
                {
                    "component": {"name": "Nope"},
                    "variable": {"name": "Nope"},
                    "attributeStatus": "UnknownVariable",
                },
            ]
        }
        changed = await csms.call(
            "CS-1",
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "attributeValue": "30",
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
        )
        assert changed["setVariableResult"][0]["attributeStatus"] == "Accepted"
        assert cp.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "30"

        calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
            (
                "GetBaseReport",
                {"requestId": 1, "reportBase": "FullInventory"},
                {"status": "Accepted"},
            ),
            ("Reset", {"type": "OnIdle"}, {"status": "Scheduled"}),
            (
                "TriggerMessage",
                {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}},
                {"status": "Accepted"},
            ),
            (
                "ChangeAvailability",
                {"operationalStatus": "Inoperative", "evse": {"id": 1}},
                {"status": "Accepted"},
            ),
            ("UnlockConnector", {"evseId": 1, "connectorId": 1}, {"status": "Unlocked"}),
            (
                "RequestStartTransaction",
                {
                    "idToken": {"idToken": "TAG1", "type": "ISO14443"},
                    "remoteStartId": 7,
                    "evseId": 1,
                },
                {"status": "Accepted", "transactionId": "tx-remote"},
            ),
            ("RequestStopTransaction", {"transactionId": "tx-remote"}, {"status": "Accepted"}),
            (
                "DataTransfer",
                {"vendorId": "v", "data": {"someKey": 1}},
                {"status": "Accepted", "data": {"someKey": 1}},
            ),
        ]
        for action, payload, expected in calls:
            assert await csms.call("CS-1", action, payload) == expected, action

    # The station's handlers got snake_case keyword arguments, nested dicts snake_case too,
    # including the free-form DataTransfer data (and its answer was camelCased back).
    assert cp.requests[0] == ("GetBaseReport", {"request_id": 1, "report_base": "FullInventory"})
    assert cp.requests[5] == (
        "RequestStartTransaction",
        {"id_token": {"id_token": "TAG1", "type": "ISO14443"}, "remote_start_id": 7, "evse_id": 1},
    )
    assert cp.requests[7] == ("DataTransfer", {"vendor_id": "v", "data": {"some_key": 1}})
    frames = [json.loads(f.text) for f in csms.frames if f.direction == "out"]
    sent = next(f for f in frames if f[0] == 2 and f[2] == "RequestStartTransaction")
    assert sent[3]["idToken"] == {"idToken": "TAG1", "type": "ISO14443"}


async def test_call_errors_and_send_raw(csms: TestCsms) -> None:
    async with station(csms):
        # No handler on the station: NotImplemented; not a 2.0.1 action: NotSupported.
        with pytest.raises(CallErrorReply) as info:
            await csms.call("CS-1", "ClearCache", {})
        assert info.value.code == "NotImplemented"
        with pytest.raises(CallErrorReply) as info:
            await csms.call("CS-1", "GetConfiguration", {}, validate=False)
        assert info.value.code == "NotSupported"
        # Our payloads are checked against the 2.0.1 schemas: a 1.6 action has none.
        before = len(csms.frames)
        with pytest.raises(SchemaViolation):
            await csms.call("CS-1", "GetConfiguration", {})
        with pytest.raises(SchemaViolation):
            await csms.call("CS-1", "UnlockConnector", {"connectorId": 1})
        with pytest.raises(SchemaViolation):
            await csms.call("CS-1", "RequestStopTransaction", {"transactionId": 5})
        assert len(csms.frames) == before

        text = await csms.send_raw("CS-1", '[2,"raw-1","Reset",{"type":"Immediate"}]')
        assert text is not None
        assert json.loads(text) == [3, "raw-1", {"status": "Accepted"}]
        text = await csms.send_raw("CS-1", '[2,"raw-2","Reset",{"type":"Later"}]')
        assert text is not None
        assert json.loads(text)[:3] == [4, "raw-2", "FormatViolation"]
        assert await csms.send_raw("CS-1", "not json", timeout=0.3) is None
    with pytest.raises(StationNotConnected):
        await csms.call("CS-1", "ClearCache", {})


async def test_fail_next_for_transaction_event(csms: TestCsms) -> None:
    csms.fail_next("TransactionEvent", count=2)
    csms.fail_next("Heartbeat", error_code="GenericError")
    async with station(csms) as cp:
        for _ in range(2):
            with pytest.raises(InternalError):
                await transaction_event(cp, "Started", 0, id_token="TAG1")
        await transaction_event(cp, "Started", 0, id_token="TAG1")  # the station retries
        with pytest.raises(OCPPError) as info:
            await cp.call(call.Heartbeat(), suppress=False)
        assert info.value.code == "GenericError"
        await transaction_event(cp, "Ended", 1, trigger_reason="StopAuthorized")

    assert [(e.action, e.code) for e in csms.sent_errors] == [
        ("TransactionEvent", "InternalError"),
        ("TransactionEvent", "InternalError"),
        ("Heartbeat", "GenericError"),
    ]
    events = csms.messages("TransactionEvent", "CS-1")
    assert [csms.answered(r) for r in events] == [False, False, True, True]
    tx = csms.transaction_log_201()["tx-1"]
    assert tx["seq_nos"] == [0, 1]  # the refused ones do not count
    assert tx["ended_count"] == 1


async def test_delay_respond_with_and_wait_for(csms: TestCsms) -> None:
    csms.respond_with("Authorize", lambda rec: {"idTokenInfo": {"status": "Blocked"}})
    csms.delay("TransactionEvent", 0.2)
    async with station(csms) as cp:
        waiter = asyncio.create_task(
            csms.wait_for("TransactionEvent", lambda r: r.payload["seqNo"] == 1)
        )
        blocked = await cp.call(
            call.Authorize(id_token={"id_token": "TAG1", "type": "ISO14443"}), suppress=False
        )
        assert blocked.id_token_info["status"] == "Blocked"
        loop = asyncio.get_running_loop()
        started = loop.time()
        await transaction_event(cp, "Started", 0)
        await transaction_event(cp, "Updated", 1, trigger_reason="ChargingStateChanged")
        assert loop.time() - started >= 0.4
        got = await waiter
        assert got.payload["eventType"] == "Updated"

        # An answer that fails the schema is not sent: the station gets a CALLERROR.
        csms.respond_with("Authorize", lambda rec: {"idTokenInfo": {"status": "Maybe"}})
        with pytest.raises(OCPPError):
            await cp.call(
                call.Authorize(id_token={"id_token": "TAG1", "type": "ISO14443"}),
                suppress=False,
            )
        csms.respond_with("Authorize", None)
        ok = await cp.call(
            call.Authorize(id_token={"id_token": "TAG1", "type": "ISO14443"}), suppress=False
        )
        assert ok.id_token_info["status"] == "Accepted"


async def test_version_is_chosen_by_the_subprotocol_offered(csms: TestCsms) -> None:
    # A station offering only 1.6 gets the 1.6 session.
    async with connect(f"{csms.url}/CP-16", subprotocols=OCPP16) as ws:
        assert ws.subprotocol == "ocpp1.6"
        cp16 = ChargePoint16("CP-16", ws)
        reader = asyncio.create_task(cp16.start())
        booted = await cp16.call(
            call16.BootNotification(charge_point_model="M", charge_point_vendor="V"),
            suppress=False,
        )
        assert booted.status == "Accepted"
        reader.cancel()
    assert csms.connection_info("CP-16")["subprotocol"] == "ocpp1.6"
    assert csms.ocpp_version("CP-16") == "1.6"
    assert csms.messages("BootNotification", "CP-16")[0].ocpp_version == "1.6"

    # Offering both: the station's order of preference decides.
    async with station(csms, "CS-both", subprotocols=[*OCPP201, *OCPP16]):
        assert csms.connection_info("CS-both")["offered_subprotocols"] == [
            "ocpp2.0.1",
            "ocpp1.6",
        ]
    async with connect(f"{csms.url}/CP-both", subprotocols=[*OCPP16, *OCPP201]) as ws:
        assert ws.subprotocol == "ocpp1.6"

    # Unknown or missing subprotocols are refused in the handshake.
    url = f"{csms.url}/CS-1"
    assert await handshake_status(url) == 400
    assert await handshake_status(url, subprotocols=[Subprotocol("ocpp2.1")]) == 400


async def test_versions_offered_can_be_restricted() -> None:
    async with TestCsms(versions=("1.6",)) as only16:
        assert only16.subprotocols == ("ocpp1.6",)
        assert await handshake_status(f"{only16.url}/CS-1", subprotocols=OCPP201) == 400
        async with connect(f"{only16.url}/CS-1", subprotocols=[*OCPP201, *OCPP16]) as ws:
            assert ws.subprotocol == "ocpp1.6"
    async with TestCsms(versions=("2.0.1",)) as only201:
        assert await handshake_status(f"{only201.url}/CP-1", subprotocols=OCPP16) == 400
        async with station(only201, subprotocols=[*OCPP16, *OCPP201]):
            assert only201.ocpp_version("CS-1") == "2.0.1"
    for bad in [(), ("2.0",), ("1.6", "ocpp2.0.1")]:
        with pytest.raises(ValueError):
            TestCsms(versions=bad)


async def test_both_versions_at_once(csms: TestCsms) -> None:
    async with (
        station(csms, "CS-201") as cp201,
        connect(f"{csms.url}/CP-16", subprotocols=OCPP16) as ws16,
    ):
        cp16 = ChargePoint16("CP-16", ws16)
        reader = asyncio.create_task(cp16.start())
        await csms.wait_connected("CP-16")
        await cp16.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
            suppress=False,
        )
        await cp201.call(
            call.StatusNotification(
                timestamp=now_text(), connector_status="Available", evse_id=1, connector_id=1
            ),
            suppress=False,
        )
        with pytest.raises(CallErrorReply) as info:  # the 1.6 client has no handlers
            await csms.call("CP-16", "GetConfiguration", {})
        assert info.value.code == "NotImplemented"
        variables = await csms.call(
            "CS-201",
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
        )
        assert variables["getVariableResult"][0]["attributeValue"] == "60"
        reader.cancel()
    seen: list[Received] = csms.messages("StatusNotification")
    assert [(r.station_id, r.ocpp_version) for r in seen] == [("CP-16", "1.6"), ("CS-201", "2.0.1")]
    assert csms.sent_errors == []


async def test_command_offers_the_chosen_version() -> None:
    port = free_port()
    script = (
        "import argparse, sys\n"
        "from chargepoint.cli.testcsms import add_test_csms_parser\n"
        "p = argparse.ArgumentParser(); sub = p.add_subparsers()\n"
        "add_test_csms_parser(sub)\n"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        "test-csms",
        "--listen",
        f"127.0.0.1:{port}",
        "--ocpp-version",
        "2.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        banner = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
        assert f"ws://127.0.0.1:{port}/ocpp" in banner
        assert "ocpp2.0.1" in banner and "ocpp1.6" not in banner
        url = f"ws://127.0.0.1:{port}/ocpp/CS-7"
        assert await handshake_status(url, subprotocols=OCPP16) == 400
        async with connect(url, subprotocols=OCPP201) as ws:
            cp = Client201("CS-7", ws)
            reader = asyncio.create_task(cp.start())
            booted = await boot(cp)
            reader.cancel()
        assert booted.status == "Accepted"
        line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        assert (line["station"], line["ocppVersion"], line["action"]) == (
            "CS-7",
            "2.0.1",
            "BootNotification",
        )
        assert line["payload"]["chargingStation"]["vendorName"] == "Vendor"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0
