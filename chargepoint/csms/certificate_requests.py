"""InstallCertificate and DeleteCertificate over the core's certificate store as both OCPP
versions do them (the 1.6 security extension and 2.0.1 block M); each adapter spells the
answer in its version's call_result."""

from __future__ import annotations

import asyncio
from typing import Any

from chargepoint.core.certificates import (
    CertificateHashData,
    CertificateType,
    DeleteOutcome,
    DeleteStatus,
    InstallOutcome,
    UnknownHashAlgorithm,
)
from chargepoint.core.security import StationSecurity
from chargepoint.core.security_events import SecurityEventType


async def install_root(
    security: StationSecurity, kind: CertificateType, type_name: str, pem: str
) -> InstallOutcome:
    """Install a root certificate; an accepted one is recorded as a security event."""
    outcome = await asyncio.to_thread(security.certificates.install_root, kind, pem)
    if outcome.accepted:
        await security.events.record(
            SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS, f"{type_name} installed"
        )
    return outcome


async def delete_certificate(
    security: StationSecurity, certificate_hash_data: dict[str, Any]
) -> DeleteOutcome:
    """Delete the root the hash data name (NotFound for hash data that cannot name one); the
    last CSMS root stays while the TLS connection depends on it."""
    try:
        wanted = CertificateHashData.from_wire(certificate_hash_data)
    except (UnknownHashAlgorithm, KeyError):
        return DeleteOutcome(DeleteStatus.NOT_FOUND)
    keep = await asyncio.to_thread(security.connection.uses_last_csms_root)
    return await asyncio.to_thread(security.certificates.delete, wanted, keep_last_csms_root=keep)
