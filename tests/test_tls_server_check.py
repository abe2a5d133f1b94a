"""Security profiles 2 and 3 check the CSMS's TLS server, against real TLS servers on loopback:
a self-signed server certificate, one from another CA, one for another host name and a server
that offers only TLS 1.1 are refused, each with one log line saying why (no traceback) and a
security event that reaches the CSMS once a trusted connection is there; without a configured
CSMS root nothing is trusted (never the system's CAs)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import socket
import ssl
import threading
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargepoint.config import CsmsConfig, SecretRef
from chargepoint.csms.link import tls_context
from chargepoint.testcsms import TestCsms
from tests.station_harness import STATION_ID, InProcessStation, station_yaml, wait_until

PASSWORD = "0123456789abcdef-tls-check"
NOT_TRUSTED = "CSMS TLS certificate not trusted"


@dataclass
class Issued:
    cert: Path
    key: Path


class Authority:
    """A CA that writes its certificate and the server certificates it issues as PEM files."""

    def __init__(self, directory: Path, cn: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        self.cert = self._build(self.name, self.key.public_key(), ca=True, hosts=[])
        self.pem = directory / "ca.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _build(
        self, subject: x509.Name, public_key: Any, *, ca: bool, hosts: list[str]
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def server(self, name: str, hosts: list[str]) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        cert = self._build(subject, key.public_key(), ca=False, hosts=hosts)
        issued = Issued(self.directory / f"{name}.pem", self.directory / f"{name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return issued


def self_signed(directory: Path, host: str) -> Issued:
    """A server certificate for `host` that signs itself."""
    own = Authority(directory, host)
    key_pem = own.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(own.name)
        .issuer_name(own.name)
        .public_key(own.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(own.key, hashes.SHA256())
    )
    issued = Issued(directory / "self-signed.pem", directory / "self-signed.key")
    issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issued.key.write_bytes(key_pem)
    return issued


def server_context(issued: Issued) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(issued.cert), str(issued.key))
    return ctx


@dataclass
class Rig:
    tmp: Path
    ca: Authority
    good: Issued
    csms: TestCsms | None = None
    station: InProcessStation | None = None

    async def run(
        self, ctx: ssl.SSLContext, version: str = "1.6", csms: dict[str, Any] | None = None
    ) -> int:
        self.csms = TestCsms(ssl_context=ctx, basic_auth={STATION_ID: PASSWORD})
        port = await self.csms.start(host="127.0.0.1")
        settings = {
            "security_profile": 2,
            "password": PASSWORD,
            "ca_file": str(self.ca.pem),
            "ocpp_version": version,
            **(csms or {}),
        }
        cfg = station_yaml(
            self.tmp / "station.yaml",
            f"wss://localhost:{port}/ocpp",
            self.tmp / "state",
            csms={k: v for k, v in settings.items() if v is not None},
        )
        self.station = InProcessStation(cfg)
        await self.station.start()
        return port

    async def logged_events(self) -> list[tuple[str, str]]:
        assert self.station is not None and self.station.daemon is not None
        security = self.station.daemon.security
        assert security is not None
        return [(e.event_type, e.tech_info or "") for e in await security.events.entries_between()]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ca = Authority(tmp_path / "ca", "test CSMS root")
    r = Rig(tmp_path, ca, ca.server("good", ["localhost", "127.0.0.1"]))
    yield r
    if r.station is not None:
        await r.station.stop()
    if r.csms is not None:
        await r.csms.stop()


def refusals(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    """The connection loop's lines about a refused attempt (not the security log's)."""
    return [
        r
        for r in caplog.records
        if text in r.getMessage() and r.name.startswith("chargepoint") and "security" not in r.name
    ]


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        if record.name.startswith("chargepoint"):
            assert record.exc_info is None, record.getMessage()
            assert "Traceback" not in record.getMessage()


async def refused_then_trusted(
    rig: Rig, caplog: pytest.LogCaptureFixture, ctx: ssl.SSLContext, reason: str, version: str
) -> str:
    """Run against `ctx` until the station refused it at least twice; check the log line
    and the single security event; then make the server trustworthy and return the
    techInfo of the InvalidCsmsCertificate notification the CSMS receives."""
    caplog.set_level(logging.INFO)
    port = await rig.run(ctx, version)
    await wait_until(lambda: len(refusals(caplog, NOT_TRUSTED)) >= 2, 15, "two refusals")
    assert rig.csms is not None and not rig.csms.is_connected(STATION_ID)
    assert not rig.csms.received
    line = refusals(caplog, NOT_TRUSTED)[0].getMessage()
    assert reason in line and f"(host localhost:{port})" in line, line
    assert refusals(caplog, NOT_TRUSTED)[0].levelno == logging.WARNING
    no_traceback(caplog)
    # one security event for the refusals, not one per attempt
    logged = [e for e in await rig.logged_events() if e[0] == "InvalidCsmsCertificate"]
    assert len(logged) == 1 and reason in logged[0][1], logged
    # the same server with a certificate of the configured CA: the station connects and
    # tells the CSMS what it refused
    ctx.load_cert_chain(str(rig.good.cert), str(rig.good.key))
    await rig.csms.wait_connected(STATION_ID, timeout=15)
    expected = "InvalidCentralSystemCertificate" if version == "1.6" else "InvalidCsmsCertificate"
    await wait_until(
        lambda: any(
            m.payload["type"] == expected
            for m in rig.csms.messages("SecurityEventNotification")  # type: ignore[union-attr]
        ),
        15,
        "the SecurityEventNotification",
    )
    sent = [
        m.payload
        for m in rig.csms.messages("SecurityEventNotification")
        if m.payload["type"] == expected
    ]
    assert len(sent) == 1
    info = rig.csms.connection_info(STATION_ID)
    assert info["tls"] and info["basic_auth_user"] == STATION_ID
    return str(sent[0].get("techInfo", ""))


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_self_signed_server_is_refused_and_reported(
    rig: Rig, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    ctx = server_context(self_signed(rig.tmp / "self", "localhost"))
    tech_info = await refused_then_trusted(rig, caplog, ctx, "self-signed certificate", version)
    assert NOT_TRUSTED in tech_info and "self-signed certificate" in tech_info


async def test_a_server_of_another_ca_is_refused(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    other = Authority(rig.tmp / "other", "someone else's root")
    ctx = server_context(other.server("foreign", ["localhost", "127.0.0.1"]))
    await refused_then_trusted(rig, caplog, ctx, "unable to get local issuer certificate", "1.6")


async def test_a_certificate_for_another_host_is_refused(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # signed by the configured CA, but for another name than the URL's host
    ctx = server_context(rig.ca.server("elsewhere", ["csms.example.org"]))
    await refused_then_trusted(rig, caplog, ctx, "hostname mismatch", "2.0.1")


class OldTlsServer:
    """A TLS server (blocking sockets, in a thread) that speaks TLS 1.0/1.1 only: it answers
    a TLS 1.2+ client with the protocol_version alert, as an outdated server does."""

    def __init__(self, issued: Issued) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(issued.cert), str(issued.key))
        with warnings.catch_warnings():
            # a deliberately outdated server: naming TLS 1.0/1.1 is deprecated, and meant here
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.handshakes = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            self.handshakes += 1
            try:
                self.ctx.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


async def test_a_tls_1_1_server_is_refused(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    try:
        old = OldTlsServer(rig.good)
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer TLS 1.1")
    try:
        cfg = station_yaml(
            rig.tmp / "station.yaml",
            f"wss://localhost:{old.port}/ocpp",
            rig.tmp / "state",
            csms={
                "security_profile": 2,
                "password": PASSWORD,
                "ca_file": str(rig.ca.pem),
                "ocpp_version": "2.0.1",
            },
        )
        rig.station = InProcessStation(cfg)
        await rig.station.start()
        text = "CSMS TLS version refused"
        await wait_until(lambda: len(refusals(caplog, text)) >= 2, 15, "two refusals")
    finally:
        old.stop()
    line = refusals(caplog, text)[0].getMessage()
    assert "TLS 1.2" in line and f"(host localhost:{old.port})" in line, line
    no_traceback(caplog)
    logged = [e for e in await rig.logged_events() if e[0] == "InvalidTLSVersion"]
    assert len(logged) == 1, await rig.logged_events()


async def test_without_a_configured_root_nothing_is_trusted(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await rig.run(server_context(rig.good), "1.6", csms={"ca_file": None})
    text = "needs a CSMS root certificate"
    await wait_until(lambda: bool(refusals(caplog, text)), 15, "the refusal")
    await asyncio.sleep(0.5)
    assert rig.csms is not None and not rig.csms.is_connected(STATION_ID)
    no_traceback(caplog)


def test_the_tls_context_checks_server_and_host_from_tls_1_2(rig: Rig) -> None:
    ctx = tls_context(
        CsmsConfig(
            url="wss://localhost/ocpp",
            security_profile=2,
            password=SecretRef(value=PASSWORD),
            ca_file=rig.ca.pem,
        )
    )
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    # only the configured root: none of the system's CAs
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "test CSMS root"),),)]
