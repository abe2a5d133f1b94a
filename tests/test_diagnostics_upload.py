"""Diagnostics and log uploads end to end against the schema-validating test CSMS: 1.6
GetDiagnostics over FTP, GetLog (DiagnosticsLog, SecurityLog) over HTTP PUT on both versions,
a refused and a failing upload, a new request while one runs. The archive holds what the
issue lists and never a password, private key or token; nothing is left behind locally."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from chargepoint.core.diagnostics import redact_config
from tests.file_servers import FTP_PASSWORD, file_server, ftp_server
from tests.station_env import Env, running_env
from tests.station_harness import STATION_ID, InProcessStation, wait_until

CSMS_PASSWORD = "csms-Pa55word-for-basic-auth"
WEB_PASSWORD = "web-Pa55word-operator"


@pytest.fixture(params=["1.6", "2.0.1"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with running_env(request.param, tmp_path) as e:
        yield e


async def start(env: Env, **diagnostics: object) -> None:
    path = env.config()
    doc = yaml.safe_load(path.read_text())
    doc["diagnostics"] = {"retry_interval": 0.1, "transfer_timeout": 2.0, **diagnostics}
    # a secret in the configuration: an inline CSMS password (unused on profile 0)
    doc["csms"]["password"] = CSMS_PASSWORD
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    logs = env.tmp / "state" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # an earlier daemon's rotated log, with a secret it should never have logged
    (logs / "chargepoint.log.1").write_text(f"old line\nleaked {CSMS_PASSWORD} here\n")
    env.station = InProcessStation(path)
    await env.station.start()
    await env.booted()


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        found = {}
        for m in tar.getmembers():
            f = tar.extractfile(m)
            assert f is not None
            found[m.name] = f.read()
        return found


async def log_statuses(env: Env, final: set[str], timeout: float = 15) -> list[str]:
    await wait_until(
        lambda: bool(final & set(env.csms.log_statuses(STATION_ID))), timeout, f"one of {final}"
    )
    await asyncio.sleep(0.1)
    return env.csms.log_statuses(STATION_ID)


def nothing_left(env: Env) -> None:
    uploads = env.tmp / "state" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def check_no_secrets(found: dict[str, bytes]) -> None:
    blob = b"".join(found.values())
    for secret in (CSMS_PASSWORD, "PRIVATE KEY"):
        assert secret.encode() not in blob, secret


async def test_get_diagnostics_16_over_ftp(tmp_path: Path) -> None:
    async with running_env("1.6", tmp_path) as env:
        with ftp_server(tmp_path / "ftp") as ftp:
            await start(env)
            answer = await env.csms.get_diagnostics(STATION_ID, f"{ftp.url}/incoming/")
            name = answer["fileName"]
            assert name.startswith(STATION_ID) and name.endswith(".tar.gz")
            (ftp.root / "incoming").mkdir()
            seen = await log_statuses(env, {"Uploaded", "UploadFailed"})
            assert seen == ["Uploading", "Uploaded"]
            found = members((ftp.root / "incoming" / name).read_bytes())
        assert env.csms.messages("DiagnosticsStatusNotification")
    names = set(found)
    assert {
        "config.json",
        "status.json",
        "store.json",
        "meter_errors.json",
        "firmware_history.json",
        "logs/chargepoint.log.1",
    } <= names
    config = json.loads(found["config.json"])
    assert config["station"]["id"] == STATION_ID
    assert config["csms"]["password"] == "***"
    assert json.loads(found["status.json"])["station"] == STATION_ID
    assert b"leaked *** here" in found["logs/chargepoint.log.1"]
    check_no_secrets(found)
    assert FTP_PASSWORD.encode() not in b"".join(found.values())
    nothing_left(env)


async def test_get_log_diagnostics_and_security_over_http(env: Env, tmp_path: Path) -> None:
    with file_server(tmp_path / "www") as server:
        await start(env)
        answer = await env.csms.get_log(STATION_ID, f"{server.url}/logs/", request_id=5)
        assert answer["status"] == "Accepted"
        seen = await log_statuses(env, {"Uploaded", "UploadFailure"})
        assert seen == ["Uploading", "Uploaded"]
        found = members((tmp_path / "www" / "uploads" / "logs" / answer["filename"]).read_bytes())
        assert "status.json" in found
        check_no_secrets(found)
        answer = await env.csms.get_log(
            STATION_ID, f"{server.url}/sec/", log_type="SecurityLog", request_id=6
        )
        assert answer["status"] == "Accepted"
        await wait_until(lambda: env.csms.log_statuses(STATION_ID).count("Uploaded") == 2, 10)
        security = members((tmp_path / "www" / "uploads" / "sec" / answer["filename"]).read_bytes())
    assert list(security) == ["security.log"]
    lines = security["security.log"].decode().splitlines()
    assert any(line.endswith("StartupOfTheDevice (critical)") for line in lines), lines
    ids = [r.payload["requestId"] for r in env.csms.messages("LogStatusNotification")]
    assert ids == [5, 5, 6, 6]
    nothing_left(env)


@pytest.mark.parametrize(
    ("put_status", "expected"), [(403, "PermissionDenied"), (500, "UploadFailure")]
)
async def test_failed_upload_reports_and_leaves_nothing(
    env: Env, tmp_path: Path, put_status: int, expected: str
) -> None:
    with file_server(tmp_path / "www") as server:
        server.behaviour.put_status = put_status
        await start(env)
        answer = await env.csms.get_log(
            STATION_ID, f"{server.url}/logs/", request_id=9, retries=1, retry_interval=0
        )
        assert answer["status"] == "Accepted"
        seen = await log_statuses(env, {"Uploaded", expected, "UploadFailure"})
        puts = [r for r in server.behaviour.requests if r[0] == "PUT"]
    assert seen == ["Uploading", expected]
    assert len(puts) == 2  # the first try and one retry
    nothing_left(env)


async def test_a_new_get_log_cancels_the_running_one(env: Env, tmp_path: Path) -> None:
    with file_server(tmp_path / "www") as server:
        server.behaviour.put_status = 500
        await start(env)
        first = await env.csms.get_log(
            STATION_ID, f"{server.url}/a/", request_id=1, retries=5, retry_interval=30
        )
        assert first["status"] == "Accepted"
        await log_statuses(env, {"Uploading"})
        server.behaviour.put_status = 201
        second = await env.csms.get_log(STATION_ID, f"{server.url}/b/", request_id=2)
        assert second["status"] == "AcceptedCanceled"
        await wait_until(lambda: "Uploaded" in env.csms.log_statuses(STATION_ID), 10)
    assert (tmp_path / "www" / "uploads" / "b" / second["filename"]).exists()
    nothing_left(env)


def test_redaction_removes_every_secret_shape() -> None:
    data = {
        "csms": {"url": "wss://cp:pw-in-url@csms.example/ocpp", "password": {"value": "x"}},
        "web": {"users": [{"name": "op", "password_hash": "h"}]},
        "security": {"private_key_file": "/etc/key.pem", "auth_token": "t"},
        "station": {"id": "CP"},
    }
    out = redact_config(data)
    text = json.dumps(out)
    assert "pw-in-url" not in text and '"x"' not in text and '"t"' not in text
    assert out["station"] == {"id": "CP"}
    assert out["csms"]["url"] == "wss://cp:***@csms.example/ocpp"
