"""The websocket to the CSMS: URL, OCPP security profiles 0-3, backoff with jitter.

Profile 0: ws, no authentication (test benches only). 1: ws + HTTP Basic auth.
2: wss (TLS 1.2+, server certificate checked) + Basic auth. 3: wss + TLS client certificate.
Basic auth user is the station identity, the password comes from the config's secret.

With TLS the server's certificate chain is checked against the configured CSMS roots only
(csms.ca_file and the roots installed through OCPP; never the system's CAs), and its host
name against the URL's; TLS below 1.2 is refused. A refused server is one log line
(:class:`CsmsTlsRefused`, no traceback); the connection profiles record the security event.
"""

from __future__ import annotations

import base64
import logging
import random
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from chargepoint.config import CsmsConfig
from chargepoint.core.certificates import TlsMaterial
from chargepoint.core.connection_profiles import is_tls_version_refusal

log = logging.getLogger("chargepoint.csms")

CREDENTIALS_REFUSED: Final = (401, 403)  # HTTP statuses of a handshake the CSMS refused


class CsmsLinkError(Exception):
    """The CSMS could not be reached or refused the connection; retry later."""


class CsmsTlsRefused(CsmsLinkError):
    """The station refused the CSMS's TLS server: `kind` "certificate" (not signed by a
    configured root, expired, or not for this host name) or "version" (no TLS 1.2 or newer).
    Retried like any failure, but it needs the operator: the certificate or the server."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class CsmsCredentialsRefused(CsmsLinkError):
    """The CSMS answered the handshake with HTTP 401 or 403: it did not take the station's
    credentials (its Basic-auth password, or its client certificate). A new password that
    gets this is given up after its attempts; anything else needs the operator."""


class NoCsmsRoot(CsmsLinkError):
    """TLS without any CSMS root to check the server against: nothing is trusted."""


def station_url(base: str, station_id: str) -> str:
    """OCPP-J: the station identity is the last path segment of the URL."""
    return base.rstrip("/") + "/" + quote(station_id, safe="*-_=:+|@.")


def tls_context(cfg: CsmsConfig, material: TlsMaterial | None = None) -> ssl.SSLContext:
    """`material`: the installed CSMS roots (trusted besides csms.ca_file) and the station
    certificate from the certificate store, used instead of csms.client_cert when present."""
    material = material or TlsMaterial()
    if cfg.ca_file is None and not material.ca_pem:
        # create_default_context would fall back to the system's CAs: any public server
        raise NoCsmsRoot(
            f"security profile {cfg.security_profile} needs a CSMS root certificate to check "
            "the server against: set csms.ca_file or install one (InstallCertificate "
            "CSMSRootCertificate); not connecting"
        )
    ctx = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH,
        cafile=str(cfg.ca_file) if cfg.ca_file else None,
        cadata=material.ca_pem,
    )
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cfg.security_profile == 3 and material.credentials_file is not None:
        ctx.load_cert_chain(str(material.credentials_file))
    elif cfg.security_profile == 3:
        assert cfg.client_cert is not None and cfg.client_key is not None
        ctx.load_cert_chain(str(cfg.client_cert), str(cfg.client_key))
    return ctx


@dataclass
class Backoff:
    """Exponential backoff with full jitter between min and max delay."""

    minimum: float
    maximum: float
    failures: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.minimum * (2 ** min(self.failures, 16)))
        self.failures += 1
        return random.uniform(self.minimum, max(self.minimum, ceiling))

    def reset(self) -> None:
        self.failures = 0


async def open_link(
    cfg: CsmsConfig,
    station_id: str,
    subprotocol: str,
    ping_interval: float | None,
    material: TlsMaterial | None = None,
) -> ClientConnection:
    """Open the websocket and check the negotiated subprotocol."""
    url = station_url(cfg.url, station_id)
    headers: dict[str, str] = {}
    if cfg.security_profile in (1, 2):
        assert cfg.password is not None
        token = base64.b64encode(f"{station_id}:{cfg.password.resolve()}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        ssl_ctx = tls_context(cfg, material) if cfg.security_profile in (2, 3) else None
        ws = await connect(
            url,
            subprotocols=[subprotocol],  # type: ignore[list-item]
            additional_headers=headers,
            ssl=ssl_ctx,
            ping_interval=ping_interval,
            ping_timeout=ping_interval,
            open_timeout=cfg.call_timeout,
            proxy=None,
            max_size=cfg.max_frame_bytes,
        )
    except CsmsLinkError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise CsmsTlsRefused(
            f"CSMS TLS certificate not trusted: {_verify_reason(exc)} (host {_host(url)})",
            "certificate",
        ) from exc
    except ssl.SSLError as exc:
        if is_tls_version_refusal(exc):
            raise CsmsTlsRefused(
                f"CSMS TLS version refused: the server offers nothing from TLS 1.2 on "
                f"({exc.reason}) (host {_host(url)})",
                "version",
            ) from exc
        raise CsmsLinkError(f"{url}: TLS: {exc.reason or exc}") from exc
    except InvalidStatus as exc:
        code = exc.response.status_code
        if code in CREDENTIALS_REFUSED:
            raise CsmsCredentialsRefused(
                f"{url}: the CSMS refused the station's credentials (HTTP {code})"
            ) from exc
        raise CsmsLinkError(f"{url}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise CsmsLinkError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if ws.subprotocol != subprotocol:
        await ws.close()
        raise CsmsLinkError(f"{url}: CSMS did not accept subprotocol {subprotocol}")
    log.info("connected to %s (%s, security profile %d)", url, subprotocol, cfg.security_profile)
    return ws


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'wss' else 80)}"


def _verify_reason(exc: ssl.SSLCertVerificationError) -> str:
    """OpenSSL's reason in words: "self-signed certificate", "unable to get local issuer
    certificate", "Hostname mismatch, certificate is not valid for 'x'.", "certificate has
    expired", ..."""
    reason = (exc.verify_message or exc.reason or str(exc)).strip().rstrip(".")
    return reason[:1].lower() + reason[1:] if reason[:1].isupper() and " " in reason else reason
