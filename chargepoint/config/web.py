"""The `web:` section: the operator's web page (`chargepoint web`, a process of its own beside
the daemon): where it listens, the operator password, TLS, the host names it answers to, and
where the driver's verifier page is published."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, StrictBool, field_validator, model_validator

from chargepoint.config.base import ConfigModel

__all__ = ["DEFAULT_WEB_LISTEN", "WebConfig", "is_loopback", "parse_listen"]

DEFAULT_WEB_LISTEN = "127.0.0.1:8080"


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every address) into (host, port); ValueError
    with a one-line reason."""
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"listen address {text!r} is not [IPv6]:PORT")
        port_text = rest[1:]
        if host == "":
            host = "::"
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ValueError(f"listen address {text!r} is not HOST:PORT")
        if ":" in host:
            raise ValueError(f"listen address {text!r}: put an IPv6 address in brackets")
        if host == "":
            host = "0.0.0.0"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"listen address {text!r} has no port 1..65535")
    return host, int(port_text)


class WebConfig(ConfigModel):
    """The operator's web page (`chargepoint web --config FILE`): live status, the transaction
    log with each session's verification, downloads, the meter keys, and the driver's
    verifier page at /verify. It reads the store read-only and reaches the daemon only
    through the control interface."""

    listen: str = Field(
        default=DEFAULT_WEB_LISTEN,
        description="`HOST:PORT` (`[IPv6]:PORT`, `0.0.0.0:PORT` for every address) the page "
        "is served on. On loopback the read-only pages need no login; on any other address "
        "every page but /verify needs the operator password, and HTTPS (`tls_cert`, `tls_key`)",
    )
    operator_password_file: Path | None = Field(
        default=None,
        description="file whose first line is the operator password (plain text, mode 0600). "
        "Read once at start and kept only as a salted scrypt hash. Needed for the operator "
        "actions (stop a session, take a connector out of service, unlock) and for any "
        "non-loopback `listen`",
    )
    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain) to serve HTTPS with; with `tls_key`",
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of `tls_cert`")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names (or addresses) the page answers to besides loopback and the "
        "`listen` address, e.g. `[station-17.local, 192.168.1.20]`; a request for any other "
        "name is refused (no DNS rebinding)",
    )
    plain_http: StrictBool = Field(
        default=False,
        description="allow a non-loopback `listen` without TLS: the password then crosses the "
        "network unencrypted, and browsers check signatures on /verify only over HTTPS",
    )
    verifier_url: str | None = Field(
        default=None,
        description="the https:// address where the operator publishes the driver's verifier "
        "page (`chargepoint verifier-page -o verify.html`); `meter label --config` then puts "
        "`URL#key=<public key>` in the label's QR code, which opens the page with the key "
        "filled in",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or (any(c in name for c in "/ :@") and not _is_ipv6(name)):
                raise ValueError(f"{name!r} is not a host name or address (no port, no path)")
        return value

    @field_validator("verifier_url")
    @classmethod
    def _verifier_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
            raise ValueError("must be an https:// address without a #fragment")
        return value

    @model_validator(mode="after")
    def _exposure(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both")
        host, _ = parse_listen(self.listen)
        if is_loopback(host):
            return self
        if self.operator_password_file is None:
            raise ValueError(
                f"listen {self.listen} is not loopback: operator_password_file is needed "
                "(every page but /verify then asks for the password)"
            )
        if self.tls_cert is None and not self.plain_http:
            raise ValueError(
                f"listen {self.listen} is not loopback: give tls_cert and tls_key, or set "
                "plain_http: true to send the password unencrypted on purpose"
            )
        return self

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]


def _is_ipv6(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).version == 6
    except ValueError:
        return False
