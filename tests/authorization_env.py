"""Helpers for the authorization tests: the station against the test CSMS, on OCPP 1.6J and
2.0.1, with the version's way of changing a setting, of naming the reservation a start used,
and of taking the CSMS away (connection closed, reconnects refused) and bringing it back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from chargepoint.testcsms import Received
from tests.station_env import Env
from tests.station_harness import STATION_ID, wait_until

# 1.6 key -> 2.0.1 (component, variable) that changes the same setting
VARIABLES_201: dict[str, tuple[str, str]] = {
    "LocalPreAuthorize": ("AuthCtrlr", "LocalPreAuthorize"),
    "LocalAuthorizeOffline": ("AuthCtrlr", "LocalAuthorizeOffline"),
    "AllowOfflineTxForUnknownId": ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
    "AuthorizeRemoteTxRequests": ("AuthCtrlr", "AuthorizeRemoteStart"),
    "AuthorizationCacheEnabled": ("AuthCacheCtrlr", "Enabled"),
    "LocalAuthListEnabled": ("LocalAuthListCtrlr", "Enabled"),
    "StopTransactionOnInvalidId": ("TxCtrlr", "StopTxOnInvalidId"),
}


def in_seconds(seconds: float) -> str:
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def set_setting(env: Env, key: str, value: str) -> None:
    """Change a setting through the CSMS, as the version does it."""
    if env.version == "1.6":
        answer = await env.view.call("ChangeConfiguration", {"key": key, "value": value})
        assert answer["status"] == "Accepted", (key, answer)
        return
    component, variable = VARIABLES_201.get(key, (None, None))
    assert component is not None and variable is not None, key
    await set_variable(env, component, variable, value)


async def set_variable(env: Env, component: str, variable: str, value: str) -> None:
    answer = await env.view.call(
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": component},
                    "variable": {"name": variable},
                    "attributeValue": value,
                }
            ]
        },
    )
    result = answer["setVariableResult"][0]
    assert result["attributeStatus"] == "Accepted", result


async def go_offline(env: Env) -> None:
    env.csms.refuse_connections(True)
    await env.csms.disconnect(STATION_ID)
    await wait_until(
        lambda: env.daemon.adapter is not None and not env.daemon.adapter.accepted.is_set(),
        what="the station offline",
    )


async def go_online(env: Env) -> None:
    env.csms.refuse_connections(False)
    await env.csms.wait_connected(STATION_ID, timeout=20)
    await wait_until(
        lambda: env.daemon.adapter is not None and env.daemon.adapter.accepted.is_set(),
        timeout=20,
        what="an accepted boot",
    )


async def present(env: Env, id_tag: str, connector: int | None = None) -> tuple[int, str]:
    """A card at the station: the control interface's code and answer."""
    body: dict[str, Any] = {"id_tag": id_tag}
    if connector is not None:
        body["connector"] = connector
    code, answer = await env.control("POST", "/id-tag", body)
    return code, str(answer.get("result") or answer.get("error"))


async def status(env: Env) -> dict[str, Any]:
    _, data = await env.control("GET", "/status")
    return data


async def connector_status(env: Env, connector: int) -> str:
    data = await status(env)
    return str(next(c for c in data["connectors"] if c["id"] == connector)["status"])


async def wait_connector(env: Env, connector: int, wanted: str, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        now = await connector_status(env, connector)
        if now == wanted:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"connector {connector} is {now}, not {wanted}")
        await asyncio.sleep(0.05)


def start_messages(env: Env) -> list[Received]:
    """1.6 StartTransaction / 2.0.1 TransactionEvent Started."""
    return env.view.starts()


def reservation_id_of(rec: Received) -> int | None:
    """The reservationId a start carried (both versions put it at the top level)."""
    value = rec.payload.get("reservationId")
    return int(value) if value is not None else None


def id_tag_of_start(rec: Received) -> str:
    if "idTag" in rec.payload:
        return str(rec.payload["idTag"])
    return str(rec.payload["idToken"]["idToken"])
