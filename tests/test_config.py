"""The station's YAML configuration as an operator meets it: problems with path and line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from chargepoint.cli.config_commands import add_check_config_parser
from chargepoint.config import (
    EXIT_CONFIG,
    ConfigError,
    ConfigProblem,
    CsmsConfig,
    LoadedConfig,
    MetadataConfig,
    SecretRef,
    StationConfig,
    load_config,
)
from meter.proof.keys import public_der

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

# A small valid station; the line numbers below are the ones the tests rely on.
BASE = """\
station:
  id: CP-1
csms:
  url: ws://127.0.0.1:9000/ocpp
meter_buses:
  - name: sim
    url: simulator
simulator: {}
connectors:
  - id: 1
    evse_id: DE*XYZ*E0001*1
    meter:
      bus: sim
      unit: 42
  - id: 2
    evse_id: DE*XYZ*E0001*2
    meter:
      bus: sim
      unit: 43
"""
SECRET = "correct-horse-battery-staple-42"


def write(tmp_path: Path, text: str, name: str = "station.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems, "a ConfigError always names at least one problem"
    return info.value.problems


def only_problem(path: Path) -> ConfigProblem:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


def with_csms(extra: str, url: str = "ws://127.0.0.1:9000/ocpp") -> str:
    return BASE.replace("  url: ws://127.0.0.1:9000/ocpp\n", f"  url: {url}\n{extra}")


# --- the shipped files -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["simulator.yaml", "bsm-rs485.yaml"])
def test_example_files_load(name: str) -> None:
    loaded = load_config(CONFIG_DIR / name)
    cfg = loaded.config
    assert cfg.station.id == "CP-SIM-001"
    assert [c.id for c in cfg.connectors] == [1, 2]
    assert [c.meter.unit for c in cfg.connectors] == [42, 43]
    assert [c.evse_id for c in cfg.connectors] == ["DE*XYZ*E0001*1", "DE*XYZ*E0001*2"]
    assert cfg.metadata.render(id_tag="04A1B2C3", evse_id="DE*XYZ*E0001*1")[:2] == (
        "04A1B2C3",
        "DE*XYZ*E0001*1",
    )


def test_simulator_file_is_the_embedded_default() -> None:
    loaded = load_config(CONFIG_DIR / "simulator.yaml")
    cfg = loaded.config
    assert loaded.warnings == []
    assert cfg.csms.url == "ws://127.0.0.1:9000/ocpp"
    assert cfg.csms.security_profile == 0
    assert [(b.name, b.url) for b in cfg.meter_buses] == [("sim", "simulator")]
    assert cfg.simulator is not None and cfg.simulator.sign_delay == 2.0
    assert all(c.meter.bus == "sim" and c.ev.power_w == 11000 for c in cfg.connectors)
    assert cfg.ocpp.heartbeat_interval == 60
    assert cfg.ocpp.meter_value_sample_interval == 30
    # relative to the file's directory: the checkout's state/, wherever the daemon starts
    assert cfg.store.state_dir == CONFIG_DIR / ".." / "state"
    assert cfg.control.listen == "unix:control.sock"


def test_rs485_file_uses_real_meters_and_profile_2() -> None:
    loaded = load_config(CONFIG_DIR / "bsm-rs485.yaml")
    cfg = loaded.config
    assert cfg.simulator is None
    assert cfg.meter_buses[0].url == "serial:///dev/ttyUSB0?baudrate=19200&parity=E"
    assert cfg.csms.security_profile == 2
    assert cfg.csms.url.startswith("wss://")
    assert cfg.csms.password == SecretRef(file=Path("/etc/chargepoint/csms-password"))
    assert cfg.store.state_dir == Path("/var/lib/chargepoint")
    assert cfg.control.listen == "unix:/run/chargepoint/control.sock"
    # no key pinned yet in the example: the operator is told so, with the line
    assert any("connectors[0].meter: no public_key pinned" in w for w in loaded.warnings)


# --- problems with path and line -------------------------------------------------------------


def test_unknown_key_deep_inside_has_path_and_line(tmp_path: Path) -> None:
    text = BASE.replace("      unit: 43\n", "      unit: 43\n      untit: 44\n")
    problem = only_problem(write(tmp_path, text))
    assert problem.path == "connectors[1].meter.untit"
    assert problem.line == 20
    assert "unknown key 'untit'" in problem.message
    assert "did you mean 'unit'" in problem.message


def test_wrong_type_has_path_and_line(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE.replace("unit: 43", "unit: forty-three")))
    assert (problem.path, problem.line) == ("connectors[1].meter.unit", 19)
    assert "integer" in problem.message


def test_quoted_number_and_unquoted_text_get_a_hint(tmp_path: Path) -> None:
    text = BASE.replace("unit: 42", 'unit: "42"').replace("id: CP-1", "id: 12345")
    problems = {p.path: p for p in problems_of(write(tmp_path, text))}
    assert "without quotes" in problems["connectors[0].meter.unit"].message
    assert "quotes" in problems["station.id"].message
    assert problems["station.id"].line == 2


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        BASE.replace("  id: CP-1\n", "  id: CP-1\n  colour: blue\n")
        .replace("unit: 43", "unit: 300")
        .replace("    evse_id: DE*XYZ*E0001*1\n", "")
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [(p.path, p.line) for p in info.value.problems]
    assert found == [
        ("station.colour", 3),
        ("connectors[0].evse_id", 11),  # missing: the line of its parent item
        ("connectors[1].meter.unit", 19),
    ]
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{path}:3: station.colour: unknown key")
    assert lines[2].startswith(f"{path}:19: connectors[1].meter.unit: ")


def test_duplicate_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    text = BASE.replace("      unit: 42\n", "      unit: 42\n      unit: 44\n")
    problem = only_problem(write(tmp_path, text))
    assert (problem.path, problem.line) == ("connectors[0].meter.unit", 15)
    assert "duplicate key 'unit' (first at line 14)" in problem.message


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    text = BASE.replace("    url: simulator\n", "    url: [simulator\n")
    problem = only_problem(write(tmp_path, text))
    assert problem.line is not None and problem.line >= 7
    assert problem.message.startswith("YAML syntax error")


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE.replace("  id: CP-1", "\tid: CP-1")))
    assert problem.line == 2
    assert "YAML syntax error" in problem.message


def test_anchors_and_merge_keys_keep_their_lines(tmp_path: Path) -> None:
    text = BASE.replace(
        "    meter:\n      bus: sim\n      unit: 42",
        "    meter: &m\n      bus: sim\n      unit: 42",
    )
    text = text.replace("      bus: sim\n      unit: 43", "      <<: *m\n      unit: 4300")
    problem = only_problem(write(tmp_path, text))
    assert (problem.path, problem.line) == ("connectors[1].meter.unit", 19)


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    problem = only_problem(write(tmp_path, "\n".join(lines) + "\n"))
    assert "too many values" in problem.message


def test_missing_section(tmp_path: Path) -> None:
    text = BASE.replace("csms:\n  url: ws://127.0.0.1:9000/ocpp\n", "")
    problem = only_problem(write(tmp_path, text))
    assert problem.path == "csms"
    assert problem.message == "required key is missing"
    assert problem.line == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- station\n- csms\n", "mapping of sections"),
        ("just text\n", "mapping of sections"),
    ],
)
def test_empty_or_not_a_mapping(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in only_problem(write(tmp_path, text)).message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    problem = only_problem(tmp_path / "nowhere.yaml")
    assert "cannot read" in problem.message


def test_unquoted_template_is_explained(tmp_path: Path) -> None:
    text = BASE + "metadata:\n  meta1: {id_tag}\n"
    problem = only_problem(write(tmp_path, text))
    assert (problem.path, problem.line) == ("metadata.meta1", 21)
    assert "must be in quotes" in problem.message


# --- csms: security profiles -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "extra", "path", "words"),
    [
        (
            "ws://h/ocpp",
            "  security_profile: 1\n",
            "csms.password",
            "required by security profile 1",
        ),
        (
            "wss://h/ocpp",
            "  security_profile: 2\n",
            "csms.password",
            "required by security profile 2",
        ),
        (
            "ws://h/ocpp",
            f"  security_profile: 2\n  password: {SECRET}\n",
            "csms.url",
            "wss://",
        ),
        ("wss://h/ocpp", "  security_profile: 0\n", "csms.url", "ws:// URL"),
        (
            "wss://h/ocpp",
            f"  security_profile: 1\n  password: {SECRET}\n",
            "csms.url",
            "ws:// URL",
        ),
        (
            "wss://h/ocpp",
            "  security_profile: 3\n  client_cert: /etc/c.pem\n",
            "csms.client_key",
            "required by security profile 3",
        ),
        ("http://h/ocpp", "", "csms.url", "ws:// or wss://"),
        ("ws://h/ocpp", "  security_profile: 4\n", "csms.security_profile", "must be 0, 1, 2 or 3"),
        ("ws://h/ocpp", "  reconnect_max_delay: 0.5\n", "csms.reconnect_max_delay", "min"),
    ],
)
def test_security_profile_rules(
    tmp_path: Path, url: str, extra: str, path: str, words: str
) -> None:
    problem = only_problem(write(tmp_path, with_csms(extra, url)))
    assert problem.path == path
    assert words in problem.message
    assert problem.line is not None and 3 <= problem.line <= 6
    assert SECRET not in problem.message


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("ws://h/ocpp", "  security_profile: 0\n"),
        ("ws://h/ocpp", f"  security_profile: 1\n  password: {SECRET}\n"),
        ("wss://h/ocpp", f"  security_profile: 2\n  password: {{value: {SECRET}}}\n"),
        ("wss://h/ocpp", "  security_profile: 3\n  client_cert: /c.pem\n  client_key: /c.key\n"),
    ],
)
def test_valid_security_profiles(tmp_path: Path, url: str, extra: str) -> None:
    load_config(write(tmp_path, with_csms(extra, url)))


def test_short_password_is_only_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, with_csms("  security_profile: 1\n  password: short\n"))
    loaded = load_config(path)
    warning = next(w for w in loaded.warnings if "csms.password" in w)
    assert warning.startswith(f"{path}:6: csms.password: has 5 characters")
    assert "short" not in warning.split("csms.password")[1]


def test_credentials_in_the_url_are_refused_without_echo(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, with_csms("", f"ws://cp:{SECRET}@h/ocpp")))
    assert problem.path == "csms.url"
    assert SECRET not in problem.message


def test_url_ending_with_the_station_id_is_a_warning(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, with_csms("", "ws://127.0.0.1:9000/ocpp/CP-1")))
    assert any("csms.url: ends with the station id" in w for w in loaded.warnings)


# --- connectors and buses --------------------------------------------------------------------


def test_duplicate_connector_id(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE.replace("  - id: 2", "  - id: 1")))
    assert (problem.path, problem.line) == ("connectors[1].id", 15)
    assert "used twice" in problem.message


def test_connector_ids_without_gaps(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE.replace("  - id: 2", "  - id: 3")))
    assert (problem.path, problem.line) == ("connectors[1].id", 15)
    assert "1 to 2" in problem.message


def test_connector_id_zero(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE.replace("  - id: 1", "  - id: 0")))
    assert problem.path == "connectors[0].id"


def test_at_least_one_connector(tmp_path: Path) -> None:
    text = BASE[: BASE.index("connectors:")] + "connectors: []\n"
    problem = only_problem(write(tmp_path, text))
    assert (problem.path, problem.line) == ("connectors", 9)


def test_meter_on_unknown_bus(tmp_path: Path) -> None:
    problem = only_problem(
        write(tmp_path, BASE.replace("bus: sim\n      unit: 43", "bus: rs485\n      unit: 43"))
    )
    assert (problem.path, problem.line) == ("connectors[1].meter.bus", 18)
    assert "no meter bus named 'rs485'" in problem.message


def test_two_connectors_on_one_meter(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE.replace("unit: 43", "unit: 42")))
    assert (problem.path, problem.line) == ("connectors[1].meter.unit", 19)
    assert "already the meter of connector 1" in problem.message


def test_same_unit_on_two_buses_is_fine(tmp_path: Path) -> None:
    text = BASE.replace(
        "    url: simulator\n", "    url: simulator\n  - name: line2\n    url: tcp://10.0.0.5:502\n"
    ).replace("bus: sim\n      unit: 43", "bus: line2\n      unit: 42")
    loaded = load_config(write(tmp_path, text))
    assert [c.meter.bus for c in loaded.config.connectors] == ["sim", "line2"]


def test_duplicate_bus_name(tmp_path: Path) -> None:
    text = BASE.replace(
        "    url: simulator\n", "    url: simulator\n  - name: sim\n    url: tcp://h\n"
    )
    problem = only_problem(write(tmp_path, text))
    assert (problem.path, problem.line) == ("meter_buses[1].name", 8)


def test_bad_meter_url(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE.replace("url: simulator", "url: modbus://h")))
    assert (problem.path, problem.line) == ("meter_buses[0].url", 7)
    assert "unknown meter URL scheme" in problem.message


def test_simulator_bus_needs_the_simulator_section(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, BASE.replace("simulator: {}\n", "")))
    assert (problem.path, problem.line) == ("meter_buses[0].url", 7)
    assert "simulator:" in problem.message


def test_unused_simulator_section_is_a_warning(tmp_path: Path) -> None:
    text = BASE.replace("url: simulator", "url: rtu+tcp://gateway:4001")
    loaded = load_config(write(tmp_path, text))
    assert any(
        w.endswith("simulator: no meter bus uses the simulator; this section is unused")
        for w in loaded.warnings
    )


def test_pinned_public_key_is_checked(tmp_path: Path) -> None:
    der = public_der(ec.generate_private_key(ec.SECP256R1())).hex()
    good = BASE.replace("      unit: 42\n", f"      unit: 42\n      public_key: {der}\n")
    assert load_config(write(tmp_path, good)).config.connectors[0].meter.public_key == der
    bad = BASE.replace("      unit: 42\n", "      unit: 42\n      public_key: 3059abcd\n")
    problem = only_problem(write(tmp_path, bad))
    assert (problem.path, problem.line) == ("connectors[0].meter.public_key", 15)


def test_pinned_public_key_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "meter-1.pub"
    key_file.write_text(public_der(ec.generate_private_key(ec.SECP256R1())).hex() + "\n")
    text = BASE.replace("      unit: 42\n", f"      unit: 42\n      public_key: {key_file}\n")
    load_config(write(tmp_path, text))


# --- other sections --------------------------------------------------------------------------


def test_metadata_templates(tmp_path: Path) -> None:
    meta = MetadataConfig(meta3="{station_id}/{connector_id} {{fixed}}")
    assert meta.render(id_tag="AB12", evse_id="DE*X", connector_id=2, station_id="CP-1") == (
        "AB12",
        "DE*X",
        "CP-1/2 {fixed}",
    )
    text = BASE + 'metadata:\n  meta3: "{station}"\n'
    problem = only_problem(write(tmp_path, text))
    assert (problem.path, problem.line) == ("metadata.meta3", 21)
    assert "unknown placeholder {station}" in problem.message
    with pytest.raises(ValueError, match="id_tag"):
        MetadataConfig().render(evse_id="DE*X")


def test_ocpp_settings(tmp_path: Path) -> None:
    text = BASE + (
        "ocpp:\n"
        "  heartbeat_interval: -1\n"
        "  meter_values_sampled_data: Energy.Active.Import.Register,SoC\n"
        "  transaction_message_attempts: 0\n"
        "  hartbeat_interval: 10\n"
    )
    problems = {p.path: p for p in problems_of(write(tmp_path, text))}
    assert problems["ocpp.heartbeat_interval"].line == 21
    assert "SoC" in problems["ocpp.meter_values_sampled_data"].message
    assert problems["ocpp.transaction_message_attempts"].line == 23
    assert "did you mean 'heartbeat_interval'" in problems["ocpp.hartbeat_interval"].message


@pytest.mark.parametrize(
    ("listen", "ok"),
    [
        ("unix:control.sock", True),
        ("unix:/run/chargepoint/control.sock", True),
        ("http://127.0.0.1:8088", True),
        ("http://[::1]:8088", True),
        ("http://0.0.0.0:8088", False),
        ("http://192.168.1.10:8088", False),
        ("http://127.0.0.1", False),
        ("tcp://127.0.0.1:8088", False),
        ("unix:", False),
    ],
)
def test_control_listen(tmp_path: Path, listen: str, ok: bool) -> None:
    path = write(tmp_path, BASE + f'control:\n  listen: "{listen}"\n')
    if ok:
        load_config(path)
    else:
        assert only_problem(path).path == "control.listen"


# --- secrets ---------------------------------------------------------------------------------


def test_secret_from_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "csms-password"
    secret_file.write_text(SECRET + "\n")
    loaded = load_config(
        write(tmp_path, with_csms(f"  security_profile: 1\n  password: {{file: {secret_file}}}\n"))
    )
    assert loaded.config.csms.password is not None
    assert loaded.config.csms.password.resolve() == SECRET
    assert loaded.warnings == []


def test_secret_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CP_TEST_PASSWORD", SECRET)
    text = with_csms("  security_profile: 1\n  password: {env: CP_TEST_PASSWORD}\n")
    password = load_config(write(tmp_path, text)).config.csms.password
    assert password is not None and password.resolve() == SECRET
    monkeypatch.delenv("CP_TEST_PASSWORD")
    with pytest.raises(ConfigError) as info:
        password.resolve()
    assert str(info.value) == "csms.password: environment variable CP_TEST_PASSWORD is not set"


def test_unreadable_secret_file_is_a_warning_at_load_and_an_error_at_resolve(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-password"
    text = with_csms(f"  security_profile: 1\n  password: {{file: {missing}}}\n")
    loaded = load_config(write(tmp_path, text))
    assert any("csms.password: cannot read secret file" in w for w in loaded.warnings)
    assert loaded.config.csms.password is not None
    with pytest.raises(ConfigError, match=r"^csms\.password: cannot read secret file"):
        loaded.config.csms.password.resolve()


def test_empty_secret_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        SecretRef(file=tmp_path / "pw").resolve()


def test_secret_ref_needs_exactly_one_source(tmp_path: Path) -> None:
    text = with_csms(f"  security_profile: 1\n  password: {{value: {SECRET}, env: X}}\n")
    problem = only_problem(write(tmp_path, text))
    assert problem.path == "csms.password"
    assert "exactly one of value, file, env" in problem.message
    assert SECRET not in str(problem)


def test_secret_never_shown(tmp_path: Path) -> None:
    # a valid config: the password is in the object but not in its repr or str
    text = with_csms(f"  security_profile: 1\n  password: {SECRET}\n")
    loaded = load_config(write(tmp_path, text))
    for shown in (
        repr(loaded),
        str(loaded.config),
        repr(loaded.config.csms),
        str(loaded.config.csms.password),
    ):
        assert SECRET not in shown
    assert "***" in repr(loaded.config.csms.password)
    # an invalid config holding the password: not in the ConfigError either
    bad = write(tmp_path, text.replace("unit: 43", "unit: x").replace("id: CP-1", "id: CP 1"))
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert len(info.value.problems) == 2
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.problems)
    # nor in pydantic's own errors when models are built in code
    with pytest.raises(ValidationError) as raw:
        CsmsConfig(url="wss://h/ocpp", security_profile=0, password=SecretRef(value=SECRET))
    assert SECRET not in str(raw.value)
    with pytest.raises(ValidationError) as raw:
        SecretRef.model_validate({"value": SECRET, "file": "/x"})
    assert SECRET not in str(raw.value)


def test_numeric_password_must_be_quoted(tmp_path: Path) -> None:
    text = with_csms("  security_profile: 1\n  password: 12345678901234567\n")
    problem = only_problem(write(tmp_path, text))
    assert problem.path == "csms.password"
    assert "quotes" in problem.message
    assert "12345678901234567" not in problem.message


# --- overrides -------------------------------------------------------------------------------


def test_overrides_return_a_new_validated_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE)).config
    new = cfg.with_overrides(
        csms_url="ws://10.0.0.1:9000/cs", ocpp_version="2.0.1", state_dir=tmp_path / "st"
    )
    assert isinstance(new, StationConfig)
    assert new.csms.url == "ws://10.0.0.1:9000/cs"
    assert new.csms.ocpp_version == "2.0.1"
    assert new.store.state_dir == tmp_path / "st"
    assert cfg.csms.url == "ws://127.0.0.1:9000/ocpp"
    assert cfg.store.state_dir == Path("/var/lib/chargepoint")
    assert cfg.with_overrides() == cfg


def test_invalid_override_is_a_config_error(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE)).config
    with pytest.raises(ConfigError) as info:
        cfg.with_overrides(csms_url="wss://h/ocpp")  # profile 0 is plain ws://
    assert [p.path for p in info.value.problems] == ["csms.url"]
    assert "command line" in info.value.problems[0].message
    with pytest.raises(ConfigError, match=r"csms\.ocpp_version"):
        cfg.with_overrides(ocpp_version="1.5")


def test_loaded_config_overrides_recompute_warnings(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, BASE))
    assert loaded.warnings == []
    moved = loaded.with_overrides(csms_url="ws://csms.example.com/ocpp")
    assert isinstance(moved, LoadedConfig)
    assert any("csms.security_profile: 0 means no authentication" in w for w in moved.warnings)


# --- chargepoint check-config ----------------------------------------------------------------


def check_config(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargepoint")
    add_check_config_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check-config", *argv])
    code: int = args.func(args)
    return code


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = CONFIG_DIR / "simulator.yaml"
    assert check_config(["--config", str(path), "--state-dir", str(tmp_path / "state")]) == 0
    out, err = capsys.readouterr()
    assert out == f"config OK: {path}\n"
    assert err == ""


def test_check_config_prints_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the RS-485 example on a machine with its serial device (a character device stands in)
    # and a state directory it may create
    text = (CONFIG_DIR / "bsm-rs485.yaml").read_text().replace("/dev/ttyUSB0", "/dev/null")
    path = write(tmp_path, text)
    assert check_config(["--config", str(path), "--state-dir", str(tmp_path / "state")]) == 0
    out, err = capsys.readouterr()
    assert out == f"config OK: {path}\n"
    assert err.splitlines()
    assert all(line.startswith(f"warning: {path}:") for line in err.splitlines())


def test_check_config_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = BASE.replace("unit: 43", "unit: 0").replace("  id: CP-1\n", "  id: CP-1\n  x: 1\n")
    path = write(tmp_path, text)
    assert check_config(["--config", str(path)]) == EXIT_CONFIG == 78
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:3: station.x: unknown key 'x' (known keys: id, vendor, model, serial)",
        f"{path}:20: connectors[1].meter.unit: must be greater than or equal to 1",
    ]


def test_check_config_applies_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BASE)
    assert check_config(["--config", str(path), "--csms-url", "wss://h/ocpp"]) == EXIT_CONFIG
    assert "csms.url" in capsys.readouterr().err
    assert (
        check_config(
            ["--config", str(path), "--ocpp-version", "2.0.1", "--state-dir", str(tmp_path)]
        )
        == 0
    )


def test_check_config_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "station: [\n")
    assert check_config(["--config", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:") and "YAML syntax error" in err
