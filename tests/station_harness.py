"""Run the daemon against the test CSMS on loopback: in-process, or as a real process that
tests may kill with SIGKILL."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from chargepoint.config import load_config
from chargepoint.service.daemon import Daemon
from chargepoint.testcsms import Received, TestCsms
from tests.real_vectors import REPO_ROOT

STATION_ID = "CP-TEST-001"


def station_yaml(
    path: Path,
    csms_url: str,
    state_dir: Path,
    *,
    sign_delay: float = 0.05,
    ocpp: dict[str, Any] | None = None,
    connectors: int = 2,
    csms: dict[str, Any] | None = None,
    public_keys: dict[int, str] | None = None,
    ev: dict[str, Any] | None = None,
    meter_options: dict[int, dict[str, Any]] | None = None,
    sections: dict[str, Any] | None = None,
) -> Path:
    """A station on the embedded simulator, fast enough for tests. `ev` overrides the
    simulated EV of every connector (power_w, plug_in_delay); `sections` adds (or replaces)
    top-level sections (e.g. smart_charging)."""
    doc: dict[str, Any] = {
        "station": {"id": STATION_ID, "vendor": "chargepoint", "model": "TestStation"},
        "csms": {
            "url": csms_url,
            "reconnect_min_delay": 0.1,
            "reconnect_max_delay": 0.5,
            "call_timeout": 5,
            **(csms or {}),
        },
        "meter_buses": [{"name": "sim", "url": "simulator", "request_timeout": 3}],
        "simulator": {"sign_delay": sign_delay},
        "connectors": [
            {
                "id": n,
                "evse_id": f"DE*XYZ*E0001*{n}",
                "meter": {
                    "bus": "sim",
                    "unit": 41 + n,
                    **({"public_key": public_keys[n]} if public_keys and n in public_keys else {}),
                    **((meter_options or {}).get(n, {})),
                },
                "ev": {"power_w": 200000, "plug_in_delay": 0.05, **(ev or {})},
            }
            for n in range(1, connectors + 1)
        ],
        "ocpp": {
            "heartbeat_interval": 300,
            "meter_value_sample_interval": 0,
            "connection_time_out": 10,
            "transaction_message_retry_interval": 0,
            **(ocpp or {}),
        },
        "control": {"listen": "unix:control.sock"},
        "logging": {"level": "info"},
        "store": {"state_dir": str(state_dir)},
        **(sections or {}),
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def signed_values(stop_payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """context -> {"ocmf": ..., "public_key": hex or ""} from StopTransaction.transactionData."""
    found: dict[str, dict[str, Any]] = {}
    for mv in stop_payload.get("transactionData", []):
        for sv in mv.get("sampledValue", []):
            if sv.get("format") != "SignedData":
                continue
            body = json.loads(sv["value"])
            key = body.get("publicKey") or ""
            found[sv["context"]] = {
                "ocmf": base64.b64decode(body["signedMeterData"]).decode(),
                "public_key": base64.b64decode(key).decode().removeprefix("oca:base16:asn1:")
                if key
                else "",
                "timestamp": mv["timestamp"],
                "sampled_value": sv,
            }
    return found


async def meter_key(csms: TestCsms, connector_id: int = 1) -> str:
    answer = await csms.call(
        STATION_ID, "GetConfiguration", {"key": [f"MeterPublicKey{connector_id}"]}
    )
    value = answer["configurationKey"][0]["value"]
    return base64.b64decode(value).decode().removeprefix("oca:base16:asn1:")


class InProcessStation:
    """The daemon in this event loop."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.daemon: Daemon | None = None

    async def start(self) -> Daemon:
        self.daemon = Daemon(load_config(self.config_path).config)
        await self.daemon.start()
        return self.daemon

    async def stop(self) -> None:
        if self.daemon is not None:
            await self.daemon.stop()
            self.daemon = None


class StationProcess:
    """`chargepoint run` as a child process."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chargepoint", "run", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=env,
        )
        log.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


async def change_password(csms: TestCsms, version: str, password: str) -> None:
    """The CSMS gives the station a new basic-auth password (1.6 AuthorizationKey, 2.0.1
    SecurityCtrlr.BasicAuthPassword), expects it from then on, and waits until the station
    reconnected with it (a new BootNotification)."""
    assert csms.basic_auth is not None
    csms.basic_auth[STATION_ID] = password
    boots = len(csms.messages("BootNotification"))
    if version == "1.6":
        change = {"key": "AuthorizationKey", "value": password}
        answer = await csms.call(STATION_ID, "ChangeConfiguration", change)
        assert answer["status"] == "Accepted", answer
    else:
        setting = {
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"},
            "attributeValue": password,
        }
        got = await csms.call(STATION_ID, "SetVariables", {"setVariableData": [setting]})
        assert got["setVariableResult"][0]["attributeStatus"] == "Accepted", got
    await wait_until(
        lambda: len(csms.messages("BootNotification")) > boots and csms.is_connected(STATION_ID),
        30,
        "the reconnection with the new password",
    )


def statuses(csms: TestCsms, connector_id: int, after: int = 0) -> list[str]:
    return [
        r.payload["status"]
        for r in csms.received[after:]
        if r.action == "StatusNotification" and r.payload["connectorId"] == connector_id
    ]


def actions(csms: TestCsms, after: int = 0) -> list[str]:
    return [r.action for r in csms.received[after:]]


__all__ = [
    "STATION_ID",
    "InProcessStation",
    "Received",
    "StationProcess",
    "actions",
    "meter_key",
    "signed_values",
    "station_yaml",
    "statuses",
    "wait_until",
]
