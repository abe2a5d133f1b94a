"""Hostile input, property-based (hypothesis, derandomized: reproducible): frames a CSMS could
send, for both OCPP versions, and YAML configurations. The daemon answers every CALL with a
CALLRESULT or a CALLERROR that the version defines, keeps its connection and keeps working;
a configuration is either loaded or refused with ConfigError, never anything else."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargepoint.config import ConfigError, load_config
from chargepoint.testcsms import TestCsms
from tests.real_vectors import REPO_ROOT
from tests.station_harness import STATION_ID, InProcessStation, station_yaml

CASES = int(os.environ.get("CHARGEPOINT_FUZZ_CASES", "600"))  # per target; CI: 3 x 600

ERROR_CODES = {
    "1.6": {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    },
    "2.0.1": {
        "FormatViolation",
        "GenericError",
        "InternalError",
        "MessageTypeNotSupported",
        "NotImplemented",
        "NotSupported",
        "OccurrenceConstraintViolation",
        "PropertyConstraintViolation",
        "ProtocolError",
        "RpcFrameworkError",
        "SecurityError",
        "TypeConstraintViolation",
    },
}
ACTIONS = {
    "1.6": [
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "GetConfiguration",
        "ChangeAvailability",
        "TriggerMessage",
        "UnlockConnector",
        "DataTransfer",
        "ClearCache",
        "GetDiagnostics",
        "Nonsense",
    ],
    "2.0.1": [
        "RequestStartTransaction",
        "RequestStopTransaction",
        "GetVariables",
        "GetBaseReport",
        "ChangeAvailability",
        "TriggerMessage",
        "UnlockConnector",
        "DataTransfer",
        "ClearCache",
        "GetTransactionStatus",
        "GetLog",
        "Nonsense",
    ],
}
# valid payloads the mutations start from (no Reset / security changes: they reconnect)
SEEDS: dict[str, dict[str, dict[str, Any]]] = {
    "1.6": {
        "RemoteStartTransaction": {"idTag": "FUZZ", "connectorId": 1},
        "RemoteStopTransaction": {"transactionId": 1},
        "GetConfiguration": {"key": ["HeartbeatInterval"]},
        "ChangeAvailability": {"connectorId": 2, "type": "Operative"},
        "TriggerMessage": {"requestedMessage": "Heartbeat"},
        "UnlockConnector": {"connectorId": 1},
        "DataTransfer": {"vendorId": "com.example", "data": "x"},
    },
    "2.0.1": {
        "RequestStartTransaction": {
            "idToken": {"idToken": "FUZZ", "type": "Central"},
            "remoteStartId": 1,
            "evseId": 1,
        },
        "RequestStopTransaction": {"transactionId": "CP-TEST-001-1"},
        "GetVariables": {
            "getVariableData": [
                {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"}}
            ]
        },
        "GetBaseReport": {"requestId": 1, "reportBase": "SummaryInventory"},
        "ChangeAvailability": {"operationalStatus": "Operative", "evse": {"id": 2}},
        "TriggerMessage": {"requestedMessage": "Heartbeat"},
        "UnlockConnector": {"evseId": 1, "connectorId": 1},
        "DataTransfer": {"vendorId": "com.example"},
        "GetTransactionStatus": {},
    },
}

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, payload: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(payload))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["drop", "replace", "add"]))
        keys = list(result)
        if op == "drop" and keys:
            result.pop(draw(st.sampled_from(keys)))
        elif op == "replace" and keys:
            result[draw(st.sampled_from(keys))] = draw(json_value)
        else:
            result[draw(st.text(max_size=12))] = draw(json_value)
    return result


def frames(version: str) -> st.SearchStrategy[str]:
    unique_id = st.text(min_size=1, max_size=36)
    call = st.tuples(st.just(2), unique_id, st.sampled_from(ACTIONS[version]), json_value)
    seeds = SEEDS[version]
    mutated_call = st.sampled_from(sorted(seeds)).flatmap(
        lambda action: st.tuples(st.just(2), unique_id, st.just(action), mutated(seeds[action]))
    )
    arrays = st.lists(json_value, max_size=6)
    return st.one_of(
        st.text(max_size=200),
        arrays.map(json.dumps),
        call.map(lambda t: json.dumps(list(t))),
        mutated_call.map(lambda t: json.dumps(list(t))),
        json_value.map(json.dumps),
    )


class LiveStation:
    """The daemon and the test CSMS on an event loop of their own (hypothesis drives the
    test synchronously)."""

    def __init__(self, version: str, tmp: Path) -> None:
        self.version = version
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.csms = TestCsms(heartbeat_interval=300)
        self.station: InProcessStation | None = None
        self.tmp = tmp
        self.run(self._start())

    def run(self, coro: Any, timeout: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    async def _start(self) -> None:
        await self.csms.start()
        cfg = station_yaml(
            self.tmp / "station.yaml",
            self.csms.url,
            self.tmp / "state",
            csms={"ocpp_version": self.version},
        )
        self.station = InProcessStation(cfg)
        await self.station.start()
        await self.csms.wait_connected(STATION_ID, timeout=10)
        await self.csms.wait_for("StatusNotification", timeout=10)

    async def _stop(self) -> None:
        if self.station is not None:
            await self.station.stop()
        await self.csms.stop()

    def send(self, text: str) -> str | None:
        return self.run(self.csms.send_raw(STATION_ID, text, timeout=5))  # type: ignore[no-any-return]

    def heartbeat_works(self) -> bool:
        answer = self.run(
            self.csms.call(STATION_ID, "TriggerMessage", {"requestedMessage": "Heartbeat"})
        )
        return bool(answer.get("status") == "Accepted")

    def close(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module", params=["1.6", "2.0.1"])
def live(request: pytest.FixtureRequest) -> Iterator[LiveStation]:
    with tempfile.TemporaryDirectory(prefix="chargepoint-fuzz-") as tmp:
        station = LiveStation(request.param, Path(tmp))
        try:
            yield station
        finally:
            station.close()


def expects_reply(text: str) -> bool:
    """A CALL (or anything that is not a CALLRESULT/CALLERROR) gets an answer."""
    try:
        frame = json.loads(text)
    except ValueError:
        return True
    return not (isinstance(frame, list) and frame[:1] in ([3], [4]))


def test_every_frame_is_answered_and_the_station_keeps_working(live: LiveStation) -> None:
    codes = ERROR_CODES[live.version]
    tried = 0

    @settings(
        max_examples=CASES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(frames(live.version))
    def one_frame(text: str) -> None:
        nonlocal tried
        tried += 1
        reply = live.send(text)
        if not expects_reply(text):
            return
        assert reply is not None, f"no answer to {text[:200]!r}"
        frame = json.loads(reply)
        assert isinstance(frame, list) and frame[0] in (3, 4), reply
        if frame[0] == 4:
            assert frame[2] in codes, f"{frame[2]} is no {live.version} error code: {reply}"
        assert live.csms.is_connected(STATION_ID)

    one_frame()
    assert tried >= CASES
    assert live.heartbeat_works(), "the station stopped working after the fuzz"


# ---- configuration ---------------------------------------------------------------------------

EXAMPLE = yaml.safe_load((REPO_ROOT / "config" / "simulator.yaml").read_text())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


PATHS = _paths(EXAMPLE)


@st.composite
def configs(draw: st.DrawFn) -> str:
    doc = json.loads(json.dumps(EXAMPLE))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            op = draw(st.sampled_from(["replace", "drop"]))
            if op == "drop" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_value)
        except (KeyError, IndexError, TypeError):
            continue
    return yaml.safe_dump(doc)


def test_any_configuration_is_loaded_or_refused_with_a_config_error(tmp_path: Path) -> None:
    target = tmp_path / "station.yaml"
    outcomes = {"loaded": 0, "refused": 0}

    @settings(max_examples=CASES, derandomize=True, deadline=None, database=None)
    @given(st.one_of(configs(), st.text(max_size=300)))
    def one_config(text: str) -> None:
        target.write_text(text, encoding="utf-8")
        try:
            load_config(target)
            outcomes["loaded"] += 1
        except ConfigError as exc:
            assert str(exc).strip(), "a config error says what is wrong"
            outcomes["refused"] += 1

    one_config()
    assert sum(outcomes.values()) >= CASES
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0
