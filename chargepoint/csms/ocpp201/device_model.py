"""The OCPP 2.0.1 device model of the station, over the version-free core Settings.

`DeviceModel` answers SetVariables, GetVariables (B05/B06) and GetBaseReport (B07) for the
variables declared in `device_variables` (what each variable is and which values it takes:
`device_values`; the SecurityCtrlr rules: `device_security`). A variable mapped onto a core
`Settings` key is read and changed through `Settings`, so SetVariables changes the same setting
(and thus behaviour) a ChangeConfiguration would, and `Settings` persists it under the 1.6 key.
Device-model-only variables are kept here and persisted through the `persist` callback under
`ocpp201.<Component>.<Variable>` (see `VariableDef.store_key`);
`DeviceModel.for_station(..., stored)` restores them.

Only the attribute type Actual is supported. Messages in and out use the JSON wire form
(camelCase); requests in the ocpp library's snake_case form are accepted as well.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from pydantic import ValidationError

from chargepoint.config import CsmsConfig, StationConfig
from chargepoint.core.settings import SetResult, Settings
from chargepoint.csms.ocpp201.device_security import csms_with, profile_change_rejection
from chargepoint.csms.ocpp201.device_values import (
    NUMERIC_TYPES,
    R_INTERNAL,
    R_INVALID_VALUE,
    R_NOT_FOUND,
    R_READ_ONLY,
    R_TOO_LARGE,
    R_UNSUPPORTED_PARAM,
    R_WRITE_ONLY,
    REPORT_VALUE_MAX,
    STORE_PREFIX,
    ComponentRef,
    DataType,
    Json,
    Mutability,
    Rejection,
    VariableDef,
    VariableRef,
    check_value,
    component_ref,
    json_number,
    variable_ref,
    wire_field,
)
from chargepoint.csms.ocpp201.device_variables import (
    AVAILABILITY_STATES,
    DEFAULT_BYTES_PER_MESSAGE,
    DEFAULT_ITEMS_PER_MESSAGE,
    DEFAULT_TX_START_POINT,
    DEFAULT_TX_STOP_POINT,
    TX_START_POINTS,
    TX_STOP_POINTS,
    LiveValues,
    VariableSources,
    station_variables,
)

log = logging.getLogger("chargepoint.csms.ocpp201.device_model")

ReportBase = Literal["ConfigurationInventory", "FullInventory", "SummaryInventory"]
REPORT_BASES: Final[tuple[str, ...]] = get_args(ReportBase)
MessageKind = Literal["GetReport", "GetVariables", "SetVariables"]

Persist = Callable[[str, str], Awaitable[None]]
VariableListener = Callable[[VariableDef], None]

VALUES_LIST_MAX: Final = 1000  # VariableCharacteristics.valuesList
REASON_CODE_MAX: Final = 20
ADDITIONAL_INFO_MAX: Final = 512


class TooManyItems(Exception):
    """More entries in a request than DeviceDataCtrlr.ItemsPerMessage allows (B05.FR.11,
    B06.FR.16): answer with CALLERROR OccurrenceConstraintViolation."""

    def __init__(self, kind: str, count: int, limit: int) -> None:
        self.kind = kind
        self.count = count
        self.limit = limit
        super().__init__(f"{kind} with {count} entries; ItemsPerMessage[{kind}] is {limit}")


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
        self._live = live if live is not None else LiveValues()
        self._persist = persist
        self._defs: list[VariableDef] = []
        self._index: dict[tuple[Any, ...], dict[tuple[Any, ...], VariableDef]] = {}
        self._values: dict[str, str] = {}
        self._listeners: list[VariableListener] = []
        self._items = {**DEFAULT_ITEMS_PER_MESSAGE, **(items_per_message or {})}
        self._bytes = {**DEFAULT_BYTES_PER_MESSAGE, **(bytes_per_message or {})}
        self.network_priority_check: Callable[[str], Rejection | None] | None = None

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
        network_priority_check: Callable[[str], Rejection | None] | None = None,
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
        dm.network_priority_check = network_priority_check
        dm._build(supply_phases, evse_max_power_w or {})
        dm._restore(stored)
        return dm

    # ---- reading ------------------------------------------------------------------------

    @property
    def live(self) -> LiveValues:
        """The live probes the read-only runtime variables read; set its fields to connect
        them (the object itself is fixed: the variables were built over it)."""
        return self._live

    @property
    def variables(self) -> tuple[VariableDef, ...]:
        return tuple(self._defs)

    def definition(self, component: str | ComponentRef, variable: str | VariableRef) -> VariableDef:
        """The variable's definition; KeyError when there is none."""
        c, v = component_ref(component), variable_ref(variable)
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

    def password_reverted(self, password: str | None) -> None:
        """The connection gave up a new BasicAuthPassword for `password`, which is in the
        password file already: the device model holds it again (a CSMS that sends the given-up
        one again starts a new trial)."""
        vdef = self.definition("SecurityCtrlr", "BasicAuthPassword")
        self._values[vdef.store_key] = password or ""

    def csms_config(self) -> CsmsConfig:
        """The YAML's csms section with SecurityProfile and BasicAuthPassword applied: what the
        websocket link should use from the next connection on."""
        csms = self.config.csms
        profile, password = self.security_profile(), self.basic_auth_password()
        if profile == csms.security_profile and password is None:
            return csms
        try:
            return csms_with(csms, profile, password)
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
        attribute_type = wire_field(raw, "attributeType", "attribute_type") or "Actual"
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
        value = wire_field(raw, "attributeValue", "attribute_value")
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
        if vdef.data_type in NUMERIC_TYPES:
            if vdef.min_limit is not None:
                characteristics["minLimit"] = json_number(vdef.min_limit)
            if vdef.max_limit is not None:
                characteristics["maxLimit"] = json_number(vdef.max_limit)
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

    def _build(self, supply_phases: int, evse_max_power_w: Mapping[int, float]) -> None:
        sources = VariableSources(
            config=self.config,
            specs=self.settings.specs,
            live=self._live,
            items_per_message=self._items,
            bytes_per_message=self._bytes,
            supply_phases=supply_phases,
            evse_max_power_w=evse_max_power_w,
            check_security_profile=self._check_security_profile,
            check_network_priority=self._check_network_priority,
        )
        for vdef in station_variables(sources):
            self._add(vdef)

    def _add(self, vdef: VariableDef) -> None:
        variables = self._index.setdefault(vdef.component.key, {})
        if vdef.variable.key in variables:
            raise ValueError(f"{vdef.path} is defined twice")
        variables[vdef.variable.key] = vdef
        self._defs.append(vdef)
        if vdef.default is not None:
            self._values[vdef.store_key] = vdef.default

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

    # ---- security -----------------------------------------------------------------------

    def _security_def(self) -> VariableDef:
        return self.definition("SecurityCtrlr", "SecurityProfile")

    def _check_network_priority(self, value: str) -> Rejection | None:
        """`network_priority_check` (the connection profiles: the slots must hold network
        profiles); without it only slot 1, the YAML's connection, exists."""
        hook = self.network_priority_check
        if hook is not None:
            return hook(value)
        unknown = [slot for slot in value.split(",") if slot != "1"]
        if unknown:
            return Rejection(R_INVALID_VALUE, f"no network profile in slot {unknown[0]}")
        return None

    def _check_security_profile(self, value: str) -> Rejection | None:
        return profile_change_rejection(
            self.config.csms, self.basic_auth_password(), self.security_profile(), int(value)
        )


# --- wire helpers ----------------------------------------------------------------------------


def _status_info(rejection: Rejection) -> Json:
    return {
        "reasonCode": rejection.reason_code[:REASON_CODE_MAX],
        "additionalInfo": rejection.info[:ADDITIONAL_INFO_MAX],
    }


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


def _date_time(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# what importers use from here (several names are defined in device_values / device_variables)
__all__ = [
    "AVAILABILITY_STATES",
    "DEFAULT_TX_START_POINT",
    "DEFAULT_TX_STOP_POINT",
    "REPORT_BASES",
    "REPORT_VALUE_MAX",
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
