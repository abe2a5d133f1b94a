"""Local list, authorization cache, offline authorization and reservations against the
schema-validating test CSMS, on OCPP 1.6J and 2.0.1: what a driver presenting a card is told
while the CSMS is there and while it is gone (connection closed, reconnects refused), and what
the CSMS receives afterwards (each start and end once, with the offline times, the signed
values and the reservation used)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chargepoint.testcsms.authorization import ListItem, TagAnswer
from tests.authorization_env import (
    go_offline,
    go_online,
    id_tag_of_start,
    in_seconds,
    present,
    reservation_id_of,
    set_setting,
    set_variable,
    start_messages,
    status,
    wait_connector,
)
from tests.ocpp_views import VIEWS, View201
from tests.station_env import Env, check_signed_pair, running_env
from tests.station_harness import STATION_ID, wait_until


@pytest.fixture(params=list(VIEWS))
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env(request.param, tmp_path) as e:
        yield e


async def charging(env: Env, connector: int = 1) -> None:
    async def started() -> bool:
        c = (await status(env))["connectors"][connector - 1]
        return bool(c["transaction"] and c["transaction"]["charging"])

    for _ in range(300):
        if await started():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no session charging on connector {connector}")


async def idle(env: Env, connector: int = 1) -> None:
    """The session ended and the (simulated) EV left."""
    for _ in range(300):
        c = (await status(env))["connectors"][connector - 1]
        if c["transaction"] is None and c["status"] in ("Available", "Reserved"):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"connector {connector} still has a session")


# ---- SendLocalList / GetLocalListVersion ---------------------------------------------------


async def test_local_list_full_differential_version_rules_and_disabled(env: Env) -> None:
    await env.start()
    csms = env.csms
    assert await csms.get_local_list_version(STATION_ID) == 0  # empty
    full = [ListItem("A"), ListItem("B", TagAnswer("Blocked")), ListItem("C", TagAnswer())]
    assert (await csms.send_local_list(STATION_ID, 1, full))["status"] == "Accepted"
    assert await csms.get_local_list_version(STATION_ID) == 1
    same = await csms.send_local_list(STATION_ID, 1, [ListItem("D")], full=False)
    assert same["status"] == "VersionMismatch"
    diff = [ListItem("D"), ListItem("A", None)]  # add D, delete A
    assert (await csms.send_local_list(STATION_ID, 2, diff, full=False))["status"] == "Accepted"
    twice = [ListItem("E"), ListItem("e")]
    assert (await csms.send_local_list(STATION_ID, 3, twice))["status"] == "Failed"
    data = await status(env)
    assert data["local_list"] == {"enabled": True, "version": 2, "entries": 3}
    await set_setting(env, "LocalAuthListEnabled", "false")
    version = await csms.get_local_list_version(STATION_ID)
    answer = await csms.send_local_list(STATION_ID, 4, [ListItem("F")])
    if env.version == "1.6":
        assert version == -1 and answer["status"] == "NotSupported"
    else:
        assert version == 0 and answer["status"] == "Failed"


# ---- offline: local list, unknown ids ------------------------------------------------------


async def test_offline_local_list_hit_blocked_and_unknown(env: Env) -> None:
    await env.start()
    key = await env.view.meter_key(1)
    items = [ListItem("GOOD"), ListItem("BAD", TagAnswer("Blocked"))]
    assert (await env.csms.send_local_list(STATION_ID, 1, items))["status"] == "Accepted"
    await go_offline(env)
    assert await present(env, "BAD", 1) == (409, "rejected: blocked in local list")
    code, text = await present(env, "UNKNOWN-9", 1)
    assert (code, text) == (409, "rejected: not in local list and offline unknown ids not allowed")
    code, text = await present(env, "good", 1)  # case-insensitive
    assert code == 200 and "local list (version 1)" in text, text
    await charging(env)
    offline_until = datetime.now(UTC)
    await asyncio.sleep(0.3)
    assert (await present(env, "good"))[0] == 200  # the same card stops it
    await idle(env)
    assert not env.view.starts()
    back_at = datetime.now(UTC)
    await go_online(env)
    session = await env.view.wait_ended(timeout=20)
    await env.outbox_drained()
    check_signed_pair(session, key, "good")
    assert len(env.view.starts()) == 1 and len(env.view.ends()) == 1  # exactly once
    # the times are those of the offline start and stop, not of the delivery
    assert _time(env.view.starts()[0].payload["timestamp"]) < offline_until
    assert _time(env.view.ends()[0].payload["timestamp"]) < back_at
    if env.version == "2.0.1":
        assert all(p["offline"] is True for p in session.payloads), session.payloads
    assert not env.csms.messages("Authorize")  # decided locally, never asked afterwards


async def test_offline_unknown_allowed_then_rejected_by_the_csms_ends_the_session(
    env: Env,
) -> None:
    env.csms.accept_id_tags = {"GOOD"}
    await env.start(ocpp={"allow_offline_tx_for_unknown_id": True})
    key = await env.view.meter_key(1)
    await go_offline(env)
    code, text = await present(env, "STRANGER", 1)
    assert code == 200 and "unknown id allowed" in text, text
    await charging(env)
    await asyncio.sleep(0.3)
    await go_online(env)
    session = await env.view.wait_ended(timeout=20)  # StopTransactionOnInvalidId (default)
    assert session.reason == env.view.reasons["DeAuthorized"]
    check_signed_pair(session, key, "STRANGER")
    await env.outbox_drained()
    assert len(env.view.starts()) == 1 and len(env.view.ends()) == 1


async def test_offline_unknown_rejected_later_keeps_the_session_suspended(env: Env) -> None:
    env.csms.accept_id_tags = {"GOOD"}
    await env.start(
        ocpp={"allow_offline_tx_for_unknown_id": True, "stop_transaction_on_invalid_id": False}
    )
    await go_offline(env)
    assert (await present(env, "STRANGER", 1))[0] == 200
    await charging(env)
    await go_online(env)
    await wait_connector(env, 1, "SuspendedEVSE")
    data = await status(env)
    connector = data["connectors"][0]
    assert connector["load_released"] is False and connector["transaction"] is not None
    await asyncio.sleep(0.3)
    assert not env.view.ends()  # kept open, energy stopped
    assert (await present(env, "STRANGER"))[0] == 200
    await env.view.wait_ended(timeout=20)


async def test_max_energy_on_invalid_id_charges_on_up_to_the_limit(env: Env) -> None:
    if env.version == "1.6":
        pytest.skip("TxCtrlr.MaxEnergyOnInvalidId is OCPP 2.0.1")
    env.csms.accept_id_tags = {"GOOD"}
    await env.start(
        ocpp={"allow_offline_tx_for_unknown_id": True, "stop_transaction_on_invalid_id": False},
        ev={"power_w": 36000},  # 10 Wh a second
    )
    await set_variable(env, "TxCtrlr", "MaxEnergyOnInvalidId", "30")
    await go_offline(env)
    assert (await present(env, "STRANGER", 1))[0] == 200
    await charging(env)
    await go_online(env)
    await wait_connector(env, 1, "SuspendedEVSE", timeout=20)
    connector = (await status(env))["connectors"][0]
    assert connector["load_released"] is False
    assert env.daemon.station is not None
    reading = await env.daemon.station.read_meter(1)
    assert reading, "a fresh reading"
    tx = connector["transaction"]
    delivered = int(reading[0]["value"]) - int(tx["meter_start_wh"])
    assert delivered >= 30, delivered  # charged on up to MaxEnergyOnInvalidId
    assert not env.view.ends()


# ---- the authorization cache ---------------------------------------------------------------


async def test_cache_hit_offline_and_refused_after_its_expiry(env: Env) -> None:
    env.csms.tag_answers["CACHED"] = TagAnswer("Accepted", expiry=in_seconds(4))
    await env.start(ocpp={"allow_offline_tx_for_unknown_id": True})
    assert (await present(env, "CACHED", 1))[0] == 200  # online: Authorize, cached
    await charging(env)
    assert (await present(env, "CACHED"))[0] == 200
    await idle(env)
    await env.outbox_drained()
    await go_offline(env)
    code, text = await present(env, "CACHED", 1)
    assert code == 200 and "authorization cache" in text, text
    await charging(env)
    assert (await present(env, "CACHED"))[0] == 200
    await idle(env)
    await wait_until(lambda: datetime.now(UTC) > _expiry(env), timeout=10, what="expiry")
    code, text = await present(env, "CACHED", 1)
    assert (code, text) == (409, "rejected: expired in the authorization cache")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _expiry(env: Env) -> datetime:
    expiry = env.csms.tag_answers["CACHED"].expiry
    assert expiry is not None
    return datetime.fromisoformat(expiry.replace("Z", "+00:00"))


async def test_online_local_pre_authorize_starts_from_the_list_without_authorize(
    env: Env,
) -> None:
    env.csms.tag_answers["LISTED-BLOCKED"] = TagAnswer("Accepted")
    await env.start(ocpp={"local_pre_authorize": True})
    items = [ListItem("LISTED"), ListItem("LISTED-BLOCKED", TagAnswer("Blocked"))]
    await env.csms.send_local_list(STATION_ID, 1, items)
    code, text = await present(env, "LISTED", 1)
    assert code == 200 and "local list" in text, text
    await charging(env)
    assert not env.csms.messages("Authorize")  # no Authorize for a valid list entry
    # a list entry that is not valid is asked for online (the CSMS may have changed it)
    code, text = await present(env, "LISTED-BLOCKED", 2)
    assert code == 200 and "CSMS" in text, text
    assert len(env.csms.messages("Authorize")) == 1


async def test_authorize_remote_tx_requests_authorizes_a_remote_start(env: Env) -> None:
    env.csms.tag_answers["BLOCKED-REMOTE"] = TagAnswer("Blocked")
    await env.start(ocpp={"authorize_remote_tx_requests": True})
    assert await env.view.remote_start(1, "BLOCKED-REMOTE") == "Accepted"
    await env.csms.wait_for("Authorize", timeout=10)
    await asyncio.sleep(0.5)
    assert not env.view.starts()
    await set_setting(env, "AuthorizeRemoteTxRequests", "false")
    assert await env.view.remote_start(1, "BLOCKED-REMOTE") == "Accepted"
    await env.view.wait_started()
    assert len(env.csms.messages("Authorize")) == 1


async def test_a_card_of_the_same_group_stops_the_session(env: Env) -> None:
    env.csms.tag_answers.update(
        {
            "ALICE": TagAnswer(parent="FLEET"),
            "BOB": TagAnswer(parent="FLEET"),
            "MALLORY": TagAnswer(parent="OTHER"),
        }
    )
    await env.start()
    assert (await present(env, "ALICE", 1))[0] == 200
    await env.view.wait_started()
    code, text = await present(env, "MALLORY", 1)
    assert code == 409 and "may not stop this session" in text, text
    code, text = await present(env, "BOB", 1)
    assert code == 200 and "same group" in text, text
    session = await env.view.wait_ended()
    assert session.reason == env.view.reasons["Local"]


# ---- reservations --------------------------------------------------------------------------


async def test_reservation_refuses_other_cards_and_the_reserved_card_uses_it(env: Env) -> None:
    await env.start()
    csms = env.csms
    assert await csms.reserve_now(STATION_ID, 1, "ALICE", in_seconds(600), connector=1) == (
        "Accepted"
    )
    await env.view.wait_status(1, "Reserved")
    data = await status(env)
    assert [(r["id"], r["connector"], r["id_tag"]) for r in data["reservations"]] == [
        (1, 1, "ALICE")
    ]
    code, text = await present(env, "BOB", 1)
    assert code == 409 and text.startswith("rejected: reserved for another card until "), text
    code, text = await present(env, "BOB")  # no connector named: the free one
    assert code == 200 and "connector 2" in text, text
    code, text = await present(env, "ALICE")
    assert code == 200 and "connector 1" in text and "reservation 1" in text, text
    await wait_until(lambda: len(start_messages(env)) == 2, timeout=15, what="two starts")
    by_tag = {id_tag_of_start(r): reservation_id_of(r) for r in start_messages(env)}
    assert by_tag == {"BOB": None, "ALICE": 1}
    assert (await status(env))["reservations"] == []  # used
    assert await csms.cancel_reservation(STATION_ID, 1) == "Rejected"


async def test_a_reserved_card_of_the_group_uses_the_reservation(env: Env) -> None:
    env.csms.tag_answers["CAROL"] = TagAnswer(parent="FLEET")
    await env.start()
    status_ = await env.csms.reserve_now(
        STATION_ID, 2, "ALICE", in_seconds(600), connector=1, group="FLEET"
    )
    assert status_ == "Accepted"
    code, text = await present(env, "CAROL", 1)
    assert code == 200 and "reservation 2" in text, text
    start = (await env.view.wait_started()).payloads[0]
    assert start.get("reservationId") == 2


async def test_reservation_cancel_and_expiry_free_the_connector(env: Env) -> None:
    await env.start()
    csms = env.csms
    assert await csms.reserve_now(STATION_ID, 3, "A", in_seconds(1.5), connector=1) == "Accepted"
    assert await csms.reserve_now(STATION_ID, 4, "B", in_seconds(600), connector=2) == "Accepted"
    assert await csms.reserve_now(STATION_ID, 5, "C", in_seconds(600), connector=2) == "Occupied"
    await env.view.wait_status(2, "Reserved")
    assert await csms.cancel_reservation(STATION_ID, 4) == "Accepted"
    assert await csms.cancel_reservation(STATION_ID, 99) == "Rejected"
    await wait_connector(env, 2, "Available")
    await wait_connector(env, 1, "Available", timeout=10)  # expired
    statuses = env.view.statuses(1)
    assert statuses[-2:] == ["Reserved", "Available"], statuses
    if env.version == "2.0.1":
        await wait_until(lambda: bool(csms.reservation_updates(STATION_ID)), what="update")
        await asyncio.sleep(0.3)
        assert csms.reservation_updates(STATION_ID) == [(3, "Expired")]  # not the cancelled
    assert (await status(env))["reservations"] == []


async def test_reservations_for_any_connector_keep_a_connector_each(env: Env) -> None:
    await env.start()
    csms = env.csms
    assert await csms.reserve_now(STATION_ID, 6, "ALICE", in_seconds(600)) == "Accepted"
    assert await csms.reserve_now(STATION_ID, 7, "CAROL", in_seconds(600)) == "Accepted"
    assert await csms.reserve_now(STATION_ID, 8, "DAVE", in_seconds(600)) == "Occupied"
    await env.view.wait_status(1, "Reserved")  # N reservations on N connectors
    await env.view.wait_status(2, "Reserved")
    code, text = await present(env, "BOB")
    assert code == 409 and "reserved for other cards" in text, text
    code, text = await present(env, "ALICE")
    assert code == 200 and "reservation 6" in text, text
    start = (await env.view.wait_started()).payloads[0]
    assert start.get("reservationId") == 6
    assert [r["id"] for r in (await status(env))["reservations"]] == [7]


async def test_remote_start_on_a_reserved_connector(env: Env) -> None:
    await env.start()
    assert await env.csms.reserve_now(STATION_ID, 9, "ALICE", in_seconds(600), connector=1) == (
        "Accepted"
    )
    assert await env.view.remote_start(1, "BOB") == "Rejected"
    assert await env.view.remote_start(1, "ALICE") == "Accepted"
    start = (await env.view.wait_started()).payloads[0]
    assert start.get("reservationId") == 9


async def test_a_faulted_connector_ends_its_reservation(env: Env) -> None:
    await env.start()
    assert await env.csms.reserve_now(STATION_ID, 10, "A", in_seconds(600), connector=1) == (
        "Accepted"
    )
    await env.control("POST", "/connectors/1/fault", {"info": "RCM tripped"})
    await env.view.wait_status(1, env.view.faulted)
    station = env.daemon.station
    assert station is not None
    await wait_until(lambda: not station.reservations.active(), what="removed")
    if env.version == "2.0.1":
        await wait_until(
            lambda: env.csms.reservation_updates(STATION_ID) == [(10, "Removed")],
            what="ReservationStatusUpdate Removed",
        )


async def test_the_configuration_shows_the_profiles_and_their_limits(env: Env) -> None:
    await env.start()
    items = [ListItem("A"), ListItem("B")]
    assert (await env.csms.send_local_list(STATION_ID, 1, items))["status"] == "Accepted"
    if env.version == "1.6":
        answer = await env.view.call("GetConfiguration", {})
        keys = {k["key"]: k for k in answer["configurationKey"]}
        profiles = keys["SupportedFeatureProfiles"]["value"].split(",")
        assert {"LocalAuthListManagement", "Reservation"} <= set(profiles)
        assert keys["LocalAuthListEnabled"] == {
            "key": "LocalAuthListEnabled",
            "readonly": False,
            "value": "true",
        }
        assert keys["LocalAuthListMaxLength"]["readonly"] is True
        assert keys["SendLocalListMaxLength"]["value"] == "10000"
        assert keys["ReserveConnectorZeroSupported"]["value"] == "true"
        return
    view = env.view
    assert isinstance(view, View201)
    entries = await view.get_variable({"name": "LocalAuthListCtrlr"}, "Entries")
    assert entries["attributeValue"] == "2"
    per_message = await view.get_variable({"name": "LocalAuthListCtrlr"}, "ItemsPerMessage")
    assert per_message["attributeValue"] == "10000"
    any_evse = await view.get_variable({"name": "ReservationCtrlr"}, "NonEvseSpecific")
    assert any_evse["attributeValue"] == "true"
    await set_variable(env, "ReservationCtrlr", "Enabled", "false")
    assert await env.csms.reserve_now(STATION_ID, 1, "A", in_seconds(60), connector=1) == (
        "Rejected"
    )
    await set_setting(env, "AuthorizationCacheEnabled", "false")
    assert (await view.call("ClearCache", {}))["status"] == "Rejected"
