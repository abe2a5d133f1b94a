"""OCPP 2.0.1 security (functional block A, M: certificate management) over the version-free
core (chargepoint.core.security):

- InstallCertificate (CSMSRootCertificate, ManufacturerRootCertificate, V2GRootCertificate,
  MORootCertificate): Accepted, Rejected (not PEM, not X.509, not a CA, expired, store full)
  or Failed, with statusInfo saying why;
- GetInstalledCertificateIds: certificateHashDataChain of the installed roots of the types
  asked for (all when none), NotFound when there are none;
- DeleteCertificate: Accepted, NotFound, or Failed for the station certificate (M04.FR.06) and
  for the last CSMS root while the TLS connection depends on it;
- CertificateSigned (ChargingStationCertificate): Accepted when the chain fits the open
  request and leads to a CSMS root, Rejected otherwise (the certificate in use stays);
  V2GCertificate: Rejected (no ISO 15118 here);
- SetNetworkProfile: a connection in a configuration slot (OCPP20, JSON; wss:// for security
  profiles 2 and 3; not below the profile in use; not the slot in use);
  OCPPCommCtrlr.NetworkConfigurationPriority then orders the slots (its first slot must have
  what its security profile needs, A05.FR.02) and applies from the next connection (Reset);
  a slot that does not connect is left for the next one (A05, B10);
- TriggerMessage SignChargingStationCertificate (in the adapter's handler): a new key pair and
  SignCertificate with its CSR (O = SecurityCtrlr.OrganizationName, CN = the identity), sent
  again after CertSigningWaitMinimum (doubling) up to CertSigningRepeatTimes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from chargepoint.core.certificates import (
    TYPES_201,
    CertificateType,
    SigningParameters,
)
from chargepoint.core.connection_profiles import ConnectionProfiles, NetworkProfile
from chargepoint.core.csms_password import PasswordFile
from chargepoint.core.security import StationSecurity
from chargepoint.core.station import Station
from chargepoint.csms.certificate_requests import delete_certificate, install_root
from chargepoint.csms.ocpp201.device_model import DeviceModel
from chargepoint.csms.ocpp201.device_values import R_INVALID_VALUE, R_MISSING_INFO, Rejection
from chargepoint.csms.routing import on
from chargepoint.csms.secured_link import csr_sender

log = logging.getLogger("chargepoint.csms.ocpp201")

ADDITIONAL_INFO_MAX: Final = 512
REASON_CODE_MAX: Final = 20
SUPPORTED_OCPP_VERSION: Final = "OCPP20"  # OCPPVersionEnumType: 2.0 and 2.0.1
SUPPORTED_TRANSPORT: Final = "JSON"


class _Adapter(Protocol):
    security: StationSecurity
    station: Station
    device_model: DeviceModel

    async def send(self, action: str, payload: dict[str, Any]) -> dict[str, Any]: ...


def status_info(reason_code: str, info: str) -> dict[str, str]:
    return {
        "reason_code": reason_code[:REASON_CODE_MAX],
        "additional_info": info[:ADDITIONAL_INFO_MAX],
    }


def priority_check(security: StationSecurity) -> Callable[[str], Rejection | None]:
    """NetworkConfigurationPriority's rule over the connection profiles (A05.FR.02)."""

    def check(value: str) -> Rejection | None:
        try:
            slots = [int(item) for item in value.split(",")]
        except ValueError:
            return Rejection(R_INVALID_VALUE, "must be configuration slot numbers")
        problem = security.connection.priority_problem(slots)
        if problem is None:
            return None
        code = R_MISSING_INFO if "needs" in problem else R_INVALID_VALUE
        return Rejection(code, problem)

    return check


def attach_security(adapter: _Adapter) -> None:
    """Wire the core's security into a 2.0.1 adapter: the base connection (the device model's
    SecurityProfile and BasicAuthPassword), the priority of the network profiles, CSR sending
    with OrganizationName, CertSigningWaitMinimum / CertSigningRepeatTimes, tamper events."""
    security = adapter.security
    dm = adapter.device_model
    security.connection.base = dm.csms_config
    security.connection.on_password_reverted = dm.password_reverted
    security.connection.priority = lambda: [
        int(slot) for slot in dm.members("OCPPCommCtrlr", "NetworkConfigurationPriority")
    ]
    if dm.network_priority_check is None:
        dm.network_priority_check = priority_check(security)
    security.signing.send_csr = csr_sender(
        adapter.send, {"certificateType": "ChargingStationCertificate"}
    )
    security.signing.organization = lambda: dm.get("SecurityCtrlr", "OrganizationName")

    def parameters() -> SigningParameters:
        return security.signing_defaults(
            wait_minimum_s=float(dm.number("SecurityCtrlr", "CertSigningWaitMinimum")),
            repeat_times=dm.number("SecurityCtrlr", "CertSigningRepeatTimes"),
        )

    security.signing.parameters = parameters
    adapter.station.subscribe_status(security.on_status)


# SecurityCtrlr.BasicAuthPassword is kept in the 0600 password file, not in the store
PASSWORD_STORE_KEY: Final = "ocpp201.SecurityCtrlr.BasicAuthPassword"
Persist = Callable[[str, str], Awaitable[None]]


def password_apart(connection: ConnectionProfiles, persist: Persist) -> Persist:
    """The device model's `persist` with BasicAuthPassword written to the password file
    (mode 0600) and nothing of it to the store. A new password is a trial: the one before it
    comes back when the new one does not connect (ConnectionProfiles.try_password)."""

    async def persist_apart(key: str, value: str) -> None:
        if key != PASSWORD_STORE_KEY:
            await persist(key, value)
        elif value:
            await connection.try_password(value)
        else:
            await asyncio.to_thread(connection.password.store, value)

    return persist_apart


async def stored_with_password(
    stored: Mapping[str, str], password: PasswordFile, persist: Persist
) -> dict[str, str]:
    """The device model's stored values with BasicAuthPassword from the password file; a
    password an earlier version kept in the store moves to the file."""
    values = dict(stored)
    legacy = values.pop(PASSWORD_STORE_KEY, "")
    if legacy:
        await asyncio.to_thread(password.store, legacy)
        await persist(PASSWORD_STORE_KEY, "")
    current = await asyncio.to_thread(password.read)
    if current:
        values[PASSWORD_STORE_KEY] = current
    return values


def _types(names: list[str] | None) -> list[CertificateType] | None:
    if names is None:
        return None
    return [TYPES_201[name] for name in names if name in TYPES_201]


class SecurityHandlers201:
    """Mixin for the 2.0.1 StationChargePoint (`self.adapter` is its adapter)."""

    @property
    def _security_adapter(self) -> _Adapter:
        adapter: _Adapter = self.adapter  # type: ignore[attr-defined]
        return adapter

    @on(Action.install_certificate)
    async def on_install_certificate(
        self, certificate_type: str, certificate: str, **_: Any
    ) -> call_result.InstallCertificate:
        kind = TYPES_201[certificate_type]
        security = self._security_adapter.security
        outcome = await install_root(security, kind, certificate_type, certificate)
        if outcome.accepted:
            return call_result.InstallCertificate(status="Accepted")
        log.warning(
            "InstallCertificate %s: %s (%s)", certificate_type, outcome.status, outcome.reason
        )
        code = "InvalidCertificate" if outcome.status.value == "Rejected" else "StorageFailed"
        return call_result.InstallCertificate(
            status=outcome.status.value, status_info=status_info(code, outcome.reason)
        )

    @on(Action.get_installed_certificate_ids)
    async def on_get_installed_certificate_ids(
        self, certificate_type: list[str] | None = None, **_: Any
    ) -> call_result.GetInstalledCertificateIds:
        store = self._security_adapter.security.certificates
        found = await asyncio.to_thread(store.hash_data, _types(certificate_type))
        if not found:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(
            status="Accepted",
            certificate_hash_data_chain=[
                {"certificate_type": kind.value, "certificate_hash_data": _snake(data.wire())}
                for kind, data in found
            ],
        )

    @on(Action.delete_certificate)
    async def on_delete_certificate(
        self, certificate_hash_data: dict[str, Any], **_: Any
    ) -> call_result.DeleteCertificate:
        outcome = await delete_certificate(self._security_adapter.security, certificate_hash_data)
        if outcome.status.value == "Failed":
            log.warning("DeleteCertificate: Failed (%s)", outcome.reason)
            return call_result.DeleteCertificate(
                status="Failed", status_info=status_info("NotAllowed", outcome.reason)
            )
        return call_result.DeleteCertificate(status=outcome.status.value)

    @on(Action.certificate_signed)
    async def on_certificate_signed(
        self, certificate_chain: str, certificate_type: str | None = None, **_: Any
    ) -> call_result.CertificateSigned:
        if certificate_type not in (None, "ChargingStationCertificate"):
            return call_result.CertificateSigned(
                status="Rejected",
                status_info=status_info("NotSupported", f"{certificate_type} is not used here"),
            )
        signing = self._security_adapter.security.signing
        outcome = await signing.certificate_signed(certificate_chain)
        if outcome.accepted:
            return call_result.CertificateSigned(status="Accepted")
        return call_result.CertificateSigned(
            status="Rejected", status_info=status_info("InvalidCertificate", outcome.reason)
        )

    @on(Action.set_network_profile)
    async def on_set_network_profile(
        self, configuration_slot: int, connection_data: dict[str, Any], **_: Any
    ) -> call_result.SetNetworkProfile:
        connection = self._security_adapter.security.connection
        version = connection_data.get("ocpp_version")
        transport = connection_data.get("ocpp_transport")
        if version != SUPPORTED_OCPP_VERSION or transport != SUPPORTED_TRANSPORT:
            return call_result.SetNetworkProfile(
                status="Rejected",
                status_info=status_info(
                    "UnsupportedParam", f"only {SUPPORTED_OCPP_VERSION} over JSON"
                ),
            )
        profile = NetworkProfile(
            str(connection_data.get("ocpp_csms_url", "")),
            int(connection_data.get("security_profile", -1)),
            int(connection_data.get("message_timeout") or 0) or None,
        )
        problem = connection.network_profile_problem(configuration_slot, profile)
        if problem is None and not 0 <= profile.security_profile <= 3:
            problem = "security profile must be 0 to 3"
        if problem is not None:
            log.warning("SetNetworkProfile slot %d Rejected: %s", configuration_slot, problem)
            return call_result.SetNetworkProfile(
                status="Rejected", status_info=status_info("InvalidValue", problem)
            )
        try:
            await connection.set_network_profile(configuration_slot, profile)
        except Exception as exc:
            log.error("SetNetworkProfile slot %d not stored: %s", configuration_slot, exc)
            return call_result.SetNetworkProfile(status="Failed")
        return call_result.SetNetworkProfile(status="Accepted")


def _snake(wire: dict[str, str]) -> dict[str, str]:
    """camelCase keys as the library's call_result dataclasses want them (it converts back)."""
    out = {}
    for key, value in wire.items():
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
        out[snake] = value
    return out
