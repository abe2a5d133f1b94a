"""Runtime settings of the station: typed, validated, persisted, observable.

The keys are the OCPP 1.6 configuration key names; the 2.0.1 device model maps its
variables onto the same settings. Defaults come from the YAML config (`ocpp:` section);
changes made by the CSMS are kept in the store and win over the YAML from then on.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from chargepoint.config import MEASURANDS

log = logging.getLogger("chargepoint.settings")

PHASE_ROTATIONS = ("RST", "RTS", "SRT", "STR", "TRS", "TSR", "NotApplicable", "Unknown")
PUBLIC_KEY_MODES = frozenset({"Never", "OncePerTransaction", "EveryMeterValue"})
LOCAL_AUTH_LIST_MAX_LENGTH = 50_000  # entries the Local Authorization List holds
SEND_LOCAL_LIST_MAX_LENGTH = 10_000  # entries one SendLocalList may carry


class Kind(enum.Enum):
    BOOL = "boolean"
    INT = "integer"
    STRING = "string"
    CSL = "comma separated list"
    ENUM = "one of"


class SetResult(enum.StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


@dataclass(frozen=True)
class Spec:
    key: str
    kind: Kind
    default: str
    readonly: bool = False
    allowed: frozenset[str] | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_items: int | None = None
    reboot_required: bool = False
    why_readonly: str = ""


def check_value(spec: Spec, value: str) -> str | None:
    """None when `value` is valid for `spec`, else the reason."""
    if spec.kind is Kind.BOOL:
        return None if value.lower() in ("true", "false") else "must be true or false"
    if spec.kind is Kind.INT:
        try:
            number = int(value)
        except ValueError:
            return "must be an integer"
        if spec.minimum is not None and number < spec.minimum:
            return f"must be at least {spec.minimum}"
        if spec.maximum is not None and number > spec.maximum:
            return f"must be at most {spec.maximum}"
        return None
    if spec.kind is Kind.ENUM:
        assert spec.allowed is not None
        return None if value in spec.allowed else f"must be one of {sorted(spec.allowed)}"
    if spec.kind is Kind.CSL:
        items = [v.strip() for v in value.split(",") if v.strip()]
        if spec.max_items is not None and len(items) > spec.max_items:
            return f"at most {spec.max_items} items"
        if spec.allowed is not None:
            bad = [v for v in items if v not in spec.allowed]
            if bad:
                return f"unsupported: {', '.join(bad)}"
        return None
    return None


def normalise(spec: Spec, value: str) -> str:
    if spec.kind is Kind.BOOL:
        return value.lower()
    if spec.kind is Kind.INT:
        return str(int(value))
    if spec.kind is Kind.CSL:
        return ",".join(v.strip() for v in value.split(",") if v.strip())
    return value


Persist = Callable[[str, str], Awaitable[None]]
Listener = Callable[[str, str], None]


class OwnedKey(Protocol):
    """A configuration key another core module keeps (and checks, and persists) itself, e.g.
    SecurityProfile; `read()` is what GetConfiguration shows ("" for a write-only key)."""

    readonly: bool

    def read(self) -> str: ...

    async def change(self, value: str) -> tuple[SetResult, str]: ...


class Settings:
    """The live values; `dynamic` keys are computed (e.g. MeterPublicKey<n>)."""

    def __init__(self, specs: Iterable[Spec], stored: dict[str, str], persist: Persist) -> None:
        self.specs = {s.key: s for s in specs}
        self._values: dict[str, str] = {}
        for key, spec in self.specs.items():
            value = stored.get(key)
            if value is not None and not spec.readonly and check_value(spec, value) is None:
                self._values[key] = normalise(spec, value)
            else:
                self._values[key] = spec.default
        self._persist = persist
        self._listeners: list[Listener] = []
        self.dynamic: dict[str, Callable[[], str]] = {}
        self.owned: dict[str, OwnedKey] = {}

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def known(self, key: str) -> bool:
        return key in self.specs or key in self.dynamic or key in self.owned

    def raw(self, key: str) -> str:
        if key in self.owned:
            return self.owned[key].read()
        if key in self.dynamic:
            return self.dynamic[key]()
        return self._values[key]

    def flag(self, key: str) -> bool:
        return self.raw(key).lower() == "true"

    def number(self, key: str) -> int:
        return int(self.raw(key))

    def items(self, key: str) -> list[str]:
        return [v for v in self.raw(key).split(",") if v]

    def readonly(self, key: str) -> bool:
        if key in self.owned:
            return self.owned[key].readonly
        return key in self.dynamic or self.specs[key].readonly

    def keys(self) -> list[str]:
        return [*self.specs, *self.dynamic, *self.owned]

    async def change(self, key: str, value: str) -> tuple[SetResult, str]:
        """Validate, persist, apply. Returns the result and a reason for the log."""
        if not self.known(key):
            return SetResult.NOT_SUPPORTED, f"unknown key {key}"
        if key in self.owned and not self.owned[key].readonly:
            return await self.owned[key].change(value)
        if self.readonly(key):
            spec = self.specs.get(key)
            why = spec.why_readonly if spec is not None and spec.why_readonly else "read-only"
            return SetResult.REJECTED, f"{key} is {why}"
        spec = self.specs[key]
        problem = check_value(spec, value)
        if problem is not None:
            return SetResult.REJECTED, f"{key} {problem}"
        value = normalise(spec, value)
        await self._persist(key, value)
        old, self._values[key] = self._values[key], value
        log.info("setting %s changed: %s -> %s", key, old, value)
        for listener in list(self._listeners):
            listener(key, value)
        if spec.reboot_required:
            return SetResult.REBOOT_REQUIRED, "takes effect after a reset"
        return SetResult.ACCEPTED, ""


def _b(value: bool) -> str:
    return "true" if value else "false"


def station_specs(ocpp: object, connectors: int) -> list[Spec]:
    """The settings with their YAML defaults (`ocpp` is the config's OcppSettings)."""
    o = ocpp
    g = getattr
    meas = MEASURANDS
    rw_int = Kind.INT
    return [
        Spec("AllowOfflineTxForUnknownId", Kind.BOOL, _b(g(o, "allow_offline_tx_for_unknown_id"))),
        Spec("AuthorizationCacheEnabled", Kind.BOOL, _b(g(o, "authorization_cache_enabled"))),
        Spec("AuthorizeRemoteTxRequests", Kind.BOOL, _b(g(o, "authorize_remote_tx_requests"))),
        Spec(
            "ClockAlignedDataInterval", rw_int, str(g(o, "clock_aligned_data_interval")), minimum=0
        ),
        Spec("ConnectionTimeOut", rw_int, str(g(o, "connection_time_out")), minimum=1),
        Spec(
            "ConnectorPhaseRotation",
            Kind.CSL,
            "0.RST",
            allowed=frozenset(
                [*PHASE_ROTATIONS[-2:]]
                + [f"{n}.{r}" for n in range(connectors + 1) for r in PHASE_ROTATIONS]
            ),
        ),
        Spec("GetConfigurationMaxKeys", Kind.INT, "100", readonly=True),
        Spec("HeartbeatInterval", rw_int, str(g(o, "heartbeat_interval")), minimum=0),
        # Local Auth List Management profile
        Spec("LocalAuthListEnabled", Kind.BOOL, "true"),
        Spec("LocalAuthListMaxLength", Kind.INT, str(LOCAL_AUTH_LIST_MAX_LENGTH), readonly=True),
        Spec("SendLocalListMaxLength", Kind.INT, str(SEND_LOCAL_LIST_MAX_LENGTH), readonly=True),
        Spec("LocalAuthorizeOffline", Kind.BOOL, _b(g(o, "local_authorize_offline"))),
        Spec("LocalPreAuthorize", Kind.BOOL, _b(g(o, "local_pre_authorize"))),
        Spec(
            "MeterValuesAlignedData",
            Kind.CSL,
            g(o, "meter_values_aligned_data"),
            allowed=meas,
            max_items=5,
        ),
        Spec("MeterValuesAlignedDataMaxLength", Kind.INT, "5", readonly=True),
        Spec(
            "MeterValuesSampledData",
            Kind.CSL,
            g(o, "meter_values_sampled_data"),
            allowed=meas,
            max_items=5,
        ),
        Spec("MeterValuesSampledDataMaxLength", Kind.INT, "5", readonly=True),
        Spec(
            "MeterValueSampleInterval", rw_int, str(g(o, "meter_value_sample_interval")), minimum=0
        ),
        Spec("NumberOfConnectors", Kind.INT, str(connectors), readonly=True),
        # Reservation profile: connector 0 reserves any connector
        Spec("ReserveConnectorZeroSupported", Kind.BOOL, "true", readonly=True),
        Spec(
            "ResetRetries",
            Kind.INT,
            "0",
            readonly=True,
            why_readonly="read-only: a reset here cannot fail (sessions end signed, the OCPP "
            "session restarts in the running daemon), so there is nothing to retry",
        ),
        Spec(
            "StopTransactionOnEVSideDisconnect",
            Kind.BOOL,
            _b(g(o, "stop_transaction_on_ev_side_disconnect")),
        ),
        Spec("StopTransactionOnInvalidId", Kind.BOOL, _b(g(o, "stop_transaction_on_invalid_id"))),
        Spec(
            "StopTxnAlignedData",
            Kind.CSL,
            "",
            readonly=True,
            why_readonly="read-only: clock-aligned values are not kept for StopTransaction; "
            "the signed End value and StopTxnSampledData cover the end",
        ),
        Spec("StopTxnAlignedDataMaxLength", Kind.INT, "5", readonly=True),
        Spec(
            "StopTxnSampledData", Kind.CSL, g(o, "stop_txn_sampled_data"), allowed=meas, max_items=5
        ),
        Spec("StopTxnSampledDataMaxLength", Kind.INT, "5", readonly=True),
        Spec(
            "SupportedFeatureProfiles",
            Kind.CSL,
            "Core,RemoteTrigger,LocalAuthListManagement,Reservation,SmartCharging",
            readonly=True,
        ),
        Spec(
            "TransactionMessageAttempts",
            rw_int,
            str(g(o, "transaction_message_attempts")),
            minimum=1,
        ),
        Spec(
            "TransactionMessageRetryInterval",
            rw_int,
            str(g(o, "transaction_message_retry_interval")),
            minimum=0,
        ),
        Spec(
            "UnlockConnectorOnEVSideDisconnect",
            Kind.BOOL,
            "false",
            readonly=True,
            why_readonly="read-only: the cable lock belongs to the charge controller, which this "
            "daemon does not drive",
        ),
        Spec("WebSocketPingInterval", rw_int, str(g(o, "web_socket_ping_interval")), minimum=0),
        Spec(
            "StartTxnSampledData",
            Kind.CSL,
            g(o, "start_txn_sampled_data"),
            allowed=meas,
            max_items=5,
        ),
        # Signed meter values (OCA application note "Signed Meter Values in OCPP")
        Spec("SampledDataSignReadings", Kind.BOOL, _b(g(o, "sampled_data_sign_readings"))),
        Spec(
            "SampledDataSignStartedReadings",
            Kind.BOOL,
            _b(g(o, "sampled_data_sign_started_readings")),
        ),
        Spec(
            "SampledDataSignUpdatedReadings",
            Kind.BOOL,
            "false",
            readonly=True,
            why_readonly="read-only: a signed reading during a session would break the "
            "begin/end pairing (RCnt +1) the transparency software checks",
        ),
        Spec(
            "AlignedDataSignReadings",
            Kind.BOOL,
            "false",
            readonly=True,
            why_readonly="read-only: signing clock-aligned readings during a session would "
            "break the begin/end pairing",
        ),
        Spec(
            "AlignedDataSignUpdatedReadings",
            Kind.BOOL,
            "false",
            readonly=True,
            why_readonly="read-only: see AlignedDataSignReadings",
        ),
        Spec(
            "PublicKeyWithSignedMeterValue",
            Kind.ENUM,
            g(o, "public_key_with_signed_meter_value"),
            allowed=PUBLIC_KEY_MODES,
        ),
    ]
