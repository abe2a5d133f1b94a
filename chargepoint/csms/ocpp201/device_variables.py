"""Every component and variable of the station's OCPP 2.0.1 device model, declared.

One function per component returns its variables in report order; `STATION_COMPONENTS` lists
the station-wide ones and `EVSE_COMPONENTS` those repeated for every EVSE, so a new controller
(LocalAuthListCtrlr, SmartChargingCtrlr, ReservationCtrlr, ISO15118Ctrlr...) is one more
function and one more entry. `station_variables` builds them all; `DeviceModel` serves them.

Components and variables (OCPP 2.0.1 Part 2, "Referenced Components and Variables", and the OCA
application note "Signed Meter Values in OCPP" for the signing variables) are mapped onto the
core `Settings` wherever OCPP 1.6 has the same configuration key (`_mapped`: the type, limits
and read-only flag are the setting's), so a change made through SetVariables changes the same
setting (and thus behaviour) a ChangeConfiguration would. Variables without a 1.6 equivalent
are device-model-only (`_stored`, persisted under `VariableDef.store_key`), constants (`_const`)
or computed from `LiveValues`.

Mapping (component.variable[instance] -> Settings key, or "dm" for device-model-only):

    OCPPCommCtrlr.HeartbeatInterval                      HeartbeatInterval
    OCPPCommCtrlr.MessageAttempts[TransactionEvent]      TransactionMessageAttempts
    OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent] TransactionMessageRetryInterval
    OCPPCommCtrlr.MessageTimeout[Default]                dm, read-only (csms.call_timeout)
    OCPPCommCtrlr.WebSocketPingInterval                  WebSocketPingInterval
    OCPPCommCtrlr.PublicKeyWithSignedMeterValue          PublicKeyWithSignedMeterValue
    OCPPCommCtrlr.NetworkConfigurationPriority           dm (1: the YAML; others: SetNetworkProfile)
    OCPPCommCtrlr.ResetRetries                           ResetRetries
    OCPPCommCtrlr.UnlockOnEVSideDisconnect               UnlockConnectorOnEVSideDisconnect
    TxCtrlr.EVConnectionTimeOut                          ConnectionTimeOut
    TxCtrlr.StopTxOnEVSideDisconnect                     StopTransactionOnEVSideDisconnect
    TxCtrlr.StopTxOnInvalidId                            StopTransactionOnInvalidId
    TxCtrlr.TxStartPoint / TxStopPoint                   dm
    TxCtrlr.MaxEnergyOnInvalidId                         dm
    SampledDataCtrlr.Available                           dm, read-only constant
    SampledDataCtrlr.Enabled                             dm
    SampledDataCtrlr.TxStartedMeasurands                 StartTxnSampledData
    SampledDataCtrlr.TxUpdatedMeasurands                 MeterValuesSampledData
    SampledDataCtrlr.TxUpdatedInterval                   MeterValueSampleInterval
    SampledDataCtrlr.TxEndedMeasurands                   StopTxnSampledData
    SampledDataCtrlr.TxEndedInterval                     dm
    SampledDataCtrlr.SignReadings                        SampledDataSignReadings
    SampledDataCtrlr.SignStartedReadings                 SampledDataSignStartedReadings
    SampledDataCtrlr.SignUpdatedReadings                 SampledDataSignUpdatedReadings (read-only)
    AlignedDataCtrlr.Available                           dm, read-only constant
    AlignedDataCtrlr.Enabled                             dm
    AlignedDataCtrlr.Interval                            ClockAlignedDataInterval
    AlignedDataCtrlr.Measurands                          MeterValuesAlignedData
    AlignedDataCtrlr.TxEndedInterval                     dm
    AlignedDataCtrlr.TxEndedMeasurands                   StopTxnAlignedData
    AlignedDataCtrlr.SignReadings                        AlignedDataSignReadings (read-only)
    AuthCtrlr.Enabled                                    dm, read-only "true"
    AuthCtrlr.AuthorizeRemoteStart                       AuthorizeRemoteTxRequests
    AuthCtrlr.LocalAuthorizeOffline                      LocalAuthorizeOffline
    AuthCtrlr.LocalPreAuthorize                          LocalPreAuthorize
    AuthCtrlr.OfflineTxForUnknownIdEnabled               AllowOfflineTxForUnknownId
    AuthCacheCtrlr.Available                             dm, read-only constant
    AuthCacheCtrlr.Enabled                               AuthorizationCacheEnabled
    AuthCacheCtrlr.LifeTime                              dm
    AuthCacheCtrlr.Storage                               dm, read-only (LiveValues.auth_cache_bytes)
    AuthCacheCtrlr.Policy                                dm (LRU only)
    LocalAuthListCtrlr.Available                         dm, read-only constant
    LocalAuthListCtrlr.Enabled                           LocalAuthListEnabled
    LocalAuthListCtrlr.Entries                           dm, read-only (LiveValues)
    LocalAuthListCtrlr.ItemsPerMessage                   SendLocalListMaxLength
    LocalAuthListCtrlr.BytesPerMessage                   dm, read-only constant
    LocalAuthListCtrlr.Storage                           dm, read-only (LiveValues)
    ReservationCtrlr.Available                           dm, read-only constant
    ReservationCtrlr.Enabled                             dm
    ReservationCtrlr.NonEvseSpecific                     ReserveConnectorZeroSupported
    SmartChargingCtrlr.Available/Enabled/PeriodsPerSchedule/ProfileStackLevel/RateUnit/Phases3to1
                                                         dm, read-only (the engine's limits)
    SmartChargingCtrlr.Entries[ChargingProfiles]         dm, read-only (LiveValues)
    SmartChargingCtrlr.ExternalControlSignalsEnabled / LimitChangeSignificance /
    NotifyChargingLimitWithSchedules                     dm
    DeviceDataCtrlr.ItemsPerMessage/BytesPerMessage[GetReport|GetVariables|SetVariables]
                                                         dm, read-only
    DeviceDataCtrlr.ConfigurationValueSize / ReportingValueSize  dm, read-only (1000 / 2500)
    SecurityCtrlr.SecurityProfile                        dm (YAML csms.security_profile; raise only)
    SecurityCtrlr.BasicAuthPassword                      dm, write-only (overrides csms.password)
    SecurityCtrlr.Identity                               dm, read-only (station.id)
    SecurityCtrlr.OrganizationName                       dm
    SecurityCtrlr.CertSigningWaitMinimum / CertSigningRepeatTimes  dm (YAML security section)
    ChargingStation.AvailabilityState/Available/Model/VendorName/SupplyPhases
                                                         dm, read-only
    EVSE(n).AvailabilityState/Available/Power/SupplyPhases/EvseId  dm, read-only
    FiscalMetering(EVSE n).PublicKey                     MeterPublicKey<n> (computed, read-only)
    Connector(EVSE n, connector 1).AvailabilityState/Available/ConnectorType/SupplyPhases
                                                         dm, read-only
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from chargepoint.config import ConnectorConfig, StationConfig
from chargepoint.core.charging.validation import MAX_PERIODS, MAX_PROFILES, MAX_STACK_LEVEL
from chargepoint.core.settings import Kind, Spec
from chargepoint.csms.ocpp201.device_security import PASSWORD_LENGTH, check_password
from chargepoint.csms.ocpp201.device_values import (
    REPORT_VALUE_MAX,
    SET_VALUE_MAX,
    Check,
    ComponentRef,
    DataType,
    Mutability,
    VariableDef,
    VariableRef,
    variable_ref,
)

TX_START_POINTS: Final[tuple[str, ...]] = (
    "ParkingBayOccupancy",
    "EVConnected",
    "Authorized",
    "DataSigned",
    "PowerPathClosed",
    "EnergyTransfer",
)
# DataSigned is not a valid TxStopPoint (OCPP 2.0.1 errata 2025-09, E06.FR.05 deleted)
TX_STOP_POINTS: Final[tuple[str, ...]] = tuple(p for p in TX_START_POINTS if p != "DataSigned")
DEFAULT_TX_START_POINT: Final = "PowerPathClosed"  # Part 2 E 1.1.2: OCPP 1.6 compatible
DEFAULT_TX_STOP_POINT: Final = "EVConnected,Authorized"
AVAILABILITY_STATES: Final = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
CONNECTOR_TYPE: Final = "cType2"
ORGANIZATION_NAME_MAX: Final = 64  # X.509 ub-organization-name
DEFAULT_ITEMS_PER_MESSAGE: Final[Mapping[str, int]] = {
    "GetReport": 20,
    "GetVariables": 50,
    "SetVariables": 50,
}
DEFAULT_BYTES_PER_MESSAGE: Final[Mapping[str, int]] = {
    "GetReport": 65536,
    "GetVariables": 65536,
    "SetVariables": 65536,
}
SECONDS: Final = "s"
LOCAL_LIST_BYTES_PER_MESSAGE: Final = 1_000_000  # below the websocket's 1 MiB frame limit

# OCPP 1.6 ChargePointStatus (core ConnectorStatus) -> 2.0.1 AvailabilityState
_AVAILABILITY: Final[Mapping[str, str]] = {
    "Available": "Available",
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEV": "Occupied",
    "SuspendedEVSE": "Occupied",
    "Finishing": "Occupied",
    "Occupied": "Occupied",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}

_KIND_TYPES: Final[Mapping[Kind, DataType]] = {
    Kind.BOOL: "boolean",
    Kind.INT: "integer",
    Kind.STRING: "string",
    Kind.CSL: "MemberList",
    Kind.ENUM: "OptionList",
}
# valuesList order where the spec shows one; other members follow alphabetically
_PREFERRED_ORDER: Final = (
    "Never",
    "OncePerTransaction",
    "EveryMeterValue",
    "Energy.Active.Import.Register",
    "Power.Active.Import",
)


@dataclass
class LiveValues:
    """Where the read-only runtime variables come from; set by whoever owns the station.

    `connector_status(connector_id)` answers the connector's status (core ConnectorStatus, i.e.
    OCPP 1.6 names, or 2.0.1 ConnectorStatusEnum names), `power_w(connector_id)` the actual
    active power in W, `auth_cache_bytes()` the bytes the authorization cache uses. None (or a
    missing callable) reports an empty value (B06.FR.13).
    """

    connector_status: Callable[[int], str | None] | None = None
    power_w: Callable[[int], float | None] | None = None
    auth_cache_bytes: Callable[[], int | None] | None = None
    local_list_entries: Callable[[], int | None] | None = None
    local_list_bytes: Callable[[], int | None] | None = None
    charging_profiles: Callable[[], int | None] | None = None


@dataclass(frozen=True)
class VariableSources:
    """What the declarations read: the station's YAML, the core settings' specs (type, limits
    and read-only flag of a mapped variable), the live probes, the DeviceDataCtrlr limits in
    force, and the SecurityProfile rule (it depends on the model's current values).

    `supply_phases` is reported for the station, every EVSE and connector;
    `evse_max_power_w[connector_id]` is the rated power reported as EVSE.Power maxLimit.
    """

    config: StationConfig
    specs: Mapping[str, Spec]
    live: LiveValues
    items_per_message: Mapping[str, int]
    bytes_per_message: Mapping[str, int]
    supply_phases: int
    evse_max_power_w: Mapping[int, float]
    check_security_profile: Check
    # NetworkConfigurationPriority: the slots must hold network profiles (SetNetworkProfile)
    check_network_priority: Check | None = None


StationBlock = Callable[[VariableSources], list[VariableDef]]
EvseBlock = Callable[[VariableSources, ConnectorConfig], list[VariableDef]]


# --- station-wide components -----------------------------------------------------------------


def ocpp_comm_ctrlr(src: VariableSources) -> list[VariableDef]:
    comm = ComponentRef("OCPPCommCtrlr")
    return [
        _mapped(src, comm, "HeartbeatInterval", "HeartbeatInterval", unit=SECONDS, min_limit=1),
        _mapped(
            src,
            comm,
            VariableRef("MessageAttempts", "TransactionEvent"),
            "TransactionMessageAttempts",
        ),
        _mapped(
            src,
            comm,
            VariableRef("MessageAttemptInterval", "TransactionEvent"),
            "TransactionMessageRetryInterval",
            unit=SECONDS,
        ),
        _const(
            comm,
            VariableRef("MessageTimeout", "Default"),
            str(max(1, round(src.config.csms.call_timeout))),
            "integer",
            unit=SECONDS,
        ),
        _mapped(src, comm, "WebSocketPingInterval", "WebSocketPingInterval", unit=SECONDS),
        _mapped(src, comm, "PublicKeyWithSignedMeterValue", "PublicKeyWithSignedMeterValue"),
        _stored(
            comm,
            "NetworkConfigurationPriority",
            "SequenceList",
            "1",
            min_items=1,
            reboot_required=True,
            check=src.check_network_priority,
        ),
        _mapped(src, comm, "ResetRetries", "ResetRetries"),
        _mapped(src, comm, "UnlockOnEVSideDisconnect", "UnlockConnectorOnEVSideDisconnect"),
    ]


def tx_ctrlr(src: VariableSources) -> list[VariableDef]:
    tx = ComponentRef("TxCtrlr")
    points = [
        _stored(
            tx,
            name,
            "MemberList",
            default,
            values_list=allowed,
            max_length=len(",".join(allowed)),
            min_items=1,
        )
        for name, allowed, default in (
            ("TxStartPoint", TX_START_POINTS, DEFAULT_TX_START_POINT),
            ("TxStopPoint", TX_STOP_POINTS, DEFAULT_TX_STOP_POINT),
        )
    ]
    return [
        _mapped(src, tx, "EVConnectionTimeOut", "ConnectionTimeOut", unit=SECONDS),
        _mapped(src, tx, "StopTxOnEVSideDisconnect", "StopTransactionOnEVSideDisconnect"),
        _mapped(src, tx, "StopTxOnInvalidId", "StopTransactionOnInvalidId"),
        *points,
        _stored(tx, "MaxEnergyOnInvalidId", "integer", "0", unit="Wh", min_limit=0),
    ]


def sampled_data_ctrlr(src: VariableSources) -> list[VariableDef]:
    sampled = ComponentRef("SampledDataCtrlr")
    return [
        _const(sampled, "Available", "true", "boolean"),
        _stored(sampled, "Enabled", "boolean", "true"),
        _mapped(src, sampled, "TxStartedMeasurands", "StartTxnSampledData"),
        _mapped(src, sampled, "TxUpdatedMeasurands", "MeterValuesSampledData"),
        _mapped(src, sampled, "TxUpdatedInterval", "MeterValueSampleInterval", unit=SECONDS),
        _mapped(src, sampled, "TxEndedMeasurands", "StopTxnSampledData"),
        # 1.6 sampled StopTxnSampledData every MeterValueSampleInterval: the same by default
        _stored(
            sampled,
            "TxEndedInterval",
            "integer",
            str(src.config.ocpp.meter_value_sample_interval),
            unit=SECONDS,
            min_limit=0,
        ),
        _mapped(src, sampled, "SignReadings", "SampledDataSignReadings"),
        _mapped(src, sampled, "SignStartedReadings", "SampledDataSignStartedReadings"),
        _mapped(src, sampled, "SignUpdatedReadings", "SampledDataSignUpdatedReadings"),
    ]


def aligned_data_ctrlr(src: VariableSources) -> list[VariableDef]:
    aligned = ComponentRef("AlignedDataCtrlr")
    return [
        _const(aligned, "Available", "true", "boolean"),
        _stored(aligned, "Enabled", "boolean", "true"),
        _mapped(src, aligned, "Interval", "ClockAlignedDataInterval", unit=SECONDS),
        _mapped(src, aligned, "Measurands", "MeterValuesAlignedData"),
        _stored(
            aligned,
            "TxEndedInterval",
            "integer",
            str(src.config.ocpp.clock_aligned_data_interval),
            unit=SECONDS,
            min_limit=0,
        ),
        _mapped(src, aligned, "TxEndedMeasurands", "StopTxnAlignedData"),
        _mapped(src, aligned, "SignReadings", "AlignedDataSignReadings"),
    ]


def auth_ctrlr(src: VariableSources) -> list[VariableDef]:
    auth = ComponentRef("AuthCtrlr")
    return [
        _const(auth, "Enabled", "true", "boolean"),  # the core always authorizes
        _mapped(src, auth, "AuthorizeRemoteStart", "AuthorizeRemoteTxRequests"),
        _mapped(src, auth, "LocalAuthorizeOffline", "LocalAuthorizeOffline"),
        _mapped(src, auth, "LocalPreAuthorize", "LocalPreAuthorize"),
        _mapped(src, auth, "OfflineTxForUnknownIdEnabled", "AllowOfflineTxForUnknownId"),
    ]


def auth_cache_ctrlr(src: VariableSources) -> list[VariableDef]:
    cache = ComponentRef("AuthCacheCtrlr")
    return [
        _const(cache, "Available", "true", "boolean"),
        _mapped(src, cache, "Enabled", "AuthorizationCacheEnabled"),
        _stored(cache, "LifeTime", "integer", "86400", unit=SECONDS, min_limit=1),
        VariableDef(
            cache,
            VariableRef("Storage"),
            "integer",
            "ReadOnly",
            unit="B",
            getter=lambda: _auth_cache_bytes(src.live),
        ),
        _stored(cache, "Policy", "OptionList", "LRU", values_list=("LRU",)),
    ]


def local_auth_list_ctrlr(src: VariableSources) -> list[VariableDef]:
    ctrl = ComponentRef("LocalAuthListCtrlr")
    max_length = src.specs["LocalAuthListMaxLength"].default
    return [
        _const(ctrl, "Available", "true", "boolean"),
        _mapped(src, ctrl, "Enabled", "LocalAuthListEnabled"),
        VariableDef(
            ctrl,
            VariableRef("Entries"),
            "integer",
            "ReadOnly",
            max_limit=float(max_length),
            getter=lambda: _probe_text(src.live.local_list_entries),
        ),
        _mapped(src, ctrl, "ItemsPerMessage", "SendLocalListMaxLength"),
        _const(ctrl, "BytesPerMessage", str(LOCAL_LIST_BYTES_PER_MESSAGE), "integer"),
        VariableDef(
            ctrl,
            VariableRef("Storage"),
            "integer",
            "ReadOnly",
            unit="B",
            getter=lambda: _probe_text(src.live.local_list_bytes),
        ),
    ]


def reservation_ctrlr(src: VariableSources) -> list[VariableDef]:
    ctrl = ComponentRef("ReservationCtrlr")
    return [
        _const(ctrl, "Available", "true", "boolean"),
        _stored(ctrl, "Enabled", "boolean", "true"),
        _mapped(src, ctrl, "NonEvseSpecific", "ReserveConnectorZeroSupported"),
    ]


def smart_charging_ctrlr(src: VariableSources) -> list[VariableDef]:
    """Block K: what the engine (chargepoint.core.charging) supports; the limits are its."""
    ctrl = ComponentRef("SmartChargingCtrlr")
    return [
        _const(ctrl, "Available", "true", "boolean"),
        _const(ctrl, "Enabled", "true", "boolean"),
        VariableDef(
            ctrl,
            VariableRef("Entries", "ChargingProfiles"),
            "integer",
            "ReadOnly",
            max_limit=float(MAX_PROFILES),
            getter=lambda: _probe_text(src.live.charging_profiles),
        ),
        _stored(ctrl, "ExternalControlSignalsEnabled", "boolean", "true"),
        _stored(ctrl, "LimitChangeSignificance", "decimal", "1.0", min_limit=0, max_limit=100),
        _stored(ctrl, "NotifyChargingLimitWithSchedules", "boolean", "true"),
        _const(ctrl, "PeriodsPerSchedule", str(MAX_PERIODS), "integer"),
        _const(ctrl, "ProfileStackLevel", str(MAX_STACK_LEVEL), "integer"),
        _const(ctrl, "RateUnit", "A,W", "MemberList"),
        _const(ctrl, "Phases3to1", "false", "boolean"),
    ]


def device_data_ctrlr(src: VariableSources) -> list[VariableDef]:
    data = ComponentRef("DeviceDataCtrlr")
    limits = [
        _const(data, VariableRef(name, kind), str(per_kind[kind]), "integer")
        for kind in ("GetReport", "GetVariables", "SetVariables")
        for name, per_kind in (
            ("ItemsPerMessage", src.items_per_message),
            ("BytesPerMessage", src.bytes_per_message),
        )
    ]
    return [
        *limits,
        _const(data, "ConfigurationValueSize", str(SET_VALUE_MAX), "integer"),
        _const(data, "ReportingValueSize", str(REPORT_VALUE_MAX), "integer"),
    ]


def security_ctrlr(src: VariableSources) -> list[VariableDef]:
    security = ComponentRef("SecurityCtrlr")
    station = src.config.station
    return [
        _stored(
            security,
            "SecurityProfile",
            "integer",
            str(src.config.csms.security_profile),
            min_limit=0,
            max_limit=3,
            reboot_required=True,
            check=src.check_security_profile,
        ),
        _stored(
            security,
            "BasicAuthPassword",
            "string",
            "",
            mutability="WriteOnly",
            max_length=PASSWORD_LENGTH[1],
            check=check_password,
        ),
        _const(security, "Identity", station.id, max_length=48),
        _stored(
            security,
            "OrganizationName",
            "string",
            station.vendor,
            max_length=ORGANIZATION_NAME_MAX,
        ),
        _stored(
            security,
            "CertSigningWaitMinimum",
            "integer",
            str(src.config.security.cert_signing_wait_minimum),
            min_limit=1,
            unit=SECONDS,
        ),
        _stored(
            security,
            "CertSigningRepeatTimes",
            "integer",
            str(src.config.security.cert_signing_repeat_times),
            min_limit=0,
        ),
    ]


def charging_station(src: VariableSources) -> list[VariableDef]:
    station = ComponentRef("ChargingStation")
    cfg = src.config
    return [
        VariableDef(
            station,
            VariableRef("AvailabilityState"),
            "OptionList",
            "ReadOnly",
            values_list=AVAILABILITY_STATES,
            getter=lambda: _station_availability(src.live, cfg.connectors),
        ),
        _const(station, "Available", "true", "boolean"),
        _const(station, "Model", cfg.station.model),
        _const(station, "VendorName", cfg.station.vendor),
        _const(station, "SupplyPhases", str(src.supply_phases), "integer"),
    ]


# --- per EVSE --------------------------------------------------------------------------------


def evse(src: VariableSources, conn: ConnectorConfig) -> list[VariableDef]:
    cid = conn.id
    component = ComponentRef("EVSE", evse_id=cid)
    return [
        _availability_state(src, component, cid),
        _const(component, "Available", "true", "boolean"),
        VariableDef(
            component,
            VariableRef("Power"),
            "decimal",
            "ReadOnly",
            unit="W",
            max_limit=src.evse_max_power_w.get(cid),
            getter=lambda: _power(src.live, cid),
        ),
        _const(component, "SupplyPhases", str(src.supply_phases), "integer"),
        _const(component, "EvseId", conn.evse_id, max_length=36),
    ]


def fiscal_metering(src: VariableSources, conn: ConnectorConfig) -> list[VariableDef]:
    component = ComponentRef("FiscalMetering", evse_id=conn.id)
    return [_mapped(src, component, "PublicKey", f"MeterPublicKey{conn.id}")]


def connector(src: VariableSources, conn: ConnectorConfig) -> list[VariableDef]:
    component = ComponentRef("Connector", evse_id=conn.id, connector_id=1)
    return [
        _availability_state(src, component, conn.id),
        _const(component, "Available", "true", "boolean"),
        _const(component, "ConnectorType", CONNECTOR_TYPE),
        _const(component, "SupplyPhases", str(src.supply_phases), "integer"),
    ]


STATION_COMPONENTS: Final[tuple[StationBlock, ...]] = (
    ocpp_comm_ctrlr,
    tx_ctrlr,
    sampled_data_ctrlr,
    aligned_data_ctrlr,
    auth_ctrlr,
    auth_cache_ctrlr,
    local_auth_list_ctrlr,
    reservation_ctrlr,
    smart_charging_ctrlr,
    device_data_ctrlr,
    security_ctrlr,
    charging_station,
)
EVSE_COMPONENTS: Final[tuple[EvseBlock, ...]] = (evse, fiscal_metering, connector)


def station_variables(src: VariableSources) -> list[VariableDef]:
    """All variables in report order: the station-wide components, then each EVSE (by
    connector id) with its components."""
    out = [vdef for block in STATION_COMPONENTS for vdef in block(src)]
    for conn in sorted(src.config.connectors, key=lambda c: c.id):
        out += [vdef for block in EVSE_COMPONENTS for vdef in block(src, conn)]
    return out


# --- declaration helpers ---------------------------------------------------------------------


def _mapped(
    src: VariableSources,
    component: ComponentRef,
    variable: str | VariableRef,
    key: str,
    *,
    unit: str | None = None,
    min_limit: float | None = None,
) -> VariableDef:
    """A variable that is the core setting `key` (its type, limits and read-only flag)."""
    spec = src.specs.get(key)
    if spec is None:  # a computed key (Settings.dynamic): read-only text
        return VariableDef(
            component,
            variable_ref(variable),
            "string",
            "ReadOnly",
            persistent=True,
            setting_key=key,
        )
    data_type = _KIND_TYPES[spec.kind]
    allowed = tuple(sorted(spec.allowed, key=_list_order)) if spec.allowed is not None else None
    lower: float | None = spec.minimum
    if min_limit is not None:
        lower = min_limit if lower is None else max(lower, min_limit)
    return VariableDef(
        component,
        variable_ref(variable),
        data_type,
        "ReadOnly" if spec.readonly else "ReadWrite",
        unit=unit,
        values_list=allowed,
        min_limit=lower,
        max_limit=spec.maximum,
        max_length=len(",".join(allowed)) if data_type == "MemberList" and allowed else None,
        max_items=spec.max_items,
        persistent=True,
        constant=spec.readonly,
        setting_key=key,
        reboot_required=spec.reboot_required,
    )


def _const(
    component: ComponentRef,
    variable: str | VariableRef,
    value: str,
    data_type: DataType = "string",
    *,
    unit: str | None = None,
    max_length: int | None = None,
) -> VariableDef:
    """A read-only variable whose value never changes at runtime."""
    return VariableDef(
        component,
        variable_ref(variable),
        data_type,
        "ReadOnly",
        unit=unit,
        max_length=max_length,
        persistent=True,
        constant=True,
        getter=lambda: value,
    )


def _stored(
    component: ComponentRef,
    variable: str | VariableRef,
    data_type: DataType,
    default: str,
    *,
    mutability: Mutability = "ReadWrite",
    unit: str | None = None,
    values_list: tuple[str, ...] | None = None,
    min_limit: float | None = None,
    max_limit: float | None = None,
    max_length: int | None = None,
    min_items: int = 0,
    reboot_required: bool = False,
    check: Check | None = None,
) -> VariableDef:
    """A device-model-only variable (read-write unless told), persisted under its store_key."""
    return VariableDef(
        component,
        variable_ref(variable),
        data_type,
        mutability,
        unit=unit,
        values_list=values_list,
        max_limit=max_limit,
        min_limit=min_limit,
        max_length=max_length,
        persistent=True,
        default=default,
        min_items=min_items,
        reboot_required=reboot_required,
        check=check,
    )


def _availability_state(src: VariableSources, component: ComponentRef, cid: int) -> VariableDef:
    return VariableDef(
        component,
        VariableRef("AvailabilityState"),
        "OptionList",
        "ReadOnly",
        values_list=AVAILABILITY_STATES,
        getter=lambda: _availability(src.live, cid),
    )


def _list_order(member: str) -> tuple[int, str]:
    rank = _PREFERRED_ORDER.index(member) if member in _PREFERRED_ORDER else len(_PREFERRED_ORDER)
    return rank, member


# --- live values -----------------------------------------------------------------------------


def _availability(live: LiveValues, connector_id: int) -> str:
    probe = live.connector_status
    status = probe(connector_id) if probe is not None else None
    return _AVAILABILITY.get(str(status), "") if status is not None else ""


def _station_availability(live: LiveValues, connectors: list[ConnectorConfig]) -> str:
    states = [_availability(live, c.id) for c in connectors]
    known = [s for s in states if s]
    if not known:
        return ""
    if len(set(known)) == 1:
        return known[0]
    if "Available" in known:
        return "Available"
    if "Occupied" in known or "Reserved" in known:
        return "Occupied"
    return "Unavailable"


def _power(live: LiveValues, connector_id: int) -> str:
    probe = live.power_w
    watts = probe(connector_id) if probe is not None else None
    return _decimal_text(watts) if watts is not None else ""


def _probe_text(probe: Callable[[], int | None] | None) -> str:
    value = probe() if probe is not None else None
    return str(value) if value is not None else ""


def _auth_cache_bytes(live: LiveValues) -> str:
    probe = live.auth_cache_bytes
    used = probe() if probe is not None else None
    return str(used) if used is not None else ""


def _decimal_text(value: float) -> str:
    text = format(Decimal(repr(round(float(value), 3))).normalize(), "f")
    return "0" if text in ("-0", "") else text
