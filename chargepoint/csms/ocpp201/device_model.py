"""The OCPP 2.0.1 device model of the station, over the version-free core Settings.

Components and variables (OCPP 2.0.1 Part 2, "Referenced Components and Variables", and the OCA
application note "Signed Meter Values in OCPP" for the signing variables) are mapped onto the
core `Settings` wherever OCPP 1.6 has the same configuration key, so a change made through
SetVariables changes the same setting (and thus behaviour) a ChangeConfiguration would, and is
persisted by `Settings` under the 1.6 key. Variables without a 1.6 equivalent are kept here and
persisted through the `persist` callback under `ocpp201.<Component>.<Variable>` (see
`VariableDef.store_key`); `DeviceModel.for_station(..., stored)` restores them.

Mapping (component.variable[instance] -> Settings key, or "dm" for device-model-only):

    OCPPCommCtrlr.HeartbeatInterval                      HeartbeatInterval
    OCPPCommCtrlr.MessageAttempts[TransactionEvent]      TransactionMessageAttempts
    OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent] TransactionMessageRetryInterval
    OCPPCommCtrlr.MessageTimeout[Default]                dm, read-only (csms.call_timeout)
    OCPPCommCtrlr.WebSocketPingInterval                  WebSocketPingInterval
    OCPPCommCtrlr.PublicKeyWithSignedMeterValue          PublicKeyWithSignedMeterValue
    OCPPCommCtrlr.NetworkConfigurationPriority           dm (one profile slot: "1")
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
    DeviceDataCtrlr.ItemsPerMessage/BytesPerMessage[GetReport|GetVariables|SetVariables]
                                                         dm, read-only
    DeviceDataCtrlr.ConfigurationValueSize / ReportingValueSize  dm, read-only (1000 / 2500)
    SecurityCtrlr.SecurityProfile                        dm (YAML csms.security_profile; raise only)
    SecurityCtrlr.BasicAuthPassword                      dm, write-only (overrides csms.password)
    SecurityCtrlr.Identity                               dm, read-only (station.id)
    SecurityCtrlr.OrganizationName                       dm
    ChargingStation.AvailabilityState/Available/Model/VendorName/SupplyPhases
                                                         dm, read-only
    EVSE(n).AvailabilityState/Available/Power/SupplyPhases/EvseId  dm, read-only
    FiscalMetering(EVSE n).PublicKey                     MeterPublicKey<n> (computed, read-only)
    Connector(EVSE n, connector 1).AvailabilityState/Available/ConnectorType/SupplyPhases
                                                         dm, read-only

Only the attribute type Actual is supported. Messages in and out use the JSON wire form
(camelCase); requests in the ocpp library's snake_case form are accepted as well.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal, get_args

from pydantic import ValidationError

from chargepoint.config import ConfigError, CsmsConfig, SecretRef, StationConfig
from chargepoint.core.settings import Kind, SetResult, Settings

log = logging.getLogger("chargepoint.csms.ocpp201.device_model")

DataType = Literal[
    "string",
    "decimal",
    "integer",
    "dateTime",
    "boolean",
    "OptionList",
    "SelectionList",  # OCPP 2.1 only: not a DataEnumType of 2.0.1, so no variable here uses it
    "SequenceList",
    "MemberList",
]
Mutability = Literal["ReadOnly", "WriteOnly", "ReadWrite"]
ReportBase = Literal["ConfigurationInventory", "FullInventory", "SummaryInventory"]
REPORT_BASES: Final[tuple[str, ...]] = get_args(ReportBase)
MessageKind = Literal["GetReport", "GetVariables", "SetVariables"]

Json = dict[str, Any]
Persist = Callable[[str, str], Awaitable[None]]

STORE_PREFIX: Final = "ocpp201."

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

SET_VALUE_MAX: Final = 1000  # SetVariableData.attributeValue
REPORT_VALUE_MAX: Final = 2500  # GetVariableResult.attributeValue, VariableAttribute.value
VALUES_LIST_MAX: Final = 1000  # VariableCharacteristics.valuesList
REASON_CODE_MAX: Final = 20
ADDITIONAL_INFO_MAX: Final = 512
PASSWORD_LENGTH: Final = (16, 40)  # A00.FR.205; maxLimit of BasicAuthPassword
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
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

# Reason codes (OCPP 2.0.1 Part 2 Appendices, "Reason Codes"; NoSecurityDowngrade from 2.1)
R_NOT_FOUND: Final = "NotFound"
R_UNSUPPORTED_PARAM: Final = "UnsupportedParam"
R_READ_ONLY: Final = "ReadOnly"
R_WRITE_ONLY: Final = "WriteOnly"
R_INVALID_VALUE: Final = "InvalidValue"
R_OUT_OF_RANGE: Final = "ValueOutOfRange"
R_TOO_LARGE: Final = "TooLargeElement"
R_TOO_MANY: Final = "TooManyElements"
R_NO_DOWNGRADE: Final = "NoSecurityDowngrade"
R_MISSING_INFO: Final = "MissingDevModelInfo"
R_INTERNAL: Final = "InternalError"

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
_LIST_TYPES: Final = frozenset({"OptionList", "SelectionList", "SequenceList", "MemberList"})
_NUMERIC_TYPES: Final = frozenset({"integer", "decimal"})

# Part 2, primitive datatypes: integer without leading zeros or plus sign; decimal sent to
# the station with at most six decimal places; dateTime RFC 3339 with at most 3 fractional digits.
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]{1,6})?")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


class TooManyItems(Exception):
    """More entries in a request than DeviceDataCtrlr.ItemsPerMessage allows (B05.FR.11,
    B06.FR.16): answer with CALLERROR OccurrenceConstraintViolation."""

    def __init__(self, kind: str, count: int, limit: int) -> None:
        self.kind = kind
        self.count = count
        self.limit = limit
        super().__init__(f"{kind} with {count} entries; ItemsPerMessage[{kind}] is {limit}")


# --- references ------------------------------------------------------------------------------


def _ci(text: str | None) -> str | None:
    """Names and instances compare case-insensitively; an empty instance is no instance."""
    return text.lower() if text else None


@dataclass(frozen=True)
class ComponentRef:
    name: str
    instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None

    @property
    def key(self) -> tuple[str | None, str | None, int | None, int | None]:
        return (_ci(self.name), _ci(self.instance), self.evse_id, self.connector_id)

    def wire(self) -> Json:
        out: Json = {"name": self.name}
        if self.instance:
            out["instance"] = self.instance
        if self.evse_id is not None:
            evse: Json = {"id": self.evse_id}
            if self.connector_id is not None:
                evse["connectorId"] = self.connector_id
            out["evse"] = evse
        return out

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> ComponentRef:
        evse = raw.get("evse")
        evse_id = connector_id = None
        if isinstance(evse, Mapping):
            evse_id = _int_or_none(evse.get("id"))
            connector_id = _int_or_none(_field(evse, "connectorId", "connector_id"))
        return cls(
            str(raw.get("name", "")), _str_or_none(raw.get("instance")), evse_id, connector_id
        )

    def __str__(self) -> str:
        text = self.name + (f"[{self.instance}]" if self.instance else "")
        if self.evse_id is not None:
            text += f"@{self.evse_id}" + (
                f":{self.connector_id}" if self.connector_id is not None else ""
            )
        return text


@dataclass(frozen=True)
class VariableRef:
    name: str
    instance: str | None = None

    @property
    def key(self) -> tuple[str | None, str | None]:
        return (_ci(self.name), _ci(self.instance))

    def wire(self) -> Json:
        out: Json = {"name": self.name}
        if self.instance:
            out["instance"] = self.instance
        return out

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> VariableRef:
        return cls(str(raw.get("name", "")), _str_or_none(raw.get("instance")))

    def __str__(self) -> str:
        return self.name + (f"[{self.instance}]" if self.instance else "")


def _component(value: str | ComponentRef) -> ComponentRef:
    return ComponentRef(value) if isinstance(value, str) else value


def _variable(value: str | VariableRef) -> VariableRef:
    return VariableRef(value) if isinstance(value, str) else value


# --- definitions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """Why a value is refused: a reason code of the spec's list and a text for people."""

    reason_code: str
    info: str


# An extra rule on a value that already fits the data type and limits (None: fine)
Check = Callable[[str], Rejection | None]


@dataclass(frozen=True)
class VariableDef:
    """One component-variable with its Actual attribute and characteristics.

    The value comes from exactly one source: `setting_key` (a core Settings key; a computed
    `Settings.dynamic` key is read-only), `getter` (computed here, read-only), or `default`
    (a device-model-only variable kept by the model, persisted under `store_key`).
    `max_length` is the longest value for string and list types (reported as maxLimit, as the
    spec defines maxLimit for those types); `min_limit`/`max_limit` bound numeric values.
    """

    component: ComponentRef
    variable: VariableRef
    data_type: DataType
    mutability: Mutability
    unit: str | None = None
    values_list: tuple[str, ...] | None = None
    max_limit: float | None = None
    min_limit: float | None = None
    max_length: int | None = None
    persistent: bool = False
    constant: bool = False
    setting_key: str | None = None
    getter: Callable[[], str] | None = None
    default: str | None = None
    max_items: int | None = None
    min_items: int = 0
    reboot_required: bool = False
    check: Check | None = None

    def __post_init__(self) -> None:
        sources = [s for s in (self.setting_key, self.getter, self.default) if s is not None]
        if len(sources) != 1:
            raise ValueError(f"{self.path}: give exactly one of setting_key, getter, default")
        if self.getter is not None and self.mutability != "ReadOnly":
            raise ValueError(f"{self.path}: a computed variable is read-only")

    @property
    def path(self) -> str:
        return f"{self.component}.{self.variable}"

    @property
    def store_key(self) -> str:
        """Where a device-model-only value is persisted: `ocpp201.TxCtrlr.TxStartPoint`."""
        c, v = self.component, self.variable
        text = STORE_PREFIX + c.name
        if c.instance:
            text += f"[{c.instance}]"
        if c.evse_id is not None:
            text += f"@{c.evse_id}" + (f":{c.connector_id}" if c.connector_id is not None else "")
        text += "." + v.name
        if v.instance:
            text += f"[{v.instance}]"
        return text


def check_value(vdef: VariableDef, value: str) -> str | Rejection:
    """The value normalised when it fits the data type, values list, limits and length."""
    kind = vdef.data_type
    if len(value) > SET_VALUE_MAX:
        return Rejection(R_TOO_LARGE, f"longer than {SET_VALUE_MAX} characters")
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            return Rejection(R_INVALID_VALUE, "must be true or false")
        value = value.lower()
    elif kind == "integer":
        if not _INTEGER.fullmatch(value):
            return Rejection(R_INVALID_VALUE, "must be an integer (no sign +, no leading zeros)")
        number = int(value)
        if not _INT32_MIN <= number <= _INT32_MAX:
            return Rejection(R_OUT_OF_RANGE, "must fit a 32-bit integer")
        problem = _range_problem(vdef, number)
        if problem is not None:
            return problem
    elif kind == "decimal":
        if not _DECIMAL.fullmatch(value):
            return Rejection(R_INVALID_VALUE, "must be a decimal with at most 6 decimal places")
        problem = _range_problem(vdef, float(value))
        if problem is not None:
            return problem
    elif kind == "dateTime":
        if not _DATETIME.fullmatch(value):
            return Rejection(R_INVALID_VALUE, "must be an RFC 3339 date and time")
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return Rejection(R_INVALID_VALUE, "must be an RFC 3339 date and time")
    elif kind == "OptionList":
        if vdef.values_list is not None and value not in vdef.values_list:
            return Rejection(R_INVALID_VALUE, f"must be one of {','.join(vdef.values_list)}")
    elif kind in _LIST_TYPES:
        checked = _check_members(vdef, value)
        if isinstance(checked, Rejection):
            return checked
        value = checked
    if vdef.max_length is not None and len(value) > vdef.max_length:
        return Rejection(R_TOO_LARGE, f"longer than {vdef.max_length} characters")
    if vdef.check is not None:
        problem = vdef.check(value)
        if problem is not None:
            return problem
    return value


def _range_problem(vdef: VariableDef, number: float) -> Rejection | None:
    if vdef.min_limit is not None and number < vdef.min_limit:
        return Rejection(R_OUT_OF_RANGE, f"must be at least {_number(vdef.min_limit)}")
    if vdef.max_limit is not None and number > vdef.max_limit:
        return Rejection(R_OUT_OF_RANGE, f"must be at most {_number(vdef.max_limit)}")
    return None


def _check_members(vdef: VariableDef, value: str) -> str | Rejection:
    items = [item.strip() for item in value.split(",")] if value.strip() else []
    if any(not item for item in items):
        return Rejection(R_INVALID_VALUE, "has an empty member")
    if len(set(items)) != len(items):
        return Rejection(R_INVALID_VALUE, "names a member twice")
    if vdef.values_list is not None:
        bad = [item for item in items if item not in vdef.values_list]
        if bad:
            shown = ",".join(bad)[:200]
            return Rejection(
                R_INVALID_VALUE, f"not allowed: {shown} (allowed: {','.join(vdef.values_list)})"
            )
    if len(items) < vdef.min_items:
        return Rejection(R_INVALID_VALUE, f"needs at least {vdef.min_items} member(s)")
    if vdef.max_items is not None and len(items) > vdef.max_items:
        return Rejection(R_TOO_MANY, f"at most {vdef.max_items} members")
    return ",".join(items)


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


VariableListener = Callable[[VariableDef], None]


# --- the model -------------------------------------------------------------------------------


class DeviceModel:
    """Components and variables of the station, with SetVariables/GetVariables/GetBaseReport.

    Build it with `DeviceModel.for_station(...)`.
    """

    def __init__(
        self,
        config: StationConfig,
        settings: Settings,
        persist: Persist,
        *,
        live: LiveValues | None = None,
        items_per_message: Mapping[str, int] | None = None,
        bytes_per_message: Mapping[str, int] | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.live = live if live is not None else LiveValues()
        self._persist = persist
        self._defs: list[VariableDef] = []
        self._index: dict[tuple[Any, ...], dict[tuple[Any, ...], VariableDef]] = {}
        self._values: dict[str, str] = {}
        self._listeners: list[VariableListener] = []
        self._items = {**DEFAULT_ITEMS_PER_MESSAGE, **(items_per_message or {})}
        self._bytes = {**DEFAULT_BYTES_PER_MESSAGE, **(bytes_per_message or {})}

    @classmethod
    def for_station(
        cls,
        config: StationConfig,
        settings: Settings,
        persist: Persist,
        stored: Mapping[str, str],
        *,
        live: LiveValues | None = None,
        supply_phases: int = 3,
        evse_max_power_w: Mapping[int, float] | None = None,
        items_per_message: Mapping[str, int] | None = None,
        bytes_per_message: Mapping[str, int] | None = None,
    ) -> DeviceModel:
        """The device model of `config`'s station over `settings`.

        `stored` holds what `persist` wrote before (keys `ocpp201.*`; other keys are ignored).
        `supply_phases` is reported for the station, every EVSE and connector;
        `evse_max_power_w[connector_id]` is the rated power reported as EVSE.Power maxLimit
        (the YAML has no rated power, so it is omitted unless given).
        """
        dm = cls(
            config,
            settings,
            persist,
            live=live,
            items_per_message=items_per_message,
            bytes_per_message=bytes_per_message,
        )
        dm._build(supply_phases, evse_max_power_w or {})
        dm._restore(stored)
        return dm

    # ---- reading ------------------------------------------------------------------------

    @property
    def variables(self) -> tuple[VariableDef, ...]:
        return tuple(self._defs)

    def definition(self, component: str | ComponentRef, variable: str | VariableRef) -> VariableDef:
        """The variable's definition; KeyError when there is none."""
        c, v = _component(component), _variable(variable)
        vdef = self._index.get(c.key, {}).get(v.key)
        if vdef is None:
            raise KeyError(f"{c}.{v}")
        return vdef

    def get(self, component: str | ComponentRef, variable: str | VariableRef) -> str:
        """The Actual value (for use inside the station). Write-only variables are refused."""
        vdef = self.definition(component, variable)
        if vdef.mutability == "WriteOnly":
            raise ValueError(f"{vdef.path} is write-only")
        return self._read(vdef)

    def flag(self, component: str | ComponentRef, variable: str | VariableRef) -> bool:
        return self.get(component, variable) == "true"

    def number(self, component: str | ComponentRef, variable: str | VariableRef) -> int:
        return int(self.get(component, variable))

    def members(self, component: str | ComponentRef, variable: str | VariableRef) -> list[str]:
        return [item for item in self.get(component, variable).split(",") if item]

    def tx_start_points(self) -> frozenset[str]:
        return frozenset(self.members("TxCtrlr", "TxStartPoint"))

    def tx_stop_points(self) -> frozenset[str]:
        return frozenset(self.members("TxCtrlr", "TxStopPoint"))

    def items_per_message(self, kind: MessageKind) -> int:
        return self._items[kind]

    def bytes_per_message(self, kind: MessageKind) -> int:
        return self._bytes[kind]

    def security_profile(self) -> int:
        """The security profile in force (the YAML's, or a higher one set through OCPP)."""
        return int(self._values[self._security_def().store_key])

    def basic_auth_password(self) -> str | None:
        """The password set through SecurityCtrlr.BasicAuthPassword, None when never set."""
        vdef = self.definition("SecurityCtrlr", "BasicAuthPassword")
        return self._values[vdef.store_key] or None

    def csms_config(self) -> CsmsConfig:
        """The YAML's csms section with SecurityProfile and BasicAuthPassword applied: what the
        websocket link should use from the next connection on."""
        csms = self.config.csms
        profile, password = self.security_profile(), self.basic_auth_password()
        if profile == csms.security_profile and password is None:
            return csms
        fields = _fields(csms)
        fields["security_profile"] = profile
        if password is not None:
            fields["password"] = SecretRef(value=password)
        try:
            return CsmsConfig.model_validate(fields)
        except ValidationError:
            log.error(
                "security profile %d no longer fits the configuration; using the YAML's %d",
                profile,
                csms.security_profile,
            )
            return csms

    def subscribe(self, listener: VariableListener) -> None:
        """`listener(vdef)` after each change made through set_variables (read with get())."""
        self._listeners.append(listener)

    # ---- SetVariables / GetVariables ----------------------------------------------------

    async def set_variables(self, requests: Iterable[Mapping[str, Any]]) -> list[Json]:
        """setVariableResult entries for SetVariablesRequest.setVariableData, in order."""
        items = list(requests)
        limit = self._items["SetVariables"]
        if len(items) > limit:
            raise TooManyItems("SetVariables", len(items), limit)
        return [await self._set_one(item) for item in items]

    def get_variables(self, requests: Iterable[Mapping[str, Any]]) -> list[Json]:
        """getVariableResult entries for GetVariablesRequest.getVariableData, in order."""
        items = list(requests)
        limit = self._items["GetVariables"]
        if len(items) > limit:
            raise TooManyItems("GetVariables", len(items), limit)
        return [self._get_one(item) for item in items]

    def _resolve(
        self, raw: Mapping[str, Any]
    ) -> tuple[Callable[..., Json], VariableDef | None, Json | None]:
        """The result skeleton of a Get/SetVariables entry, its variable, and the answer when
        the entry already fails (unknown component/variable, attribute type not Actual)."""
        component_raw = raw.get("component") or {}
        variable_raw = raw.get("variable") or {}
        attribute_type = _field(raw, "attributeType", "attribute_type") or "Actual"
        result: Json = {
            "attributeType": attribute_type,
            "component": _camel(component_raw),
            "variable": _camel(variable_raw),
        }

        def answer(status: str, rejection: Rejection | None = None) -> Json:
            result["attributeStatus"] = status
            if rejection is not None:
                result["attributeStatusInfo"] = _status_info(rejection)
            return result

        status, vdef = self._lookup(component_raw, variable_raw)
        if vdef is None:
            return answer, None, answer(status, Rejection(R_NOT_FOUND, status))
        if attribute_type != "Actual":
            return (
                answer,
                vdef,
                answer(
                    "NotSupportedAttributeType",
                    Rejection(
                        R_UNSUPPORTED_PARAM, f"only attribute type Actual; not {attribute_type}"
                    ),
                ),
            )
        return answer, vdef, None

    async def _set_one(self, raw: Mapping[str, Any]) -> Json:
        value = _field(raw, "attributeValue", "attribute_value")
        answer, vdef, early = self._resolve(raw)
        if early is not None:
            return early
        assert vdef is not None
        if vdef.mutability == "ReadOnly":
            return answer("Rejected", Rejection(R_READ_ONLY, self._why_read_only(vdef)))
        if not isinstance(value, str):
            return answer("Rejected", Rejection(R_INVALID_VALUE, "attributeValue is missing"))
        checked = check_value(vdef, value)
        if isinstance(checked, Rejection):
            log.info("SetVariables %s: Rejected (%s)", vdef.path, checked.info)
            return answer("Rejected", checked)
        try:
            status, rejection = await self._write(vdef, checked)
        except Exception:
            log.exception("SetVariables %s failed", vdef.path)
            return answer("Rejected", Rejection(R_INTERNAL, "the value could not be stored"))
        shown = "***" if vdef.mutability == "WriteOnly" else checked
        log.info("SetVariables %s = %s: %s", vdef.path, shown, status)
        if status in ("Accepted", "RebootRequired"):
            self._notify(vdef)
        return answer(status, rejection)

    async def _write(self, vdef: VariableDef, value: str) -> tuple[str, Rejection | None]:
        if vdef.setting_key is not None:
            result, why = await self.settings.change(vdef.setting_key, value)
            if result is SetResult.ACCEPTED:
                return "Accepted", None
            if result is SetResult.REBOOT_REQUIRED:
                return "RebootRequired", None
            return "Rejected", Rejection(R_INVALID_VALUE, why)
        key = vdef.store_key
        changed = value != self._values[key]
        if changed:
            await self._persist(key, value)
            self._values[key] = value
        return ("RebootRequired" if changed and vdef.reboot_required else "Accepted"), None

    def _get_one(self, raw: Mapping[str, Any]) -> Json:
        answer, vdef, early = self._resolve(raw)
        if early is not None:
            return early
        assert vdef is not None
        if vdef.mutability == "WriteOnly":
            return answer("Rejected", Rejection(R_WRITE_ONLY, f"{vdef.path} is write-only"))
        try:
            value = self._read(vdef)
        except Exception:
            log.exception("GetVariables %s failed", vdef.path)
            return answer("Rejected", Rejection(R_INTERNAL, "the value could not be read"))
        if len(value) > REPORT_VALUE_MAX:
            return answer(
                "Rejected", Rejection(R_TOO_LARGE, f"longer than {REPORT_VALUE_MAX} characters")
            )
        accepted = answer("Accepted")
        accepted["attributeValue"] = value
        return accepted

    def _lookup(
        self, component_raw: Mapping[str, Any], variable_raw: Mapping[str, Any]
    ) -> tuple[str, VariableDef | None]:
        component = ComponentRef.from_wire(component_raw)
        variables = self._index.get(component.key)
        if variables is None:
            return "UnknownComponent", None
        vdef = variables.get(VariableRef.from_wire(variable_raw).key)
        if vdef is None:
            return "UnknownVariable", None
        return "", vdef

    def _why_read_only(self, vdef: VariableDef) -> str:
        spec = self.settings.specs.get(vdef.setting_key or "")
        if spec is not None and spec.why_readonly:
            return f"{vdef.path} is {spec.why_readonly}"
        return f"{vdef.path} is read-only"

    def _read(self, vdef: VariableDef) -> str:
        if vdef.setting_key is not None:
            key = vdef.setting_key
            return self.settings.raw(key) if self.settings.known(key) else ""
        if vdef.getter is not None:
            return vdef.getter()
        return self._values[vdef.store_key]

    def _notify(self, vdef: VariableDef) -> None:
        for listener in list(self._listeners):
            try:
                listener(vdef)
            except Exception:
                log.exception("device model listener failed for %s", vdef.path)

    # ---- reports ------------------------------------------------------------------------

    def report(self, criterion: str) -> list[Json]:
        """ReportData entries of a base report (B07). ValueError for an unknown criterion."""
        if criterion == "FullInventory":
            chosen = list(self._defs)
        elif criterion == "ConfigurationInventory":
            chosen = [d for d in self._defs if d.mutability != "ReadOnly"]
        elif criterion == "SummaryInventory":
            chosen = self._summary()
        else:
            raise ValueError(f"unknown report base {criterion!r}")
        return [self._report_entry(vdef) for vdef in chosen]

    def notify_report_pages(
        self, request_id: int, criterion: str, generated_at: datetime | str
    ) -> list[Json]:
        """NotifyReportRequest payloads for GetBaseReport(requestId, criterion): pages of at
        most ItemsPerMessage[GetReport] entries, seqNo from 0, tbc true on all but the last."""
        when = _date_time(generated_at)
        entries = self.report(criterion)
        size = max(1, self._items["GetReport"])
        chunks = [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]
        pages: list[Json] = []
        for seq, chunk in enumerate(chunks):
            page: Json = {
                "requestId": request_id,
                "generatedAt": when,
                "seqNo": seq,
                "tbc": seq < len(chunks) - 1,
            }
            if chunk:
                page["reportData"] = chunk
            pages.append(page)
        return pages

    def _summary(self) -> list[VariableDef]:
        """B07.FR.09: AvailabilityState of the station and every EVSE; of a connector only
        when it differs from its EVSE's."""
        out: list[VariableDef] = []
        evse_state: dict[int | None, str] = {}
        for vdef in self._defs:
            if vdef.variable.name != "AvailabilityState":
                continue
            c = vdef.component
            if c.name == "Connector":
                if self._safe_read(vdef) == evse_state.get(c.evse_id):
                    continue
            elif c.name == "EVSE":
                evse_state[c.evse_id] = self._safe_read(vdef) or ""
            out.append(vdef)
        return out

    def _safe_read(self, vdef: VariableDef) -> str | None:
        try:
            return self._read(vdef)
        except Exception:
            log.exception("reading %s for a report failed", vdef.path)
            return None

    def _report_entry(self, vdef: VariableDef) -> Json:
        attribute: Json = {"type": "Actual"}
        if vdef.mutability != "WriteOnly":
            value = self._safe_read(vdef)
            if value is not None and len(value) <= REPORT_VALUE_MAX:
                attribute["value"] = value
        attribute.update(
            mutability=vdef.mutability, persistent=vdef.persistent, constant=vdef.constant
        )
        characteristics: Json = {"dataType": vdef.data_type}
        if vdef.unit:
            characteristics["unit"] = vdef.unit
        if vdef.data_type in _NUMERIC_TYPES:
            if vdef.min_limit is not None:
                characteristics["minLimit"] = _number(vdef.min_limit)
            if vdef.max_limit is not None:
                characteristics["maxLimit"] = _number(vdef.max_limit)
        elif vdef.max_length is not None:
            characteristics["maxLimit"] = vdef.max_length
        if vdef.values_list:
            characteristics["valuesList"] = ",".join(vdef.values_list)[:VALUES_LIST_MAX]
        characteristics["supportsMonitoring"] = False
        return {
            "component": vdef.component.wire(),
            "variable": vdef.variable.wire(),
            "variableAttribute": [attribute],
            "variableCharacteristics": characteristics,
        }

    # ---- building -----------------------------------------------------------------------

    def _add(self, vdef: VariableDef) -> VariableDef:
        variables = self._index.setdefault(vdef.component.key, {})
        if vdef.variable.key in variables:
            raise ValueError(f"{vdef.path} is defined twice")
        variables[vdef.variable.key] = vdef
        self._defs.append(vdef)
        if vdef.default is not None:
            self._values[vdef.store_key] = vdef.default
        return vdef

    def _mapped(
        self,
        component: ComponentRef,
        variable: VariableRef,
        key: str,
        *,
        unit: str | None = None,
        min_limit: float | None = None,
    ) -> VariableDef:
        """A variable that is the core setting `key` (its type, limits and read-only flag)."""
        spec = self.settings.specs.get(key)
        if spec is None:  # a computed key (Settings.dynamic): read-only text
            return self._add(
                VariableDef(
                    component, variable, "string", "ReadOnly", persistent=True, setting_key=key
                )
            )
        data_type = _KIND_TYPES[spec.kind]
        allowed = tuple(sorted(spec.allowed, key=_list_order)) if spec.allowed is not None else None
        lower: float | None = spec.minimum
        if min_limit is not None:
            lower = min_limit if lower is None else max(lower, min_limit)
        return self._add(
            VariableDef(
                component,
                variable,
                data_type,
                "ReadOnly" if spec.readonly else "ReadWrite",
                unit=unit,
                values_list=allowed,
                min_limit=lower,
                max_limit=spec.maximum,
                max_length=len(",".join(allowed))
                if data_type == "MemberList" and allowed
                else None,
                max_items=spec.max_items,
                persistent=True,
                constant=spec.readonly,
                setting_key=key,
                reboot_required=spec.reboot_required,
            )
        )

    def _const(
        self,
        component: ComponentRef,
        name: str,
        value: str,
        data_type: DataType = "string",
        *,
        instance: str | None = None,
        unit: str | None = None,
        max_length: int | None = None,
    ) -> VariableDef:
        """A read-only variable whose value never changes at runtime."""
        return self._add(
            VariableDef(
                component,
                VariableRef(name, instance),
                data_type,
                "ReadOnly",
                unit=unit,
                max_length=max_length,
                persistent=True,
                constant=True,
                getter=lambda: value,
            )
        )

    def _stored(
        self,
        component: ComponentRef,
        variable: VariableRef,
        data_type: DataType,
        default: str,
        **options: Any,
    ) -> VariableDef:
        """A read-write device-model-only variable, persisted under its store_key."""
        mutability: Mutability = options.pop("mutability", "ReadWrite")
        return self._add(
            VariableDef(
                component,
                variable,
                data_type,
                mutability,
                persistent=True,
                default=default,
                **options,
            )
        )

    def _build(self, supply_phases: int, evse_max_power_w: Mapping[int, float]) -> None:
        cfg = self.config
        seconds = "s"
        comm = ComponentRef("OCPPCommCtrlr")
        self._mapped(
            comm, VariableRef("HeartbeatInterval"), "HeartbeatInterval", unit=seconds, min_limit=1
        )
        self._mapped(
            comm, VariableRef("MessageAttempts", "TransactionEvent"), "TransactionMessageAttempts"
        )
        self._mapped(
            comm,
            VariableRef("MessageAttemptInterval", "TransactionEvent"),
            "TransactionMessageRetryInterval",
            unit=seconds,
        )
        self._const(
            comm,
            "MessageTimeout",
            str(max(1, round(cfg.csms.call_timeout))),
            "integer",
            instance="Default",
            unit=seconds,
        )
        self._mapped(
            comm, VariableRef("WebSocketPingInterval"), "WebSocketPingInterval", unit=seconds
        )
        self._mapped(
            comm, VariableRef("PublicKeyWithSignedMeterValue"), "PublicKeyWithSignedMeterValue"
        )
        self._stored(
            comm,
            VariableRef("NetworkConfigurationPriority"),
            "SequenceList",
            "1",
            values_list=("1",),
            min_items=1,
        )
        self._mapped(comm, VariableRef("ResetRetries"), "ResetRetries")
        self._mapped(
            comm, VariableRef("UnlockOnEVSideDisconnect"), "UnlockConnectorOnEVSideDisconnect"
        )

        tx = ComponentRef("TxCtrlr")
        self._mapped(tx, VariableRef("EVConnectionTimeOut"), "ConnectionTimeOut", unit=seconds)
        self._mapped(
            tx, VariableRef("StopTxOnEVSideDisconnect"), "StopTransactionOnEVSideDisconnect"
        )
        self._mapped(tx, VariableRef("StopTxOnInvalidId"), "StopTransactionOnInvalidId")
        for name, allowed, default in (
            ("TxStartPoint", TX_START_POINTS, DEFAULT_TX_START_POINT),
            ("TxStopPoint", TX_STOP_POINTS, DEFAULT_TX_STOP_POINT),
        ):
            self._stored(
                tx,
                VariableRef(name),
                "MemberList",
                default,
                values_list=allowed,
                max_length=len(",".join(allowed)),
                min_items=1,
            )
        self._stored(
            tx, VariableRef("MaxEnergyOnInvalidId"), "integer", "0", unit="Wh", min_limit=0
        )

        sampled = ComponentRef("SampledDataCtrlr")
        self._const(sampled, "Available", "true", "boolean")
        self._stored(sampled, VariableRef("Enabled"), "boolean", "true")
        self._mapped(sampled, VariableRef("TxStartedMeasurands"), "StartTxnSampledData")
        self._mapped(sampled, VariableRef("TxUpdatedMeasurands"), "MeterValuesSampledData")
        self._mapped(
            sampled, VariableRef("TxUpdatedInterval"), "MeterValueSampleInterval", unit=seconds
        )
        self._mapped(sampled, VariableRef("TxEndedMeasurands"), "StopTxnSampledData")
        # 1.6 sampled StopTxnSampledData every MeterValueSampleInterval: the same by default
        self._stored(
            sampled,
            VariableRef("TxEndedInterval"),
            "integer",
            str(cfg.ocpp.meter_value_sample_interval),
            unit=seconds,
            min_limit=0,
        )
        self._mapped(sampled, VariableRef("SignReadings"), "SampledDataSignReadings")
        self._mapped(sampled, VariableRef("SignStartedReadings"), "SampledDataSignStartedReadings")
        self._mapped(sampled, VariableRef("SignUpdatedReadings"), "SampledDataSignUpdatedReadings")

        aligned = ComponentRef("AlignedDataCtrlr")
        self._const(aligned, "Available", "true", "boolean")
        self._stored(aligned, VariableRef("Enabled"), "boolean", "true")
        self._mapped(aligned, VariableRef("Interval"), "ClockAlignedDataInterval", unit=seconds)
        self._mapped(aligned, VariableRef("Measurands"), "MeterValuesAlignedData")
        self._stored(
            aligned,
            VariableRef("TxEndedInterval"),
            "integer",
            str(cfg.ocpp.clock_aligned_data_interval),
            unit=seconds,
            min_limit=0,
        )
        self._mapped(aligned, VariableRef("TxEndedMeasurands"), "StopTxnAlignedData")
        self._mapped(aligned, VariableRef("SignReadings"), "AlignedDataSignReadings")

        auth = ComponentRef("AuthCtrlr")
        self._const(auth, "Enabled", "true", "boolean")  # the core always authorizes
        self._mapped(auth, VariableRef("AuthorizeRemoteStart"), "AuthorizeRemoteTxRequests")
        self._mapped(auth, VariableRef("LocalAuthorizeOffline"), "LocalAuthorizeOffline")
        self._mapped(auth, VariableRef("LocalPreAuthorize"), "LocalPreAuthorize")
        self._mapped(
            auth, VariableRef("OfflineTxForUnknownIdEnabled"), "AllowOfflineTxForUnknownId"
        )

        cache = ComponentRef("AuthCacheCtrlr")
        self._const(cache, "Available", "true", "boolean")
        self._mapped(cache, VariableRef("Enabled"), "AuthorizationCacheEnabled")
        self._stored(cache, VariableRef("LifeTime"), "integer", "86400", unit=seconds, min_limit=1)
        self._add(
            VariableDef(
                cache,
                VariableRef("Storage"),
                "integer",
                "ReadOnly",
                unit="B",
                getter=self._auth_cache_bytes,
            )
        )

        data = ComponentRef("DeviceDataCtrlr")
        for kind in ("GetReport", "GetVariables", "SetVariables"):
            self._const(data, "ItemsPerMessage", str(self._items[kind]), "integer", instance=kind)
            self._const(data, "BytesPerMessage", str(self._bytes[kind]), "integer", instance=kind)
        self._const(data, "ConfigurationValueSize", str(SET_VALUE_MAX), "integer")
        self._const(data, "ReportingValueSize", str(REPORT_VALUE_MAX), "integer")

        security = ComponentRef("SecurityCtrlr")
        self._stored(
            security,
            VariableRef("SecurityProfile"),
            "integer",
            str(cfg.csms.security_profile),
            min_limit=0,
            max_limit=3,
            reboot_required=True,
            check=self._check_security_profile,
        )
        self._stored(
            security,
            VariableRef("BasicAuthPassword"),
            "string",
            "",
            mutability="WriteOnly",
            max_length=PASSWORD_LENGTH[1],
            check=_check_password,
        )
        self._const(security, "Identity", cfg.station.id, max_length=48)
        self._stored(
            security,
            VariableRef("OrganizationName"),
            "string",
            cfg.station.vendor,
            max_length=ORGANIZATION_NAME_MAX,
        )

        station = ComponentRef("ChargingStation")
        self._add(
            VariableDef(
                station,
                VariableRef("AvailabilityState"),
                "OptionList",
                "ReadOnly",
                values_list=AVAILABILITY_STATES,
                getter=self._station_availability,
            )
        )
        self._const(station, "Available", "true", "boolean")
        self._const(station, "Model", cfg.station.model)
        self._const(station, "VendorName", cfg.station.vendor)
        self._const(station, "SupplyPhases", str(supply_phases), "integer")

        for conn in sorted(cfg.connectors, key=lambda c: c.id):
            self._build_evse(conn.id, conn.evse_id, supply_phases, evse_max_power_w.get(conn.id))

    def _build_evse(
        self, cid: int, evse_id_text: str, supply_phases: int, max_power_w: float | None
    ) -> None:
        evse = ComponentRef("EVSE", evse_id=cid)
        self._add(
            VariableDef(
                evse,
                VariableRef("AvailabilityState"),
                "OptionList",
                "ReadOnly",
                values_list=AVAILABILITY_STATES,
                getter=lambda: self._availability(cid),
            )
        )
        self._const(evse, "Available", "true", "boolean")
        self._add(
            VariableDef(
                evse,
                VariableRef("Power"),
                "decimal",
                "ReadOnly",
                unit="W",
                max_limit=max_power_w,
                getter=lambda: self._power(cid),
            )
        )
        self._const(evse, "SupplyPhases", str(supply_phases), "integer")
        self._const(evse, "EvseId", evse_id_text, max_length=36)
        self._mapped(
            ComponentRef("FiscalMetering", evse_id=cid),
            VariableRef("PublicKey"),
            f"MeterPublicKey{cid}",
        )
        connector = ComponentRef("Connector", evse_id=cid, connector_id=1)
        self._add(
            VariableDef(
                connector,
                VariableRef("AvailabilityState"),
                "OptionList",
                "ReadOnly",
                values_list=AVAILABILITY_STATES,
                getter=lambda: self._availability(cid),
            )
        )
        self._const(connector, "Available", "true", "boolean")
        self._const(connector, "ConnectorType", CONNECTOR_TYPE)
        self._const(connector, "SupplyPhases", str(supply_phases), "integer")

    def _restore(self, stored: Mapping[str, str]) -> None:
        """Device-model-only values persisted earlier; an unusable one keeps its default."""
        # the SecurityProfile rule depends on the stored BasicAuthPassword: restore it last
        profile = self._security_def()
        ordered = [d for d in self._defs if d is not profile] + [profile]
        for vdef in ordered:
            if vdef.default is None:
                continue
            text = stored.get(vdef.store_key)
            if text is None:
                continue
            checked = check_value(vdef, text)
            if isinstance(checked, Rejection):
                shown = "***" if vdef.mutability == "WriteOnly" else repr(text[:100])
                log.warning(
                    "stored %s %s not used (%s); using %r",
                    vdef.path,
                    shown,
                    checked.info,
                    "***" if vdef.mutability == "WriteOnly" else vdef.default,
                )
                continue
            self._values[vdef.store_key] = checked

    # ---- live values --------------------------------------------------------------------

    def _availability(self, connector_id: int) -> str:
        probe = self.live.connector_status
        status = probe(connector_id) if probe is not None else None
        return _AVAILABILITY.get(str(status), "") if status is not None else ""

    def _station_availability(self) -> str:
        states = [self._availability(c.id) for c in self.config.connectors]
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

    def _power(self, connector_id: int) -> str:
        probe = self.live.power_w
        watts = probe(connector_id) if probe is not None else None
        return _decimal_text(watts) if watts is not None else ""

    def _auth_cache_bytes(self) -> str:
        probe = self.live.auth_cache_bytes
        used = probe() if probe is not None else None
        return str(used) if used is not None else ""

    # ---- security -----------------------------------------------------------------------

    def _security_def(self) -> VariableDef:
        return self.definition("SecurityCtrlr", "SecurityProfile")

    def _check_security_profile(self, value: str) -> Rejection | None:
        new = int(value)
        current = int(self._values[self._security_def().store_key])
        if new < current:
            return Rejection(
                R_NO_DOWNGRADE,
                f"the station uses security profile {current}; it cannot be lowered over OCPP",
            )
        if new == current:
            return None
        problems = self._profile_problems(new)
        if problems:
            return Rejection(R_MISSING_INFO, "; ".join(problems))
        return None

    def _profile_problems(self, profile: int) -> list[str]:
        """What the configuration lacks for `profile` (never the secrets themselves)."""
        fields = _fields(self.config.csms)
        fields["security_profile"] = profile
        password = self.basic_auth_password()
        if password is not None:
            fields["password"] = SecretRef(value=password)
        try:
            candidate = CsmsConfig.model_validate(fields)
        except ValidationError as exc:
            return [text for err in exc.errors(include_url=False) for text in _plain_errors(err)]
        problems: list[str] = []
        if profile in (1, 2) and candidate.password is not None:
            try:
                candidate.password.resolve()
            except ConfigError as exc:
                problems += [p.message for p in exc.problems]
        if profile in (2, 3) and candidate.ca_file is not None and not candidate.ca_file.is_file():
            problems.append(f"csms.ca_file {candidate.ca_file} does not exist")
        if profile == 3:
            for name in ("client_cert", "client_key"):
                path = getattr(candidate, name)
                if path is not None and not path.is_file():
                    problems.append(f"csms.{name} {path} does not exist")
        return problems


# --- helpers ---------------------------------------------------------------------------------


def _list_order(member: str) -> tuple[int, str]:
    rank = _PREFERRED_ORDER.index(member) if member in _PREFERRED_ORDER else len(_PREFERRED_ORDER)
    return rank, member


def _check_password(value: str) -> Rejection | None:
    low, high = PASSWORD_LENGTH
    if not low <= len(value) <= high:
        return Rejection(R_INVALID_VALUE, f"must be {low} to {high} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return Rejection(R_INVALID_VALUE, "must not contain spaces or control characters")
    return None


def _plain_errors(err: Mapping[str, Any]) -> list[str]:
    """A pydantic error of CsmsConfig as `csms.KEY: message` texts (inputs are never shown:
    the config models hide them)."""
    where = tuple(str(p) for p in err.get("loc", ()))
    issues = getattr((err.get("ctx") or {}).get("error"), "issues", None)
    if isinstance(issues, list):  # the config's rule violations: (key path, message) pairs
        return [
            ".".join(("csms", *where, *(str(p) for p in loc))) + f": {msg}" for loc, msg in issues
        ]
    message = str(err.get("msg", "invalid"))
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return [".".join(("csms", *where)) + f": {message}"]


def _fields(model: Any) -> dict[str, Any]:
    return {name: getattr(model, name) for name in type(model).model_fields}


def _status_info(rejection: Rejection) -> Json:
    return {
        "reasonCode": rejection.reason_code[:REASON_CODE_MAX],
        "additionalInfo": rejection.info[:ADDITIONAL_INFO_MAX],
    }


def _field(raw: Mapping[str, Any], camel: str, snake: str) -> Any:
    return raw[camel] if camel in raw else raw.get(snake)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _camel(value: Any) -> Any:
    """A request's component/variable echoed in wire form (snake_case keys made camelCase)."""
    if isinstance(value, Mapping):
        return {_camel_key(str(k)): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _decimal_text(value: float) -> str:
    text = format(Decimal(repr(round(float(value), 3))).normalize(), "f")
    return "0" if text in ("-0", "") else text


def _date_time(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = [
    "AVAILABILITY_STATES",
    "DEFAULT_TX_START_POINT",
    "DEFAULT_TX_STOP_POINT",
    "REPORT_BASES",
    "STORE_PREFIX",
    "TX_START_POINTS",
    "TX_STOP_POINTS",
    "ComponentRef",
    "DataType",
    "DeviceModel",
    "LiveValues",
    "MessageKind",
    "Mutability",
    "Rejection",
    "ReportBase",
    "TooManyItems",
    "VariableDef",
    "VariableRef",
    "check_value",
]
