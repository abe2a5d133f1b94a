"""The test CSMS against a minimal OCPP 1.6 client built on the ocpp library's client side."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

import pytest
from ocpp import routing as ocpp_routing  # type: ignore[import-untyped, unused-ignore]
from ocpp.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    InternalError,
    OCPPError,
)
from ocpp.messages import CallError  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import ChargePoint as ChargePoint16  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16 import call, call_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v16.enums import Action  # type: ignore[import-untyped, unused-ignore]
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from chargepoint.testcsms import (
    CallErrorReply,
    Received,
    SchemaViolation,
    StationNotConnected,
    TestCsms,
    generate_test_pki,
)
from tests.conftest import free_port

_F = TypeVar("_F", bound=Callable[..., Any])
OCPP16 = [Subprotocol("ocpp1.6")]
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _on(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], ocpp_routing.on(action))


def _on_unchecked(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], ocpp_routing.on(action, skip_schema_validation=True))


class Client(ChargePoint16):  # type: ignore[misc, unused-ignore]
    """A station that answers GetConfiguration and ChangeConfiguration, nothing else."""

    config: dict[str, str]

    @_on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        config = getattr(self, "config", {"HeartbeatInterval": "60"})
        wanted = key or list(config)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": False, "value": config[k]} for k in wanted if k in config
            ],
            unknown_key=[k for k in wanted if k not in config] or None,
        )

    @_on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        return call_result.ChangeConfiguration(status="Accepted")


class SloppyClient(Client):
    """Sends GetConfiguration answers without checking them against the schema."""

    @_on_unchecked(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        return super().on_get_configuration(key)


class StrictClient(Client):
    """Answers frames the library ignores (bad JSON, no array) with a CALLERROR."""

    async def route_message(self, raw_msg: str) -> None:
        try:
            frame = json.loads(raw_msg)
        except ValueError:
            frame = None
        if not isinstance(frame, list):
            error = CallError("-1", "FormationViolation", "not an OCPP-J array", {})
            await self._send(error.to_json())
            return
        await super().route_message(raw_msg)


def utc(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
async def csms() -> AsyncIterator[TestCsms]:
    server = TestCsms(heartbeat_interval=60, accept_id_tags={"TAG1"})
    await server.start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def station(
    server: TestCsms, station_id: str = "CP-1", cls: type[Client] = Client, **connect_args: Any
) -> AsyncIterator[Client]:
    ws: ClientConnection = await connect(
        f"{server.url}/{quote(station_id, safe='*-_=:+|@.')}", subprotocols=OCPP16, **connect_args
    )
    assert ws.subprotocol == "ocpp1.6"
    cp = cls(station_id, ws)
    reader = asyncio.create_task(cp.start())
    try:
        await server.wait_connected(station_id, timeout=5)
        yield cp
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await reader
        await ws.close()


async def boot(cp: Client) -> Any:
    return await cp.call(
        call.BootNotification(charge_point_model="Model", charge_point_vendor="Vendor"),
        suppress=False,
    )


async def start_tx(cp: Client, id_tag: str = "TAG1", meter: int = 1000, connector: int = 1) -> Any:
    return await cp.call(
        call.StartTransaction(
            connector_id=connector,
            id_tag=id_tag,
            meter_start=meter,
            timestamp="2026-11-02T10:00:00.000Z",
        ),
        suppress=False,
    )


async def handshake_status(url: str, **connect_args: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        await connect(url, **connect_args)
    return int(info.value.response.status_code)


# ---------------------------------------------------------------------------------------------


async def test_boot_heartbeat_and_transaction_answers(csms: TestCsms) -> None:
    async with station(csms) as cp:
        booted = await boot(cp)
        assert booted.status == "Accepted"
        assert booted.interval == 60
        assert abs(utc(booted.current_time) - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)

        beat = await cp.call(call.Heartbeat(), suppress=False)
        utc(beat.current_time)

        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
            suppress=False,
        )
        ok = await cp.call(call.Authorize(id_tag="TAG1"), suppress=False)
        bad = await cp.call(call.Authorize(id_tag="OTHER"), suppress=False)
        # The library hands nested objects over as dicts with snake_case keys.
        assert ok.id_tag_info["status"] == "Accepted"
        assert bad.id_tag_info["status"] == "Invalid"

        first = await start_tx(cp, meter=1000)
        second = await start_tx(cp, id_tag="OTHER", meter=5000, connector=2)
        assert (first.transaction_id, second.transaction_id) == (1, 2)
        assert first.id_tag_info["status"] == "Accepted"
        assert second.id_tag_info["status"] == "Invalid"

        sampled = [{"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
        await cp.call(
            call.MeterValues(
                connector_id=1,
                transaction_id=1,
                meter_value=[{"timestamp": "2026-11-02T10:05:00Z", "sampled_value": sampled}],
            ),
            suppress=False,
        )
        stopped = await cp.call(
            call.StopTransaction(
                meter_stop=2000,
                timestamp="2026-11-02T10:10:00.000Z",
                transaction_id=1,
                id_tag="TAG1",
                reason="Local",
            ),
            suppress=False,
        )
        assert stopped.id_tag_info["status"] == "Accepted"
        no_tag = await cp.call(
            call.StopTransaction(
                meter_stop=5000, timestamp="2026-11-02T10:11:00Z", transaction_id=2
            ),
            suppress=False,
        )
        assert no_tag.id_tag_info is None
        data = await cp.call(call.DataTransfer(vendor_id="x", data="y"), suppress=False)
        assert data.status == "Accepted"

    assert csms.sent_errors == []
    assert [r.action for r in csms.messages("StartTransaction", "CP-1")] == ["StartTransaction"] * 2
    assert csms.messages("StartTransaction", "CP-2") == []
    # Payloads are recorded as on the wire, camelCase.
    assert csms.messages("BootNotification")[0].payload == {
        "chargePointModel": "Model",
        "chargePointVendor": "Vendor",
    }

    txs = csms.transaction_log()
    assert set(txs) == {1, 2}
    assert txs[1]["start"]["meterStart"] == 1000
    assert txs[1]["stop"]["meterStop"] == 2000
    assert len(txs[1]["stops"]) == 1
    assert txs[1]["meter_values"][0]["meterValue"][0]["sampledValue"] == sampled
    assert txs[2]["meter_values"] == []
    assert txs[2]["stop"]["transactionId"] == 2
    assert all(len(t["stops"]) == 1 for t in txs.values())


async def test_repeated_start_gets_the_same_transaction_id(csms: TestCsms) -> None:
    async with station(csms) as cp:
        first = await start_tx(cp, meter=10)
        again = await start_tx(cp, meter=10)  # a resend: answer lost, same content
        other = await start_tx(cp, meter=20)
    assert first.transaction_id == again.transaction_id == 1
    assert other.transaction_id == 2
    log = csms.transaction_log()
    assert len(log[1]["starts"]) == 2
    assert log[2]["stop"] is None


async def test_stop_for_unknown_transaction_is_logged_without_start(csms: TestCsms) -> None:
    async with station(csms) as cp:
        await cp.call(
            call.StopTransaction(meter_stop=1, timestamp="2026-11-02T10:11:00Z", transaction_id=99),
            suppress=False,
        )
    assert csms.transaction_log()[99]["start"] is None


async def test_wait_for(csms: TestCsms) -> None:
    async with station(csms) as cp:
        await boot(cp)
        # Already received messages count.
        rec = await csms.wait_for("BootNotification", timeout=1)
        assert rec.station_id == "CP-1"
        assert rec.payload["chargePointVendor"] == "Vendor"
        mark = len(csms.received)

        with pytest.raises(TimeoutError) as info:
            await csms.wait_for("BootNotification", timeout=0.2, after=mark)
        assert "no BootNotification within 0.2 s" in str(info.value)
        assert "(nothing)" in str(info.value)

        with pytest.raises(TimeoutError) as info:
            await csms.wait_for("StopTransaction", timeout=0.2)
        assert "#0 CP-1 BootNotification" in str(info.value)

        waiter = asyncio.create_task(
            csms.wait_for("StartTransaction", lambda r: r.payload["meterStart"] == 7, after=mark)
        )
        await start_tx(cp, meter=6)
        await start_tx(cp, meter=7)
        got = await waiter
        assert got.payload["meterStart"] == 7
        assert csms.received.index(got) == mark + 1


async def test_call_round_trip(csms: TestCsms) -> None:
    async with station(csms) as cp:
        cp.config = {"HeartbeatInterval": "60", "MeterPublicKey1": "abc"}
        answer = await csms.call("CP-1", "GetConfiguration", {"key": ["MeterPublicKey1", "Nope"]})
        assert answer == {
            "configurationKey": [{"key": "MeterPublicKey1", "readonly": False, "value": "abc"}],
            "unknownKey": ["Nope"],
        }
        changed = await csms.call(
            "CP-1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "30"}
        )
        assert changed == {"status": "Accepted"}

        frames = [json.loads(f.text) for f in csms.frames if f.direction == "out"]
        sent = next(f for f in frames if f[0] == 2 and f[2] == "ChangeConfiguration")
        assert sent[3] == {"key": "HeartbeatInterval", "value": "30"}


async def test_call_errors(csms: TestCsms) -> None:
    async with station(csms) as cp:
        with pytest.raises(CallErrorReply) as info:
            await csms.call("CP-1", "UnlockConnector", {"connectorId": 1})
        assert info.value.code == "NotImplemented"

        with pytest.raises(CallErrorReply) as info:
            await csms.call("CP-1", "NoSuchAction", {}, validate=False)
        assert info.value.code == "NotSupported"

        # Our own payload is checked before it is sent.
        before = len(csms.frames)
        with pytest.raises(SchemaViolation):
            await csms.call("CP-1", "UnlockConnector", {"connector": 1})
        assert len(csms.frames) == before

        # The library validates the station's own answers too: an invalid one becomes a
        # CALLERROR unless the handler skips schema validation.
        cp.config = {"HeartbeatInterval": "x" * 600}  # value maxLength is 500
        with pytest.raises(CallErrorReply) as info:
            await csms.call("CP-1", "GetConfiguration", {})
        assert info.value.code == "TypeConstraintViolation"

    async with station(csms, cls=SloppyClient) as cp:
        cp.config = {"HeartbeatInterval": "x" * 600}
        with pytest.raises(SchemaViolation) as violation:
            await csms.call("CP-1", "GetConfiguration", {})
        assert violation.value.what == "response"
        # validate=False hands over whatever came.
        answer = await csms.call("CP-1", "GetConfiguration", {}, validate=False)
        assert len(answer["configurationKey"][0]["value"]) == 600

    with pytest.raises(StationNotConnected):
        await csms.call("CP-1", "GetConfiguration", {})


async def test_call_timeout(csms: TestCsms) -> None:
    class Silent(Client):
        async def route_message(self, raw_msg: str) -> None:
            return None

    async with station(csms, cls=Silent):
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no answer to GetConfiguration"):
            await csms.call("CP-1", "GetConfiguration", {}, timeout=0.2)
        assert time.monotonic() - started < 2


async def test_fail_next(csms: TestCsms) -> None:
    csms.fail_next("Heartbeat", count=2)
    csms.fail_next("StopTransaction", error_code="GenericError")
    async with station(csms) as cp:
        for _ in range(2):
            with pytest.raises(InternalError):
                await cp.call(call.Heartbeat(), suppress=False)
        await cp.call(call.Heartbeat(), suppress=False)

        tx = (await start_tx(cp)).transaction_id
        stop = call.StopTransaction(
            meter_stop=2, timestamp="2026-11-02T10:11:00Z", transaction_id=tx
        )
        with pytest.raises(OCPPError) as info:
            await cp.call(stop, suppress=False)
        assert info.value.code == "GenericError"
        await cp.call(stop, suppress=False)  # the station retries

    assert len(csms.messages("Heartbeat")) == 3
    assert [csms.answered(r) for r in csms.messages("Heartbeat")] == [False, False, True]
    assert [(e.action, e.code) for e in csms.sent_errors] == [
        ("Heartbeat", "InternalError"),
        ("Heartbeat", "InternalError"),
        ("StopTransaction", "GenericError"),
    ]
    assert len(csms.messages("StopTransaction")) == 2
    assert len(csms.transaction_log()[tx]["stops"]) == 1  # the refused one does not count


async def test_schema_violation_by_station_is_answered_and_listed(csms: TestCsms) -> None:
    async with station(csms) as cp:
        # The library client validates its own CALLs, so write the bad frame on its socket.
        payload = {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}
        await cp._connection.send(json.dumps([2, "bad-1", "StatusNotification", payload]))
        await csms.wait_for("StatusNotification")
        for _ in range(100):
            if csms.sent_errors:
                break
            await asyncio.sleep(0.01)
    # The library's "FormatViolation" is sent with OCPP 1.6's spelling.
    assert [(e.unique_id, e.action, e.code) for e in csms.sent_errors] == [
        ("bad-1", "StatusNotification", "FormationViolation")
    ]
    reply = json.loads(next(f.text for f in csms.frames if f.direction == "out"))
    assert reply[:3] == [4, "bad-1", "FormationViolation"]


async def test_delay(csms: TestCsms) -> None:
    csms.delay("Heartbeat", 0.3)
    async with station(csms) as cp:
        started = time.monotonic()
        await cp.call(call.Heartbeat(), suppress=False)
        assert time.monotonic() - started >= 0.3
        csms.delay("Heartbeat", 0)
        started = time.monotonic()
        await cp.call(call.Heartbeat(), suppress=False)
        assert time.monotonic() - started < 0.3


async def test_respond_with(csms: TestCsms) -> None:
    csms.respond_with("Authorize", lambda rec: {"idTagInfo": {"status": "Blocked"}})
    async with station(csms) as cp:
        blocked = await cp.call(call.Authorize(id_tag="TAG1"), suppress=False)
        assert blocked.id_tag_info["status"] == "Blocked"
        csms.respond_with("Authorize", None)
        ok = await cp.call(call.Authorize(id_tag="TAG1"), suppress=False)
        assert ok.id_tag_info["status"] == "Accepted"


async def test_refuse_connections_and_recover(csms: TestCsms) -> None:
    async with station(csms) as cp:
        csms.refuse_connections(True)
        # Open connections stay; an outage is refuse + disconnect.
        await boot(cp)
        await csms.disconnect("CP-1")
        assert not csms.is_connected("CP-1")
        assert await handshake_status(f"{csms.url}/CP-1", subprotocols=OCPP16) == 503
        assert csms.handshakes[-1].status == 503
        assert csms.handshakes[-1].station_id == "CP-1"
    csms.refuse_connections(False)
    async with station(csms):
        assert csms.connection_info("CP-1")["connections"] == 2
        assert csms.handshakes[-1].status == 101


async def test_subprotocol_and_path_are_checked(csms: TestCsms) -> None:
    url = f"{csms.url}/CP-1"
    assert await handshake_status(url) == 400
    assert await handshake_status(url, subprotocols=[Subprotocol("ocpp1.5")]) == 400
    assert await handshake_status(csms.url, subprotocols=OCPP16) == 404
    assert await handshake_status(f"{url}/extra", subprotocols=OCPP16) == 404
    assert not csms.is_connected("CP-1")
    async with station(csms, "CP 1/x"):  # the id is percent-encoded in the URL
        assert csms.is_connected("CP 1/x")
        info = csms.connection_info("CP 1/x")
        assert info["subprotocol"] == "ocpp1.6"
        assert info["basic_auth_user"] is None
        assert info["tls"] is False
    with pytest.raises(KeyError):
        csms.connection_info("never")


async def test_basic_auth() -> None:
    def auth(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async with TestCsms(basic_auth={"CP-1": "s3cret-password-0123"}) as server:
        url = f"{server.url}/CP-1"
        assert await handshake_status(url, subprotocols=OCPP16) == 401
        wrong = auth("CP-1", "wrong")
        assert await handshake_status(url, subprotocols=OCPP16, additional_headers=wrong) == 401
        other_user = auth("CP-2", "s3cret-password-0123")
        assert (
            await handshake_status(url, subprotocols=OCPP16, additional_headers=other_user) == 401
        )
        unknown = auth("CP-9", "s3cret-password-0123")
        assert (
            await handshake_status(
                f"{server.url}/CP-9", subprotocols=OCPP16, additional_headers=unknown
            )
            == 401
        )
        right = auth("CP-1", "s3cret-password-0123")
        async with station(server, additional_headers=right):
            assert server.connection_info("CP-1")["basic_auth_user"] == "CP-1"
        assert [h.status for h in server.handshakes] == [401, 401, 401, 401, 101]


async def test_disconnect_and_reconnect(csms: TestCsms) -> None:
    async with station(csms) as cp:
        await boot(cp)
        await csms.disconnect("CP-1")
        assert not csms.is_connected("CP-1")
        with pytest.raises(ConnectionClosed):
            await cp.call(call.Heartbeat(), suppress=False)
    async with station(csms) as cp:
        await boot(cp)
        await csms.disconnect("CP-1", abrupt=True)
        assert not csms.is_connected("CP-1")
    assert csms.connection_info("CP-1")["connections"] == 2
    assert csms.connection_info("CP-1")["connected"] is False
    await csms.disconnect("CP-1")  # not connected: nothing to do


async def test_a_new_connection_replaces_the_old_one(csms: TestCsms) -> None:
    async with station(csms) as first, station(csms) as second:
        await boot(second)
        for _ in range(100):
            if first._connection.state.name == "CLOSED":
                break
            await asyncio.sleep(0.01)
        assert first._connection.state.name == "CLOSED"
        assert csms.is_connected("CP-1")
        assert (await csms.call("CP-1", "GetConfiguration", {}))["configurationKey"]


async def test_send_raw(csms: TestCsms) -> None:
    async with station(csms):
        # A well-formed CALL: the reply is matched by unique id.
        text = await csms.send_raw("CP-1", '[2,"raw-1","GetConfiguration",{"key":[]}]')
        assert text is not None
        assert json.loads(text)[:2] == [3, "raw-1"]
        # An unknown action: the library answers with NotSupported.
        text = await csms.send_raw("CP-1", '[2,"raw-2","NoSuchAction",{}]')
        assert text is not None
        assert json.loads(text)[:3] == [4, "raw-2", "NotSupported"]
        # A payload that fails the schema.
        text = await csms.send_raw("CP-1", '[2,"raw-3","ChangeConfiguration",{"key":1}]')
        assert text is not None
        assert json.loads(text)[:3] == [4, "raw-3", "TypeConstraintViolation"]
        # Frames the library cannot parse get no answer from it at all.
        assert await csms.send_raw("CP-1", "this is not json", timeout=0.3) is None
        assert await csms.send_raw("CP-1", '[2,"raw-4","Reset"]', timeout=0.3) is None
        assert await csms.send_raw("CP-1", '[7,"raw-5"]', timeout=0.3) is None
        assert csms.is_connected("CP-1")

    async with station(csms, cls=StrictClient):
        text = await csms.send_raw("CP-1", "this is not json")
        assert text is not None
        assert json.loads(text)[:3] == [4, "-1", "FormationViolation"]


async def test_listener_and_received_records(csms: TestCsms) -> None:
    seen: list[Received] = []
    csms.add_listener(seen.append)
    async with station(csms) as cp:
        await boot(cp)
    assert seen == csms.received
    rec = seen[0]
    assert rec.action == "BootNotification"
    assert rec.unique_id
    assert rec.at <= time.monotonic()


async def test_tls_with_client_certificate(tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path / "pki", station_id="CP-1")
    server = TestCsms(
        ssl_context=pki.server_context(require_client_cert=True), require_client_cert=True
    )
    async with server:
        assert server.url.startswith("wss://127.0.0.1:")
        async with station(server, ssl=pki.client_context(with_client_cert=True)):
            info = server.connection_info("CP-1")
            assert info["tls"] is True
            assert info["client_cert_cn"] == "CP-1"
            assert "CN=CP-1" in info["client_cert_subject"]
        # TLS 1.3: the client finishes its handshake first, then the server drops it.
        with pytest.raises((ssl.SSLError, ConnectionError, InvalidHandshake)):
            async with station(server, ssl=pki.client_context(with_client_cert=False)):
                pass


async def test_tls_server_only(tmp_path: Path) -> None:
    pki = generate_test_pki(tmp_path / "pki")
    async with TestCsms(ssl_context=pki.server_context()) as server:
        async with station(server, ssl=pki.client_context()):
            info = server.connection_info("CP-1")
            assert info["tls"] is True
            assert info["client_cert_subject"] is None
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(
                f"{server.url}/CP-1", subprotocols=OCPP16, ssl=ssl.create_default_context()
            )


async def test_command_prints_json_lines() -> None:
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
        "--boot-status",
        "Pending",
        "--heartbeat-interval",
        "7",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        banner = await asyncio.wait_for(proc.stderr.readline(), 20)
        assert f"ws://127.0.0.1:{port}/ocpp" in banner.decode()
        url = f"ws://127.0.0.1:{port}/ocpp/CP-7"
        async with connect(url, subprotocols=OCPP16) as ws:
            cp = Client("CP-7", ws)
            reader = asyncio.create_task(cp.start())
            booted = await boot(cp)
            reader.cancel()
        assert (booted.status, booted.interval) == ("Pending", 7)
        line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        assert line["station"] == "CP-7"
        assert line["action"] == "BootNotification"
        assert line["payload"]["chargePointVendor"] == "Vendor"
        utc(line["time"])
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0


async def test_a_failing_custom_answer_is_an_internal_error(csms: TestCsms) -> None:
    def broken(rec: Received) -> dict[str, Any]:
        raise RuntimeError("boom")

    csms.respond_with("Heartbeat", broken)
    async with station(csms) as cp:
        with pytest.raises(InternalError):
            await cp.call(call.Heartbeat(), suppress=False)
        assert csms.is_connected("CP-1")
    assert [e.code for e in csms.sent_errors] == ["InternalError"]


async def test_start_and_stop_are_idempotent() -> None:
    server = TestCsms()
    port = await server.start()
    assert server.url == f"ws://127.0.0.1:{port}/ocpp"
    with pytest.raises(RuntimeError):
        await server.start()
    await server.stop()
    await server.stop()


@pytest.mark.parametrize(
    ("version", "action", "code"),
    [
        ("1.6", "RemoteStartTransaction", "NotImplemented"),  # a 1.6 action, not the CSMS's
        ("1.6", "NoSuchAction", "NotSupported"),
        ("1.6", "TransactionEvent", "NotSupported"),  # 2.0.1 only
        ("2.0.1", "RequestStartTransaction", "NotImplemented"),
        ("2.0.1", "StartTransaction", "NotSupported"),  # 1.6 only
    ],
)
async def test_a_call_the_csms_has_no_handler_for_gets_its_callerror(
    csms: TestCsms, version: str, action: str, code: str
) -> None:
    """OCPP-J: an action of the version that nobody handles is NotImplemented, one the
    version does not have is NotSupported; the connection stays up."""
    protocol = Subprotocol("ocpp1.6" if version == "1.6" else "ocpp2.0.1")
    async with connect(f"{csms.url}/CP-RAW", subprotocols=[protocol]) as ws:
        await ws.send(json.dumps([2, "u-1", action, {}]))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert reply[:3] == [4, "u-1", code], reply
        assert action in reply[4]["cause"]
        await ws.send(json.dumps([2, "u-2", "Heartbeat", {}]))
        again = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert again[:2] == [3, "u-2"] and "currentTime" in again[2]
