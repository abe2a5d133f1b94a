"""OCPP security profiles 1-3 against the test CSMS, on OCPP 1.6J and 2.0.1: Basic auth, TLS
1.2+ with the server certificate checked, TLS client certificates; on 2.0.1 also the password
changed through the device model (SecurityCtrlr.BasicAuthPassword)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
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

from chargepoint.testcsms import TestCsms
from tests.station_harness import STATION_ID, InProcessStation, station_yaml

PASSWORD = "0123456789abcdef-secret"


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    ca: bool,
    san: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test CSMS CA", ca_key, "test CSMS CA", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("localhost", server_key, "test CSMS CA", ca_key, ca=False, san=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert(STATION_ID, client_key, "test CSMS CA", ca_key, ca=False)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("someone else", other_key, "someone else", other_key, ca=True)
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "other-ca.pem").write_bytes(other.public_bytes(pem))
    (d / "server.pem").write_bytes(server.public_bytes(pem))
    (d / "client.pem").write_bytes(client.public_bytes(pem))
    return Pki(
        d / "ca.pem",
        d / "server.pem",
        _write_key(d / "server.key", server_key),
        d / "client.pem",
        _write_key(d / "client.key", client_key),
        d / "other-ca.pem",
    )


def server_context(
    pki: Pki, client_certs: bool = False, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    if max_version is not None:
        # a deliberately outdated server: naming TLS 1.0/1.1 is deprecated, and meant here
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.maximum_version = max_version
    if client_certs:
        ctx.load_verify_locations(str(pki.ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@dataclass
class Run:
    csms: TestCsms
    station: InProcessStation


@pytest.fixture
async def runs() -> AsyncIterator[list[Run]]:
    started: list[Run] = []
    yield started
    for r in started:
        await r.station.stop()
        await r.csms.stop()


VERSIONS = pytest.mark.parametrize("version", ["1.6", "2.0.1"])


async def run(
    runs: list[Run],
    tmp: Path,
    csms: TestCsms,
    scheme: str,
    csms_cfg: dict[str, Any],
    version: str = "1.6",
) -> Run:
    port = await csms.start(host="127.0.0.1")
    url = f"{scheme}://localhost:{port}/ocpp"
    cfg = station_yaml(
        tmp / "station.yaml", url, tmp / "state", csms={**csms_cfg, "ocpp_version": version}
    )
    station = InProcessStation(cfg)
    r = Run(csms, station)
    runs.append(r)
    await station.start()
    return r


@VERSIONS
async def test_profile_1_basic_auth(tmp_path: Path, runs: list[Run], version: str) -> None:
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    csms = TestCsms(basic_auth={STATION_ID: PASSWORD})
    await run(
        runs,
        tmp_path,
        csms,
        "ws",
        {"security_profile": 1, "password": {"file": str(tmp_path / "pw")}},
        version,
    )
    await csms.wait_connected(STATION_ID, timeout=10)
    assert csms.connection_info(STATION_ID)["basic_auth_user"] == STATION_ID
    assert csms.ocpp_version(STATION_ID) == version


async def test_password_set_through_the_device_model_is_used_from_the_next_connection(
    tmp_path: Path, runs: list[Run], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    csms = TestCsms(basic_auth={STATION_ID: PASSWORD})
    r = await run(
        runs, tmp_path, csms, "ws", {"security_profile": 1, "password": PASSWORD}, "2.0.1"
    )
    await csms.wait_for("StatusNotification", timeout=10)
    boots = len(csms.messages("BootNotification"))
    new_password = "fedcba9876543210-renewed"
    assert csms.basic_auth is not None
    csms.basic_auth[STATION_ID] = new_password
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                    "attributeValue": new_password,
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    # the station reconnects with the new password (the CSMS now refuses the old one)
    for _ in range(150):
        if len(csms.messages("BootNotification")) > boots:
            break
        await asyncio.sleep(0.1)
    assert len(csms.messages("BootNotification")) > boots
    # and keeps it across a restart (persisted, never logged)
    await r.station.stop()
    await r.station.start()
    for _ in range(150):
        if len(csms.messages("BootNotification")) > boots + 1:
            break
        await asyncio.sleep(0.1)
    assert len(csms.messages("BootNotification")) > boots + 1
    station_log = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("chargepoint")
    )
    assert "SetVariables" in station_log and new_password not in station_log


async def test_profile_1_wrong_password_is_refused(tmp_path: Path, runs: list[Run]) -> None:
    csms = TestCsms(basic_auth={STATION_ID: PASSWORD})
    await run(
        runs, tmp_path, csms, "ws", {"security_profile": 1, "password": "0123456789abcdef-WRONG"}
    )
    await asyncio.sleep(1.0)
    assert not csms.is_connected(STATION_ID)
    assert not csms.received


@VERSIONS
async def test_profile_2_tls_with_basic_auth(
    tmp_path: Path, runs: list[Run], pki: Pki, version: str
) -> None:
    csms = TestCsms(ssl_context=server_context(pki), basic_auth={STATION_ID: PASSWORD})
    await run(
        runs,
        tmp_path,
        csms,
        "wss",
        {"security_profile": 2, "password": PASSWORD, "ca_file": str(pki.ca)},
        version,
    )
    await csms.wait_connected(STATION_ID, timeout=10)
    info = csms.connection_info(STATION_ID)
    assert info["tls"] and info["basic_auth_user"] == STATION_ID


async def test_profile_2_rejects_an_unknown_server_certificate(
    tmp_path: Path, runs: list[Run], pki: Pki
) -> None:
    csms = TestCsms(ssl_context=server_context(pki), basic_auth={STATION_ID: PASSWORD})
    await run(
        runs,
        tmp_path,
        csms,
        "wss",
        {"security_profile": 2, "password": PASSWORD, "ca_file": str(pki.other_ca)},
    )
    await asyncio.sleep(1.0)
    assert not csms.is_connected(STATION_ID)


def test_station_tls_context_demands_1_2_and_checks_the_server(pki: Pki) -> None:
    from chargepoint.config import CsmsConfig, SecretRef
    from chargepoint.csms.link import tls_context

    ctx = tls_context(
        CsmsConfig(
            url="wss://localhost/ocpp",
            security_profile=2,
            password=SecretRef(value="0123456789abcdef"),
            ca_file=pki.ca,
        )
    )
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


async def test_tls_below_1_2_is_refused(tmp_path: Path, runs: list[Run], pki: Pki) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            tls_1_1 = ssl.TLSVersion.TLSv1_1
        old = server_context(pki, max_version=tls_1_1)
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    csms = TestCsms(ssl_context=old, basic_auth={STATION_ID: PASSWORD})
    await run(
        runs,
        tmp_path,
        csms,
        "wss",
        {"security_profile": 2, "password": PASSWORD, "ca_file": str(pki.ca)},
    )
    await asyncio.sleep(1.0)
    assert not csms.is_connected(STATION_ID)


@VERSIONS
async def test_profile_3_client_certificate(
    tmp_path: Path, runs: list[Run], pki: Pki, version: str
) -> None:
    csms = TestCsms(ssl_context=server_context(pki, client_certs=True), require_client_cert=True)
    await run(
        runs,
        tmp_path,
        csms,
        "wss",
        {
            "security_profile": 3,
            "ca_file": str(pki.ca),
            "client_cert": str(pki.client_cert),
            "client_key": str(pki.client_key),
        },
        version,
    )
    await csms.wait_connected(STATION_ID, timeout=10)
    assert csms.connection_info(STATION_ID)["client_cert_cn"] == STATION_ID
    assert csms.ocpp_version(STATION_ID) == version
