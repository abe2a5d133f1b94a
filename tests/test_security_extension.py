"""The security extension against the schema-validating test CSMS, OCPP 1.6J (security
whitepaper) and 2.0.1: installing, listing and deleting roots with their error paths, the CSR
round trip signed by the test CA, the security profile upgrade from 1 to 3 on loopback (TLS
with the new certificate against a server requiring client certificates), its fallback,
security events queued during an outage, the Basic-auth password change, and no private key
or password in the daemon's log."""

from __future__ import annotations

import asyncio
import base64
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargepoint.core.certificates import certificate_hash_data
from chargepoint.service.daemon import Daemon
from chargepoint.testcsms import TestCsms, TestPki, generate_test_pki
from tests.pki import make_ca, name, pem
from tests.real_vectors import bsm_public_key_hex
from tests.station_harness import (
    STATION_ID,
    InProcessStation,
    StationProcess,
    change_password,
    station_yaml,
    wait_until,
)

PASSWORD = "0123456789abcdef-secret"
NEW_PASSWORD = "fedcba9876543210-renewed"
VERSIONS = pytest.mark.parametrize("version", ["1.6", "2.0.1"])


def config(
    tmp: Path,
    url: str,
    version: str,
    csms: dict[str, Any] | None = None,
    security: dict[str, Any] | None = None,
    level: str = "info",
) -> Path:
    path = station_yaml(
        tmp / "station.yaml",
        url,
        tmp / "state",
        connectors=1,
        csms={"ocpp_version": version, **(csms or {})},
    )
    doc = yaml.safe_load(path.read_text())
    doc["security"] = {"connection_attempts": 3, "cert_signing_wait_minimum": 5, **(security or {})}
    doc["logging"] = {"level": level}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.csms: list[TestCsms] = []
        self.station: InProcessStation | None = None

    async def csms_on(self, csms: TestCsms, port: int = 0) -> int:
        self.csms.append(csms)
        return await csms.start(host="127.0.0.1", port=port)

    async def start(self, cfg: Path) -> Daemon:
        self.station = InProcessStation(cfg)
        return await self.station.start()

    @property
    def daemon(self) -> Daemon:
        assert self.station is not None and self.station.daemon is not None
        return self.station.daemon


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path)
    yield r
    if r.station is not None:
        await r.station.stop()
    for csms in r.csms:
        await csms.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki"), STATION_ID)


async def plain_station(rig: Rig, version: str, **csms_cfg: Any) -> TestCsms:
    csms = TestCsms(basic_auth={STATION_ID: PASSWORD})
    port = await rig.csms_on(csms)
    cfg = config(
        rig.tmp,
        f"ws://localhost:{port}/ocpp",
        version,
        {"security_profile": 1, "password": PASSWORD, **csms_cfg},
    )
    await rig.start(cfg)
    await csms.wait_for("StatusNotification", timeout=15)
    return csms


# ---- roots ----------------------------------------------------------------------------------


@VERSIONS
async def test_install_list_and_delete_roots_with_their_error_paths(
    rig: Rig, pki: TestPki, version: str
) -> None:
    csms = await plain_station(rig, version)
    install = csms.install_certificate
    # garbage, an expired root, a certificate that is no CA: Rejected; the daemon carries on
    assert (await install(STATION_ID, "CSMSRootCertificate", "garbage"))["status"] == "Rejected"
    expired = make_ca("expired root", days=-1, start_days=-30)
    assert (await install(STATION_ID, "CSMSRootCertificate", expired.pem))["status"] == "Rejected"
    leaf = make_ca("no CA", ca=False)
    assert (await install(STATION_ID, "ManufacturerRootCertificate", leaf.pem))[
        "status"
    ] == "Rejected"
    assert (await csms.get_installed_certificate_ids(STATION_ID))["status"] == "NotFound"
    # a real root: Accepted, listed with the RFC 6960 hash data
    ca_pem = pki.ca_cert.read_text()
    assert (await install(STATION_ID, "CSMSRootCertificate", ca_pem))["status"] == "Accepted"
    maker = make_ca("manufacturer root")
    assert (await install(STATION_ID, "ManufacturerRootCertificate", maker.pem))[
        "status"
    ] == "Accepted"
    answer = await csms.get_installed_certificate_ids(STATION_ID)
    assert answer["status"] == "Accepted"
    listed = csms.hash_data(answer)
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    assert listed == [certificate_hash_data(ca).wire()]
    if version == "2.0.1":
        assert answer["certificateHashDataChain"][0]["certificateType"] == "CSMSRootCertificate"
    makers = csms.hash_data(
        await csms.get_installed_certificate_ids(STATION_ID, "ManufacturerRootCertificate")
    )
    assert makers == [certificate_hash_data(maker.cert).wire()]
    # an unknown hash is NotFound, a known one is deleted
    unknown = {**listed[0], "serialNumber": "123456789abcdef"}
    assert (await csms.delete_certificate(STATION_ID, unknown))["status"] == "NotFound"
    assert (await csms.delete_certificate(STATION_ID, makers[0]))["status"] == "Accepted"
    assert (await csms.get_installed_certificate_ids(STATION_ID, "ManufacturerRootCertificate"))[
        "status"
    ] == "NotFound"
    # profile 1 uses no TLS: the only CSMS root may go
    assert (await csms.delete_certificate(STATION_ID, listed[0]))["status"] == "Accepted"
    assert csms.sent_errors == []
    assert rig.daemon.adapter is not None and rig.daemon.adapter.accepted.is_set()


# ---- CSR round trip ---------------------------------------------------------------------------


@VERSIONS
async def test_csr_round_trip_signed_by_the_test_ca(rig: Rig, pki: TestPki, version: str) -> None:
    csms = await plain_station(rig, version)
    org = {"key": "CpoName", "value": "Example CPO"}
    if version == "1.6":
        assert (await csms.call(STATION_ID, "ChangeConfiguration", org))["status"] == "Accepted"
    else:
        status = await set_variable(csms, "SecurityCtrlr", "OrganizationName", org["value"])
        assert status == "Accepted"
    await csms.install_certificate(STATION_ID, "CSMSRootCertificate", pki.ca_cert.read_text())
    csms.sign_station_csrs(pki)
    assert (await csms.request_station_certificate(STATION_ID))["status"] == "Accepted"
    request = await csms.wait_for("SignCertificate", timeout=10)
    csr = x509.load_pem_x509_csr(request.payload["csr"].encode())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STATION_ID
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example CPO"
    public = csr.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    if version == "2.0.1":
        assert request.payload["certificateType"] == "ChargingStationCertificate"
    await wait_until(lambda: bool(csms.csr_answers), timeout=10, what="CertificateSigned")
    assert csms.csr_answers == [{"status": "Accepted"}]
    station = rig.daemon.security
    assert station is not None
    installed = station.certificates.station_certificate()
    assert installed is not None and installed.certificate.public_key() == csr.public_key()
    assert stat.S_IMODE(installed.credentials_file.stat().st_mode) == 0o600
    assert csms.sent_errors == []


@VERSIONS
async def test_certificate_signed_with_a_wrong_chain_is_rejected(
    rig: Rig, pki: TestPki, version: str
) -> None:
    csms = await plain_station(rig, version)
    await csms.install_certificate(STATION_ID, "CSMSRootCertificate", pki.ca_cert.read_text())
    stranger = make_ca("stranger")
    wrong = pem(
        stranger.issue(name(STATION_ID), ec.generate_private_key(ec.SECP256R1()).public_key())
    )
    csms.sign_station_csrs(None, chain=wrong)
    await csms.request_station_certificate(STATION_ID)
    await wait_until(lambda: bool(csms.csr_answers), timeout=10, what="CertificateSigned")
    assert csms.csr_answers[0]["status"] == "Rejected"
    security = rig.daemon.security
    assert security is not None
    assert security.certificates.station_certificate() is None
    logged = [e.event_type for e in await security.events.entries_between()]
    assert "InvalidChargingStationCertificate" in logged
    # garbage as a chain is Rejected too, the daemon carries on
    assert (await csms.certificate_signed(STATION_ID, "garbage"))["status"] == "Rejected"
    assert rig.daemon.adapter is not None and rig.daemon.adapter.accepted.is_set()


async def test_a_rejected_csr_is_not_retried(rig: Rig, pki: TestPki) -> None:
    csms = await plain_station(rig, "1.6")
    csms.sign_station_csrs(pki, accept=False)
    await csms.request_station_certificate(STATION_ID)
    await csms.wait_for("SignCertificate", timeout=10)
    await asyncio.sleep(0.5)
    assert len(csms.messages("SignCertificate")) == 1


# ---- the upgrade from profile 1 to 3 ----------------------------------------------------------


async def signed_station_certificate(csms: TestCsms, pki: TestPki) -> None:
    ca_pem = pki.ca_cert.read_text()
    assert (await csms.install_certificate(STATION_ID, "CSMSRootCertificate", ca_pem))[
        "status"
    ] == "Accepted"
    csms.sign_station_csrs(pki)
    await csms.request_station_certificate(STATION_ID)
    await wait_until(lambda: bool(csms.csr_answers), timeout=10, what="CertificateSigned")
    assert csms.csr_answers == [{"status": "Accepted"}]


async def set_variable(csms: TestCsms, component: str, variable: str, value: str) -> str:
    """SetVariables (2.0.1) of one variable: its attributeStatus."""
    answer = await csms.call(
        STATION_ID,
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": component},
                    "variable": {"name": variable},
                    "attributeValue": value,
                }
            ]
        },
    )
    return str(answer["setVariableResult"][0]["attributeStatus"])


async def set_priority(csms: TestCsms, value: str) -> str:
    return await set_variable(csms, "OCPPCommCtrlr", "NetworkConfigurationPriority", value)


@VERSIONS
async def test_csms_takes_the_station_from_profile_1_to_3(
    rig: Rig, pki: TestPki, version: str
) -> None:
    plain = await plain_station(rig, version)
    port = plain.port
    # without a station certificate profile 3 is refused
    if version == "1.6":
        early = await plain.call(
            STATION_ID, "ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}
        )
        assert early["status"] == "Rejected"
    await signed_station_certificate(plain, pki)
    tls = TestCsms(
        ssl_context=pki.server_context(require_client_cert=True), require_client_cert=True
    )
    if version == "1.6":
        down = await plain.call(
            STATION_ID, "ChangeConfiguration", {"key": "SecurityProfile", "value": "0"}
        )
        assert down["status"] == "Rejected"  # never lowered
        answer = await plain.call(
            STATION_ID, "ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}
        )
        assert answer["status"] == "Accepted"
        # the operator's endpoint now speaks TLS on the same port (the station swaps ws for wss)
        await plain.stop()
        await rig.csms_on(tls, port)
    else:
        tls_port = await rig.csms_on(tls)
        url = f"wss://localhost:{tls_port}/ocpp"
        assert (await plain.set_network_profile(STATION_ID, 1, url, 3))["status"] == "Rejected"
        downgrade = await plain.set_network_profile(STATION_ID, 2, url.replace("wss", "ws"), 0)
        assert downgrade["status"] == "Rejected"
        assert (await plain.set_network_profile(STATION_ID, 2, url, 3))["status"] == "Accepted"
        assert await set_priority(plain, "3,1") == "Rejected"  # no profile in slot 3
        assert await set_priority(plain, "2,1") == "RebootRequired"
        reset = await plain.call(STATION_ID, "Reset", {"type": "Immediate"})
        assert reset["status"] == "Accepted"
    await tls.wait_connected(STATION_ID, timeout=20)
    await tls.wait_for("StatusNotification", timeout=10)
    info = tls.connection_info(STATION_ID)
    assert info["tls"] and info["client_cert_cn"] == STATION_ID and info["basic_auth_user"] is None
    # the client certificate is the one signed through OCPP (the YAML names none)
    security = rig.daemon.security
    assert security is not None
    assert rig.daemon.config.csms.client_cert is None
    assert security.certificates.station_certificate() is not None
    if version == "1.6":
        got = await tls.call(STATION_ID, "GetConfiguration", {"key": ["SecurityProfile"]})
        assert got["configurationKey"][0]["value"] == "3"
    # the connection depends on the only CSMS root now: it cannot be deleted
    listed = tls.hash_data(await tls.get_installed_certificate_ids(STATION_ID))
    assert (await tls.delete_certificate(STATION_ID, listed[0]))["status"] == "Failed"
    logged = [(e.event_type, e.tech_info or "") for e in await security.events.entries_between()]
    assert (
        "ReconfigurationOfSecurityParameters",
        "connected with security profile 3 (was 1)",
    ) in logged
    # after a restart the station stays at profile 3
    assert rig.station is not None
    await rig.station.stop()
    before = tls.connection_info(STATION_ID)["connections"]
    await rig.station.start()
    await wait_until(
        lambda: (
            tls.is_connected(STATION_ID) and tls.connection_info(STATION_ID)["connections"] > before
        ),
        timeout=20,
        what="the reconnection with profile 3",
    )
    assert tls.connection_info(STATION_ID)["client_cert_cn"] == STATION_ID
    assert tls.sent_errors == [] and plain.sent_errors == []


@VERSIONS
async def test_a_new_profile_that_does_not_connect_falls_back(
    rig: Rig, pki: TestPki, tmp_path: Path, version: str
) -> None:
    plain = await plain_station(rig, version)
    await signed_station_certificate(plain, pki)
    boots = len(plain.messages("BootNotification"))
    if version == "1.6":
        # the same port still speaks plain websockets: the TLS handshake fails
        answer = await plain.call(
            STATION_ID, "ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}
        )
        assert answer["status"] == "Accepted"
    else:
        # a TLS endpoint whose server certificate the station does not trust
        other = generate_test_pki(tmp_path / "other-pki", STATION_ID)
        foreign = TestCsms(ssl_context=other.server_context())
        foreign_port = await rig.csms_on(foreign)
        url = f"wss://localhost:{foreign_port}/ocpp"
        assert (await plain.set_network_profile(STATION_ID, 2, url, 3))["status"] == "Accepted"
        assert await set_priority(plain, "2,1") == "RebootRequired"
        await plain.call(STATION_ID, "Reset", {"type": "Immediate"})
    # after its attempts the station is back on the profile 1 connection
    await wait_until(
        lambda: len(plain.messages("BootNotification")) > boots and plain.is_connected(STATION_ID),
        timeout=30,
        what="the fallback to profile 1",
    )
    assert plain.connection_info(STATION_ID)["basic_auth_user"] == STATION_ID
    security = rig.daemon.security
    assert security is not None
    if version == "1.6":
        got = await plain.call(STATION_ID, "GetConfiguration", {"key": ["SecurityProfile"]})
        assert got["configurationKey"][0]["value"] == "1"
    else:
        logged = [e.event_type for e in await security.events.entries_between()]
        assert "InvalidCsmsCertificate" in logged


# ---- the Basic-auth password --------------------------------------------------------------------


async def test_authorization_key_is_write_only_and_used_from_the_next_connection(
    rig: Rig,
) -> None:
    csms = await plain_station(rig, "1.6")
    assert csms.basic_auth is not None
    short = await csms.call(
        STATION_ID, "ChangeConfiguration", {"key": "AuthorizationKey", "value": "short"}
    )
    assert short["status"] == "Rejected"
    boots = len(csms.messages("BootNotification"))
    csms.basic_auth[STATION_ID] = NEW_PASSWORD
    answer = await csms.call(
        STATION_ID, "ChangeConfiguration", {"key": "AuthorizationKey", "value": NEW_PASSWORD}
    )
    assert answer["status"] == "Accepted"
    await wait_until(
        lambda: len(csms.messages("BootNotification")) > boots and csms.is_connected(STATION_ID),
        timeout=20,
        what="the reconnection with the new password",
    )
    shown = await csms.call(STATION_ID, "GetConfiguration", {"key": ["AuthorizationKey"]})
    assert shown["configurationKey"][0].get("value", "") == ""
    secret = rig.tmp / "state" / "secrets" / "csms-password"
    assert secret.read_text() == NEW_PASSWORD and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert not (rig.tmp / "state" / "secrets" / "csms-password.previous").exists()
    # a password the CSMS does not know is given up after the attempts: the old one again
    boots = len(csms.messages("BootNotification"))
    answer = await csms.call(
        STATION_ID, "ChangeConfiguration", {"key": "AuthorizationKey", "value": "x" * 20}
    )
    assert answer["status"] == "Accepted"
    await wait_until(
        lambda: len(csms.messages("BootNotification")) > boots and csms.is_connected(STATION_ID),
        timeout=30,
        what="the fallback to the previous password",
    )
    assert secret.read_text() == NEW_PASSWORD


async def test_basic_auth_password_is_tried_and_falls_back_when_it_does_not_connect(
    rig: Rig,
) -> None:
    """2.0.1 SecurityCtrlr.BasicAuthPassword: the station reconnects with the new password,
    logs the change as a security event (A01.FR.11, without the value) and keeps it once it
    worked; a password the CSMS then refuses is given up after the attempts, and the station
    is back on the one that worked, on disk too (not locked out until a site visit)."""
    csms = await plain_station(rig, "2.0.1")
    secrets = rig.tmp / "state" / "secrets"

    security = rig.daemon.security
    assert security is not None

    async def reconfigurations() -> list[str]:
        kind = "ReconfigurationOfSecurityParameters"
        entries = await security.events.entries_between()
        return [e.tech_info or "" for e in entries if e.event_type == kind]

    assert await reconfigurations() == []
    await change_password(csms, "2.0.1", NEW_PASSWORD)
    secret = secrets / "csms-password"
    assert secret.read_text() == NEW_PASSWORD and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert not (secrets / "csms-password.previous").exists()
    # in the security log (A01.FR.11), without the value (A01.FR.12)
    [logged] = await reconfigurations()
    assert "password" in logged and NEW_PASSWORD not in logged
    # the CSMS failed to keep the next password: it still expects NEW_PASSWORD
    boots = len(csms.messages("BootNotification"))
    setting = {
        "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
        "attributeValue": "y" * 20,
    }
    got = await csms.call(STATION_ID, "SetVariables", {"setVariableData": [setting]})
    assert got["setVariableResult"][0]["attributeStatus"] == "Accepted", got
    await wait_until(
        lambda: len(csms.messages("BootNotification")) > boots and csms.is_connected(STATION_ID),
        timeout=30,
        what="the fallback to the previous password",
    )
    assert csms.connection_info(STATION_ID)["basic_auth_user"] == STATION_ID
    assert secret.read_text() == NEW_PASSWORD
    assert not (secrets / "csms-password.previous").exists()
    # the CSMS fixed its side and sends the given-up password again: a new trial that works
    await change_password(csms, "2.0.1", "y" * 20)
    assert secret.read_text() == "y" * 20
    assert not (secrets / "csms-password.previous").exists()
    assert len(await reconfigurations()) == 3
    log_text = (rig.tmp / "state" / "security.log").read_text()
    assert NEW_PASSWORD not in log_text and "y" * 20 not in log_text


# ---- security events --------------------------------------------------------------------------


@VERSIONS
async def test_security_events_queued_during_an_outage_arrive_in_order_once(
    rig: Rig, version: str
) -> None:
    csms = TestCsms()
    port = await rig.csms_on(csms)
    await rig.start(config(rig.tmp, f"ws://127.0.0.1:{port}/ocpp", version))
    await csms.wait_for("StatusNotification", timeout=15)
    assert ("StartupOfTheDevice", None) in csms.security_events()
    security = rig.daemon.security
    assert security is not None
    csms.refuse_connections(True)
    await csms.disconnect(STATION_ID)
    for n in range(5):
        await security.events.record("TamperDetectionActivated", f"outage {n}")
    await security.events.record("InvalidMessages", "only in the security log")
    await asyncio.sleep(0.3)
    csms.refuse_connections(False)
    await wait_until(
        lambda: sum(1 for _, t in csms.security_events() if t and t.startswith("outage")) == 5,
        timeout=15,
        what="the queued security events",
    )
    # a restart sends none of them again
    assert rig.station is not None
    await rig.station.stop()
    before = len(csms.messages("StatusNotification"))
    await rig.station.start()
    await wait_until(lambda: len(csms.messages("StatusNotification")) > before, timeout=15)
    await asyncio.sleep(0.3)
    sent = [t for _, t in csms.security_events() if t and t.startswith("outage")]
    assert sent == [f"outage {n}" for n in range(5)]
    assert all(csms.answered(r) for r in csms.messages("SecurityEventNotification"))
    assert "only in the security log" not in str(csms.security_events())
    startups = [t for t, _ in csms.security_events() if t == "StartupOfTheDevice"]
    assert len(startups) == 2
    assert csms.sent_errors == []


@VERSIONS
async def test_extended_trigger_messages(rig: Rig, version: str) -> None:
    csms = await plain_station(rig, version)
    trigger = "ExtendedTriggerMessage" if version == "1.6" else "TriggerMessage"
    for message in ("LogStatusNotification", "FirmwareStatusNotification", "Heartbeat"):
        mark = len(csms.received)
        answer = await csms.call(STATION_ID, trigger, {"requestedMessage": message})
        assert answer["status"] == "Accepted"
        await csms.wait_for(message, timeout=10, after=mark)
    if version == "1.6":
        for message in ("StatusNotification", "MeterValues", "BootNotification"):
            mark = len(csms.received)
            answer = await csms.call(
                STATION_ID, trigger, {"requestedMessage": message, "connectorId": 1}
            )
            assert answer["status"] == "Accepted"
            await csms.wait_for(message, timeout=10, after=mark)
        bad = await csms.call(
            STATION_ID, trigger, {"requestedMessage": "Heartbeat", "connectorId": 9}
        )
        assert bad["status"] == "Rejected"
    assert csms.sent_errors == []


# ---- no secret in the log -----------------------------------------------------------------------


def _secret_fragments(text: str) -> list[str]:
    """Base64 lines of the PEM private keys in `text` (each long enough to be unmistakable)."""
    found = []
    inside = False
    for line in text.splitlines():
        if "BEGIN PRIVATE KEY" in line:
            inside = True
        elif "END PRIVATE KEY" in line:
            inside = False
        elif inside and len(line) >= 40:
            found.append(line)
    return found


@VERSIONS
async def test_no_private_key_or_password_in_the_daemon_log(
    tmp_path: Path, pki: TestPki, version: str
) -> None:
    csms = TestCsms(basic_auth={STATION_ID: PASSWORD})
    port = await csms.start()
    cfg = config(
        tmp_path,
        f"ws://localhost:{port}/ocpp",
        version,
        {"security_profile": 1, "password": PASSWORD},
        level="debug",
    )
    proc = StationProcess(cfg, tmp_path / "daemon.log")
    proc.start()
    try:
        await csms.wait_for("StatusNotification", timeout=30)
        await signed_station_certificate(csms, pki)
        await change_password(csms, version, NEW_PASSWORD)
    finally:
        # off the event loop: the CSMS answers the station's closing handshake meanwhile
        assert await asyncio.to_thread(proc.terminate) == 0
        await csms.stop()
    log = proc.log_text()
    assert "SignCertificate" in log and "CertificateSigned" in log  # the log is the real one
    credentials = tmp_path / "state" / "certificates" / "station" / "credentials.pem"
    key_lines = _secret_fragments(credentials.read_text())
    assert key_lines
    for line in key_lines:
        assert line not in log
    assert "PRIVATE KEY" not in log
    for secret in (PASSWORD, NEW_PASSWORD):
        assert secret not in log
        assert base64.b64encode(f"{STATION_ID}:{secret}".encode()).decode() not in log
    security_log = (tmp_path / "state" / "security.log").read_text()
    assert NEW_PASSWORD not in security_log and "PRIVATE KEY" not in security_log
    # the password set through OCPP is in one file of mode 0600, nowhere else (not in the store)
    secret_file = tmp_path / "state" / "secrets" / "csms-password"
    assert secret_file.read_text() == NEW_PASSWORD
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    holders = [
        p.relative_to(tmp_path / "state")
        for p in (tmp_path / "state").rglob("*")
        if p.is_file() and NEW_PASSWORD.encode() in p.read_bytes()
    ]
    assert holders == [Path("secrets/csms-password")]


@VERSIONS
async def test_a_meter_with_another_key_is_tamper_detection(rig: Rig, version: str) -> None:
    csms = TestCsms()
    port = await rig.csms_on(csms)
    path = config(rig.tmp, f"ws://127.0.0.1:{port}/ocpp", version)
    doc = yaml.safe_load(path.read_text())
    doc["connectors"][0]["meter"]["public_key"] = bsm_public_key_hex("B_meter_001BZR1521290137")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    await rig.start(path)
    await csms.wait_for("StatusNotification", timeout=15)
    start = (
        ("RemoteStartTransaction", {"idTag": "PK-1", "connectorId": 1})
        if version == "1.6"
        else (
            "RequestStartTransaction",
            {"idToken": {"idToken": "PK-1", "type": "ISO14443"}, "remoteStartId": 1, "evseId": 1},
        )
    )
    await csms.call(STATION_ID, *start)
    await csms.wait_for(
        "SecurityEventNotification",
        lambda r: r.payload["type"] == "TamperDetectionActivated",
        timeout=15,
    )
    tampered = [t for t, info in csms.security_events() if t == "TamperDetectionActivated"]
    assert len(tampered) == 1
    assert ("TamperDetectionActivated", "connector 1: meter PublicKeyMismatch") in (
        csms.security_events()
    )
