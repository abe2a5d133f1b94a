"""The OCPP 2.0.1 device model over the core Settings: SetVariables/GetVariables results as
B05/B06 define them, persistence, security variables, and base reports (B07); every payload is
checked against the OCPP 2.0.1 JSON schemas of the ocpp library."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ocpp
import pytest
from jsonschema import Draft6Validator  # type: ignore[import-untyped]

from chargepoint.config import StationConfig, parse_config
from chargepoint.core.settings import Settings, station_specs
from chargepoint.csms.ocpp201.device_model import (
    DEFAULT_TX_START_POINT,
    DEFAULT_TX_STOP_POINT,
    REPORT_VALUE_MAX,
    TX_START_POINTS,
    TX_STOP_POINTS,
    ComponentRef,
    DeviceModel,
    LiveValues,
    Rejection,
    TooManyItems,
    VariableRef,
    check_value,
)

SCHEMAS = Path(ocpp.__file__).parent / "v201" / "schemas"
PASSWORD = "Zq7-wX2:pL9|mN4@rT"
KEY_HEX = {
    1: "3059301306072a8648ce3d020106082a8648ce3d03010703420004" + "11" * 64,
    2: "3059301306072a8648ce3d020106082a8648ce3d03010703420004" + "22" * 64,
}

Json = dict[str, Any]


def _validator(name: str) -> Draft6Validator:
    return Draft6Validator(json.loads((SCHEMAS / f"{name}.json").read_text()))


SET_REQ = _validator("SetVariablesRequest")
SET_RES = _validator("SetVariablesResponse")
GET_REQ = _validator("GetVariablesRequest")
GET_RES = _validator("GetVariablesResponse")
REPORT_REQ = _validator("GetBaseReportRequest")
NOTIFY_REQ = _validator("NotifyReportRequest")


def _yaml(profile: int = 0, url: str = "ws://127.0.0.1:9000/ocpp", extra: str = "") -> str:
    return f"""
station:
  id: CP-DM-1
  vendor: chargepoint
  model: Eichrecht AC
csms:
  url: {url}
  ocpp_version: "2.0.1"
  security_profile: {profile}
{extra}
meter_buses:
  - name: sim
    url: simulator
simulator: {{}}
connectors:
  - id: 1
    evse_id: DE*XYZ*E0001*1
    meter: {{bus: sim, unit: 42}}
  - id: 2
    evse_id: DE*XYZ*E0001*2
    meter: {{bus: sim, unit: 43}}
ocpp:
  heartbeat_interval: 60
  meter_value_sample_interval: 30
  meter_values_sampled_data: Energy.Active.Import.Register,Power.Active.Import
store:
  state_dir: ./state
"""


def _oca(hex_key: str) -> str:
    return base64.b64encode(f"oca:base16:asn1:{hex_key}".encode()).decode()


def _key_reader(hex_key: str) -> Callable[[], str]:
    return lambda: _oca(hex_key)


@dataclass
class Rig:
    """A station's settings and device model sharing one store, as in the daemon."""

    config: StationConfig
    stored: dict[str, str]
    settings: Settings
    dm: DeviceModel

    @classmethod
    def build(
        cls,
        config: StationConfig,
        stored: dict[str, str] | None = None,
        live: LiveValues | None = None,
        items_per_message: dict[str, int] | None = None,
    ) -> Rig:
        store: dict[str, str] = {} if stored is None else stored

        async def persist(key: str, value: str) -> None:
            store[key] = value

        settings = Settings(station_specs(config.ocpp, len(config.connectors)), store, persist)
        for cid, hex_key in KEY_HEX.items():
            settings.dynamic[f"MeterPublicKey{cid}"] = _key_reader(hex_key)
        dm = DeviceModel.for_station(
            config, settings, persist, store, live=live, items_per_message=items_per_message
        )
        return cls(config, store, settings, dm)

    def rebuild(self) -> Rig:
        """A restart: new Settings and device model from what was stored."""
        return Rig.build(self.config, self.stored)


def _config(profile: int = 0, url: str = "ws://127.0.0.1:9000/ocpp", extra: str = "") -> Any:
    return parse_config(_yaml(profile, url, extra), Path("t.yaml")).config


@pytest.fixture
def rig() -> Rig:
    return Rig.build(_config())


def _ref(
    component: str,
    variable: str,
    *,
    instance: str | None = None,
    evse: int | None = None,
    connector: int | None = None,
    var_instance: str | None = None,
) -> Json:
    comp: Json = {"name": component}
    if instance is not None:
        comp["instance"] = instance
    if evse is not None:
        comp["evse"] = {"id": evse} | ({"connectorId": connector} if connector else {})
    var: Json = {"name": variable}
    if var_instance is not None:
        var["instance"] = var_instance
    return {"component": comp, "variable": var}


def sv(component: str, variable: str, value: str, **kw: Any) -> Json:
    attribute_type = kw.pop("attribute_type", None)
    item = {**_ref(component, variable, **kw), "attributeValue": value}
    if attribute_type is not None:
        item["attributeType"] = attribute_type
    return item


def gv(component: str, variable: str, **kw: Any) -> Json:
    attribute_type = kw.pop("attribute_type", None)
    item = _ref(component, variable, **kw)
    if attribute_type is not None:
        item["attributeType"] = attribute_type
    return item


async def set_all(dm: DeviceModel, items: list[Json]) -> list[Json]:
    SET_REQ.validate({"setVariableData": items})
    results = await dm.set_variables(items)
    SET_RES.validate({"setVariableResult": results})
    assert len(results) == len(items)  # B05.FR.01
    for item, result in zip(items, results, strict=True):  # B05.FR.02/03/12
        assert result["component"] == item["component"]
        assert result["variable"] == item["variable"]
        assert result["attributeType"] == item.get("attributeType", "Actual")
    return results


async def set1(dm: DeviceModel, *args: Any, **kw: Any) -> Json:
    return (await set_all(dm, [sv(*args, **kw)]))[0]


def get_all(dm: DeviceModel, items: list[Json]) -> list[Json]:
    GET_REQ.validate({"getVariableData": items})
    results = dm.get_variables(items)
    GET_RES.validate({"getVariableResult": results})
    assert len(results) == len(items)  # B06.FR.01
    for item, result in zip(items, results, strict=True):
        assert result["component"] == item["component"]
        assert result["variable"] == item["variable"]
        assert result["attributeType"] == item.get("attributeType", "Actual")
        if result["attributeStatus"] != "Accepted":
            assert "attributeValue" not in result
    return results


def get1(dm: DeviceModel, *args: Any, **kw: Any) -> Json:
    return get_all(dm, [gv(*args, **kw)])[0]


def value_of(dm: DeviceModel, *args: Any, **kw: Any) -> str:
    result = get1(dm, *args, **kw)
    assert result["attributeStatus"] == "Accepted", result
    text: str = result["attributeValue"]
    return text


def reason(result: Json) -> str:
    code: str = result["attributeStatusInfo"]["reasonCode"]
    return code


# ---- SetVariables onto the Settings ---------------------------------------------------------


async def test_accepted_change_writes_the_setting_persists_and_survives_a_restart(
    rig: Rig,
) -> None:
    assert value_of(rig.dm, "OCPPCommCtrlr", "HeartbeatInterval") == "60"
    result = await set1(rig.dm, "OCPPCommCtrlr", "HeartbeatInterval", "120")
    assert result["attributeStatus"] == "Accepted"
    assert "attributeStatusInfo" not in result
    assert rig.settings.number("HeartbeatInterval") == 120  # what the heartbeat loop reads
    assert rig.stored["HeartbeatInterval"] == "120"

    again = rig.rebuild()
    assert again.settings.number("HeartbeatInterval") == 120
    assert value_of(again.dm, "OCPPCommCtrlr", "HeartbeatInterval") == "120"


async def test_instance_variables_map_to_the_1_6_transaction_message_keys(rig: Rig) -> None:
    results = await set_all(
        rig.dm,
        [
            sv("OCPPCommCtrlr", "MessageAttempts", "5", var_instance="TransactionEvent"),
            sv("OCPPCommCtrlr", "MessageAttemptInterval", "15", var_instance="TransactionEvent"),
            sv("TxCtrlr", "EVConnectionTimeOut", "90"),
            sv("TxCtrlr", "StopTxOnInvalidId", "false"),
            sv("AuthCtrlr", "AuthorizeRemoteStart", "TRUE"),
            sv("AuthCacheCtrlr", "Enabled", "false"),
            sv("SampledDataCtrlr", "TxUpdatedMeasurands", "Energy.Active.Import.Register"),
            sv("SampledDataCtrlr", "TxUpdatedInterval", "10"),
            sv("SampledDataCtrlr", "SignStartedReadings", "true"),
            sv("AlignedDataCtrlr", "Interval", "900"),
            sv("OCPPCommCtrlr", "PublicKeyWithSignedMeterValue", "EveryMeterValue"),
        ],
    )
    assert [r["attributeStatus"] for r in results] == ["Accepted"] * len(results)
    s = rig.settings
    assert s.number("TransactionMessageAttempts") == 5
    assert s.number("TransactionMessageRetryInterval") == 15
    assert s.number("ConnectionTimeOut") == 90
    assert not s.flag("StopTransactionOnInvalidId")
    assert s.flag("AuthorizeRemoteTxRequests")
    assert s.raw("AuthorizeRemoteTxRequests") == "true"  # normalised
    assert not s.flag("AuthorizationCacheEnabled")
    assert s.items("MeterValuesSampledData") == ["Energy.Active.Import.Register"]
    assert s.number("MeterValueSampleInterval") == 10
    assert s.flag("SampledDataSignStartedReadings")
    assert s.number("ClockAlignedDataInterval") == 900
    assert s.raw("PublicKeyWithSignedMeterValue") == "EveryMeterValue"


async def test_names_and_instances_match_case_insensitively_and_echo_as_sent(rig: Rig) -> None:
    item = sv("ocppcommctrlr", "messageattempts", "4", var_instance="transactionevent")
    [result] = await set_all(rig.dm, [item])
    assert result["attributeStatus"] == "Accepted"
    assert result["component"] == {"name": "ocppcommctrlr"}
    assert rig.settings.number("TransactionMessageAttempts") == 4


async def test_the_ocpp_library_snake_case_form_is_accepted(rig: Rig) -> None:
    results = await rig.dm.set_variables(
        [
            {
                "attribute_value": "false",
                "attribute_type": "Actual",
                "component": {"name": "TxCtrlr"},
                "variable": {"name": "StopTxOnEVSideDisconnect"},
            }
        ]
    )
    assert results[0]["attributeStatus"] == "Accepted"
    assert not rig.settings.flag("StopTransactionOnEVSideDisconnect")
    got = rig.dm.get_variables(
        [{"component": {"name": "EVSE", "evse": {"id": 2}}, "variable": {"name": "EvseId"}}]
    )
    assert got[0]["attributeValue"] == "DE*XYZ*E0001*2"


# ---- device-model-only variables: TxStartPoint / TxStopPoint -----------------------------


async def test_tx_points_default_persist_and_survive_a_restart(rig: Rig) -> None:
    assert value_of(rig.dm, "TxCtrlr", "TxStartPoint") == DEFAULT_TX_START_POINT
    assert value_of(rig.dm, "TxCtrlr", "TxStopPoint") == DEFAULT_TX_STOP_POINT
    assert rig.dm.tx_stop_points() == {"EVConnected", "Authorized"}

    results = await set_all(
        rig.dm,
        [
            sv("TxCtrlr", "TxStartPoint", "EVConnected, Authorized"),
            sv("TxCtrlr", "TxStopPoint", "EVConnected"),
        ],
    )
    assert [r["attributeStatus"] for r in results] == ["Accepted", "Accepted"]
    assert rig.stored["ocpp201.TxCtrlr.TxStartPoint"] == "EVConnected,Authorized"
    assert rig.stored["ocpp201.TxCtrlr.TxStopPoint"] == "EVConnected"
    assert rig.dm.tx_start_points() == {"EVConnected", "Authorized"}

    again = rig.rebuild()
    assert again.dm.tx_start_points() == {"EVConnected", "Authorized"}
    assert value_of(again.dm, "TxCtrlr", "TxStopPoint") == "EVConnected"


async def test_data_signed_is_a_start_point_but_not_a_stop_point(rig: Rig) -> None:
    ok = await set1(rig.dm, "TxCtrlr", "TxStartPoint", "DataSigned")
    assert ok["attributeStatus"] == "Accepted"
    assert rig.dm.tx_start_points() == {"DataSigned"}

    for value in ("DataSigned", "EVConnected,DataSigned"):
        bad = await set1(rig.dm, "TxCtrlr", "TxStopPoint", value)
        assert bad["attributeStatus"] == "Rejected"
        assert reason(bad) == "InvalidValue"
        assert "DataSigned" in bad["attributeStatusInfo"]["additionalInfo"]
    assert value_of(rig.dm, "TxCtrlr", "TxStopPoint") == DEFAULT_TX_STOP_POINT
    assert "ocpp201.TxCtrlr.TxStopPoint" not in rig.stored

    report = {
        e["variable"]["name"]: e["variableCharacteristics"]["valuesList"].split(",")
        for e in rig.dm.report("ConfigurationInventory")
        if e["component"]["name"] == "TxCtrlr" and e["variable"]["name"].startswith("Tx")
    }
    assert report == {"TxStartPoint": list(TX_START_POINTS), "TxStopPoint": list(TX_STOP_POINTS)}


@pytest.mark.parametrize("value", ["", "Authorized,Authorized", "Authorized,,EVConnected", "Plug"])
async def test_bad_tx_start_points_are_rejected(rig: Rig, value: str) -> None:
    result = await set1(rig.dm, "TxCtrlr", "TxStartPoint", value)
    assert result["attributeStatus"] == "Rejected"
    assert reason(result) == "InvalidValue"
    assert rig.dm.tx_start_points() == {DEFAULT_TX_START_POINT}


async def test_an_unusable_stored_value_falls_back_to_the_default(rig: Rig) -> None:
    rig.stored["ocpp201.TxCtrlr.TxStopPoint"] = "DataSigned"
    rig.stored["ocpp201.TxCtrlr.MaxEnergyOnInvalidId"] = "-5"
    again = rig.rebuild()
    assert value_of(again.dm, "TxCtrlr", "TxStopPoint") == DEFAULT_TX_STOP_POINT
    assert value_of(again.dm, "TxCtrlr", "MaxEnergyOnInvalidId") == "0"


# ---- Rejected, Unknown..., NotSupportedAttributeType -------------------------------------


@pytest.mark.parametrize(
    ("component", "variable", "kw"),
    [
        ("SampledDataCtrlr", "SignUpdatedReadings", {}),
        ("AlignedDataCtrlr", "SignReadings", {}),
        ("SecurityCtrlr", "Identity", {}),
        ("EVSE", "Power", {"evse": 1}),
        ("FiscalMetering", "PublicKey", {"evse": 1}),
        ("DeviceDataCtrlr", "ItemsPerMessage", {"var_instance": "GetReport"}),
        ("OCPPCommCtrlr", "MessageTimeout", {"var_instance": "Default"}),
    ],
)
async def test_read_only_variables_are_rejected_with_reason_read_only(
    rig: Rig, component: str, variable: str, kw: dict[str, Any]
) -> None:
    before = value_of(rig.dm, component, variable, **kw)
    result = await set1(rig.dm, component, variable, "true", **kw)
    assert result["attributeStatus"] == "Rejected"
    assert reason(result) == "ReadOnly"
    assert value_of(rig.dm, component, variable, **kw) == before


async def test_sign_updated_readings_stays_false_and_says_why(rig: Rig) -> None:
    result = await set1(rig.dm, "SampledDataCtrlr", "SignUpdatedReadings", "true")
    assert "begin/end pairing" in result["attributeStatusInfo"]["additionalInfo"]
    assert not rig.settings.flag("SampledDataSignUpdatedReadings")
    assert value_of(rig.dm, "SampledDataCtrlr", "SignUpdatedReadings") == "false"


@pytest.mark.parametrize(
    ("item", "status"),
    [
        (gv("NoSuchCtrlr", "HeartbeatInterval"), "UnknownComponent"),
        (gv("EVSE", "Power"), "UnknownComponent"),  # the EVSE tier needs evse.id
        (gv("EVSE", "Power", evse=3), "UnknownComponent"),  # there are two EVSEs
        (gv("FiscalMetering", "PublicKey"), "UnknownComponent"),
        (gv("Connector", "ConnectorType", evse=1, connector=2), "UnknownComponent"),
        (gv("OCPPCommCtrlr", "HeartbeatInterval", evse=1), "UnknownComponent"),
        (gv("OCPPCommCtrlr", "NoSuchVariable"), "UnknownVariable"),
        (gv("OCPPCommCtrlr", "MessageAttempts"), "UnknownVariable"),  # B06.FR.15: no instance
        (gv("OCPPCommCtrlr", "MessageAttempts", var_instance="Other"), "UnknownVariable"),
        (gv("EVSE", "ConnectorType", evse=1), "UnknownVariable"),
    ],
)
async def test_unknown_components_and_variables(rig: Rig, item: Json, status: str) -> None:
    [got] = get_all(rig.dm, [item])
    assert got["attributeStatus"] == status
    assert reason(got) == "NotFound"
    [result] = await set_all(rig.dm, [{**item, "attributeValue": "1"}])
    assert result["attributeStatus"] == status


@pytest.mark.parametrize("attribute_type", ["Target", "MinSet", "MaxSet"])
async def test_only_the_actual_attribute_is_supported(rig: Rig, attribute_type: str) -> None:
    result = await set1(
        rig.dm, "OCPPCommCtrlr", "HeartbeatInterval", "30", attribute_type=attribute_type
    )
    assert result["attributeStatus"] == "NotSupportedAttributeType"
    assert result["attributeType"] == attribute_type
    assert rig.settings.number("HeartbeatInterval") == 60
    got = get1(rig.dm, "OCPPCommCtrlr", "HeartbeatInterval", attribute_type=attribute_type)
    assert got["attributeStatus"] == "NotSupportedAttributeType"
    explicit = get1(rig.dm, "OCPPCommCtrlr", "HeartbeatInterval", attribute_type="Actual")
    assert explicit["attributeValue"] == "60"


@pytest.mark.parametrize(
    ("component", "variable", "value", "code", "kw"),
    [
        ("OCPPCommCtrlr", "HeartbeatInterval", "abc", "InvalidValue", {}),
        ("OCPPCommCtrlr", "HeartbeatInterval", "1.5", "InvalidValue", {}),
        ("OCPPCommCtrlr", "HeartbeatInterval", "+30", "InvalidValue", {}),
        ("OCPPCommCtrlr", "HeartbeatInterval", "030", "InvalidValue", {}),
        ("OCPPCommCtrlr", "HeartbeatInterval", " 30", "InvalidValue", {}),
        ("OCPPCommCtrlr", "HeartbeatInterval", "1_000", "InvalidValue", {}),
        ("OCPPCommCtrlr", "HeartbeatInterval", "0", "ValueOutOfRange", {}),
        ("OCPPCommCtrlr", "HeartbeatInterval", "-1", "ValueOutOfRange", {}),
        ("OCPPCommCtrlr", "HeartbeatInterval", "2147483648", "ValueOutOfRange", {}),
        (
            "OCPPCommCtrlr",
            "MessageAttempts",
            "0",
            "ValueOutOfRange",
            {"var_instance": "TransactionEvent"},
        ),
        ("TxCtrlr", "StopTxOnInvalidId", "yes", "InvalidValue", {}),
        ("TxCtrlr", "MaxEnergyOnInvalidId", "-1", "ValueOutOfRange", {}),
        ("OCPPCommCtrlr", "PublicKeyWithSignedMeterValue", "Sometimes", "InvalidValue", {}),
        ("SampledDataCtrlr", "TxUpdatedMeasurands", "SoC", "InvalidValue", {}),
        (
            "SampledDataCtrlr",
            "TxUpdatedMeasurands",
            "Energy.Active.Import.Register,Energy.Active.Import.Register",
            "InvalidValue",
            {},
        ),
        ("OCPPCommCtrlr", "NetworkConfigurationPriority", "2", "InvalidValue", {}),
        ("SecurityCtrlr", "OrganizationName", "x" * 65, "TooLargeElement", {}),
        ("SecurityCtrlr", "SecurityProfile", "4", "ValueOutOfRange", {}),
    ],
)
async def test_invalid_values_are_rejected_and_change_nothing(
    rig: Rig, component: str, variable: str, value: str, code: str, kw: dict[str, Any]
) -> None:
    before = value_of(rig.dm, component, variable, **kw)
    stored_before = dict(rig.stored)
    result = await set1(rig.dm, component, variable, value, **kw)
    assert result["attributeStatus"] == "Rejected"
    assert reason(result) == code
    assert result["attributeStatusInfo"]["additionalInfo"]
    assert value_of(rig.dm, component, variable, **kw) == before
    assert rig.stored == stored_before


async def test_each_entry_is_answered_on_its_own(rig: Rig) -> None:
    results = await set_all(
        rig.dm,
        [
            sv("OCPPCommCtrlr", "HeartbeatInterval", "abc"),
            sv("NoSuchCtrlr", "X", "1"),
            sv("TxCtrlr", "TxStopPoint", "Authorized"),
            sv("EVSE", "Power", "1", evse=2),
        ],
    )
    assert [r["attributeStatus"] for r in results] == [
        "Rejected",
        "UnknownComponent",
        "Accepted",
        "Rejected",
    ]
    assert rig.dm.tx_stop_points() == {"Authorized"}


async def test_too_many_entries_raise_for_a_callerror(rig: Rig) -> None:
    limit = rig.dm.items_per_message("SetVariables")
    assert value_of(
        rig.dm, "DeviceDataCtrlr", "ItemsPerMessage", var_instance="SetVariables"
    ) == str(limit)
    with pytest.raises(TooManyItems):
        await rig.dm.set_variables([sv("TxCtrlr", "TxStopPoint", "Authorized")] * (limit + 1))
    assert rig.dm.tx_stop_points() == {"EVConnected", "Authorized"}
    with pytest.raises(TooManyItems):
        rig.dm.get_variables(
            [gv("TxCtrlr", "TxStopPoint")] * (rig.dm.items_per_message("GetVariables") + 1)
        )


async def test_listeners_hear_about_accepted_changes_only(rig: Rig) -> None:
    heard: list[str] = []
    rig.dm.subscribe(lambda vdef: heard.append(vdef.path))
    setting_changes: list[tuple[str, str]] = []
    rig.settings.subscribe(lambda key, value: setting_changes.append((key, value)))
    await set_all(
        rig.dm,
        [
            sv("TxCtrlr", "TxStartPoint", "Authorized"),
            sv("TxCtrlr", "TxStopPoint", "DataSigned"),
            sv("OCPPCommCtrlr", "WebSocketPingInterval", "20"),
        ],
    )
    assert heard == ["TxCtrlr.TxStartPoint", "OCPPCommCtrlr.WebSocketPingInterval"]
    assert setting_changes == [("WebSocketPingInterval", "20")]


# ---- GetVariables ---------------------------------------------------------------------------


async def test_every_readable_variable_answers_within_the_schema(rig: Rig) -> None:
    readable = [d for d in rig.dm.variables if d.mutability != "WriteOnly"]
    items = [{"component": d.component.wire(), "variable": d.variable.wire()} for d in readable]
    size = rig.dm.items_per_message("GetVariables")
    for start in range(0, len(items), size):
        results = get_all(rig.dm, items[start : start + size])
        assert {r["attributeStatus"] for r in results} == {"Accepted"}
    assert value_of(rig.dm, "ChargingStation", "Model") == "Eichrecht AC"
    assert value_of(rig.dm, "SecurityCtrlr", "Identity") == "CP-DM-1"
    assert value_of(rig.dm, "Connector", "ConnectorType", evse=2, connector=1) == "cType2"


async def test_current_values_fit_their_own_definitions(rig: Rig) -> None:
    for vdef in rig.dm.variables:
        if vdef.mutability == "ReadWrite":
            value = rig.dm.get(vdef.component, vdef.variable)
            assert not isinstance(check_value(vdef, value), Rejection), vdef.path


async def test_live_values_availability_and_power() -> None:
    status = {1: "Charging", 2: "Available"}
    live = LiveValues(connector_status=status.get, power_w=lambda cid: 11000.0 if cid == 1 else 0.0)
    dm = Rig.build(_config(), live=live).dm
    assert value_of(dm, "EVSE", "AvailabilityState", evse=1) == "Occupied"
    assert value_of(dm, "Connector", "AvailabilityState", evse=1, connector=1) == "Occupied"
    assert value_of(dm, "EVSE", "AvailabilityState", evse=2) == "Available"
    assert value_of(dm, "ChargingStation", "AvailabilityState") == "Available"
    assert value_of(dm, "EVSE", "Power", evse=1) == "11000"
    assert value_of(dm, "EVSE", "Power", evse=2) == "0"
    status.update({1: "Unavailable", 2: "Unavailable"})
    assert value_of(dm, "ChargingStation", "AvailabilityState") == "Unavailable"
    status[2] = "Faulted"
    assert value_of(dm, "EVSE", "AvailabilityState", evse=2) == "Faulted"
    # nothing known: an empty value (B06.FR.13), not a guess
    bare = Rig.build(_config()).dm
    assert value_of(bare, "EVSE", "AvailabilityState", evse=1) == ""
    assert value_of(bare, "EVSE", "Power", evse=1) == ""


async def test_fiscal_metering_public_key_per_evse_is_the_settings_meter_key(rig: Rig) -> None:
    keys = {cid: value_of(rig.dm, "FiscalMetering", "PublicKey", evse=cid) for cid in (1, 2)}
    for cid, key in keys.items():
        assert key == rig.settings.raw(f"MeterPublicKey{cid}")
        assert base64.b64decode(key).decode() == f"oca:base16:asn1:{KEY_HEX[cid]}"
        assert len(key) <= REPORT_VALUE_MAX
    assert keys[1] != keys[2]
    entry = next(
        e
        for e in rig.dm.report("FullInventory")
        if e["component"] == {"name": "FiscalMetering", "evse": {"id": 2}}
    )
    assert entry["variableAttribute"][0]["value"] == keys[2]
    assert entry["variableAttribute"][0]["mutability"] == "ReadOnly"


async def test_public_key_is_empty_until_the_meter_key_is_known() -> None:
    config = _config()

    async def persist(key: str, value: str) -> None:
        pass

    settings = Settings(station_specs(config.ocpp, 2), {}, persist)
    dm = DeviceModel.for_station(config, settings, persist, {})
    assert value_of(dm, "FiscalMetering", "PublicKey", evse=1) == ""
    settings.dynamic["MeterPublicKey1"] = lambda: _oca(KEY_HEX[1])  # registered later
    assert value_of(dm, "FiscalMetering", "PublicKey", evse=1) == _oca(KEY_HEX[1])


# ---- write-only BasicAuthPassword ---------------------------------------------------------


async def test_basic_auth_password_is_write_only(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await set1(rig.dm, "SecurityCtrlr", "BasicAuthPassword", PASSWORD)
    assert result["attributeStatus"] == "Accepted"  # A01.FR.03: the CSMS switches now
    assert rig.stored["ocpp201.SecurityCtrlr.BasicAuthPassword"] == PASSWORD
    assert rig.dm.basic_auth_password() == PASSWORD
    csms = rig.dm.csms_config()
    assert csms.password is not None and csms.password.resolve() == PASSWORD

    got = get1(rig.dm, "SecurityCtrlr", "BasicAuthPassword")
    assert got["attributeStatus"] == "Rejected"
    assert reason(got) == "WriteOnly"
    with pytest.raises(ValueError, match="write-only"):
        rig.dm.get("SecurityCtrlr", "BasicAuthPassword")

    everything = json.dumps(
        [rig.dm.notify_report_pages(1, base, datetime.now(UTC)) for base in _BASES]
    )
    assert PASSWORD not in everything
    for base in ("FullInventory", "ConfigurationInventory"):
        [entry] = [e for e in rig.dm.report(base) if e["variable"]["name"] == "BasicAuthPassword"]
        attribute = entry["variableAttribute"][0]
        assert "value" not in attribute
        assert attribute["mutability"] == "WriteOnly"
        assert entry["variableCharacteristics"]["maxLimit"] == 40
    assert PASSWORD not in caplog.text

    again = rig.rebuild()
    assert again.dm.basic_auth_password() == PASSWORD


@pytest.mark.parametrize(
    "password", ["short-1234", "x" * 41, "with space 0123456789", "tab\t0123456789abcdef"]
)
async def test_unusable_passwords_are_rejected_without_echo(
    rig: Rig, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await set1(rig.dm, "SecurityCtrlr", "BasicAuthPassword", password)
    assert result["attributeStatus"] == "Rejected"
    assert reason(result) in ("InvalidValue", "TooLargeElement")
    assert password not in json.dumps(result)
    assert password not in caplog.text
    assert rig.dm.basic_auth_password() is None


# ---- SecurityProfile ------------------------------------------------------------------------


async def test_security_profile_reflects_the_yaml_and_cannot_be_lowered() -> None:
    rig = Rig.build(_config(1, extra=f"  password: {PASSWORD}"))
    assert value_of(rig.dm, "SecurityCtrlr", "SecurityProfile") == "1"
    down = await set1(rig.dm, "SecurityCtrlr", "SecurityProfile", "0")
    assert down["attributeStatus"] == "Rejected"
    assert reason(down) == "NoSecurityDowngrade"
    same = await set1(rig.dm, "SecurityCtrlr", "SecurityProfile", "1")
    assert same["attributeStatus"] == "Accepted"
    # profile 2 needs TLS: the configured ws:// URL does not have it
    up = await set1(rig.dm, "SecurityCtrlr", "SecurityProfile", "2")
    assert up["attributeStatus"] == "Rejected"
    assert reason(up) == "MissingDevModelInfo"
    assert "wss://" in up["attributeStatusInfo"]["additionalInfo"]
    assert PASSWORD not in json.dumps(up)
    assert rig.dm.security_profile() == 1
    assert "ocpp201.SecurityCtrlr.SecurityProfile" not in rig.stored


async def test_raising_the_profile_needs_what_the_profile_needs_then_reboots() -> None:
    rig = Rig.build(_config(0))
    no_password = await set1(rig.dm, "SecurityCtrlr", "SecurityProfile", "1")
    assert no_password["attributeStatus"] == "Rejected"
    assert reason(no_password) == "MissingDevModelInfo"

    results = await set_all(
        rig.dm,
        [
            sv("SecurityCtrlr", "BasicAuthPassword", PASSWORD),
            sv("SecurityCtrlr", "SecurityProfile", "1"),
        ],
    )
    assert [r["attributeStatus"] for r in results] == ["Accepted", "RebootRequired"]
    assert rig.stored["ocpp201.SecurityCtrlr.SecurityProfile"] == "1"
    assert rig.dm.security_profile() == 1

    again = rig.rebuild()
    assert again.dm.security_profile() == 1
    assert value_of(again.dm, "SecurityCtrlr", "SecurityProfile") == "1"
    csms = again.dm.csms_config()
    assert csms.security_profile == 1
    assert csms.password is not None and csms.password.resolve() == PASSWORD
    down = await set1(again.dm, "SecurityCtrlr", "SecurityProfile", "0")
    assert reason(down) == "NoSecurityDowngrade"


async def test_profile_3_needs_the_client_certificate_files(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    extra = f"  password: {PASSWORD}\n  client_cert: {cert}\n  client_key: {key}\n"
    rig = Rig.build(_config(2, "wss://csms.example/ocpp", extra))
    missing = await set1(rig.dm, "SecurityCtrlr", "SecurityProfile", "3")
    assert missing["attributeStatus"] == "Rejected"
    assert reason(missing) == "MissingDevModelInfo"
    assert "client_cert" in missing["attributeStatusInfo"]["additionalInfo"]

    cert.write_text("cert")
    key.write_text("key")
    raised = await set1(rig.dm, "SecurityCtrlr", "SecurityProfile", "3")
    assert raised["attributeStatus"] == "RebootRequired"
    assert rig.dm.csms_config().security_profile == 3


async def test_a_stored_profile_below_the_yaml_is_ignored() -> None:
    stored = {"ocpp201.SecurityCtrlr.SecurityProfile": "0"}
    rig = Rig.build(_config(1, extra=f"  password: {PASSWORD}"), stored)
    assert rig.dm.security_profile() == 1
    assert rig.dm.csms_config() is rig.config.csms


# ---- reports --------------------------------------------------------------------------------

_BASES = ("FullInventory", "ConfigurationInventory", "SummaryInventory")


@pytest.mark.parametrize("base", _BASES)
async def test_report_pages_are_schema_valid_with_seq_no_and_tbc(base: str) -> None:
    live = LiveValues(connector_status={1: "Charging", 2: "Available"}.get)
    rig = Rig.build(_config(), live=live, items_per_message={"GetReport": 7})
    REPORT_REQ.validate({"requestId": 42, "reportBase": base})
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    pages = rig.dm.notify_report_pages(42, base, when)
    entries = rig.dm.report(base)
    assert len(pages) == max(1, -(-len(entries) // 7))
    for n, page in enumerate(pages):
        NOTIFY_REQ.validate(page)
        assert page["seqNo"] == n  # B07.FR.10
        assert page["requestId"] == 42  # B07.FR.04
        assert page["generatedAt"] == "2026-01-02T03:04:05.678Z"
        assert page["tbc"] is (n < len(pages) - 1)
        assert len(page.get("reportData", [])) <= 7
    assert [e for p in pages for e in p.get("reportData", [])] == entries


async def test_full_inventory_lists_every_variable_and_configuration_the_writable(
    rig: Rig,
) -> None:
    full = rig.dm.report("FullInventory")
    assert len(full) == len(rig.dm.variables)
    config = rig.dm.report("ConfigurationInventory")
    mutabilities = {e["variableAttribute"][0]["mutability"] for e in config}
    assert mutabilities <= {"ReadWrite", "WriteOnly"}
    names = {(e["component"]["name"], e["variable"]["name"]) for e in config}
    assert ("TxCtrlr", "TxStartPoint") in names
    assert ("SecurityCtrlr", "BasicAuthPassword") in names
    assert ("SecurityCtrlr", "Identity") not in names
    for entry in full:
        chars = entry["variableCharacteristics"]
        assert chars["supportsMonitoring"] is False
        attribute = entry["variableAttribute"][0]
        assert attribute["type"] == "Actual"
        if attribute["mutability"] != "WriteOnly":
            assert len(attribute["value"]) <= REPORT_VALUE_MAX
    heartbeat = next(e for e in full if e["variable"] == {"name": "HeartbeatInterval"})
    assert heartbeat["variableCharacteristics"] == {
        "dataType": "integer",
        "unit": "s",
        "minLimit": 1,
        "supportsMonitoring": False,
    }
    assert heartbeat["variableAttribute"][0]["persistent"] is True


async def test_summary_inventory_is_the_availability(rig: Rig) -> None:
    rig.dm.live.connector_status = {1: "Faulted", 2: "Available"}.get
    summary = rig.dm.report("SummaryInventory")
    states = {
        str(ComponentRef.from_wire(e["component"])): e["variableAttribute"][0]["value"]
        for e in summary
    }
    assert states == {"ChargingStation": "Available", "EVSE@1": "Faulted", "EVSE@2": "Available"}
    assert {e["variable"]["name"] for e in summary} == {"AvailabilityState"}


async def test_unknown_report_base_is_refused(rig: Rig) -> None:
    with pytest.raises(ValueError, match="report base"):
        rig.dm.report("MonitoringInventory")


def test_definitions_are_unique_and_reachable(rig: Rig) -> None:
    seen = set()
    for vdef in rig.dm.variables:
        key = (vdef.component.key, vdef.variable.key)
        assert key not in seen
        seen.add(key)
        assert rig.dm.definition(vdef.component, vdef.variable) is vdef
    assert (
        rig.dm.definition(
            ComponentRef("OCPPCommCtrlr"), VariableRef("MessageAttempts", "TransactionEvent")
        ).setting_key
        == "TransactionMessageAttempts"
    )
