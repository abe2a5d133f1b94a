"""The station's YAML configuration, validated by pydantic.

`load_config(path)` reads the file and returns the validated `StationConfig` with a list of
warnings. Every problem is reported at once, each with the dotted path of the offending key
(`connectors[1].meter.unit`, list indexes count from 0) and its line in the file; unknown keys,
wrong types, duplicate keys and YAML syntax errors included. Secrets (the CSMS password) never
appear in messages, reprs or logs.

Relative paths in the file (`store.state_dir`, `csms.ca_file`, a password file, ...) are taken
as they are, i.e. relative to the working directory of the process, like paths given on the
command line; `control.listen: unix:PATH` with a relative PATH is relative to the state
directory.
"""

from __future__ import annotations

import difflib
import os
import re
import string
import types
import typing
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from meter.bsm.driver import META_LIMITS
from meter.modbus.link import LinkUrlError, parse_link_url
from meter.proof.keys import KeyFormatError, load_public_key

__all__ = [
    "EXIT_CONFIG",
    "MEASURANDS",
    "META_PLACEHOLDERS",
    "SIMULATOR_BUS_URL",
    "ConfigError",
    "ConfigProblem",
    "ConnectorConfig",
    "ControlConfig",
    "CsmsConfig",
    "EvSimConfig",
    "LoadedConfig",
    "LoggingConfig",
    "MetadataConfig",
    "MeterBusConfig",
    "MeterRef",
    "OcppSettings",
    "SecretRef",
    "ShutdownConfig",
    "SimulatorSettings",
    "StationConfig",
    "StationInfo",
    "StoreConfig",
    "load_config",
    "parse_config",
]

# What the meter driver reads (EnergyReading): only these can be reported.
MEASURANDS = frozenset({"Energy.Active.Import.Register", "Power.Active.Import"})

EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h
SIMULATOR_BUS_URL = "simulator"
META_PLACEHOLDERS = ("id_tag", "evse_id", "connector_id", "station_id")
# Longest value each placeholder can take: OCPP 2.0.1 idToken 36 (1.6: 20), EVSE id 36,
# connector number, OCPP identity 48.
_PLACEHOLDER_MAX = {"id_tag": 36, "evse_id": 36, "connector_id": 3, "station_id": 48}
_PASSWORD_LENGTH = (16, 40)  # OCPP security whitepaper, basic authentication password
_LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes including the NUL
_MAX_CSL_ITEMS = 5

Loc = tuple[str | int, ...]
LineMap = Mapping[tuple[str, ...], int]


# --- problems --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration: where (dotted key path, file line) and what."""

    path: str
    line: int | None
    message: str

    def format(self, file: Path | str | None = None) -> str:
        """`FILE:LINE: path: message`, leaving out what is unknown."""
        where = ""
        if file is not None:
            where = f"{file}:{self.line}: " if self.line is not None else f"{file}: "
        elif self.line is not None:
            where = f"line {self.line}: "
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"

    def __str__(self) -> str:
        return self.format()


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists everything that is wrong."""

    def __init__(self, problems: Iterable[ConfigProblem], file: Path | None = None) -> None:
        self.problems = list(problems)
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(p.format(self.file) for p in self.problems)


class _RuleViolations(ValueError):
    """Raised by model validators: several problems, each at a key below the model's own."""

    def __init__(self, issues: list[tuple[Loc, str]]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{_dotted(loc) or '(here)'}: {msg}" for loc, msg in issues))


def _raise_issues(issues: list[tuple[Loc, str]]) -> None:
    if issues:
        raise _RuleViolations(issues)


def _dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _key(loc: Loc) -> tuple[str, ...]:
    return tuple(str(p) for p in loc)


def _line_of(lines: LineMap, loc: Loc) -> int | None:
    """The line of the key at `loc`, else of its nearest ancestor that is in the file."""
    parts = _key(loc)
    while parts:
        if parts in lines:
            return lines[parts]
        parts = parts[:-1]
    return lines.get(())


def _problem(loc: Loc, message: str, lines: LineMap) -> ConfigProblem:
    return ConfigProblem(_dotted(loc), _line_of(lines, loc), message)


def _sorted(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))


# --- models ----------------------------------------------------------------------------------


class _Model(BaseModel):
    # hide_input_in_errors: a pydantic ValidationError must never print a secret
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class SecretRef(_Model):
    """A secret given inline, read from a file, or read from an environment variable.

    In YAML: `password: s3cret`, `password: {file: /etc/chargepoint/csms-password}` or
    `password: {env: CSMS_PASSWORD}`. Nothing is read before `resolve()`.
    """

    value: str | None = Field(default=None, min_length=1, repr=False)
    file: Path | None = None
    env: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"value": data}
        if isinstance(data, bool | int | float):
            raise ValueError(
                "YAML read this as a number or boolean: put the secret in quotes, or use "
                "{file: PATH} or {env: VARIABLE}"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in ("value", "file", "env") if getattr(self, name) is not None]
        if len(given) != 1:
            found = f" (found {' and '.join(given)})" if given else ""
            raise ValueError(f"give exactly one of value, file, env{found}")
        return self

    def resolve(self, key_path: str = "csms.password") -> str:
        """The secret itself; raises ConfigError naming `key_path` (never the secret)."""
        if self.value is not None:
            return self.value
        if self.file is not None:
            try:
                text = self.file.read_text(encoding="utf-8")
            except OSError as exc:
                _secret_error(
                    key_path, f"cannot read secret file {self.file}: {exc.strerror or exc}"
                )
            except UnicodeDecodeError:
                _secret_error(key_path, f"secret file {self.file} is not UTF-8 text")
            secret = text.rstrip("\r\n")
            if not secret:
                _secret_error(key_path, f"secret file {self.file} is empty")
            return secret
        assert self.env is not None
        from_env = os.environ.get(self.env)
        if from_env is None:
            _secret_error(key_path, f"environment variable {self.env} is not set")
        if not from_env:
            _secret_error(key_path, f"environment variable {self.env} is empty")
        return from_env

    def describe(self) -> str:
        """Where the secret comes from, for messages: `inline`, `file X`, `environment X`."""
        if self.file is not None:
            return f"file {self.file}"
        if self.env is not None:
            return f"environment variable {self.env}"
        return "inline value"

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        if self.value is not None:
            yield "value", "***"
        if self.file is not None:
            yield "file", self.file
        if self.env is not None:
            yield "env", self.env


_STATION_ID = re.compile(r"[A-Za-z0-9*\-_=:+|@.]{1,48}")


def _secret_error(key_path: str, message: str) -> typing.NoReturn:
    raise ConfigError([ConfigProblem(key_path, None, message)])


class StationInfo(_Model):
    """Who the station is: its OCPP identity and what BootNotification reports."""

    id: str
    vendor: str = Field(default="chargepoint", min_length=1, max_length=20)
    model: str = Field(default="Eichrecht AC", min_length=1, max_length=20)
    serial: str | None = Field(default=None, min_length=1, max_length=25)

    @field_validator("id")
    @classmethod
    def _identity(cls, value: str) -> str:
        if not _STATION_ID.fullmatch(value):
            raise ValueError("must be 1 to 48 characters of A-Z a-z 0-9 * - _ = : + | @ .")
        return value


class CsmsConfig(_Model):
    """The connection to the CSMS (OCPP-J over a websocket)."""

    url: str
    ocpp_version: Literal["1.6", "2.0.1"] = "1.6"
    security_profile: Literal[0, 1, 2, 3] = 0
    password: SecretRef | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    call_timeout: StrictFloat = Field(default=30.0, gt=0)
    reconnect_min_delay: StrictFloat = Field(default=1.0, gt=0)
    reconnect_max_delay: StrictFloat = Field(default=60.0, gt=0)
    signed_value_format: Literal["oca", "raw-ocmf", "signed-meter-value"] = "oca"

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        # messages never repeat the URL: it could hold credentials
        parts = urlsplit(value)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError("must start with ws:// or wss://")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not hold credentials; use csms.password")
        if not parts.hostname:
            raise ValueError("has no host")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("has a bad port number") from None
        if parts.query or parts.fragment or value.endswith(("?", "#")):
            raise ValueError(
                "must not have a query or fragment: the station id is appended to its path"
            )
        return value

    @field_validator("ocpp_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # `ocpp_version: 1.6` without quotes is a YAML float
        return str(value) if isinstance(value, float) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _security_profile(self) -> Self:
        profile = self.security_profile
        tls = urlsplit(self.url).scheme == "wss"
        issues: list[tuple[Loc, str]] = []
        if profile in (1, 2) and self.password is None:
            issues.append(
                (("password",), f"is required by security profile {profile} (basic authentication)")
            )
        if profile in (2, 3) and not tls:
            issues.append((("url",), f"security profile {profile} needs a wss:// URL (TLS)"))
        if profile in (0, 1) and tls:
            issues.append(
                (
                    ("url",),
                    f"security profile {profile} runs without TLS and needs a ws:// URL; "
                    "wss:// is security profile 2 (password) or 3 (client certificate)",
                )
            )
        if profile == 3:
            for name in ("client_cert", "client_key"):
                if getattr(self, name) is None:
                    issues.append(((name,), "is required by security profile 3"))
        if self.reconnect_max_delay < self.reconnect_min_delay:
            issues.append((("reconnect_max_delay",), "must not be below reconnect_min_delay"))
        _raise_issues(issues)
        return self


class MeterBusConfig(_Model):
    """One Modbus line (or the embedded simulator) that carries meters."""

    name: str = Field(min_length=1, max_length=32)
    url: str
    request_timeout: StrictFloat = Field(default=12.0, gt=0)

    @field_validator("url")
    @classmethod
    def _link_url(cls, value: str) -> str:
        if value == SIMULATOR_BUS_URL:
            return value
        try:
            parse_link_url(value)
        except LinkUrlError as exc:
            raise ValueError(f"{exc} (or `{SIMULATOR_BUS_URL}` for the embedded one)") from None
        return value

    @property
    def is_simulator(self) -> bool:
        return self.url == SIMULATOR_BUS_URL


class SimulatorSettings(_Model):
    """The embedded simulated meters (used by buses whose url is `simulator`)."""

    sign_delay: StrictFloat = Field(default=2.0, ge=0)
    wire_time_baud: StrictInt | None = Field(default=None, gt=0)
    ocmf_style: Literal["kwh", "wh"] = "kwh"


class MeterRef(_Model):
    """The meter of one connector: its bus, Modbus unit id, and the pinned public key."""

    bus: str = Field(min_length=1)
    unit: StrictInt = Field(default=42, ge=1, le=247)
    public_key: str | None = None
    # "station-test": TEST MODE for a meter that cannot sign; the station signs the meter's
    # readings with its own key (kept in the state dir). NOT calibration-law compliant, and
    # every record, export and verification says so.
    signing: Literal["meter", "station-test"] = "meter"

    @model_validator(mode="after")
    def _test_signing_has_no_meter_key(self) -> MeterRef:
        if self.signing == "station-test" and self.public_key is not None:
            raise ValueError(
                "signing: station-test signs with the station's own key; remove public_key"
            )
        return self

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                load_public_key(value)
            except KeyFormatError as exc:
                raise ValueError(f"not a usable public key: {exc}") from None
        return value


class EvSimConfig(_Model):
    """The simulated EV (embedded simulator and control interface `plug`)."""

    power_w: StrictFloat = Field(default=11000.0, gt=0)
    plug_in_delay: StrictFloat = Field(default=0.5, ge=0)


class ConnectorConfig(_Model):
    id: StrictInt = Field(ge=1)
    evse_id: str = Field(min_length=1, max_length=36)
    meter: MeterRef
    ev: EvSimConfig = EvSimConfig()


def _template_fields(template: str) -> list[str]:
    """The placeholder names in a metadata template; ValueError when it is not usable."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad template: {exc} (write {{{{ and }}}} for literal braces)") from None
    names: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in META_PLACEHOLDERS:
            allowed = " ".join(f"{{{p}}}" for p in META_PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {allowed}")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format or conversion")
        names.append(name)
    return names


def _fixed_bytes(template: str) -> int:
    """UTF-8 length of the template's text outside placeholders."""
    return sum(len(text.encode()) for text, *_ in string.Formatter().parse(template))


def _worst_case_bytes(template: str) -> int:
    names = _template_fields(template)
    return _fixed_bytes(template) + sum(_PLACEHOLDER_MAX[name] for name in names)


class MetadataConfig(_Model):
    """What the meter writes into each signed reading: Meta1 (the identification, OCMF `ID`),
    Meta2 and Meta3. Placeholders: {id_tag} {evse_id} {connector_id} {station_id}."""

    meta1: str = "{id_tag}"
    meta2: str = "{evse_id}"
    meta3: str = ""

    @field_validator("meta1", "meta2", "meta3")
    @classmethod
    def _template(cls, value: str) -> str:
        _template_fields(value)
        return value

    @model_validator(mode="after")
    def _fixed_text_fits(self) -> Self:
        issues: list[tuple[Loc, str]] = []
        for n, template in enumerate(self.templates(), start=1):
            fixed = _fixed_bytes(template)
            if fixed > META_LIMITS[n]:
                issues.append(
                    (
                        (f"meta{n}",),
                        f"the fixed text alone is {fixed} bytes; the meter holds {META_LIMITS[n]}",
                    )
                )
        _raise_issues(issues)
        return self

    def templates(self) -> tuple[str, str, str]:
        return self.meta1, self.meta2, self.meta3

    def render(self, **values: object) -> tuple[str, str, str]:
        """Meta1..3 with the placeholders filled; ValueError for a missing or unknown value."""
        unknown = sorted(set(values) - set(META_PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown metadata placeholder(s): {', '.join(unknown)}")
        texts = {name: str(value) for name, value in values.items()}
        out: list[str] = []
        for n, template in enumerate(self.templates(), start=1):
            try:
                out.append(template.format(**texts))
            except KeyError as exc:
                raise ValueError(f"meta{n} needs a value for {{{exc.args[0]}}}") from None
        return out[0], out[1], out[2]


def _check_measurands(value: str) -> str:
    items = [item.strip() for item in value.split(",") if item.strip()]
    bad = [item for item in items if item not in MEASURANDS]
    if bad:
        raise ValueError(
            f"unsupported measurand(s) {', '.join(bad)}; this station measures "
            f"{', '.join(sorted(MEASURANDS))}"
        )
    if len(items) > _MAX_CSL_ITEMS:
        raise ValueError(f"at most {_MAX_CSL_ITEMS} measurands")
    return ",".join(items)


class OcppSettings(_Model):
    """Initial values of the OCPP configuration keys (the CSMS may change them later; the
    station keeps those changes in its store). Intervals in seconds, 0 = off."""

    heartbeat_interval: StrictInt = Field(default=300, ge=0)
    meter_value_sample_interval: StrictInt = Field(default=60, ge=0)
    meter_values_sampled_data: str = "Energy.Active.Import.Register,Power.Active.Import"
    clock_aligned_data_interval: StrictInt = Field(default=0, ge=0)
    meter_values_aligned_data: str = "Energy.Active.Import.Register"
    stop_txn_sampled_data: str = ""
    start_txn_sampled_data: str = ""
    authorize_remote_tx_requests: StrictBool = False
    local_authorize_offline: StrictBool = True
    local_pre_authorize: StrictBool = False
    authorization_cache_enabled: StrictBool = True
    allow_offline_tx_for_unknown_id: StrictBool = False
    stop_transaction_on_invalid_id: StrictBool = True
    stop_transaction_on_ev_side_disconnect: StrictBool = True
    connection_time_out: StrictInt = Field(default=60, ge=1)
    transaction_message_attempts: StrictInt = Field(default=3, ge=1)
    transaction_message_retry_interval: StrictInt = Field(default=60, ge=0)
    sampled_data_sign_readings: StrictBool = True
    sampled_data_sign_started_readings: StrictBool = False
    sampled_data_sign_updated_readings: StrictBool = False
    aligned_data_sign_readings: StrictBool = False
    aligned_data_sign_updated_readings: StrictBool = False
    public_key_with_signed_meter_value: Literal[
        "Never", "OncePerTransaction", "EveryMeterValue"
    ] = "OncePerTransaction"
    web_socket_ping_interval: StrictInt = Field(default=30, ge=0)

    @field_validator(
        "meter_values_sampled_data",
        "meter_values_aligned_data",
        "stop_txn_sampled_data",
        "start_txn_sampled_data",
    )
    @classmethod
    def _measurands(cls, value: str) -> str:
        return _check_measurands(value)

    @field_validator(
        "sampled_data_sign_updated_readings",
        "aligned_data_sign_readings",
        "aligned_data_sign_updated_readings",
    )
    @classmethod
    def _pairing(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "cannot be enabled: a signed reading during a session would break the "
                "begin/end pairing the transparency software checks"
            )
        return value


class ControlConfig(_Model):
    """The local control interface for the charge controller and the HMI."""

    listen: str = "unix:control.sock"

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value.startswith("unix:"):
            if not value[len("unix:") :]:
                raise ValueError("unix: needs a socket path")
            return value
        parts = urlsplit(value)
        if parts.scheme != "http":
            raise ValueError("must be unix:PATH or http://127.0.0.1:PORT")
        if parts.hostname not in _LOOPBACK_NAMES:
            raise ValueError(
                f"http is served on loopback only ({', '.join(_LOOPBACK_NAMES)}); "
                "use unix:PATH to reach it from elsewhere on the controller"
            )
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has a bad port number") from None
        if port is None or port == 0:
            raise ValueError("needs a port: http://127.0.0.1:PORT")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("must be just http://HOST:PORT")
        return value

    def unix_path(self, state_dir: Path) -> Path | None:
        """The socket path (relative paths under `state_dir`), or None for http."""
        if not self.listen.startswith("unix:"):
            return None
        path = Path(self.listen[len("unix:") :])
        return path if path.is_absolute() else state_dir / path


class LoggingConfig(_Model):
    """The daemon's log, written to stderr (the journal under systemd)."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="the least severe level written"
    )
    format: Literal["plain", "json"] = Field(
        default="plain",
        description="`plain`: one line per event (time, level, logger, message); `json`: one "
        "JSON object per line (time, level, logger, message, exception)",
    )
    journal: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="systemd journal mode: each line starts with its syslog level (`<3>` error "
        "... `<7>` debug, sd-daemon(3)) and carries no time, which the journal adds. `auto`: "
        "when stderr is the journal (JOURNAL_STREAM names it, as under systemd)",
    )


class ShutdownConfig(_Model):
    """What the daemon does when it is asked to stop (SIGTERM or SIGINT: `systemctl stop` or
    `restart`, `docker stop`)."""

    end_sessions: StrictBool = Field(
        default=False,
        description="`false`: open sessions stay open on the meter and in the store (the meter "
        "keeps counting) and the next start resumes them when the meter still holds the "
        "same open turn-on (else it takes their signed turn-off). `true`: every session "
        "is ended now with its signed turn-off (reason Reboot) and its end message is sent "
        "before the daemon exits",
    )
    grace_period: StrictFloat = Field(
        default=15.0,
        ge=0,
        description="seconds a meter operation in flight (a snapshot being signed, a session "
        "being stored) gets to finish before the daemon stops; what has not finished by then "
        "is resumed at the next start like after a power loss",
    )
    flush_timeout: StrictFloat = Field(
        default=10.0,
        ge=0,
        description="with `end_sessions: true`: seconds to deliver the queued messages to the "
        "CSMS before exiting; what is left stays in the store and is sent after the next start",
    )


class StoreConfig(_Model):
    """Where the station keeps its SQLite store and the simulated meters' keys and state."""

    state_dir: Path = Path("/var/lib/chargepoint")
    # Sessions (their signed records) are kept at least this long after they closed; the
    # German calibration law's retention for billing proofs is the common choice of 6 years.
    retention_years: int = Field(default=6, ge=1, le=100)


class StationConfig(_Model):
    """The whole station: the root of the YAML file."""

    station: StationInfo
    csms: CsmsConfig
    meter_buses: list[MeterBusConfig] = Field(min_length=1)
    simulator: SimulatorSettings | None = None
    connectors: list[ConnectorConfig] = Field(min_length=1)
    metadata: MetadataConfig = MetadataConfig()
    ocpp: OcppSettings = OcppSettings()
    control: ControlConfig = ControlConfig()
    logging: LoggingConfig = LoggingConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    store: StoreConfig = StoreConfig()

    @model_validator(mode="after")
    def _cross_rules(self) -> Self:
        issues: list[tuple[Loc, str]] = []
        buses: dict[str, int] = {}
        for i, bus in enumerate(self.meter_buses):
            if bus.name in buses:
                issues.append(
                    (
                        ("meter_buses", i, "name"),
                        f"bus name {bus.name!r} is already used by meter_buses[{buses[bus.name]}]",
                    )
                )
            else:
                buses[bus.name] = i
            if bus.is_simulator and self.simulator is None:
                issues.append(
                    (
                        ("meter_buses", i, "url"),
                        "the simulator bus needs the top-level `simulator:` section "
                        "(`simulator: {}` for the defaults)",
                    )
                )
        count = len(self.connectors)
        ids: dict[int, int] = {}
        meters: dict[tuple[str, int], int] = {}
        for i, conn in enumerate(self.connectors):
            if conn.id in ids:
                issues.append((("connectors", i, "id"), f"connector id {conn.id} is used twice"))
            else:
                ids[conn.id] = i
                if conn.id > count:
                    issues.append(
                        (
                            ("connectors", i, "id"),
                            f"connector ids must be 1 to {count} (one per connector, no gaps); "
                            f"{conn.id} is out of range",
                        )
                    )
            ref = conn.meter
            if ref.bus not in buses:
                known = ", ".join(repr(b.name) for b in self.meter_buses)
                issues.append(
                    (
                        ("connectors", i, "meter", "bus"),
                        f"no meter bus named {ref.bus!r} (meter_buses: {known})",
                    )
                )
            key = (ref.bus, ref.unit)
            if key in meters:
                other = self.connectors[meters[key]].id
                issues.append(
                    (
                        ("connectors", i, "meter", "unit"),
                        f"unit {ref.unit} on bus {ref.bus!r} is already the meter of "
                        f"connector {other}",
                    )
                )
            else:
                meters[key] = i
        _raise_issues(issues)
        return self

    def bus(self, name: str) -> MeterBusConfig:
        """The bus called `name` (KeyError when there is none)."""
        for bus in self.meter_buses:
            if bus.name == name:
                return bus
        raise KeyError(name)

    def connector(self, connector_id: int) -> ConnectorConfig:
        """The connector with this id (KeyError when there is none)."""
        for conn in self.connectors:
            if conn.id == connector_id:
                return conn
        raise KeyError(connector_id)

    def with_overrides(
        self,
        csms_url: str | None = None,
        ocpp_version: str | None = None,
        state_dir: Path | None = None,
    ) -> StationConfig:
        """A new config with command-line overrides applied and validated again.

        Raises ConfigError (without file lines) when the result is not valid.
        """
        return _apply_overrides(self, csms_url, ocpp_version, state_dir, {})

    def config_warnings(self) -> list[ConfigProblem]:
        """Things that are allowed but probably wrong (no line numbers: see LoadedConfig)."""
        return [ConfigProblem(_dotted(loc), None, msg) for loc, msg in _warnings(self)]


def _apply_overrides(
    config: StationConfig,
    csms_url: str | None,
    ocpp_version: str | None,
    state_dir: Path | None,
    lines: LineMap,
) -> StationConfig:
    problems: list[ConfigProblem] = []
    overridden: set[str] = set()
    csms: CsmsConfig = config.csms
    if csms_url is not None or ocpp_version is not None:
        fields = _fields(config.csms)
        if csms_url is not None:
            fields["url"] = csms_url
            overridden.add("csms.url")
        if ocpp_version is not None:
            fields["ocpp_version"] = ocpp_version
            overridden.add("csms.ocpp_version")
        try:
            csms = CsmsConfig.model_validate(fields)
        except ValidationError as exc:
            problems += _validation_problems(exc, ("csms",), lines)
    store: StoreConfig = config.store
    if state_dir is not None:
        store = StoreConfig(state_dir=state_dir)
        overridden.add("store.state_dir")
    if not problems:
        root = _fields(config)
        root.update(csms=csms, store=store)
        try:
            return StationConfig.model_validate(root)
        except ValidationError as exc:
            problems += _validation_problems(exc, (), lines)
    marked = [
        ConfigProblem(
            p.path,
            None if p.path in overridden else p.line,
            f"{p.message} (value given on the command line)" if p.path in overridden else p.message,
        )
        for p in problems
    ]
    raise ConfigError(_sorted(marked))


def _fields(model: BaseModel) -> dict[str, Any]:
    """The model's fields as they are (nested models stay validated instances)."""
    return {name: getattr(model, name) for name in type(model).model_fields}


# --- warnings --------------------------------------------------------------------------------


def _warnings(cfg: StationConfig) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    out += _csms_warnings(cfg)
    if cfg.simulator is not None and not any(b.is_simulator for b in cfg.meter_buses):
        out.append((("simulator",), "no meter bus uses the simulator; this section is unused"))
    simulated = {b.name for b in cfg.meter_buses if b.is_simulator}
    evse_ids: dict[str, int] = {}
    keys: dict[str, int] = {}
    for i, conn in enumerate(cfg.connectors):
        if conn.evse_id in evse_ids:
            out.append(
                (
                    ("connectors", i, "evse_id"),
                    f"the same EVSE id as connector {cfg.connectors[evse_ids[conn.evse_id]].id}",
                )
            )
        evse_ids.setdefault(conn.evse_id, i)
        key = conn.meter.public_key
        if key is None and conn.meter.bus not in simulated:
            out.append(
                (
                    ("connectors", i, "meter"),
                    "no public_key pinned: the key the meter shows first is trusted and kept; "
                    "pin the key read at commissioning (chargepoint meter --url URL pubkey)",
                )
            )
        elif key is not None:
            if key in keys:
                other = cfg.connectors[keys[key]].id
                out.append(
                    (
                        ("connectors", i, "meter", "public_key"),
                        f"the same public key as connector {other}: every meter has its own",
                    )
                )
            keys.setdefault(key, i)
    for n, template in enumerate(cfg.metadata.templates(), start=1):
        worst = _worst_case_bytes(template)
        if worst > META_LIMITS[n]:
            out.append(
                (
                    ("metadata", f"meta{n}"),
                    f"can reach {worst} bytes with long values; the meter holds "
                    f"{META_LIMITS[n]} and refuses longer metadata",
                )
            )
    socket_path = cfg.control.unix_path(cfg.store.state_dir)
    if socket_path is not None and len(os.fsencode(socket_path.absolute())) > _UNIX_PATH_MAX:
        out.append(
            (
                ("control", "listen"),
                f"the socket path is longer than {_UNIX_PATH_MAX} bytes; use a shorter one",
            )
        )
    return out


def _csms_warnings(cfg: StationConfig) -> list[tuple[Loc, str]]:
    csms = cfg.csms
    profile = csms.security_profile
    out: list[tuple[Loc, str]] = []
    parts = urlsplit(csms.url)
    if parts.path.rstrip("/").split("/")[-1] == cfg.station.id:
        out.append(
            (
                ("csms", "url"),
                "ends with the station id, which is appended again: give the URL without it",
            )
        )
    if profile == 0 and not _is_loopback(parts.hostname or ""):
        out.append(
            (
                ("csms", "security_profile"),
                "0 means no authentication and no encryption; use it on a trusted network only",
            )
        )
    if csms.password is not None:
        if profile in (0, 3):
            out.append((("csms", "password"), f"is not used with security profile {profile}"))
        else:
            out += _password_warnings(csms.password)
    if csms.ca_file is not None and profile in (0, 1):
        out.append((("csms", "ca_file"), f"is not used with security profile {profile} (no TLS)"))
    for name in ("client_cert", "client_key"):
        if getattr(csms, name) is not None and profile != 3:
            out.append((("csms", name), "is used with security profile 3 only"))
    for name in ("ca_file", "client_cert", "client_key"):
        path: Path | None = getattr(csms, name)
        if path is not None and not path.is_file():
            out.append((("csms", name), f"{path} does not exist (yet); it is read when connecting"))
    return out


def _password_warnings(secret: SecretRef) -> list[tuple[Loc, str]]:
    loc: Loc = ("csms", "password")
    try:
        value = secret.resolve()
    except ConfigError as exc:
        reason = exc.problems[0].message
        return [(loc, f"{reason}; it is read again when connecting")]
    low, high = _PASSWORD_LENGTH
    if not low <= len(value) <= high:
        return [
            (
                loc,
                f"has {len(value)} characters; the OCPP security whitepaper asks for "
                f"{low} to {high}",
            )
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


# --- pydantic errors -> problems -------------------------------------------------------------


def _validation_problems(exc: ValidationError, prefix: Loc, lines: LineMap) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        loc: Loc = prefix + tuple(err["loc"])
        kind = err["type"]
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, _RuleViolations):
            problems += [_problem(loc + sub, msg, lines) for sub, msg in error.issues]
            continue
        if kind in ("value_error", "assertion_error") and error is not None:
            message = str(error)
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "extra_forbidden":
            message = _unknown_key(loc)
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = "must be a mapping of keys (a YAML section)"
            if err.get("input") is None:
                message += "; it is empty"
        elif kind == "list_type":
            message = "must be a list (one `- ` item per entry)"
        else:
            message = _plain(str(err["msg"])) + _type_hint(kind, err.get("input"))
        problems.append(_problem(loc, message, lines))
    return problems


def _plain(message: str) -> str:
    if message.startswith("Input should be "):
        return "must be " + message[len("Input should be ") :]
    if message.startswith("Value error, "):
        return message[len("Value error, ") :]
    return message


def _type_hint(kind: str, value: Any) -> str:
    """Why YAML produced the wrong type; never repeats the value (it could be a secret)."""
    if kind == "string_type":
        if value is None:
            return " (the value is empty; write '' for empty text)"
        if isinstance(value, bool):
            return " (YAML read a boolean: put the text in quotes)"
        if isinstance(value, int | float):
            return " (YAML read a number: put the text in quotes)"
        if isinstance(value, dict):
            return " (YAML read a mapping: text starting with { must be in quotes)"
        if isinstance(value, list):
            return " (YAML read a list: text starting with [ must be in quotes)"
    if kind in ("int_type", "float_type", "bool_type") and isinstance(value, str):
        return " (write it without quotes)"
    if value is None and kind.endswith("_type"):
        return " (the value is empty)"
    return ""


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    known = _fields_at(loc[:-1])
    message = f"unknown key {key!r}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{message} (did you mean {close[0]!r}?)"
    if known and len(known) <= 12:
        return f"{message} (known keys: {', '.join(known)})"
    return message


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _fields_at(loc: Loc) -> list[str]:
    """The field names of the model found at `loc` below StationConfig, if it is one."""
    current: Any = StationConfig
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int) and typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(str(part))
            if field_info is None:
                return []
            current = field_info.annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


# --- YAML with lines -------------------------------------------------------------------------


_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_EXPANDED_NODES = 100_000  # far above any station; stops alias bombs ("billion laughs")


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values the document holds once aliases are expanded (cycles count once)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # in progress: a cycle back to here counts 1
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            size += _expanded_size(key_node, memo) + _expanded_size(value_node, memo)
            if size > _MAX_EXPANDED_NODES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo)
            if size > _MAX_EXPANDED_NODES:
                break
    memo[id(node)] = size
    return size


def _index_lines(root: yaml.Node) -> tuple[dict[tuple[str, ...], int], list[ConfigProblem]]:
    """Map key paths to 1-based lines; report duplicate keys (PyYAML keeps the last)."""
    lines: dict[tuple[str, ...], int] = {(): root.start_mark.line + 1}
    problems: list[ConfigProblem] = []
    seen: set[int] = set()
    queue: deque[tuple[yaml.Node, Loc]] = deque([(root, ())])
    while queue:  # breadth first, in file order: a later duplicate overrides the earlier one
        node, path = queue.popleft()
        if id(node) in seen:  # an alias: indexed where the anchor is
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            merged: list[yaml.Node] = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    merged.append(value_node)
                    continue
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    problems.append(ConfigProblem(_dotted(path), line, "keys must be plain names"))
                    continue
                key = str(key_node.value)
                child = (*path, key)
                if key in first:
                    problems.append(
                        ConfigProblem(
                            _dotted(child),
                            line,
                            f"duplicate key {key!r} (first at line {first[key]}); "
                            "YAML would keep only the last one",
                        )
                    )
                first.setdefault(key, line)
                lines[_key(child)] = line  # the last one is the value that counts
                queue.append((value_node, child))
            for source in merged:
                sources = source.value if isinstance(source, yaml.SequenceNode) else [source]
                for mapping in sources:
                    if isinstance(mapping, yaml.MappingNode):
                        for key_node, _value in mapping.value:
                            child = (*path, str(key_node.value))
                            lines.setdefault(_key(child), key_node.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, i)
                lines[_key(child)] = item.start_mark.line + 1
                queue.append((item, child))
    return lines, problems


def _yaml_problem(exc: yaml.YAMLError) -> ConfigProblem:
    # only the short problem descriptions: PyYAML's full text quotes the line (a secret?)
    if isinstance(exc, yaml.reader.ReaderError):
        return ConfigProblem(
            "",
            None,
            f"the file holds a character YAML does not allow (#x{exc.character:04x}) at "
            f"position {exc.position}",
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(t for t in (exc.context, exc.problem) if t)
        return ConfigProblem("", mark.line + 1 if mark else None, f"YAML syntax error: {what}")
    return ConfigProblem("", None, f"YAML error: {type(exc).__name__}")


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config, its warnings (`FILE:LINE: path: message`) and the file it came from."""

    config: StationConfig
    warnings: list[str]
    path: Path
    lines: LineMap = field(default_factory=dict, repr=False, compare=False)

    def with_overrides(
        self,
        csms_url: str | None = None,
        ocpp_version: str | None = None,
        state_dir: Path | None = None,
    ) -> LoadedConfig:
        """Overrides applied as the daemon does; problems and warnings keep their file lines."""
        try:
            config = _apply_overrides(self.config, csms_url, ocpp_version, state_dir, self.lines)
        except ConfigError as exc:
            raise ConfigError(exc.problems, self.path) from None
        return LoadedConfig(
            config, _render_warnings(config, self.path, self.lines), self.path, self.lines
        )


def _render_warnings(config: StationConfig, path: Path, lines: LineMap) -> list[str]:
    problems = _sorted(_problem(loc, msg, lines) for loc, msg in _warnings(config))
    return [p.format(path) for p in problems]


def parse_config(text: str, path: Path) -> LoadedConfig:
    """Validate YAML `text` as if read from `path` (used in messages only)."""
    try:
        # the reader checks the characters already: a control character fails here
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], path) from None
    try:
        root = loader.get_single_node()
        if root is not None and _expanded_size(root, {}) > _MAX_EXPANDED_NODES:
            raise ConfigError(
                [ConfigProblem("", None, "the YAML expands to too many values (aliases?)")], path
            )
        # index before constructing: construction rewrites merge keys (<<) in the nodes
        lines, problems = ({}, []) if root is None else _index_lines(root)
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], path) from None
    except RecursionError:
        raise ConfigError(
            [ConfigProblem("", None, "the YAML is nested too deeply")], path
        ) from None
    finally:
        loader.dispose()
    sections = "station, csms, meter_buses and connectors"
    if root is None:
        raise ConfigError(
            [ConfigProblem("", None, f"the file is empty; it needs {sections}")], path
        )
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise ConfigError(
            [
                ConfigProblem(
                    "",
                    root.start_mark.line + 1,
                    f"the top level must be a mapping of sections ({sections}, ...), not {kind}",
                )
            ],
            path,
        )
    config: StationConfig | None = None
    try:
        config = StationConfig.model_validate(data)
    except ValidationError as exc:
        problems += _validation_problems(exc, (), lines)
    except RecursionError:
        problems.append(ConfigProblem("", None, "the YAML aliases refer to themselves"))
    if problems or config is None:
        raise ConfigError(_sorted(problems), path)
    return LoadedConfig(config, _render_warnings(config, path, lines), path, lines)


def load_config(path: Path) -> LoadedConfig:
    """Read and validate the station's YAML file; raises ConfigError listing every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem("", None, f"cannot read the file: {exc.strerror or exc}")], path
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem("", None, "the file is not UTF-8 text")], path) from None
    return parse_config(text, Path(path))
