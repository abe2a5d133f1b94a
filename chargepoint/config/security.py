"""The `security:` section: the station's own key pairs and certificates (OCPP security
extension) and how a change of the CSMS connection is tried."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt

from chargepoint.config.base import ConfigModel

__all__ = ["SecurityConfig"]


class SecurityConfig(ConfigModel):
    """Certificates the CSMS installs and signs, and the security profile upgrade."""

    key_type: Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072"] = Field(
        default="ec-p256",
        description="the key pair the station makes for its certificate signing request "
        "(ECDSA P-256 unless the CSMS's CA wants RSA)",
    )
    renew_before_days: StrictInt = Field(
        default=30,
        ge=1,
        description="days before the station certificate expires when the station asks the "
        "CSMS for a new one by itself",
    )
    cert_signing_wait_minimum: StrictInt = Field(
        default=60,
        ge=1,
        description="seconds to wait for the signed certificate before sending the request "
        "again, doubled each time (the default of CertSigningWaitMinimum)",
    )
    cert_signing_repeat_times: StrictInt = Field(
        default=3,
        ge=0,
        description="how often a request without an answer is sent again (the default of "
        "CertSigningRepeatTimes)",
    )
    max_root_certificates: StrictInt = Field(
        default=20,
        ge=1,
        le=1000,
        description="how many root certificates the store keeps at most "
        "(CertificateStoreMaxLength)",
    )
    connection_attempts: StrictInt = Field(
        default=3,
        ge=1,
        description="failed connection attempts after which a new security profile, password "
        "or network profile is given up and the previous connection is used again",
    )
