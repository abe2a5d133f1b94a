"""The `csms:` section: the connection to the CSMS (OCPP-J over a websocket) and its security
profile (0-3), checked together with the URL, the password and the TLS files."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from chargepoint.config.base import ConfigModel
from chargepoint.config.problems import ConfigError, Loc, raise_issues
from chargepoint.config.secrets import SecretRef

__all__ = ["CsmsConfig"]

_PASSWORD_LENGTH = (16, 40)  # OCPP security whitepaper, basic authentication password
MIB = 2**20


class CsmsConfig(ConfigModel):
    """The connection to the CSMS (OCPP-J over a websocket)."""

    url: str
    ocpp_version: Literal["1.6", "2.0.1"] = "1.6"
    security_profile: Literal[0, 1, 2, 3] = 0
    password: SecretRef | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    call_timeout: StrictFloat = Field(default=30.0, gt=0)
    reconnect_min_delay: StrictFloat = Field(default=1.0, gt=0)
    reconnect_max_delay: StrictFloat = Field(default=60.0, gt=0)
    signed_value_format: Literal["oca", "raw-ocmf", "signed-meter-value"] = "oca"
    max_frame_bytes: StrictInt = Field(
        default=MIB,
        ge=64 * 1024,
        le=64 * MIB,
        description=(
            "the largest websocket frame accepted from the CSMS, in bytes (64 KiB to 64 MiB; "
            "default 1 MiB). A larger frame closes the connection (code 1009, logged) and the "
            "station reconnects; raise it only for a CSMS that sends very long local lists "
            "or certificate chains in one message."
        ),
    )

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        # messages never repeat the URL: it could hold credentials
        parts = urlsplit(value)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError("must start with ws:// or wss://")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not hold credentials; use csms.password")
        if not parts.hostname:
            raise ValueError("has no host")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("has a bad port number") from None
        if parts.query or parts.fragment or value.endswith(("?", "#")):
            raise ValueError(
                "must not have a query or fragment: the station id is appended to its path"
            )
        return value

    @field_validator("ocpp_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # `ocpp_version: 1.6` without quotes is a YAML float
        return str(value) if isinstance(value, float) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _security_profile(self) -> Self:
        profile = self.security_profile
        tls = urlsplit(self.url).scheme == "wss"
        issues: list[tuple[Loc, str]] = []
        if profile in (1, 2) and self.password is None:
            issues.append(
                (("password",), f"is required by security profile {profile} (basic authentication)")
            )
        if profile in (2, 3) and not tls:
            issues.append((("url",), f"security profile {profile} needs a wss:// URL (TLS)"))
        if profile in (0, 1) and tls:
            issues.append(
                (
                    ("url",),
                    f"security profile {profile} runs without TLS and needs a ws:// URL; "
                    "wss:// is security profile 2 (password) or 3 (client certificate)",
                )
            )
        if profile == 3:
            for name in ("client_cert", "client_key"):
                if getattr(self, name) is None:
                    issues.append(((name,), "is required by security profile 3"))
        if self.reconnect_max_delay < self.reconnect_min_delay:
            issues.append((("reconnect_max_delay",), "must not be below reconnect_min_delay"))
        raise_issues(issues)
        return self

    def section_warnings(self) -> list[tuple[Loc, str]]:
        profile = self.security_profile
        out: list[tuple[Loc, str]] = []
        if profile == 0 and not _is_loopback(urlsplit(self.url).hostname or ""):
            out.append(
                (
                    ("security_profile",),
                    "0 means no authentication and no encryption; use it on a trusted network only",
                )
            )
        if self.password is not None:
            if profile in (0, 3):
                out.append((("password",), f"is not used with security profile {profile}"))
            else:
                out += _password_warnings(self.password)
        if self.ca_file is not None and profile in (0, 1):
            out.append((("ca_file",), f"is not used with security profile {profile} (no TLS)"))
        for name in ("client_cert", "client_key"):
            if getattr(self, name) is not None and profile != 3:
                out.append(((name,), "is used with security profile 3 only"))
        for name in ("ca_file", "client_cert", "client_key"):
            path: Path | None = getattr(self, name)
            if path is not None and not path.is_file():
                out.append(((name,), f"{path} does not exist (yet); it is read when connecting"))
        return out


def _password_warnings(secret: SecretRef) -> list[tuple[Loc, str]]:
    loc: Loc = ("password",)
    try:
        value = secret.resolve()
    except ConfigError as exc:
        reason = exc.problems[0].message
        return [(loc, f"{reason}; it is read again when connecting")]
    low, high = _PASSWORD_LENGTH
    if not low <= len(value) <= high:
        return [
            (
                loc,
                f"has {len(value)} characters; the OCPP security whitepaper asks for "
                f"{low} to {high}",
            )
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
