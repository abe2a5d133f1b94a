"""The certificate store of the core: installing roots, their hash data (RFC 6960, checked
against cryptography's OCSP request builder), deleting, chain validation, key pairs and CSRs,
the station certificate with its key (mode 0600) and the signing round with its retries."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from chargepoint.core.certificates import (
    CertificateHashData,
    CertificateSigning,
    CertificateStore,
    CertificateType,
    ChainProblem,
    DeleteStatus,
    HashAlgorithm,
    InstallStatus,
    KeyType,
    SigningParameters,
    SigningState,
    UnknownHashAlgorithm,
    build_csr,
    certificate_hash_data,
    generate_key,
)
from chargepoint.core.security_events import SecurityEvents
from tests.pki import Ca, make_ca, name, pem

CSMS = CertificateType.CSMS_ROOT
MANUFACTURER = CertificateType.MANUFACTURER_ROOT
IDENTITY = "CP-CERT-1"


class FakeOutbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, object]]] = []

    async def enqueue(
        self, kind: str, data: dict[str, object], local_tx_id: int | None = None
    ) -> int:
        self.messages.append((kind, data))
        return len(self.messages)


@pytest.fixture
def store(tmp_path: Path) -> CertificateStore:
    return CertificateStore(tmp_path / "certificates")


# ---- installing roots ---------------------------------------------------------------------


def test_a_root_is_installed_listed_and_survives_a_new_store_object(
    store: CertificateStore, tmp_path: Path
) -> None:
    root = make_ca("csms root")
    assert store.install_root(CSMS, root.pem).status is InstallStatus.ACCEPTED
    again = CertificateStore(tmp_path / "certificates")
    assert [r.certificate for r in again.roots(CSMS)] == [root.cert]
    assert again.roots(MANUFACTURER) == []
    # installing it twice keeps one copy
    assert store.install_root(CSMS, root.pem).status is InstallStatus.ACCEPTED
    assert len(store.roots(CSMS)) == 1


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ],
)
def test_garbage_pem_is_rejected_and_nothing_is_stored(store: CertificateStore, text: str) -> None:
    outcome = store.install_root(CSMS, text)
    assert outcome.status is InstallStatus.REJECTED and outcome.reason
    assert store.roots() == []


def test_an_expired_a_future_and_a_non_ca_certificate_are_rejected(store: CertificateStore) -> None:
    expired = make_ca("old", days=-1, start_days=-30)
    future = make_ca("future", start_days=2, days=30)
    not_ca = make_ca("leaf", ca=False)
    assert "expired" in store.install_root(CSMS, expired.pem).reason
    assert "not valid before" in store.install_root(CSMS, future.pem).reason
    assert "not a CA" in store.install_root(CSMS, not_ca.pem).reason
    assert store.roots() == []


def test_two_certificates_where_one_root_is_expected_are_rejected(store: CertificateStore) -> None:
    outcome = store.install_root(CSMS, make_ca("a").pem + make_ca("b").pem)
    assert outcome.status is InstallStatus.REJECTED and "one certificate" in outcome.reason


def test_a_full_store_rejects_more_roots(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path, max_roots=2)
    assert store.install_root(CSMS, make_ca("a").pem).status is InstallStatus.ACCEPTED
    assert store.install_root(MANUFACTURER, make_ca("b").pem).status is InstallStatus.ACCEPTED
    outcome = store.install_root(CSMS, make_ca("c").pem)
    assert outcome.status is InstallStatus.REJECTED and "maximum" in outcome.reason


# ---- hash data ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "hash_class"),
    [
        (HashAlgorithm.SHA256, hashes.SHA256),
        (HashAlgorithm.SHA384, hashes.SHA384),
        (HashAlgorithm.SHA512, hashes.SHA512),
    ],
)
@pytest.mark.parametrize("rsa_key", [False, True])
def test_hash_data_is_the_rfc_6960_cert_id(
    algorithm: HashAlgorithm, hash_class: type[hashes.HashAlgorithm], rsa_key: bool
) -> None:
    root = make_ca("root", rsa_key=rsa_key, serial=0x00_0F_AB)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = root.issue(name("leaf"), leaf_key.public_key())
    for cert, issuer in ((root.cert, root.cert), (leaf, root.cert)):
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hash_class()).build()
        data = certificate_hash_data(cert, issuer if cert is not issuer else None, algorithm)
        assert data.issuer_name_hash == request.issuer_name_hash.hex()
        assert data.issuer_key_hash == request.issuer_key_hash.hex()
        assert int(data.serial_number, 16) == request.serial_number
    # the serial number in hex, without leading zeros or 0x
    assert certificate_hash_data(root.cert, None, algorithm).serial_number == "fab"


def test_hash_data_from_the_wire_and_matching() -> None:
    root = make_ca()
    data = certificate_hash_data(root.cert)
    wire = data.wire()
    assert set(wire) == {"hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber"}
    assert CertificateHashData.from_wire(wire) == data
    snake = {
        "hash_algorithm": "SHA256",
        "issuer_name_hash": data.issuer_name_hash.upper(),
        "issuer_key_hash": data.issuer_key_hash,
        "serial_number": "000" + data.serial_number.upper(),
    }
    assert CertificateHashData.from_wire(snake).matches(data)
    with pytest.raises(UnknownHashAlgorithm):
        CertificateHashData.from_wire({**wire, "hashAlgorithm": "MD5"})


def test_installed_hash_data_by_type_and_algorithm(store: CertificateStore) -> None:
    csms, maker = make_ca("csms"), make_ca("maker")
    store.install_root(CSMS, csms.pem)
    store.install_root(MANUFACTURER, maker.pem)
    assert store.hash_data([CSMS]) == [(CSMS, certificate_hash_data(csms.cert))]
    assert {t for t, _ in store.hash_data()} == {CSMS, MANUFACTURER}
    sha512 = store.hash_data([MANUFACTURER], HashAlgorithm.SHA512)
    assert sha512[0][1] == certificate_hash_data(maker.cert, None, HashAlgorithm.SHA512)
    assert len(sha512[0][1].issuer_key_hash) == 128


# ---- deleting -----------------------------------------------------------------------------


def test_delete_by_hash_data(store: CertificateStore) -> None:
    a, b = make_ca("a"), make_ca("b")
    store.install_root(CSMS, a.pem)
    store.install_root(CSMS, b.pem)
    by_sha384 = certificate_hash_data(a.cert, None, HashAlgorithm.SHA384)
    assert store.delete(by_sha384, keep_last_csms_root=True).status is DeleteStatus.ACCEPTED
    assert [r.certificate for r in store.roots(CSMS)] == [b.cert]
    assert store.delete(by_sha384, keep_last_csms_root=True).status is DeleteStatus.NOT_FOUND
    # the last CSMS root stays while the connection uses it
    last = certificate_hash_data(b.cert)
    refused = store.delete(last, keep_last_csms_root=True)
    assert refused.status is DeleteStatus.FAILED and "only CSMS root" in refused.reason
    assert store.delete(last, keep_last_csms_root=False).status is DeleteStatus.ACCEPTED
    assert store.roots() == []


def test_unknown_hash_is_not_found(store: CertificateStore) -> None:
    store.install_root(CSMS, make_ca().pem)
    unknown = CertificateHashData(HashAlgorithm.SHA256, "00" * 32, "11" * 32, "1234")
    assert store.delete(unknown, keep_last_csms_root=False).status is DeleteStatus.NOT_FOUND
    assert len(store.roots()) == 1


# ---- chains -------------------------------------------------------------------------------


def test_chain_through_an_intermediate_to_an_installed_root(store: CertificateStore) -> None:
    root = make_ca("manufacturer root")
    sub = root.intermediate("firmware signing CA")
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = sub.issue(name("firmware signer"), leaf_key.public_key())
    store.install_root(MANUFACTURER, root.pem)
    result = store.verify_chain(pem(leaf) + sub.pem, MANUFACTURER)
    assert result.valid and result.path == (leaf, sub.cert, root.cert)
    assert result.root == root.cert and result.intermediates == (sub.cert,)
    # without the intermediate there is no path; against the CSMS roots neither
    missing = store.verify_chain(pem(leaf), MANUFACTURER)
    assert not missing.valid and missing.problem is ChainProblem.UNTRUSTED
    other_type = store.verify_chain(pem(leaf) + sub.pem, CSMS)
    assert other_type.problem is ChainProblem.NO_ROOT


def test_wrong_chain_expired_leaf_and_garbage(store: CertificateStore) -> None:
    root, stranger = make_ca("root"), make_ca("stranger")
    store.install_root(CSMS, root.pem)
    key = ec.generate_private_key(ec.SECP256R1())
    wrong = stranger.issue(name("leaf"), key.public_key())
    assert store.verify_chain(pem(wrong), CSMS).problem is ChainProblem.UNTRUSTED
    expired = root.issue(name("leaf"), key.public_key(), days=-1, start_days=-10)
    result = store.verify_chain(pem(expired), CSMS)
    assert result.problem is ChainProblem.EXPIRED and "expired" in result.reason
    assert store.verify_chain("garbage", CSMS).problem is ChainProblem.UNREADABLE
    # an issuer that is no CA does not make a chain
    fake_sub = Ca(root.issue(name("not a CA"), key.public_key(), client=False), key)
    leaf = fake_sub.issue(name("leaf"), ec.generate_private_key(ec.SECP256R1()).public_key())
    assert store.verify_chain(pem(leaf) + fake_sub.pem, CSMS).problem is ChainProblem.NOT_CA


# ---- key pairs, CSRs, the station certificate ------------------------------------------


@pytest.mark.parametrize("key_type", [KeyType.EC_P256, KeyType.RSA_2048])
def test_csr_subject_and_key(key_type: KeyType) -> None:
    key = generate_key(key_type)
    csr = x509.load_pem_x509_csr(build_csr(key, IDENTITY, "Example CPO").encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == IDENTITY
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example CPO"
    if key_type is KeyType.EC_P256:
        public = csr.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.curve.name == "secp256r1"
    else:
        public_rsa = csr.public_key()
        assert isinstance(public_rsa, rsa.RSAPublicKey) and public_rsa.key_size == 2048


def test_csr_round_trip_installs_the_station_certificate(
    store: CertificateStore, tmp_path: Path
) -> None:
    ca = make_ca("csms root")
    store.install_root(CSMS, ca.pem)
    key = store.new_pending_key(KeyType.EC_P256)
    pending = store.directory / "station" / "pending-key.pem"
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    assert stat.S_IMODE((store.directory / "station").stat().st_mode) == 0o700
    signed = ca.sign_csr(build_csr(key, IDENTITY, "CPO"))
    assert store.install_station_certificate(pem(signed), IDENTITY).accepted
    station = CertificateStore(tmp_path / "certificates").station_certificate()
    assert station is not None and station.certificate == signed
    assert stat.S_IMODE(station.credentials_file.stat().st_mode) == 0o600
    assert not pending.exists()
    # the credentials file is what ssl loads: the chain and the key
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(station.credentials_file)


def test_certificate_signed_that_does_not_fit_leaves_the_old_one(store: CertificateStore) -> None:
    ca, stranger = make_ca("csms root"), make_ca("stranger")
    store.install_root(CSMS, ca.pem)
    key = store.new_pending_key()
    first = ca.sign_csr(build_csr(key, IDENTITY, None))
    assert store.install_station_certificate(pem(first), IDENTITY).accepted
    assert (
        store.install_station_certificate(pem(first), IDENTITY).reason
        == "no certificate signing request is open"
    )
    key2 = store.new_pending_key()
    csr = build_csr(key2, IDENTITY, None)
    cases = {
        "garbage": "not a certificate",
        "wrong chain": pem(stranger.sign_csr(csr)),
        "other key": pem(ca.sign_csr(build_csr(generate_key(), IDENTITY, None))),
        "other CN": pem(ca.issue(name("someone else"), key2.public_key())),
        "expired": pem(ca.sign_csr(csr, days=-1)),
    }
    for what, text in cases.items():
        outcome = store.install_station_certificate(text, IDENTITY)
        assert outcome.status is InstallStatus.REJECTED, what
    station = store.station_certificate()
    assert station is not None and station.certificate == first
    # the open request still takes its certificate
    assert store.install_station_certificate(pem(ca.sign_csr(csr)), IDENTITY).accepted


def test_the_station_certificate_cannot_be_deleted(store: CertificateStore) -> None:
    ca = make_ca("csms root")
    store.install_root(CSMS, ca.pem)
    key = store.new_pending_key()
    leaf = ca.sign_csr(build_csr(key, IDENTITY, None))
    assert store.install_station_certificate(pem(leaf), IDENTITY).accepted
    outcome = store.delete(certificate_hash_data(leaf, ca.cert), keep_last_csms_root=False)
    assert outcome.status is DeleteStatus.FAILED
    assert store.station_certificate() is not None


def test_tls_material(store: CertificateStore) -> None:
    assert store.tls_material(True).ca_pem is None
    ca = make_ca("csms root")
    store.install_root(CSMS, ca.pem)
    material = store.tls_material(True)
    assert material.ca_pem == ca.pem and material.credentials_file is None
    key = store.new_pending_key()
    store.install_station_certificate(pem(ca.sign_csr(build_csr(key, IDENTITY, None))), IDENTITY)
    assert store.tls_material(True).credentials_file == store.credentials_file
    assert store.tls_material(False).credentials_file is None


def test_no_private_key_in_the_root_files_and_mode_of_the_store(store: CertificateStore) -> None:
    ca = make_ca()
    store.install_root(CSMS, ca.pem)
    key = store.new_pending_key()
    store.install_station_certificate(pem(ca.sign_csr(build_csr(key, IDENTITY, None))), IDENTITY)
    for path in store.directory.rglob("*.pem"):
        text = path.read_text()
        if path.parent.name == "station":
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
        else:
            assert "PRIVATE KEY" not in text


# ---- the signing round --------------------------------------------------------------------


class Csms:
    """Signs what the station sends, or not."""

    def __init__(self, ca: Ca, answer: bool = True, sign: bool = True) -> None:
        self.ca = ca
        self.answer = answer
        self.sign = sign
        self.csrs: list[str] = []
        self.signing: CertificateSigning | None = None
        self.tasks: list[asyncio.Task[object]] = []

    async def send_csr(self, csr: str) -> bool:
        self.csrs.append(csr)
        if self.answer and self.sign and self.signing is not None:
            chain = pem(self.ca.sign_csr(csr))
            self.tasks.append(
                asyncio.get_running_loop().create_task(self.signing.certificate_signed(chain))
            )
        return self.answer


def signing_for(
    store: CertificateStore, csms: Csms, tmp_path: Path, **params: object
) -> tuple[CertificateSigning, FakeOutbox]:
    outbox = FakeOutbox()
    events = SecurityEvents(tmp_path, outbox)
    signing = CertificateSigning(
        store,
        events,
        IDENTITY,
        lambda: "Example CPO",
        lambda: SigningParameters(**params),  # type: ignore[arg-type]
    )
    signing.send_csr = csms.send_csr
    csms.signing = signing
    return signing, outbox


async def test_signing_round_installs_the_certificate(
    store: CertificateStore, tmp_path: Path
) -> None:
    ca = make_ca("csms root")
    store.install_root(CSMS, ca.pem)
    csms = Csms(ca)
    signing, _ = signing_for(store, csms, tmp_path, wait_minimum_s=5.0)
    assert signing.request("test")
    assert not signing.request("test again")  # one round at a time
    await signing.wait_idle()
    await asyncio.gather(*csms.tasks)
    assert len(csms.csrs) == 1 and signing.state is SigningState.IDLE
    station = store.station_certificate()
    assert station is not None
    org = station.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert org[0].value == "Example CPO"
    log = signing.events.entries()
    assert [e.event_type for e in log] == ["ReconfigurationOfSecurityParameters"]
    await signing.stop()


async def test_signing_retries_with_doubling_waits_then_gives_up(
    store: CertificateStore, tmp_path: Path
) -> None:
    ca = make_ca("csms root")
    store.install_root(CSMS, ca.pem)
    csms = Csms(ca, sign=False)
    signing, _ = signing_for(store, csms, tmp_path, wait_minimum_s=0.05, repeat_times=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    signing.request("test")
    await signing.wait_idle()
    elapsed = loop.time() - started
    assert len(csms.csrs) == 3 and len(set(csms.csrs)) == 1  # the same CSR again
    assert elapsed >= 0.05 + 0.1 + 0.2 - 0.01
    assert store.station_certificate() is None
    await signing.stop()


async def test_a_rejected_csr_ends_the_round(store: CertificateStore, tmp_path: Path) -> None:
    ca = make_ca("csms root")
    store.install_root(CSMS, ca.pem)
    csms = Csms(ca, answer=False)
    signing, _ = signing_for(store, csms, tmp_path, wait_minimum_s=0.05, repeat_times=5)
    signing.request("test")
    await signing.wait_idle()
    assert len(csms.csrs) == 1


async def test_invalid_certificate_signed_is_a_security_event(
    store: CertificateStore, tmp_path: Path
) -> None:
    ca, stranger = make_ca("csms root"), make_ca("stranger")
    store.install_root(CSMS, ca.pem)
    csms = Csms(stranger)
    signing, _ = signing_for(store, csms, tmp_path, wait_minimum_s=0.05, repeat_times=0)
    signing.request("test")
    await signing.wait_idle()
    await asyncio.gather(*csms.tasks)
    assert store.station_certificate() is None
    entries = signing.events.entries()
    assert entries[-1].event_type == "InvalidChargingStationCertificate"
    assert entries[-1].tech_info and "not issued" in entries[-1].tech_info


async def test_renewal_before_expiry(store: CertificateStore, tmp_path: Path) -> None:
    ca = make_ca("csms root")
    store.install_root(CSMS, ca.pem)
    key = store.new_pending_key()
    short = ca.issue(name(IDENTITY), key.public_key(), days=3, start_days=-30)
    assert store.install_station_certificate(pem(short), IDENTITY).accepted
    csms = Csms(ca)
    signing, _ = signing_for(
        store, csms, tmp_path, wait_minimum_s=5.0, renew_before=dt.timedelta(days=10)
    )
    assert signing.renewal_due()
    # a certificate issued for less than renew_before is renewed in its last quarter only
    assert not CertificateSigning(
        store,
        signing.events,
        IDENTITY,
        lambda: "",
        lambda: SigningParameters(renew_before=dt.timedelta(days=10)),
        clock=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(days=20),
    ).renewal_due()
    signing.start(check_every_s=0.05)
    for _ in range(200):
        station = store.station_certificate()
        if station is not None and station.certificate != short:
            break
        await asyncio.sleep(0.02)
    station = store.station_certificate()
    assert station is not None and station.certificate != short
    assert not signing.renewal_due()
    await signing.stop()
