"""The configuration reference, generated from the pydantic models in chargepoint/config/.

`chargepoint config-reference --format json-schema` writes a JSON schema (draft 2020-12) that
editors use to complete and check the station's YAML file; `--format markdown` writes the table
in docs/configuration.md. Both come from `StationConfig`; the Markdown is made from the schema,
so the two always agree. A field's text is its `Field(description=...)`, else the entry for
`Model.field` in DESCRIPTIONS below; tests/test_config_reference.py fails when a field has none
or when the committed files differ from what this module generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from chargepoint.config import StationConfig
from chargepoint.store.files import FILE_MODE, open_text

SCHEMA_ID = "https://chargepoint.invalid/schema/station.json"  # names it; nothing is served
REGENERATE = "make docs"
COMMAND = "chargepoint config-reference"
# what every path field's text says (chargepoint/config/base.py resolves them so)
RELATIVE_PATHS = "relative to the config file's directory"

# Model docstrings are the section texts; these fill in models that have none.
MODEL_DESCRIPTIONS: dict[str, str] = {
    "ConnectorConfig": "One connector (charging point) of the station and its own signing meter.",
}

DESCRIPTIONS: dict[str, str] = {
    # station
    "StationInfo.id": "the OCPP identity (charge point id), appended to `csms.url` as its last "
    "path segment; 1 to 48 characters of A-Z a-z 0-9 * - _ = : + | @ .",
    "StationInfo.vendor": "chargePointVendor in BootNotification",
    "StationInfo.model": "chargePointModel in BootNotification",
    "StationInfo.serial": "chargePointSerialNumber in BootNotification; quote values YAML would "
    "read as numbers",
    # csms
    "CsmsConfig.url": "the CSMS's websocket URL (`ws://` or `wss://`), without the station id, "
    "without credentials, query or fragment",
    "CsmsConfig.ocpp_version": "the OCPP version spoken: `'1.6'` (OCPP-J 1.6) or `'2.0.1'`; in "
    "quotes, YAML reads 1.6 as a number. Switch versions only with no session open",
    "CsmsConfig.security_profile": "0: `ws://`, no authentication (trusted lab networks only); "
    "1: `ws://` with HTTP Basic authentication; 2: `wss://` (TLS 1.2+, the server certificate is "
    "checked) with HTTP Basic authentication; 3: `wss://` with a TLS client certificate",
    "CsmsConfig.password": "the Basic authentication password (profiles 1 and 2): "
    "`{file: PATH}` (one line; a relative PATH is relative to the config file's directory; "
    "under systemd the credential "
    "`/run/credentials/chargepoint.service/csms-password`), `{env: NAME}`, or inline text (not "
    "recommended). Read when connecting, never logged; the OCPP security whitepaper asks for 16 "
    "to 40 characters",
    "CsmsConfig.ca_file": "PEM file of the CA certificate(s) that signed the CSMS's server "
    "certificate (profiles 2 and 3); the system's trusted CAs when not set",
    "CsmsConfig.client_cert": "PEM client certificate of the station (profile 3)",
    "CsmsConfig.client_key": "PEM private key of `client_cert` (profile 3)",
    "CsmsConfig.call_timeout": "seconds to wait for the CSMS to answer a request",
    "CsmsConfig.reconnect_min_delay": "seconds before the first reconnection attempt; the delay "
    "doubles (with jitter) after each failed one",
    "CsmsConfig.reconnect_max_delay": "the longest delay between reconnection attempts, seconds",
    "CsmsConfig.signed_value_format": "how signed values travel in MeterValues, StopTransaction "
    "and TransactionEvent: `oca` (OCA application note: OCMF in signedMeterValue), or the "
    "legacy backend variants `raw-ocmf` and `signed-meter-value`",
    # meter_buses
    "MeterBusConfig.name": "the bus's name, used by `connectors[].meter.bus`",
    "MeterBusConfig.url": "`serial:///dev/ttyUSB0?baudrate=19200&parity=E` (RTU on a serial "
    "port; stopbits and bytesize too), `rtu+tcp://HOST:PORT` (RTU through a TCP serial gateway), "
    "`tcp://HOST:PORT` (Modbus TCP), or `simulator` (the embedded simulated meters)",
    "MeterBusConfig.request_timeout": "seconds to wait for the answer to one Modbus request",
    # simulator
    "SimulatorSettings.sign_delay": "seconds a simulated meter takes to sign a snapshot (the "
    "real one: about 2)",
    "SimulatorSettings.wire_time_baud": "emulate the wire time of a real RS-485 line at this "
    "baud rate (8E1); off when not set",
    "SimulatorSettings.ocmf_style": "OCMF readings in kWh with two decimals like the device "
    "(`kwh`), or in integer Wh like older firmware (`wh`)",
    # connectors
    "ConnectorConfig.id": "the connector number, 1 to N without gaps (the OCPP connectorId; the "
    "EVSE id in OCPP 2.0.1)",
    "ConnectorConfig.evse_id": "the EVSE id shown to the driver (e.g. `DE*XYZ*E0001*1`), also "
    "available to the metadata templates as `{evse_id}`",
    "ConnectorConfig.meter": "the connector's own signing meter",
    "ConnectorConfig.ev": "the simulated EV on this connector (embedded simulator only)",
    "MeterRef.bus": "the `name` of the meter bus the meter is on",
    "MeterRef.unit": "the meter's Modbus unit id (the BSM-WS36A's factory setting is 42)",
    "MeterRef.public_key": "the key pinned at commissioning: hex DER, or the path of a file "
    "holding it (a relative path is relative to the config file's directory). A meter that "
    "shows another key is refused (connector Faulted). Not set: the key the meter shows at "
    "first contact is pinned and kept; compare it with the meter's label",
    "MeterRef.signing": "`meter`: the meter signs every reading (calibration-law compliant). "
    "`station-test`: TEST MODE for a meter that cannot sign; the station signs the meter's "
    "readings with its own key (kept in the state directory). NOT calibration-law compliant, "
    "and every record, export and verification says so; leave `public_key` out",
    "EvSimConfig.power_w": "watts the simulated EV draws while the load is released",
    "EvSimConfig.plug_in_delay": "seconds from a session request to the simulated EV plugging "
    "in (and from a session's end to it leaving)",
    # metadata
    "MetadataConfig.meta1": "template of Meta1, the identification in every signed reading "
    "(OCMF `ID`); at most 140 bytes",
    "MetadataConfig.meta2": "template of Meta2; at most 100 bytes",
    "MetadataConfig.meta3": "template of Meta3; at most 100 bytes",
    # ocpp
    "OcppSettings.heartbeat_interval": "HeartbeatInterval, seconds",
    "OcppSettings.meter_value_sample_interval": "MeterValueSampleInterval: seconds between "
    "sampled meter values during a session, 0 = none",
    "OcppSettings.meter_values_sampled_data": "MeterValuesSampledData: comma-separated "
    "measurands (Energy.Active.Import.Register, Power.Active.Import), at most 5",
    "OcppSettings.clock_aligned_data_interval": "ClockAlignedDataInterval: seconds between "
    "clock-aligned values (900 = every quarter hour), 0 = off",
    "OcppSettings.meter_values_aligned_data": "MeterValuesAlignedData: measurands of the "
    "clock-aligned values",
    "OcppSettings.stop_txn_sampled_data": "StopTxnSampledData: measurands added to the end message",
    "OcppSettings.start_txn_sampled_data": "StartTxnSampledData (2.0.1 SampledDataCtrlr."
    "TxStartedMeasurands): measurands sent when a transaction starts",
    "OcppSettings.authorize_remote_tx_requests": "AuthorizeRemoteTxRequests: authorize the id "
    "tag of a remote start before starting",
    "OcppSettings.local_authorize_offline": "LocalAuthorizeOffline: accept id tags from the "
    "cache while the CSMS is not connected",
    "OcppSettings.local_pre_authorize": "LocalPreAuthorize: start at once for id tags the cache "
    "knows, without asking the CSMS first",
    "OcppSettings.authorization_cache_enabled": "AuthorizationCacheEnabled",
    "OcppSettings.allow_offline_tx_for_unknown_id": "AllowOfflineTxForUnknownId: start for "
    "unknown id tags while the CSMS is not connected",
    "OcppSettings.stop_transaction_on_invalid_id": "StopTransactionOnInvalidId: end a session "
    "whose id tag the CSMS rejects after it started",
    "OcppSettings.stop_transaction_on_ev_side_disconnect": "StopTransactionOnEVSideDisconnect: "
    "end the session when the EV is unplugged",
    "OcppSettings.connection_time_out": "ConnectionTimeOut: seconds from authorization to "
    "plug-in (or the other way round) before the start is abandoned",
    "OcppSettings.transaction_message_attempts": "TransactionMessageAttempts: tries per "
    "transaction message; a message still refused after them is flagged and kept, never dropped",
    "OcppSettings.transaction_message_retry_interval": "TransactionMessageRetryInterval, "
    "seconds (multiplied by the attempt number)",
    "OcppSettings.sampled_data_sign_readings": "SampledDataSignReadings: send the signed Begin "
    "and End values with the end message",
    "OcppSettings.sampled_data_sign_started_readings": "SampledDataSignStartedReadings: send "
    "the signed Begin already when the transaction starts",
    "OcppSettings.sampled_data_sign_updated_readings": "SampledDataSignUpdatedReadings: must "
    "stay false (a signed reading during a session would break the Begin/End pairing)",
    "OcppSettings.aligned_data_sign_readings": "AlignedDataSignReadings: must stay false",
    "OcppSettings.aligned_data_sign_updated_readings": "AlignedDataSignUpdatedReadings: must "
    "stay false",
    "OcppSettings.public_key_with_signed_meter_value": "PublicKeyWithSignedMeterValue: when "
    "the meter's public key travels with the signed values",
    "OcppSettings.web_socket_ping_interval": "WebSocketPingInterval: seconds between websocket "
    "pings, 0 = off",
    # control
    "ControlConfig.listen": "`unix:PATH` (relative to `store.state_dir` unless absolute; under "
    "systemd `unix:/run/chargepoint/control.sock`) or `http://127.0.0.1:PORT` (loopback only)",
    # store
    "StoreConfig.state_dir": "where the SQLite store (sessions, the outbox of transaction "
    "messages, pinned keys, settings) and the simulated meters' keys live; persistent storage "
    "only (systemd: StateDirectory, container: a volume). A relative path is relative to the "
    "config file's directory; `--state-dir` on the command line overrides it, relative to the "
    "current directory",
    "StoreConfig.retention_years": "closed sessions and their signed records are kept at least "
    "this many years (billing proofs; 6 is the common choice under German calibration law)",
}


def field_description(model: str, field: str) -> str | None:
    """The text of `model.field`: its Field(description=...) or the DESCRIPTIONS entry."""
    cls = _models().get(model)
    if cls is not None:
        info = cls.model_fields.get(field)
        if info is not None and info.description:
            return str(info.description)
    return DESCRIPTIONS.get(f"{model}.{field}")


def _models() -> dict[str, type[Any]]:
    from pydantic import BaseModel

    found: dict[str, type[Any]] = {}
    queue: list[type[Any]] = [StationConfig]
    while queue:
        cls = queue.pop()
        if cls.__name__ in found:
            continue
        found[cls.__name__] = cls
        for info in cls.model_fields.values():
            for candidate in _types_in(info.annotation):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    queue.append(candidate)
    return found


def _types_in(annotation: Any) -> list[Any]:
    import typing

    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    out: list[Any] = []
    for arg in args:
        out += _types_in(arg)
    return out


def json_schema() -> dict[str, Any]:
    """The schema editors use for the station's YAML file."""
    schema = StationConfig.model_json_schema()
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    for name, model in defs.items():
        _describe_model(name, model)
    _describe_model("StationConfig", schema)
    secret = defs.get("SecretRef")
    if secret is not None:
        # `password: text` is the inline form of the object (exactly one of its keys)
        obj = {k: v for k, v in secret.items() if k not in ("description", "title")}
        obj["minProperties"] = 1
        obj["maxProperties"] = 1
        defs["SecretRef"] = {
            "description": secret.get("description", ""),
            "anyOf": [{"type": "string", "minLength": 1}, obj],
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "chargepoint station configuration",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def _describe_model(name: str, model: dict[str, Any]) -> None:
    model.pop("title", None)
    if not model.get("description") and name in MODEL_DESCRIPTIONS:
        model["description"] = MODEL_DESCRIPTIONS[name]
    if name == "StationConfig":
        model["description"] = "The station's YAML file (chargepoint run --config FILE)."
    for field, prop in model.get("properties", {}).items():
        prop.pop("title", None)
        text = field_description(name, field)
        if text and _is_path(prop) and RELATIVE_PATHS not in text:
            text = f"{text.rstrip('.')}. A relative path is {RELATIVE_PATHS}"
        if text:
            prop["description"] = text


def _is_path(prop: dict[str, Any]) -> bool:
    """A path field (`Path`, or `Path | None`): the loader reads it relative to the file."""
    return any(p.get("format") == "path" for p in [prop, *prop.get("anyOf", [])])


def missing_descriptions() -> list[str]:
    """`Model.field` of every field, and `Model` of every section, that has no text (the
    reference would show a gap)."""
    missing = []
    for name, cls in sorted(_models().items()):
        if not (cls.__doc__ or "").strip() and name not in MODEL_DESCRIPTIONS:
            missing.append(name)
        if name in ("SecretRef", "StationConfig"):
            # a secret is described where it is used; a top-level section by its model
            continue
        for field in cls.model_fields:
            if not field_description(name, field):
                missing.append(f"{name}.{field}")
    return missing


# ---- Markdown ------------------------------------------------------------------------------


def _yaml(value: Any) -> str:
    """`value` as it is written in the YAML file."""
    if value is None:
        return "not set"
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return text.removesuffix("...").strip()


def _default(value: Any) -> str:
    return "not set" if value is None else f"`{_yaml(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class _Walker:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(self, prop: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """(model name, schema) behind a $ref, or (None, prop)."""
        ref = prop.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            return name, self.defs[name]
        return None, prop

    def non_null(self, prop: dict[str, Any]) -> dict[str, Any]:
        options = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
        if len(options) == 1 and "anyOf" in prop:
            merged = {k: v for k, v in prop.items() if k != "anyOf"}
            merged.update(options[0])
            return merged
        return prop

    def type_text(self, prop: dict[str, Any]) -> str:
        prop = self.non_null(prop)
        name, target = self.resolve(prop)
        if name == "SecretRef":
            return "secret: text, `{file: PATH}` or `{env: NAME}`"
        if name is not None:
            return "section"
        if "enum" in target:
            return "one of " + ", ".join(f"`{_yaml(v)}`" for v in target["enum"])
        kind = target.get("type")
        if kind == "array":
            return "list"
        words = {
            "integer": "integer",
            "number": "number",
            "boolean": "`true` or `false`",
            "string": "path" if target.get("format") == "path" else "text",
        }
        text = words.get(str(kind), str(kind))
        low, high = target.get("minimum"), target.get("maximum")
        if low is not None and high is not None:
            text += f", {_yaml(low)} to {_yaml(high)}"
        elif low is not None:
            text += f", at least {_yaml(low)}"
        elif target.get("exclusiveMinimum") is not None:
            text += f", above {_yaml(target['exclusiveMinimum'])}"
        lmin, lmax = target.get("minLength"), target.get("maxLength")
        if lmax is not None:
            text += f", {lmin or 0} to {lmax} characters"
        elif lmin:
            text += ", not empty"
        return text

    def rows(self, model: dict[str, Any], prefix: str) -> list[tuple[str, str, str, str]]:
        out: list[tuple[str, str, str, str]] = []
        required = set(model.get("required", []))
        for field, raw in model.get("properties", {}).items():
            key = f"{prefix}{field}"
            prop = self.non_null(raw)
            name, target = self.resolve(prop)
            default = "**required**" if field in required else _default(raw.get("default"))
            description = raw.get("description", "")
            if name is not None and name != "SecretRef":
                out.append((key, "section", "", description or target.get("description", "")))
                out += self.rows(target, f"{key}.")
                continue
            if prop.get("type") == "array":
                item_name, item = self.resolve(prop.get("items", {}))
                least = prop.get("minItems")
                kind = "list" + (f", at least {least} entry" if least else "")
                out.append((key, kind, default, description or item.get("description", "")))
                if item_name is not None:
                    out += self.rows(item, f"{key}[].")
                continue
            out.append((key, self.type_text(prop), default, description))
        return out


def markdown() -> str:
    """docs/configuration.md."""
    schema = json_schema()
    walker = _Walker(schema)
    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated by `{COMMAND} --format markdown` from chargepoint/config/; do not "
        f"edit. Regenerate with `{REGENERATE}`. -->",
        "",
        "The station is configured by one YAML file, given as `chargepoint run --config FILE` "
        "(`/etc/chargepoint/station.yaml` under systemd and in the container). "
        "`chargepoint check-config --config FILE` validates it and names every problem with its "
        "line (exit 78 on an error). Annotated examples: `config/simulator.yaml` (embedded "
        "simulated meters) and `config/bsm-rs485.yaml` (real meters on RS-485).",
        "",
        "Editors that read JSON schemas (VS Code with the YAML extension, IntelliJ, Neovim with "
        "yaml-language-server) complete and check the file with "
        "[chargepoint.schema.json](chargepoint.schema.json): put "
        "`# yaml-language-server: $schema=PATH/TO/docs/chargepoint.schema.json` on the file's "
        "first line, or map the file to the schema in the editor's settings.",
        "",
        "Times are in seconds, power in watts, energy in Wh. Relative paths in the file "
        "(`store.state_dir`, password, key and certificate files) are relative to the config "
        "file's directory, whatever directory the daemon is started from; `--state-dir` on the "
        "command line is relative to the current directory. Values given on the command line "
        "(`--csms-url`, `--ocpp-version`, `--state-dir`) replace the file's before it is "
        "checked. Unknown keys are errors. `[]` in a key stands for each entry of a list.",
        "",
    ]
    required = set(schema.get("required", []))
    for field, raw in schema["properties"].items():
        prop = walker.non_null(raw)
        _, target = walker.resolve(prop)
        is_list = prop.get("type") == "array"
        if is_list:
            _, target = walker.resolve(prop.get("items", {}))
        lines.append(f"## `{field}`")
        lines.append("")
        need = "Required" if field in required else "Optional"
        if is_list:
            need += f"; a list of at least {prop.get('minItems', 0)} entry"
        text = " ".join((raw.get("description") or target.get("description", "")).split())
        lines.append(f"{need}. {text}".strip() + (" Each entry:" if is_list else ""))
        lines.append("")
        lines.append("| key | type | default | meaning |")
        lines.append("|---|---|---|---|")
        prefix = f"{field}[]." if is_list else f"{field}."
        for key, kind, default, description in walker.rows(target, prefix):
            lines.append(f"| `{key}` | {_cell(kind)} | {_cell(default)} | {_cell(description)} |")
        lines.append("")
    return "\n".join(lines)


def render(fmt: str) -> str:
    if fmt == "json-schema":
        return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    return markdown()


# ---- command -------------------------------------------------------------------------------


def add_config_reference_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config-reference",
        help="print the configuration reference (Markdown) or its JSON schema",
        description=(
            "Generate the configuration reference from the daemon's own models: the Markdown "
            "of docs/configuration.md, or the JSON schema of docs/chargepoint.schema.json that "
            "editors use to complete and check the station's YAML file."
        ),
    )
    p.add_argument(
        "--format",
        choices=("markdown", "json-schema"),
        default="markdown",
        help="markdown (default) or the JSON schema of the config file",
    )
    p.add_argument("--output", type=Path, help="write to this file instead of stdout")
    p.set_defaults(func=run_config_reference)


def run_config_reference(args: argparse.Namespace) -> int:
    text = render(args.format)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        with open_text(args.output, FILE_MODE) as f:
            f.write(text)
    except OSError as exc:
        print(f"config-reference: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    return 0
