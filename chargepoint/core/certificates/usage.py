"""What a certificate is installed for, and the names each OCPP version gives it.

The core uses the OCPP 2.0.1 names; OCPP 1.6 (security whitepaper, edition 3) calls the CSMS
root a CentralSystemRootCertificate and knows no V2G or MO roots.
"""

from __future__ import annotations

import enum
from typing import Final


class CertificateType(enum.StrEnum):
    """A root (trust anchor) kind the station keeps, by its OCPP 2.0.1 name."""

    CSMS_ROOT = "CSMSRootCertificate"
    MANUFACTURER_ROOT = "ManufacturerRootCertificate"
    V2G_ROOT = "V2GRootCertificate"
    MO_ROOT = "MORootCertificate"

    @property
    def directory(self) -> str:
        """The directory of the certificate store that holds this kind."""
        return _DIRECTORIES[self]


_DIRECTORIES: Final[dict[CertificateType, str]] = {
    CertificateType.CSMS_ROOT: "csms-root",
    CertificateType.MANUFACTURER_ROOT: "manufacturer-root",
    CertificateType.V2G_ROOT: "v2g-root",
    CertificateType.MO_ROOT: "mo-root",
}

# OCPP 1.6 CertificateUseEnumType -> the core's type
TYPES_16: Final[dict[str, CertificateType]] = {
    "CentralSystemRootCertificate": CertificateType.CSMS_ROOT,
    "ManufacturerRootCertificate": CertificateType.MANUFACTURER_ROOT,
}
NAMES_16: Final[dict[CertificateType, str]] = {v: k for k, v in TYPES_16.items()}

# OCPP 2.0.1 InstallCertificateUseEnumType / GetCertificateIdUseEnumType (roots)
TYPES_201: Final[dict[str, CertificateType]] = {t.value: t for t in CertificateType}
