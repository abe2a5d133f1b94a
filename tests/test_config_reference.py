"""The configuration reference (docs/configuration.md) and the editors' JSON schema
(docs/chargepoint.schema.json) are what `chargepoint config-reference` generates from the
config models, describe every key, and accept exactly what the daemon accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from chargepoint.cli import config_reference
from chargepoint.cli.main import main
from chargepoint.config import ConfigError, parse_config
from tests.real_vectors import REPO_ROOT

DOCS = REPO_ROOT / "docs"
GENERATED = {
    "markdown": DOCS / "configuration.md",
    "json-schema": DOCS / "chargepoint.schema.json",
}
EXAMPLES = sorted((REPO_ROOT / "config").glob("*.yaml"))


@pytest.mark.parametrize("fmt", list(GENERATED))
def test_committed_reference_is_what_the_models_generate(fmt: str) -> None:
    path = GENERATED[fmt]
    assert path.exists(), f"{path} is missing: run `{config_reference.REGENERATE}`"
    assert path.read_text(encoding="utf-8") == config_reference.render(fmt), (
        f"{path.relative_to(REPO_ROOT)} is out of date with chargepoint/config/: run "
        f"`{config_reference.REGENERATE}` (chargepoint config-reference --format {fmt} "
        f"--output {path.relative_to(REPO_ROOT)}) and commit the result"
    )


def test_every_key_is_described() -> None:
    assert config_reference.missing_descriptions() == [], (
        "give these fields a Field(description=...) or an entry in "
        "chargepoint/cli/config_reference.py DESCRIPTIONS"
    )


def test_the_command_writes_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config-reference", "--format", "json-schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    out = tmp_path / "configuration.md"
    assert main(["config-reference", "--output", str(out)]) == 0
    text = out.read_text()
    assert "| `shutdown.end_sessions` | `true` or `false` | `false` |" in text
    assert "| `connectors[].meter.unit` | integer, 1 to 247 | `42` |" in text
    assert "| `csms.url` | text | **required** |" in text


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(GENERATED["json-schema"].read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(validator: jsonschema.protocols.Validator, doc: Any) -> list[str]:
    return sorted(e.message for e in validator.iter_errors(doc))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_example_files_pass_the_schema(
    validator: jsonschema.protocols.Validator, example: Path
) -> None:
    assert schema_errors(validator, yaml.safe_load(example.read_text())) == []


def minimal(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "station": {"id": "CP-1"},
        "csms": {"url": "ws://127.0.0.1:9000/ocpp"},
        "meter_buses": [{"name": "rs485", "url": "tcp://127.0.0.1:502"}],
        "connectors": [{"id": 1, "evse_id": "DE*XYZ*E0001*1", "meter": {"bus": "rs485"}}],
    }
    for dotted, value in changes.items():
        node = doc
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return doc


def accepted_by_daemon(doc: dict[str, Any]) -> bool:
    try:
        parse_config(yaml.safe_dump(doc), Path("station.yaml"))
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({}, True),
        ({"csms__password": "a-long-password-1234", "csms__security_profile": 1}, True),
        ({"csms__password": {"file": "/run/credentials/x/p"}, "csms__security_profile": 1}, True),
        ({"csms__password": {"env": "CSMS_PASSWORD"}, "csms__security_profile": 1}, True),
        ({"shutdown": {"end_sessions": True, "grace_period": 5}}, True),
        ({"logging": {"format": "json", "journal": "always"}}, True),
        ({"logging": {"journal": "yes"}}, False),
        ({"shutdown": {"grace_period": -1}}, False),
        ({"shutdown": {"end_session": True}}, False),  # misspelt key
        ({"csms__ocpp_version": "1.5"}, False),
        ({"station": {}}, False),
    ],
)
def test_the_schema_agrees_with_the_daemon(
    validator: jsonschema.protocols.Validator, changes: dict[str, Any], ok: bool
) -> None:
    doc = minimal(**changes)
    assert accepted_by_daemon(doc) is ok
    assert (schema_errors(validator, doc) == []) is ok
