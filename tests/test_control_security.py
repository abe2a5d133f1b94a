"""The control interface is a door: only the charge controller, the HMI and the operator's
tools may use it. A web page in a browser on the controller (a cross-site form POST, a
DNS-rebound name), a local process without the token (loopback TCP) or an account outside the
socket's group (Unix socket) is refused, and what it asked for does not happen."""

from __future__ import annotations

import asyncio
import grp
import json
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chargepoint.config import ConfigError, load_config
from chargepoint.service.control import ControlAddress, request
from chargepoint.service.control_token import TOKEN_FILE, read_token
from tests.station_env import Env, cli, running_env

REPO_ROOT = Path(__file__).resolve().parent.parent
ATTACK = b'{"id_tag": "FREE-CHARGE", "connector": 1, "x": "="}'  # what a text/plain form sends


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env("1.6", tmp_path) as e:
        yield e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def start_tcp(env: Env) -> ControlAddress:
    listen = f"http://127.0.0.1:{free_port()}"
    await env.start(sections={"control": {"listen": listen}})
    return ControlAddress(listen, env.tmp / "state")


async def raw(
    address: ControlAddress,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes = b"",
) -> tuple[int, dict[str, Any]]:
    """One request exactly as given (no header added but the length and Connection)."""
    if address.unix_path is not None:
        reader, writer = await asyncio.open_unix_connection(str(address.unix_path))
    else:
        reader, writer = await asyncio.open_connection(address.host, address.port)
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    writer.write("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, content = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(content) if content.strip() else {}


def token_of(env: Env) -> str:
    return read_token(env.tmp / "state")


async def nothing_started(env: Env, address: ControlAddress) -> None:
    await asyncio.sleep(0.5)
    _, status = await request(address, "GET", "/status")
    assert [c["transaction"] for c in status["connectors"]] == [None, None]
    assert [c["status"] for c in status["connectors"]] == ["Available", "Available"]
    assert env.csms.messages("Authorize") == []
    assert env.csms.messages("StartTransaction") == []


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "chargepoint.service.control" and r.levelno == logging.WARNING
    ]


# ---- a web page in a browser on the controller ---------------------------------------------


@pytest.mark.parametrize("form_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_cross_origin_form_post_is_refused_and_starts_nothing(
    env: Env, caplog: pytest.LogCaptureFixture, form_type: str
) -> None:
    address = await start_tcp(env)
    caplog.set_level(logging.WARNING, "chargepoint.service.control")
    host = f"127.0.0.1:{address.port}"
    form = {"Host": host, "Origin": "http://evil.example", "Content-Type": form_type}
    code, data = await raw(address, "POST", "/id-tag", form, ATTACK)
    assert code == 403
    assert "Origin" in data["error"]
    # with the token (a page cannot have it) and JSON, the Origin alone is enough to refuse
    signed = {
        **form,
        "Authorization": f"Bearer {token_of(env)}",
        "Content-Type": "application/json",
    }
    code, data = await raw(address, "POST", "/id-tag", signed, ATTACK)
    assert code == 403 and "Origin" in data["error"]
    # a form's content type is refused on its own (415), too
    local = {"Host": host, "Authorization": f"Bearer {token_of(env)}", "Content-Type": form_type}
    code, data = await raw(address, "POST", "/id-tag", local, ATTACK)
    assert code == 415
    assert form_type in data["error"] and "application/json" in data["error"]
    await nothing_started(env, address)
    logged = refusals(caplog)
    assert len(logged) == 2, logged  # one line per kind: the second Origin refusal is folded
    assert "403" in logged[0] and "Origin" in logged[0] and "evil.example" in logged[0]
    assert "415" in logged[1]


async def test_a_form_post_on_the_unix_socket_is_refused_too(env: Env) -> None:
    await env.start()
    address = ControlAddress("unix:control.sock", env.tmp / "state")
    code, data = await raw(
        address, "POST", "/id-tag", {"Host": "localhost", "Content-Type": "text/plain"}, ATTACK
    )
    assert code == 415 and "application/json" in data["error"]
    code, data = await raw(
        address,
        "POST",
        "/id-tag",
        {"Host": "localhost", "Origin": "null", "Content-Type": "application/json"},
        ATTACK,
    )
    assert code == 403 and "Origin" in data["error"]
    await nothing_started(env, address)


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "evil.example", "127.0.0.1.evil.example:{port}", ""]
)
async def test_a_rebound_host_is_refused(env: Env, host: str) -> None:
    address = await start_tcp(env)
    headers = {
        "Host": host.format(port=address.port),
        "Authorization": f"Bearer {token_of(env)}",  # even with the token
        "Content-Type": "application/json",
    }
    code, data = await raw(address, "GET", "/status", headers)
    assert code == 403 and "Host" in data["error"] and "loopback" in data["error"]
    assert "connectors" not in data
    code, data = await raw(address, "POST", "/id-tag", headers, ATTACK)
    assert code == 403 and "Host" in data["error"]
    await nothing_started(env, address)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:{port}", "LOCALHOST:{port}"])
async def test_loopback_names_are_served(env: Env, host: str) -> None:
    address = await start_tcp(env)
    headers = {"Host": host.format(port=address.port), "Authorization": f"Bearer {token_of(env)}"}
    code, data = await raw(address, "GET", "/status", headers)
    assert code == 200 and data["station"]


# ---- the token on loopback TCP ---------------------------------------------------------------


async def test_tcp_needs_the_token_from_the_state_dir(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    address = await start_tcp(env)
    caplog.set_level(logging.WARNING, "chargepoint.service.control")
    token = token_of(env)
    host = {"Host": f"127.0.0.1:{address.port}", "Content-Type": "application/json"}
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    for headers in (
        host,
        {**host, "Authorization": f"Bearer {wrong}"},
        {**host, "Authorization": "Bearer "},
        {**host, "Authorization": f"Basic {token}"},
    ):
        for method, target in (("GET", "/status"), ("POST", "/id-tag"), ("GET", "/events")):
            code, data = await raw(address, method, target, headers, ATTACK)
            assert code == 401, (headers, target)
            assert "token" in data["error"] and "connectors" not in data
    await nothing_started(env, address)
    assert all(wrong not in line and token not in line for line in caplog.text.splitlines())

    code, data = await raw(
        address, "POST", "/connectors/1/plug", {**host, "Authorization": f"Bearer {token}"}
    )
    assert (code, data) == (200, {"result": "ok"})
    code, data = await request(address, "GET", "/status")  # the client reads the token itself
    assert code == 200 and data["connectors"][0]["status"] == "Preparing"


async def test_the_token_file_is_private_and_new_at_every_start(env: Env) -> None:
    address = await start_tcp(env)
    path = env.tmp / "state" / TOKEN_FILE
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert path.stat().st_uid == os.geteuid()
    first = token_of(env)
    assert len(first) >= 40
    assert (await request(address, "GET", "/status"))[0] == 200  # the client keeps the token
    await env.restart()
    second = token_of(env)
    assert second != first and stat.S_IMODE(path.stat().st_mode) == 0o600
    host = {"Host": f"127.0.0.1:{address.port}"}
    code, _ = await raw(address, "GET", "/status", {**host, "Authorization": f"Bearer {first}"})
    assert code == 401
    code, _ = await raw(address, "GET", "/status", {**host, "Authorization": f"Bearer {second}"})
    assert code == 200
    assert [p.name for p in path.parent.iterdir() if "token" in p.name] == [TOKEN_FILE]
    # the client's kept token is refused once; it reads the new one and asks again
    code, data = await request(address, "POST", "/connectors/1/plug")
    assert (code, data) == (200, {"result": "ok"})
    assert address.token == second


# ---- the Unix socket: its directory and group ----------------------------------------------


def _other_group() -> grp.struct_group:
    for name in ("users", "daemon", "dialout", "staff"):
        with_name = [g for g in grp.getgrall() if g.gr_name == name]
        if with_name:
            return with_name[0]
    pytest.skip("no unprivileged group to give the socket")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A directory outside pytest's (mode 0700) temporary tree, so that another account can
    reach the socket's directory at all: the socket's own directory is what decides."""
    base = Path(tempfile.mkdtemp(prefix="cp-control-"))
    base.chmod(0o711)
    try:
        yield base / "run"
    finally:
        shutil.rmtree(base)


def connect_as(uid: int, gid: int, path: Path) -> subprocess.CompletedProcess[str]:
    """`GET /status` on the socket from a process with only that uid and gid."""

    def drop() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--unix-socket",
            str(path),
            "--write-out",
            "%{http_code}",
            "--output",
            "/dev/null",
            "http://localhost/status",
        ],
        preexec_fn=drop,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other accounts")
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_only_the_configured_group_reaches_the_unix_socket(
    env: Env, socket_dir: Path
) -> None:
    group = _other_group()
    path = socket_dir / "control.sock"
    await env.start(sections={"control": {"listen": f"unix:{path}", "group": group.gr_name}})

    directory = await asyncio.to_thread(socket_dir.stat)
    assert stat.S_IMODE(directory.st_mode) == 0o750, oct(directory.st_mode)
    assert directory.st_gid == group.gr_gid
    sock = await asyncio.to_thread(path.stat)
    assert stat.S_ISSOCK(sock.st_mode)
    assert stat.S_IMODE(sock.st_mode) == 0o660, oct(sock.st_mode)
    assert sock.st_gid == group.gr_gid

    nobody = pwd.getpwnam("nobody")
    assert nobody.pw_gid != group.gr_gid  # nobody's own group (nogroup) is the wrong one
    outsider = await asyncio.to_thread(connect_as, nobody.pw_uid, nobody.pw_gid, path)
    assert outsider.returncode == 7, (outsider.stdout, outsider.stderr)  # could not connect
    assert "Permission denied" in outsider.stderr or "Couldn't connect" in outsider.stderr
    member = await asyncio.to_thread(connect_as, nobody.pw_uid, group.gr_gid, path)
    assert (member.returncode, member.stdout) == (0, "200"), member.stderr


async def test_the_default_socket_directory_is_0750(env: Env) -> None:
    await env.start()
    state = env.tmp / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o750
    assert stat.S_IMODE((state / "control.sock").stat().st_mode) == 0o660


def test_a_group_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    source = REPO_ROOT / "config" / "simulator.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["control"] = {"group": "no-such-group-h19"}
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "control.group" in str(caught.value)
    assert "'no-such-group-h19' does not exist" in str(caught.value)
    checked = subprocess.run(
        [sys.executable, "-m", "chargepoint", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert checked.returncode == 78
    assert "control.group" in checked.stdout + checked.stderr


async def test_a_shared_directory_is_not_made_the_sockets(env: Env) -> None:
    shared = Path(tempfile.mkdtemp(prefix="cp-shared-"))
    try:
        os.chmod(shared, 0o1777)
        with pytest.raises(ConfigError, match="world-writable"):
            await env.start(sections={"control": {"listen": f"unix:{shared}/control.sock"}})
        assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    finally:
        shutil.rmtree(shared)


# ---- the commands still work, on both transports -------------------------------------------


@pytest.mark.parametrize("transport", ["unix", "tcp"])
async def test_the_commands_work_on_both_transports(env: Env, transport: str) -> None:
    if transport == "tcp":
        await start_tcp(env)
    else:
        await env.start()
    plug = await asyncio.to_thread(cli, env, "control", "plug", "1")
    assert (plug.returncode, plug.stdout) == (0, "ok\n"), plug.stderr
    fault = await asyncio.to_thread(cli, env, "control", "fault", "2", "--info", "RCM tripped")
    assert fault.returncode == 0, fault.stderr
    card = await asyncio.to_thread(cli, env, "control", "id-tag", "CARD-1", "--connector", "2")
    assert card.returncode == 1
    assert card.stderr == "control: rejected: connector 2 is Faulted (RCM tripped)\n"
    shown = await asyncio.to_thread(cli, env, "status")
    assert shown.returncode == 0, shown.stderr
    assert "station " in shown.stdout and "online" in shown.stdout
    assert "connector 1 (DE*XYZ*E0001*1): Preparing" in shown.stdout
    health = await asyncio.to_thread(cli, env, "health")
    assert health.returncode == 0 and health.stdout.startswith("healthy:"), health.stdout


# ---- what stays as it was ------------------------------------------------------------------


async def test_bad_bodies_are_told_why(env: Env) -> None:
    await env.start()
    address = ControlAddress("unix:control.sock", env.tmp / "state")
    json_post = {"Host": "localhost", "Content-Type": "application/json"}
    code, data = await raw(address, "POST", "/id-tag", json_post, b"{not json")
    assert code == 400 and "Expecting property name" in data["error"]
    code, data = await raw(address, "POST", "/id-tag", json_post, b"[1, 2]")
    assert (code, data) == (400, {"error": "body must be a JSON object"})
    big = json.dumps({"id_tag": "A", "pad": "x" * 70_000}).encode()
    code, data = await raw(address, "POST", "/id-tag", json_post, big)
    assert (code, data) == (400, {"error": "request body too large"})
    code, data = await raw(address, "GET", "/nowhere", {"Host": "localhost"})
    assert (code, data) == (404, {"error": "no route GET /nowhere"})


async def test_an_events_stream_is_plain_lines_and_ends_when_the_daemon_stops(env: Env) -> None:
    await env.start()
    reader, writer = await asyncio.open_unix_connection(str(env.tmp / "state" / "control.sock"))
    writer.write(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200") and b"application/x-ndjson" in head
    assert b"chunked" not in head.lower() and b"content-length" not in head.lower()
    lines = [json.loads(await asyncio.wait_for(reader.readline(), 5)) for _ in range(2)]
    assert [(e["event"], e["connector"]) for e in lines] == [
        ("charging_limit", 1),
        ("charging_limit", 2),
    ]
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert env.station is not None
    await env.station.stop()
    assert loop.time() - started < 5
    assert await asyncio.wait_for(reader.read(), 5) == b""  # the stream ended, not cut mid-line
    writer.close()
