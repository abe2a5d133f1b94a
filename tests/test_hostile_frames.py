"""Hostile frames from a CSMS on loopback, both OCPP versions: JSON nested deeper than Python's
parser can follow, frames over the size limit, and floods of invalid frames. The station
answers or drops each with a reason it logs, keeps its connection where it can, reconnects where
it cannot, and never puts more than a few lines a minute about bad frames into its log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.csms import session as csms_session
from chargepoint.testcsms import TestCsms
from tests.ocpp_views import VIEWS
from tests.station_env import Env, running_env
from tests.station_harness import STATION_ID, wait_until

FORMAT_ERROR = {"1.6": "FormationViolation", "2.0.1": "FormatViolation"}
LIMIT_LOG = "CSMS sent a frame over {} bytes: connection closed by the station"


def _reply_id(data: str | bytes) -> str | None:
    """The message id a reply to `data` carries, when the test can read one (None: any
    CALLERROR is the reply)."""
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if isinstance(frame, list) and len(frame) >= 2 and isinstance(frame[1], str):
        return frame[1]
    return None


async def exchange(
    csms: TestCsms, data: str | bytes, *, times: int = 1, timeout: float = 5
) -> list[list[Any]]:
    """Send `data` to the station as it is (a text frame, or a binary frame for bytes), `times`
    times back to back, on the test CSMS's own socket (its `send_raw` parses what it sends);
    the station's CALLRESULT/CALLERROR frames answering it, up to `times`, in order of arrival
    ([] when none came within `timeout`; 0: do not wait)."""
    connection = csms._session(STATION_ID).connection
    start = len(csms.frames)
    for _ in range(times):
        await connection.send(data)
    unique_id = _reply_id(data)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    replies: list[list[Any]] = []
    while timeout > 0:
        replies = []
        for frame in csms.frames[start:]:
            if frame.direction != "in" or frame.station_id != STATION_ID:
                continue
            parsed = json.loads(frame.text)
            if not (isinstance(parsed, list) and parsed[:1] in ([3], [4])):
                continue
            if parsed[1] == unique_id or (unique_id is None and parsed[0] == 4):
                replies.append(parsed)
        if len(replies) >= times or loop.time() > deadline:
            break
        await asyncio.sleep(0.001)
    return replies[:times]


def nested_call(depth: int, unique_id: str = "deep-1") -> str:
    """A DataTransfer CALL whose data is `depth` nested arrays (2 bytes a level)."""
    action = "DataTransfer"
    return f'[2,"{unique_id}","{action}",{{"vendorId":"x","data":{"[" * depth}{"]" * depth}}}]'


@pytest.fixture(params=list(VIEWS))
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    csms_session.FRAME_LOG_BUDGET.reset()
    async with running_env(request.param, tmp_path) as e:
        yield e
    csms_session.FRAME_LOG_BUDGET.reset()


async def station_still_works(env: Env) -> None:
    answer = await env.csms.call(STATION_ID, "TriggerMessage", {"requestedMessage": "Heartbeat"})
    assert answer["status"] == "Accepted"
    await env.csms.wait_for("Heartbeat", timeout=10)


@pytest.mark.parametrize("depth", [200_000, 5_000, 990, 300])
async def test_deeply_nested_json_is_refused_and_the_connection_kept(
    env: Env, depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    await env.start()
    connection = env.csms._session(STATION_ID).connection
    frame = nested_call(depth)
    assert depth < 1000 or len(frame) > 2 * depth  # 200,000 levels: 400 kB
    replies = await exchange(env.csms, frame)
    assert replies, f"no answer to a CALL nested {depth} levels deep"
    reply = replies[0]
    assert reply[1] == "deep-1", reply
    if depth >= 5_000:
        assert reply[0] == 4 and reply[2] == FORMAT_ERROR[env.version], reply
    # the same connection, still answering
    assert env.csms._session(STATION_ID).connection is connection
    assert not any("connection lost" in r.getMessage() for r in caplog.records)
    await station_still_works(env)
    assert env.csms._session(STATION_ID).connection is connection


async def test_nesting_without_a_readable_message_id_is_answered_with_minus_one(
    env: Env,
) -> None:
    await env.start()
    replies = await exchange(env.csms, "[" * 100_000)
    assert replies and replies[0][:3] == [4, "-1", FORMAT_ERROR[env.version]], replies
    await station_still_works(env)


async def test_a_frame_over_the_limit_is_logged_and_the_station_reconnects(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    limit = 64 * 1024
    await env.start(csms={"max_frame_bytes": limit, "reconnect_max_delay": 1.0})
    text = f'[2,"big-1","DataTransfer",{{"vendorId":"x","data":"{"x" * (limit - 100)}"}}]'
    assert len(text) <= limit
    replies = await exchange(env.csms, text)
    assert replies and replies[0][1] == "big-1", "a frame within the limit is answered"
    boots = len(env.csms.messages("BootNotification"))
    big = f'[2,"big-2","DataTransfer",{{"vendorId":"x","data":"{"x" * limit}"}}]'
    assert await exchange(env.csms, big, timeout=2) == []
    await wait_until(
        lambda: any(LIMIT_LOG.format(limit) in r.getMessage() for r in caplog.records),
        timeout=5,
        what="a log line naming the size limit",
    )
    await wait_until(
        lambda: len(env.csms.messages("BootNotification")) > boots,
        timeout=15,
        what="a reconnection",
    )
    await env.csms.wait_connected(STATION_ID)
    await station_still_works(env)


async def test_the_default_limit_is_one_mebibyte_and_logged(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    await env.start(csms={"reconnect_max_delay": 1.0})
    big = "[" + " " * 2**20 + "]"
    assert await exchange(env.csms, big, timeout=2) == []
    await wait_until(
        lambda: any(LIMIT_LOG.format(2**20) in r.getMessage() for r in caplog.records),
        timeout=5,
        what="a log line naming the size limit",
    )


BAD_FRAMES = {
    # schema violations the library answers (it used to log each with a traceback), frames
    # that are no OCPP-J, unknown actions
    "1.6": [
        '[2,"bad-{n}","ChangeAvailability",{{"connectorId":"one","type":"Operative"}}]',
        '[2,"bad-{n}","UnlockConnector",{{}}]',
        "{{{{ {n}",
        '[2,"bad-{n}","Nonsense{n}",{{}}]',
    ],
    "2.0.1": [
        '[2,"bad-{n}","ChangeAvailability",{{"operationalStatus":{n}}}]',
        '[2,"bad-{n}","UnlockConnector",{{}}]',
        "{{{{ {n}",
        '[2,"bad-{n}","Nonsense{n}",{{}}]',
    ],
}
FRAME_LOGGERS = (
    "chargepoint.ocpp",
    "chargepoint.csms.ocpp201",
    "chargepoint.csms.frames",
)


async def test_bad_frames_log_one_line_each_rate_limited(
    env: Env, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = csms_session.FRAME_LOG_BUDGET
    monkeypatch.setattr(budget, "per_window", 10)
    monkeypatch.setattr(budget, "window_s", 2.0)
    await env.start()
    caplog.clear()
    caplog.set_level(logging.WARNING)
    budget.reset()
    sent = 40
    for n in range(sent):
        pattern = BAD_FRAMES[env.version][n % 4]
        replies = await exchange(env.csms, pattern.format(n=n))
        assert replies and replies[0][0] == 4, pattern
    await asyncio.sleep(budget.window_s + 0.5)  # the window ends: the summary line

    lines = [r for r in caplog.records if r.name.startswith(FRAME_LOGGERS)]
    for record in lines:
        assert record.exc_info is None and not record.exc_text, record.getMessage()
        assert "Traceback" not in record.getMessage()
        assert "\n" not in record.getMessage()
    summaries = [r for r in lines if "more log lines about bad frames" in r.getMessage()]
    kept = [r for r in lines if r not in summaries]
    assert len(kept) == 10, [r.getMessage() for r in kept]
    assert len(summaries) == 1, [r.getMessage() for r in lines]
    suppressed = int(summaries[0].getMessage().split()[1])
    assert suppressed == sent - len(kept)
    await station_still_works(env)


async def test_a_refused_authorization_key_stays_out_of_the_log(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    if env.version != "1.6":
        pytest.skip("1.6's AuthorizationKey (2.0.1's BasicAuthPassword: tests/test_security_*)")
    await env.start()
    caplog.set_level(logging.INFO)
    secret = "SECRET-" + "k" * 600  # over the 500 characters the schema allows
    frame = json.dumps(
        [2, "key-1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": secret}]
    )
    replies = await exchange(env.csms, frame)
    assert replies and replies[0][0] == 4, replies
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(FRAME_LOGGERS) or (r.name == "ocpp" and r.levelno >= logging.WARNING)
    ]  # (the library's own logger, which the station used before; the test CSMS's at INFO)
    assert any("Error while handling request" in line for line in logged), logged
    assert not any("SECRET-" in line for line in logged), logged
