"""OCPP 1.6 security extension (OCA "Improved security for OCPP 1.6-J", edition 3) over the
version-free core (chargepoint.core.security):

- InstallCertificate (CentralSystemRootCertificate, ManufacturerRootCertificate): Accepted,
  Rejected (not PEM, not X.509, not a CA, expired, store full) or Failed (not stored);
- GetInstalledCertificateIds: certificateHashData (SHA256) of the installed roots of a type,
  NotFound when there are none;
- DeleteCertificate: Accepted, NotFound, or Failed for the station certificate and for the
  last CentralSystemRootCertificate while the TLS connection depends on it;
- ExtendedTriggerMessage: BootNotification, Heartbeat, MeterValues, StatusNotification,
  FirmwareStatusNotification, LogStatusNotification and SignChargePointCertificate (the
  station makes a new key pair and sends SignCertificate with its CSR);
- CertificateSigned: Accepted when the chain fits the open request and leads to a CSMS root,
  Rejected otherwise (the certificate in use stays);
- configuration keys kept by the core (`Settings.owned`): SecurityProfile (raised only, when
  the certificates it needs are there; the station reconnects with it and falls back if it
  does not connect), AuthorizationKey (write-only, never shown nor logged), CpoName (the O of
  the CSR), CertSigningWaitMinimum, CertSigningRepeatTimes, CertificateStoreMaxLength,
  AdditionalRootCertificateCheck, CertificateSignedMaxChainSize.

The adapter (chargepoint.csms.ocpp16.adapter) sends SecurityEventNotification from the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection

from chargepoint.core.certificates import (
    NAMES_16,
    TYPES_16,
    SigningParameters,
)
from chargepoint.core.diagnostics import LogUploads
from chargepoint.core.security import StationSecurity
from chargepoint.core.settings import SetResult, Settings
from chargepoint.core.station import Station
from chargepoint.csms.certificate_requests import delete_certificate, install_root
from chargepoint.csms.routing import after, on
from chargepoint.csms.secured_link import csr_sender
from chargepoint.csms.update_messages import log_trigger
from chargepoint.store import AsyncStore

log = logging.getLogger("chargepoint.ocpp")

SETTING_PREFIX: Final = "ocpp16.security."
RECONNECT_KEYS: Final = frozenset({"SecurityProfile", "AuthorizationKey"})
CPO_NAME_MAX: Final = 64
CHAIN_SIZE_MAX: Final = 10_000  # CertificateSigned.certificateChain maxLength
EXTENDED_TRIGGERS: Final = frozenset(
    {
        "BootNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
        "FirmwareStatusNotification",
        "LogStatusNotification",
        "SignChargePointCertificate",
    }
)


class _Adapter(Protocol):
    security: StationSecurity
    station: Station
    settings: Settings
    store: AsyncStore
    ws: ClientConnection | None
    logs: LogUploads | None
    _volatile: asyncio.Queue[tuple[str, dict[str, Any]]]
    _outbox_event: asyncio.Event

    def start_triggered(self, requested: str, connector_id: int | None) -> None: ...

    def _own(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]: ...

    async def send(self, action: str, payload: dict[str, Any]) -> dict[str, Any]: ...


# ---- configuration keys ---------------------------------------------------------------------


@dataclass
class _Key:
    """An owned configuration key: see chargepoint.core.settings.OwnedKey."""

    readonly: bool
    reader: Callable[[], str]
    changer: Callable[[str], Coroutine[Any, Any, tuple[SetResult, str]]] | None = None

    def read(self) -> str:
        return self.reader()

    async def change(self, value: str) -> tuple[SetResult, str]:
        if self.changer is None:
            return SetResult.REJECTED, "read-only"
        return await self.changer(value)


@dataclass
class SecurityKeys16:
    """The security configuration keys of one station and their stored values."""

    adapter: _Adapter
    values: dict[str, str] = field(default_factory=dict)

    async def load(self) -> None:
        stored = await self.adapter.store.settings(SETTING_PREFIX)
        self.values = {k[len(SETTING_PREFIX) :]: v for k, v in stored.items()}

    def register(self, settings: Settings) -> None:
        security = self.adapter.security
        sec = security.config.security
        settings.owned.update(
            {
                "SecurityProfile": _Key(
                    False, lambda: str(security.connection.profile()), self._security_profile
                ),
                "AuthorizationKey": _Key(False, lambda: "", self._authorization_key),
                "CpoName": _Key(False, self.cpo_name, self._cpo_name),
                "CertSigningWaitMinimum": _Key(
                    False,
                    lambda: self.values.get(
                        "CertSigningWaitMinimum", str(sec.cert_signing_wait_minimum)
                    ),
                    self._number("CertSigningWaitMinimum", 1),
                ),
                "CertSigningRepeatTimes": _Key(
                    False,
                    lambda: self.values.get(
                        "CertSigningRepeatTimes", str(sec.cert_signing_repeat_times)
                    ),
                    self._number("CertSigningRepeatTimes", 0),
                ),
                "CertificateStoreMaxLength": _Key(
                    True, lambda: str(security.certificates.max_roots)
                ),
                "CertificateSignedMaxChainSize": _Key(True, lambda: str(CHAIN_SIZE_MAX)),
                "AdditionalRootCertificateCheck": _Key(True, lambda: "false"),
            }
        )

    def cpo_name(self) -> str:
        return self.values.get("CpoName", self.adapter.security.config.station.vendor)

    def signing_parameters(self) -> SigningParameters:
        return self.adapter.security.signing_defaults(
            wait_minimum_s=float(self.values["CertSigningWaitMinimum"])
            if "CertSigningWaitMinimum" in self.values
            else None,
            repeat_times=int(self.values["CertSigningRepeatTimes"])
            if "CertSigningRepeatTimes" in self.values
            else None,
        )

    async def _store(self, key: str, value: str) -> None:
        await self.adapter.store.set_setting(SETTING_PREFIX + key, value)
        self.values[key] = value
        log.info("setting %s changed to %s", key, value)

    async def _security_profile(self, value: str) -> tuple[SetResult, str]:
        try:
            new = int(value)
        except ValueError:
            return SetResult.REJECTED, "SecurityProfile must be 0, 1, 2 or 3"
        if not 0 <= new <= 3:
            return SetResult.REJECTED, "SecurityProfile must be 0, 1, 2 or 3"
        connection = self.adapter.security.connection
        problem = await asyncio.to_thread(connection.profile_change_problem, new)
        if problem is not None:
            return SetResult.REJECTED, problem
        await connection.raise_profile(new)
        return SetResult.ACCEPTED, ""

    async def _authorization_key(self, value: str) -> tuple[SetResult, str]:
        problem = await self.adapter.security.connection.set_password(value)
        if problem is not None:
            return SetResult.REJECTED, f"AuthorizationKey {problem}"
        return SetResult.ACCEPTED, ""

    async def _cpo_name(self, value: str) -> tuple[SetResult, str]:
        if not value or len(value) > CPO_NAME_MAX:
            return SetResult.REJECTED, f"CpoName must be 1 to {CPO_NAME_MAX} characters"
        await self._store("CpoName", value)
        return SetResult.ACCEPTED, ""

    def _number(
        self, key: str, minimum: int
    ) -> Callable[[str], Coroutine[Any, Any, tuple[SetResult, str]]]:
        async def change(value: str) -> tuple[SetResult, str]:
            try:
                number = int(value)
            except ValueError:
                return SetResult.REJECTED, f"{key} must be an integer"
            if number < minimum:
                return SetResult.REJECTED, f"{key} must be at least {minimum}"
            await self._store(key, str(number))
            return SetResult.ACCEPTED, ""

        return change


def attach_security(adapter: _Adapter) -> SecurityKeys16:
    """Wire the core's security into a 1.6 adapter: configuration keys, CSR sending, the
    signing parameters, the outbox wake-up and tamper events."""
    security = adapter.security
    keys = SecurityKeys16(adapter)
    keys.register(adapter.settings)
    security.signing.send_csr = csr_sender(adapter.send)
    security.signing.organization = keys.cpo_name
    security.signing.parameters = keys.signing_parameters
    security.events.outbox_changed = adapter._outbox_event.set
    adapter.station.subscribe_status(security.on_status)
    return keys


# ---- CSMS -> station ------------------------------------------------------------------------


class SecurityHandlers16:
    """Mixin for the 1.6 StationChargePoint (`self.adapter` is its adapter)."""

    @property
    def _security_adapter(self) -> _Adapter:
        adapter: _Adapter = self.adapter  # type: ignore[attr-defined]
        return adapter

    @on(Action.install_certificate)
    async def on_install_certificate(
        self, certificate_type: str, certificate: str, **_: Any
    ) -> call_result.InstallCertificate:
        kind = TYPES_16[certificate_type]
        security = self._security_adapter.security
        outcome = await install_root(security, kind, certificate_type, certificate)
        if not outcome.accepted:
            log.warning(
                "InstallCertificate %s: %s (%s)", certificate_type, outcome.status, outcome.reason
            )
        return call_result.InstallCertificate(status=outcome.status.value)

    @on(Action.get_installed_certificate_ids)
    async def on_get_installed_certificate_ids(
        self, certificate_type: str, **_: Any
    ) -> call_result.GetInstalledCertificateIds:
        store = self._security_adapter.security.certificates
        found = await asyncio.to_thread(store.hash_data, [TYPES_16[certificate_type]])
        if not found:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(
            status="Accepted", certificate_hash_data=[data.wire() for _, data in found]
        )

    @on(Action.delete_certificate)
    async def on_delete_certificate(
        self, certificate_hash_data: dict[str, Any], **_: Any
    ) -> call_result.DeleteCertificate:
        outcome = await delete_certificate(self._security_adapter.security, certificate_hash_data)
        if outcome.reason and outcome.status.value != "Accepted":
            log.warning("DeleteCertificate: %s (%s)", outcome.status, outcome.reason)
        return call_result.DeleteCertificate(status=outcome.status.value)

    @on(Action.certificate_signed)
    async def on_certificate_signed(
        self, certificate_chain: str, **_: Any
    ) -> call_result.CertificateSigned:
        outcome = await self._security_adapter.security.signing.certificate_signed(
            certificate_chain
        )
        return call_result.CertificateSigned(status="Accepted" if outcome.accepted else "Rejected")

    @on(Action.extended_trigger_message)
    def on_extended_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.ExtendedTriggerMessage:
        if requested_message not in EXTENDED_TRIGGERS:
            return call_result.ExtendedTriggerMessage(status="NotImplemented")
        if (
            connector_id not in (None, 0)
            and connector_id not in self._security_adapter.station.connectors
        ):
            return call_result.ExtendedTriggerMessage(status="Rejected")
        return call_result.ExtendedTriggerMessage(status="Accepted")

    @after(Action.extended_trigger_message)
    def after_extended_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> None:
        adapter = self._security_adapter
        if requested_message not in EXTENDED_TRIGGERS:
            return
        if connector_id not in (None, 0) and connector_id not in adapter.station.connectors:
            return
        if requested_message == "SignChargePointCertificate":
            adapter.security.signing.request("ExtendedTriggerMessage from the CSMS")
        elif requested_message == "LogStatusNotification":
            action, payload = log_trigger(adapter.logs, "1.6", diagnostics=False)
            # ocpp.v16.call.LogStatusNotification requires requestId, unlike the schema: a
            # None is left out of the frame by the library
            adapter._volatile.put_nowait((action, {"requestId": None, **payload}))
            adapter._outbox_event.set()
        else:
            adapter.start_triggered(requested_message, connector_id or None)

    @after(Action.change_configuration)
    def after_change_configuration_security(self, key: str, value: str, **_: Any) -> None:
        adapter = self._security_adapter
        if key in RECONNECT_KEYS and adapter.security.connection.take_reconnect():
            adapter._own(_reconnect(adapter, f"{key} changed by the CSMS"), "security reconnect")


async def _reconnect(adapter: _Adapter, why: str) -> None:
    """The new setting applies from the next connection: close this one (the answer to the
    change went out before this runs)."""
    log.warning("reconnecting to the CSMS: %s", why)
    ws = adapter.ws
    if ws is not None:
        await ws.close()


__all__ = ["NAMES_16", "SecurityHandlers16", "SecurityKeys16", "attach_security"]
