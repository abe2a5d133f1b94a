"""Relative paths in the station's file are relative to the file's own directory, wherever the
command is started from; a path typed on the command line is relative to where it is typed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.cli import config_reference
from chargepoint.cli.config_commands import add_config_arguments, config_from_args
from chargepoint.config import ConfigError, load_config
from meter.proof.keys import public_der
from tests.real_vectors import REPO_ROOT

SECRET = "correct-horse-battery-staple-42"

STATION = """\
station:
  id: CP-1
csms:
  url: {url}
{csms}meter_buses:
  - name: sim
    url: simulator
simulator: {{}}
connectors:
  - id: 1
    evse_id: DE*XYZ*E0001*1
    meter:
      bus: sim
{meter}store:
  state_dir: {state_dir}
"""


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The config file's directory; the process runs in another one."""
    config_dir = tmp_path / "etc" / "chargepoint"
    config_dir.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return config_dir


def station_file(
    config_dir: Path,
    *,
    url: str = "ws://127.0.0.1:9000/ocpp",
    csms: str = "",
    meter: str = "",
    state_dir: str = "state",
) -> Path:
    path = config_dir / "station.yaml"
    text = STATION.format(url=url, csms=csms, meter=meter, state_dir=state_dir)
    path.write_text(text, encoding="utf-8")
    return path


def test_relative_state_dir_is_next_to_the_config_file(etc: Path) -> None:
    cfg = load_config(station_file(etc, state_dir="state")).config
    assert cfg.store.state_dir == etc / "state"
    cfg = load_config(station_file(etc, state_dir="../var/chargepoint")).config
    assert cfg.store.state_dir == etc / ".." / "var" / "chargepoint"


def test_config_file_named_relative_to_the_working_directory(
    etc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    station_file(etc, state_dir="state")
    monkeypatch.chdir(etc.parent)
    cfg = load_config(Path("chargepoint/station.yaml")).config
    assert cfg.store.state_dir == etc / "state"
    assert cfg.store.state_dir.is_absolute()


def test_absolute_paths_stay_as_they_are(etc: Path, tmp_path: Path) -> None:
    cfg = load_config(station_file(etc, state_dir=str(tmp_path / "abs"))).config
    assert cfg.store.state_dir == tmp_path / "abs"


def test_password_file_is_read_from_the_config_files_directory(etc: Path) -> None:
    (etc / "csms-password").write_text(SECRET + "\n")
    path = station_file(etc, csms="  security_profile: 1\n  password: {file: csms-password}\n")
    loaded = load_config(path)
    assert loaded.warnings == []
    password = loaded.config.csms.password
    assert password is not None
    assert password.file == etc / "csms-password"
    assert password.resolve() == SECRET


def test_tls_files_are_read_from_the_config_files_directory(etc: Path) -> None:
    for name in ("ca.pem", "station.crt", "station.key"):
        (etc / name).write_text("-----BEGIN CERTIFICATE-----\n")
    csms = (
        "  security_profile: 3\n"
        "  ca_file: ca.pem\n"
        "  client_cert: station.crt\n"
        "  client_key: ./station.key\n"
    )
    loaded = load_config(station_file(etc, url="wss://csms.example.com/ocpp", csms=csms))
    cfg = loaded.config.csms
    assert (cfg.ca_file, cfg.client_cert, cfg.client_key) == (
        etc / "ca.pem",
        etc / "station.crt",
        etc / "." / "station.key",
    )
    assert not [w for w in loaded.warnings if "does not exist" in w], loaded.warnings


def test_missing_tls_file_is_named_with_the_path_it_was_looked_for(etc: Path) -> None:
    csms = "  security_profile: 3\n  client_cert: station.crt\n  client_key: station.key\n"
    loaded = load_config(station_file(etc, url="wss://csms.example.com/ocpp", csms=csms))
    assert any(f"{etc / 'station.crt'} does not exist" in w for w in loaded.warnings)


def test_pinned_key_file_is_read_from_the_config_files_directory(etc: Path) -> None:
    der = public_der(ec.generate_private_key(ec.SECP256R1())).hex()
    (etc / "keys").mkdir()
    (etc / "keys" / "meter-1.pub").write_text(der + "\n")
    path = station_file(etc, meter="      public_key: keys/meter-1.pub\n")
    ref = load_config(path).config.connectors[0].meter
    assert ref.public_key == str(etc / "keys" / "meter-1.pub")


def test_missing_key_file_names_where_it_was_looked_for(etc: Path) -> None:
    path = station_file(etc, meter="      public_key: meter-1.pub\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(etc / "meter-1.pub") in str(info.value)


def test_hex_key_is_not_taken_for_a_path(etc: Path) -> None:
    der = public_der(ec.generate_private_key(ec.SECP256R1())).hex()
    path = station_file(etc, meter=f"      public_key: {der}\n")
    assert load_config(path).config.connectors[0].meter.public_key == der


def test_state_dir_on_the_command_line_is_relative_to_the_working_directory(etc: Path) -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--config", str(station_file(etc)), "--state-dir", "here"])
    state_dir = config_from_args(args).config.store.state_dir
    assert state_dir == Path("here")
    assert state_dir.resolve() == (Path.cwd() / "here").resolve()


def test_the_example_station_keeps_its_state_in_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(REPO_ROOT / "config" / "simulator.yaml").config
    assert cfg.store.state_dir.resolve() == REPO_ROOT / "state"


@pytest.mark.parametrize("name", ["simulator.yaml", "bsm-rs485.yaml"])
def test_the_example_files_say_how_relative_paths_are_read(name: str) -> None:
    text = (REPO_ROOT / "config" / name).read_text()
    assert "relative to the directory of this file" in " ".join(text.replace("#", " ").split())


def test_the_reference_says_how_relative_paths_are_read() -> None:
    schema = config_reference.json_schema()
    described: list[tuple[str, str]] = []
    for name, model in [("StationConfig", schema), *schema["$defs"].items()]:
        for field, prop in model.get("properties", {}).items():
            options = prop.get("anyOf", [prop])
            if any(o.get("format") == "path" for o in options):
                described.append((f"{name}.{field}", prop.get("description", "")))
    assert {f for f, _ in described} >= {
        "StoreConfig.state_dir",
        "CsmsConfig.ca_file",
        "CsmsConfig.client_cert",
        "CsmsConfig.client_key",
    }
    for field, text in described:
        if field != "SecretRef.file":  # described where it is used: csms.password
            assert "relative to the config file's directory" in text, field
    for field in ("CsmsConfig.password", "MeterRef.public_key"):
        assert "relative to the config file's directory" in (
            config_reference.field_description(*field.split(".")) or ""
        ), field
    assert "relative to the config file's directory" in config_reference.markdown()
