"""What an OCPP 2.0.1 device-model variable is, and which values it takes.

The wire names of components and variables (`ComponentRef`, `VariableRef`; names and instances
compare case-insensitively), a variable's definition (`VariableDef`: data type, mutability,
limits and the one source of its value), and `check_value`, the rules of OCPP 2.0.1 Part 2 for
the primitive data types and lists that every SetVariables value (and every persisted value
restored at start) must pass. Reason codes are those of Part 2 Appendices, "Reason Codes".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

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

Json = dict[str, Any]

STORE_PREFIX: Final = "ocpp201."

SET_VALUE_MAX: Final = 1000  # SetVariableData.attributeValue
REPORT_VALUE_MAX: Final = 2500  # GetVariableResult.attributeValue, VariableAttribute.value
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

_LIST_TYPES: Final = frozenset({"OptionList", "SelectionList", "SequenceList", "MemberList"})
NUMERIC_TYPES: Final = frozenset({"integer", "decimal"})

# Part 2, primitive datatypes: integer without leading zeros or plus sign; decimal sent to
# the station with at most six decimal places; dateTime RFC 3339 with at most 3 fractional digits.
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]{1,6})?")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


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
            connector_id = _int_or_none(wire_field(evse, "connectorId", "connector_id"))
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


def component_ref(value: str | ComponentRef) -> ComponentRef:
    return ComponentRef(value) if isinstance(value, str) else value


def variable_ref(value: str | VariableRef) -> VariableRef:
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
        return Rejection(R_OUT_OF_RANGE, f"must be at least {json_number(vdef.min_limit)}")
    if vdef.max_limit is not None and number > vdef.max_limit:
        return Rejection(R_OUT_OF_RANGE, f"must be at most {json_number(vdef.max_limit)}")
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


# --- wire helpers ----------------------------------------------------------------------------


def wire_field(raw: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A request field in JSON wire form (camelCase) or the ocpp library's snake_case form."""
    return raw[camel] if camel in raw else raw.get(snake)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def json_number(value: float) -> int | float:
    """A limit as JSON shows it: 60, not 60.0."""
    return int(value) if float(value).is_integer() else value
