"""Hostile input, property-based (hypothesis, derandomized: reproducible): frames a CSMS could
send, for both OCPP versions, and YAML configurations. The daemon answers every CALL with a
CALLRESULT or a CALLERROR that the version defines, keeps its connection and keeps working;
a configuration is either loaded or refused with ConfigError, never anything else."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import resource
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
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
from tests.test_hostile_frames import exchange

CASES = int(os.environ.get("CHARGEPOINT_FUZZ_CASES", "600"))  # per target; CI: 3 x 600
# benchmarks/faults.py: where to append one JSON line of figures per OCPP version
REPORT = os.environ.get("CHARGEPOINT_FUZZ_REPORT")

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


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _labelled(kind: str) -> Callable[[str], tuple[str, str]]:
    return lambda frame: (kind, frame)


def frames(version: str) -> st.SearchStrategy[tuple[str, str | bytes, int]]:
    """(kind, frame, times): a text or binary frame, sent `times` times back to back (the
    same message id twice while the first may still be handled)."""
    unique_id = st.one_of(st.text(min_size=1, max_size=36), st.sampled_from(["1", "dup"]))
    action = st.sampled_from(ACTIONS[version])
    call = st.tuples(st.just(2), unique_id, action, json_value)
    seeds = SEEDS[version]
    mutated_call = st.sampled_from(sorted(seeds)).flatmap(
        lambda action: st.tuples(st.just(2), unique_id, st.just(action), mutated(seeds[action]))
    )
    arrays = st.lists(json_value, max_size=6)
    # up to 200,000 levels (400 kB), the message id still readable or not
    depth = st.one_of(st.integers(2, 2_000), st.integers(2_000, 200_000))
    deep_call = st.tuples(unique_id, action, depth).map(
        lambda t: f"[2,{json.dumps(t[0])},{json.dumps(t[1])},{nested(t[2])}]"
    )
    deep_value = st.tuples(unique_id, depth).map(
        lambda t: f'[2,{json.dumps(t[0])},"DataTransfer",{{"vendorId":"x","data":{nested(t[1])}}}]'
    )
    # long, within the 1 MiB default frame limit
    huge_call = st.tuples(unique_id, action, st.integers(10_000, 1_000_000)).map(
        lambda t: json.dumps([2, t[0], t[1], {"vendorId": "x", "data": "x" * t[2]}])
    )
    # CALLRESULT / CALLERROR for message ids the station never sent
    unknown_result = st.one_of(
        st.tuples(st.just(3), unique_id, json_value),
        st.tuples(st.just(4), unique_id, st.text(max_size=30), st.text(max_size=30), json_value),
    ).map(lambda t: json.dumps(list(t)))
    texts: list[tuple[str, st.SearchStrategy[str]]] = [
        ("text", st.text(max_size=200)),
        ("array", arrays.map(json.dumps)),
        ("call", call.map(lambda t: json.dumps(list(t)))),
        ("mutated call", mutated_call.map(lambda t: json.dumps(list(t)))),
        ("json value", json_value.map(json.dumps)),
        ("deep call", deep_call),
        ("deep value", deep_value),
        ("deep", depth.map(nested)),
        ("huge call", huge_call),
        ("unknown result", unknown_result),
    ]
    text_frames = st.one_of(*(strategy.map(_labelled(kind)) for kind, strategy in texts))
    binary = st.sampled_from([t for t in texts if not t[0].startswith(("deep", "huge"))]).flatmap(
        lambda t: t[1].map(lambda f: ("binary", f.encode()))
    )
    duplicate = st.one_of(call, mutated_call).map(lambda t: ("duplicate id", json.dumps(list(t))))
    return st.one_of(
        text_frames.map(lambda kf: (*kf, 1)),
        binary.map(lambda kf: (*kf, 1)),
        duplicate.map(lambda kf: (*kf, 2)),
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
        # the test CSMS warns of every reply its own CALLs did not ask for
        self._csms_log = logging.getLogger("chargepoint.testcsms")
        self._csms_level = self._csms_log.level
        self._csms_log.setLevel(logging.ERROR)
        self.run(self._start())
        self.connection = self.csms._session(STATION_ID).connection

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

    def send(self, data: str | bytes, times: int, wait: bool) -> list[list[Any]]:
        timeout = 5 if wait else 0
        return self.run(exchange(self.csms, data, times=times, timeout=timeout))  # type: ignore[no-any-return]

    def intact(self) -> bool:
        """The same connection as at the start, and the station's boot still accepted."""
        session = self.csms._sessions.get(STATION_ID)
        daemon = self.station.daemon if self.station is not None else None
        return (
            session is not None
            and session.connection is self.connection
            and daemon is not None
            and daemon.adapter is not None
            and daemon.adapter.accepted.is_set()
        )

    def heartbeat_works(self) -> bool:
        answer = self.run(
            self.csms.call(STATION_ID, "TriggerMessage", {"requestedMessage": "Heartbeat"})
        )
        return bool(answer.get("status") == "Accepted")

    def close(self) -> None:
        self._csms_log.setLevel(self._csms_level)
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


def expects_reply(data: str | bytes) -> bool:
    """A CALL (or anything that is not a CALLRESULT/CALLERROR) gets an answer."""
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):
        return True
    return not (isinstance(frame, list) and frame[:1] in ([3], [4]))


def rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux), after handing the heap's free
    memory back to the system (glibc keeps the high-water mark of the 1 MB frames otherwise)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the peak elsewhere


def test_every_frame_is_answered_and_the_station_keeps_working(live: LiveStation) -> None:
    codes = ERROR_CODES[live.version]
    kinds: Counter[str] = Counter()
    gc.collect()
    rss_before = rss_mib()
    started = time.monotonic()

    @settings(
        max_examples=CASES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(frames(live.version))
    def one_frame(case: tuple[str, str | bytes, int]) -> None:
        kind, data, times = case
        kinds[kind] += 1
        wait = expects_reply(data)
        replies = live.send(data, times, wait)
        if wait:
            shown = data[:200]
            assert len(replies) == times, f"{len(replies)} answers to {times} x {shown!r}"
            for frame in replies:
                assert isinstance(frame, list) and frame[0] in (3, 4), frame
                if frame[0] == 4:
                    assert frame[2] in codes, f"{frame[2]} is no {live.version} error code"
        assert live.intact(), f"connection or boot lost after {kind} {data[:200]!r}"

    one_frame()
    tried = sum(kinds.values())
    assert tried >= CASES
    assert live.heartbeat_works(), "the station stopped working after the fuzz"
    assert live.intact()
    if REPORT:
        figures = {
            "version": live.version,
            "frames": tried,
            "kinds": dict(kinds),
            "seconds": round(time.monotonic() - started, 1),
            "rss_before_mib": round(rss_before, 1),
            "rss_after_mib": round((gc.collect(), rss_mib())[1], 1),
        }
        with open(REPORT, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures) + "\n")


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
