"""The station's certificate store: files under `<state_dir>/certificates/`.

Layout:

    csms-root/<sha256 of the DER>.pem          roots by type, one PEM file each
    manufacturer-root/..., v2g-root/..., mo-root/...
    station/credentials.pem                    the station certificate chain (leaf first)
                                               followed by its private key, mode 0600
    station/pending-key.pem                    the key of the outstanding CSR, mode 0600

The station directory is mode 0700. A station certificate and its key live in one file, so
they are replaced together by one rename and can never disagree after a power loss. Private
keys never leave this directory: nothing here logs or returns them except as a path for the
TLS context.

Every method blocks on the file system (and key generation on the CPU): the OCPP adapters
call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chargepoint.core.certificates.chain import ChainResult, verify_certificates
from chargepoint.core.certificates.files import (
    ensure_directory,
    remove,
    remove_stale_temp_files,
    write_atomically,
)
from chargepoint.core.certificates.hash_data import (
    CertificateHashData,
    HashAlgorithm,
    certificate_hash_data,
)
from chargepoint.core.certificates.keys import (
    KeyType,
    PrivateKey,
    generate_key,
    holds_key,
    load_private_key,
    private_key_pem,
)
from chargepoint.core.certificates.parsing import (
    CertificateRejected,
    check_root,
    check_validity,
    common_name,
    describe,
    parse_one_pem,
    parse_pem_chain,
    pem_text,
    signed_by,
    utc_now,
)
from chargepoint.core.certificates.usage import CertificateType
from chargepoint.store.files import DIR_MODE, FILE_MODE

log = logging.getLogger("chargepoint.certificates")

DEFAULT_MAX_ROOTS: Final = 20  # CertificateStoreMaxLength
STATION_DIR: Final = "station"
CREDENTIALS_FILE: Final = "credentials.pem"
PENDING_KEY_FILE: Final = "pending-key.pem"
_ROOT_FILE = re.compile(r"^[0-9a-f]{64}\.pem$")
Clock = Callable[[], dt.datetime]


class InstallStatus(enum.StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"  # the certificate is not acceptable
    FAILED = "Failed"  # it could not be stored


class DeleteStatus(enum.StrEnum):
    ACCEPTED = "Accepted"
    FAILED = "Failed"  # refused: it is in use, or it could not be removed
    NOT_FOUND = "NotFound"


@dataclass(frozen=True)
class InstallOutcome:
    status: InstallStatus
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.status is InstallStatus.ACCEPTED


@dataclass(frozen=True)
class DeleteOutcome:
    status: DeleteStatus
    reason: str = ""


@dataclass(frozen=True)
class InstalledCertificate:
    """A root in the store."""

    cert_type: CertificateType
    certificate: x509.Certificate
    path: Path

    def hash_data(self, algorithm: HashAlgorithm = HashAlgorithm.SHA256) -> CertificateHashData:
        return certificate_hash_data(self.certificate, None, algorithm)

    @property
    def pem(self) -> str:
        return pem_text(self.certificate)


@dataclass(frozen=True)
class StationCertificate:
    """The station's own certificate: `chain` from the leaf on (without the root), and the
    file that holds that chain and the private key (for `ssl.SSLContext.load_cert_chain`)."""

    chain: tuple[x509.Certificate, ...]
    credentials_file: Path

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc


@dataclass(frozen=True)
class TlsMaterial:
    """What the TLS client context of the CSMS link loads: the roots the CSMS server
    certificate is checked against (PEM, None: the YAML's csms.ca_file or the system's), and
    the station's certificate chain with its key (None: the YAML's csms.client_cert)."""

    ca_pem: str | None = None
    credentials_file: Path | None = None


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class CertificateStore:
    """Roots by type, the station certificate and its key; see the module docstring."""

    def __init__(
        self, directory: Path, *, max_roots: int = DEFAULT_MAX_ROOTS, clock: Clock = utc_now
    ) -> None:
        self.directory = directory
        self.max_roots = max_roots
        self._clock = clock

    # ---- roots ---------------------------------------------------------------------------

    def install_root(self, cert_type: CertificateType, pem: str) -> InstallOutcome:
        """InstallCertificate: one PEM certificate, a CA valid now; installing one that is
        already there is Accepted and changes nothing."""
        try:
            cert = parse_one_pem(pem)
            check_root(cert, self._clock())
        except CertificateRejected as exc:
            return InstallOutcome(InstallStatus.REJECTED, str(exc))
        directory = self.directory / cert_type.directory
        path = directory / f"{_fingerprint(cert)}.pem"
        if path.is_file():
            return InstallOutcome(InstallStatus.ACCEPTED, "already installed")
        if len(self.roots()) >= self.max_roots:
            return InstallOutcome(
                InstallStatus.REJECTED,
                f"the store holds {self.max_roots} root certificates already (its maximum)",
            )
        try:
            ensure_directory(directory, DIR_MODE)
            write_atomically(path, pem_text(cert).encode("ascii"), FILE_MODE)
        except OSError as exc:
            log.error("installing %s failed: %s", describe(cert), exc)
            return InstallOutcome(InstallStatus.FAILED, f"cannot store it: {exc.strerror}")
        log.info("%s installed: %s", cert_type.value, describe(cert))
        return InstallOutcome(InstallStatus.ACCEPTED)

    def roots(self, cert_type: CertificateType | None = None) -> list[InstalledCertificate]:
        """The installed roots of one type (or of all), oldest file first; an unreadable file
        is logged and left out."""
        types = [cert_type] if cert_type is not None else list(CertificateType)
        found: list[InstalledCertificate] = []
        for kind in types:
            directory = self.directory / kind.directory
            if not directory.is_dir():
                continue
            paths = sorted(
                (p for p in directory.iterdir() if _ROOT_FILE.match(p.name)),
                key=lambda p: (p.stat().st_mtime_ns, p.name),
            )
            for path in paths:
                try:
                    cert = parse_one_pem(path.read_text(encoding="ascii"))
                except (OSError, UnicodeDecodeError, CertificateRejected) as exc:
                    log.error("certificate file %s is unreadable: %s", path, exc)
                    continue
                found.append(InstalledCertificate(kind, cert, path))
        return found

    def root_certificates(self, cert_type: CertificateType) -> list[x509.Certificate]:
        return [r.certificate for r in self.roots(cert_type)]

    def hash_data(
        self,
        types: Iterable[CertificateType] | None = None,
        algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    ) -> list[tuple[CertificateType, CertificateHashData]]:
        """GetInstalledCertificateIds: (type, hash data) of every installed root of `types`
        (all types when None)."""
        wanted = set(types) if types is not None else set(CertificateType)
        return [
            (r.cert_type, r.hash_data(algorithm)) for r in self.roots() if r.cert_type in wanted
        ]

    def find(self, wanted: CertificateHashData) -> InstalledCertificate | None:
        for root in self.roots():
            if root.hash_data(wanted.hash_algorithm).matches(wanted):
                return root
        return None

    def is_station_certificate(self, wanted: CertificateHashData) -> bool:
        station = self.station_certificate()
        if station is None:
            return False
        leaf = station.certificate
        issuer = station.chain[1] if len(station.chain) > 1 else None
        if issuer is None:
            issuer = next(
                (r.certificate for r in self.roots() if signed_by(leaf, r.certificate)), None
            )
        if issuer is None:
            return False
        return certificate_hash_data(leaf, issuer, wanted.hash_algorithm).matches(wanted)

    def delete(self, wanted: CertificateHashData, *, keep_last_csms_root: bool) -> DeleteOutcome:
        """DeleteCertificate. The station certificate is never deleted this way (Failed), nor
        the last CSMS root while `keep_last_csms_root` (the connection depends on it)."""
        root = self.find(wanted)
        if root is None:
            if self.is_station_certificate(wanted):
                return DeleteOutcome(
                    DeleteStatus.FAILED, "the station certificate cannot be deleted"
                )
            return DeleteOutcome(DeleteStatus.NOT_FOUND, "no installed certificate matches")
        if (
            keep_last_csms_root
            and root.cert_type is CertificateType.CSMS_ROOT
            and len(self.roots(CertificateType.CSMS_ROOT)) == 1
        ):
            return DeleteOutcome(
                DeleteStatus.FAILED,
                "it is the only CSMS root certificate and the connection to the CSMS uses it",
            )
        try:
            remove(root.path)
        except OSError as exc:
            return DeleteOutcome(DeleteStatus.FAILED, f"cannot remove it: {exc.strerror}")
        log.info("%s deleted: %s", root.cert_type.value, describe(root.certificate))
        return DeleteOutcome(DeleteStatus.ACCEPTED)

    def verify_chain(
        self,
        leaf_pem: str,
        root_type: CertificateType,
        extra_roots: Sequence[x509.Certificate] = (),
    ) -> ChainResult:
        """Whether the PEM chain `leaf_pem` (leaf first, intermediates after it) leads to an
        installed root of `root_type` (or one of `extra_roots`), every certificate valid now.
        Never raises for bad input: the result says what is wrong."""
        from chargepoint.core.certificates.chain import verify_pem_chain

        roots = [*self.root_certificates(root_type), *extra_roots]
        return verify_pem_chain(leaf_pem, roots, self._clock())

    # ---- housekeeping --------------------------------------------------------------------

    def remove_stale_temp_files(self) -> list[str]:
        """At start: delete the temporary files a write cut off by a power loss left behind
        (a pending key's may hold a private key), in the store's own directories and for its
        own file names only. Returns their names (logged; the content never is)."""
        removed = remove_stale_temp_files(
            self._station_dir, lambda name: name in (CREDENTIALS_FILE, PENDING_KEY_FILE)
        )
        for cert_type in CertificateType:
            removed += remove_stale_temp_files(
                self.directory / cert_type.directory, lambda name: bool(_ROOT_FILE.match(name))
            )
        if removed:
            log.warning(
                "removed %d temporary certificate file(s) a power loss left: %s",
                len(removed),
                ", ".join(removed),
            )
        return removed

    # ---- the station certificate -----------------------------------------------------------

    @property
    def _station_dir(self) -> Path:
        return self.directory / STATION_DIR

    @property
    def credentials_file(self) -> Path:
        return self._station_dir / CREDENTIALS_FILE

    def station_certificate(self) -> StationCertificate | None:
        """The station certificate in use, None when there is none (or its file is
        unusable: logged)."""
        path = self.credentials_file
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.error("the station certificate file %s is unreadable: %s", path, exc)
            return None
        certs_text, _, _ = text.partition("-----BEGIN PRIVATE KEY-----")
        try:
            chain = parse_pem_chain(certs_text)
        except CertificateRejected as exc:
            log.error("the station certificate file %s is unusable: %s", path, exc)
            return None
        return StationCertificate(tuple(chain), path)

    def new_pending_key(self, key_type: KeyType = KeyType.EC_P256) -> PrivateKey:
        """A new key pair for a CSR, kept (mode 0600) until its certificate arrives; replaces
        an earlier pending key."""
        key = generate_key(key_type)
        ensure_directory(self._station_dir, 0o700)
        write_atomically(self._station_dir / PENDING_KEY_FILE, private_key_pem(key), 0o600)
        return key

    def pending_key(self) -> PrivateKey | None:
        try:
            return load_private_key((self._station_dir / PENDING_KEY_FILE).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("the pending key file is unusable (%s); a new CSR is needed", type(exc))
            return None

    def install_station_certificate(
        self,
        chain_pem: str,
        identity: str | None,
        extra_roots: Sequence[x509.Certificate] = (),
    ) -> InstallOutcome:
        """CertificateSigned: the chain must certify the pending key, lead to a CSMS root
        (installed, or one of `extra_roots`), be valid now and, when `identity` is given, name
        it as CN. Then it replaces the station certificate (and the pending key becomes the
        station key); otherwise nothing changes."""
        key = self.pending_key()
        if key is None:
            return InstallOutcome(InstallStatus.REJECTED, "no certificate signing request is open")
        try:
            chain = parse_pem_chain(chain_pem)
            check_validity(chain[0], self._clock())
        except CertificateRejected as exc:
            return InstallOutcome(InstallStatus.REJECTED, str(exc))
        leaf = chain[0]
        if not holds_key(leaf, key):
            return InstallOutcome(
                InstallStatus.REJECTED, "the certificate is not for the key of the open request"
            )
        if identity is not None and common_name(leaf) != identity:
            return InstallOutcome(
                InstallStatus.REJECTED,
                f"the certificate's CN is {common_name(leaf)!r}, not the station identity",
            )
        roots = [*self.root_certificates(CertificateType.CSMS_ROOT), *extra_roots]
        result = verify_certificates(chain, roots, self._clock())
        if not result.valid:
            return InstallOutcome(InstallStatus.REJECTED, result.reason)
        kept = [c for c in result.path if c not in roots] or [leaf]
        data = "".join(pem_text(c) for c in kept).encode("ascii") + private_key_pem(key)
        try:
            ensure_directory(self._station_dir, 0o700)
            write_atomically(self.credentials_file, data, 0o600)
            remove(self._station_dir / PENDING_KEY_FILE)
        except OSError as exc:
            log.error("storing the station certificate failed: %s", exc)
            return InstallOutcome(InstallStatus.FAILED, f"cannot store it: {exc.strerror}")
        log.info(
            "station certificate installed: %s, valid until %s",
            describe(leaf),
            f"{leaf.not_valid_after_utc:%Y-%m-%d}",
        )
        return InstallOutcome(InstallStatus.ACCEPTED)

    # ---- TLS -------------------------------------------------------------------------------

    def tls_material(self, use_station_certificate: bool) -> TlsMaterial:
        """The installed CSMS roots (PEM, None when there are none) and, when asked and
        present, the station certificate with its key."""
        roots = self.roots(CertificateType.CSMS_ROOT)
        ca_pem = "".join(r.pem for r in roots) or None
        station = self.station_certificate() if use_station_certificate else None
        return TlsMaterial(ca_pem, station.credentials_file if station is not None else None)
