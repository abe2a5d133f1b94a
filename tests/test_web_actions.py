"""The operator's actions from the web page reach the daemon through the control interface:
stop a session, take a connector out of service (after its session) and back, unlock (the
session there ends with reason UnlockCommand)."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from chargepoint.web.app import build_app
from tests.station_env import running_env
from tests.test_web_support import PASSWORD, station_config, web_state


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match is not None, html
    return match.group(1)


async def test_operator_actions_reach_the_daemon(tmp_path: Path) -> None:
    async with running_env("1.6", tmp_path) as env:
        await env.start(connectors=2)
        state = web_state(station_config(tmp_path / "station.yaml"))
        try:
            async with TestClient(TestServer(build_app(state))) as client:
                token = csrf_of(await (await client.get("/login")).text())
                await client.post("/login", data={"csrf": token, "password": PASSWORD})
                token = csrf_of(await (await client.get("/")).text())

                async def act(connector: int, action: str) -> str:
                    response = await client.post(
                        f"/connectors/{connector}/{action}", data={"csrf": token}
                    )
                    html = await response.text()  # redirected to the status page
                    flash = re.search(r'<p class="flash" role="status">([^<]*)</p>', html)
                    assert flash is not None, html
                    return flash.group(1)

                assert await env.view.remote_start(1, "DRIVER-1") == "Accepted"
                await env.view.wait_started(1)
                assert "out of service once its session has ended" in await act(1, "unavailable")
                assert "refused: no session on connector 2" in await act(2, "stop")
                assert "unlocked (no session was open)" in await act(2, "unlock")
                assert "being stopped" in await act(1, "unlock")
                ended = await env.view.wait_ended(1)
                stop = next(r for r in env.csms.received if r.action == "StopTransaction")
                assert stop.payload["reason"] == "UnlockCommand" and ended.ends == 1
                await env.view.wait_status(1, "Unavailable")  # the scheduled change, after it
                assert ": done" in await act(1, "available")
                await env.view.wait_status(1, "Available")
                _, status = await env.control("GET", "/status")
                assert [c["operative"] for c in status["connectors"]] == [True, True]
                missing = await client.post("/connectors/9/stop", data={"csrf": token})
                assert missing.status == 404
        finally:
            await state.reader.close()
