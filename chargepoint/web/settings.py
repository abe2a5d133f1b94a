"""Where the web page listens and who may use it, checked before anything starts.

- On a loopback address the read-only pages are open to anyone on the controller; operator
  actions need the password (`web.operator_password_file`).
- On any other address every page but the login and the verifier needs the password: without
  a password file the process refuses to start. It serves HTTPS with `web.tls_cert` and
  `web.tls_key`, and refuses plain HTTP there unless `web.plain_http` says so explicitly.
- The Host header of every request must name the station (loopback names, the listen address,
  `web.allowed_hosts`): a foreign name is a DNS rebinding attempt and gets 421.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chargepoint.config.web import WebConfig, is_loopback, parse_listen

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


class WebSettingsError(ValueError):
    """The web page must not start like this; the message says what to change."""


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    password_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    allowed_hosts: tuple[str, ...] = ()
    plain_http: bool = False
    poll_interval: float = 0.5  # seconds between two status requests to the daemon
    page_size: int = 50  # sessions per page of the transaction log

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def read_only_pages_open(self) -> bool:
        """Status, log, keys and downloads without a login (loopback only)."""
        return self.loopback

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    def host_names(self) -> frozenset[str]:
        """The names a request's Host header may carry (lower case, without the port)."""
        names = {*LOOPBACK_NAMES, *(h.lower() for h in self.allowed_hosts)}
        if self.host not in WILDCARDS:
            names.add(self.host.lower())
        return frozenset(names)

    def check(self) -> None:
        """Raise WebSettingsError when this must not start."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise WebSettingsError("web.tls_cert and web.tls_key go together: give both")
        if self.loopback:
            return
        if self.password_file is None:
            raise WebSettingsError(
                f"listening on {self.host} (not loopback) needs web.operator_password_file: "
                "every page but the verifier then asks for the operator password"
            )
        if not self.tls and not self.plain_http:
            raise WebSettingsError(
                f"listening on {self.host} (not loopback) needs web.tls_cert and web.tls_key, "
                "or web.plain_http: true to send the password unencrypted on purpose"
            )


def from_config(web: WebConfig, listen: str | None = None) -> WebSettings:
    """The settings of the `web:` section, `listen` given on the command line winning."""
    try:
        host, port = parse_listen(listen or web.listen)
    except ValueError as exc:
        raise WebSettingsError(str(exc)) from None
    settings = WebSettings(
        host=host,
        port=port,
        password_file=web.operator_password_file,
        tls_cert=web.tls_cert,
        tls_key=web.tls_key,
        allowed_hosts=tuple(web.allowed_hosts),
        plain_http=web.plain_http,
    )
    settings.check()
    return settings


def host_of(header: str) -> str:
    """The name in a Host header, lower case, without the port (`[::1]:8080` -> `::1`)."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value
