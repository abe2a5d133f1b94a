"""Reading PEM certificates the CSMS sends and the checks every installed certificate passes.

Errors say what the caller should answer: `CertificateRejected` (the certificate itself is
unusable: not PEM, not X.509, expired, not a CA...) is a Rejected to the CSMS.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

MAX_PEM_CHARS: Final = 100_000  # a chain of a few certificates; anything larger is refused
_PEM_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----"
)


class CertificateRejected(ValueError):
    """The certificate (or chain) is not acceptable; the reason is safe to log."""


def parse_pem_chain(text: str) -> list[x509.Certificate]:
    """Every certificate in `text` (PEM blocks, nothing else but whitespace around them), in
    order. CertificateRejected when there is none, when anything else is in the text, or a
    block is not an X.509 certificate."""
    if not isinstance(text, str) or not text.strip():
        raise CertificateRejected("no PEM certificate given")
    if len(text) > MAX_PEM_CHARS:
        raise CertificateRejected(f"the PEM text is longer than {MAX_PEM_CHARS} characters")
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise CertificateRejected("not a PEM certificate (no BEGIN/END CERTIFICATE block)")
    rest = _PEM_BLOCK.sub("", text)
    if rest.strip():
        raise CertificateRejected("the text holds something else besides PEM certificates")
    certs = []
    for number, block in enumerate(blocks, start=1):
        try:
            certs.append(x509.load_pem_x509_certificate(block.group(0).encode("ascii")))
        except ValueError as exc:
            raise CertificateRejected(f"PEM block {number} is not an X.509 certificate") from exc
    return certs


def parse_one_pem(text: str) -> x509.Certificate:
    certs = parse_pem_chain(text)
    if len(certs) != 1:
        raise CertificateRejected(f"expected one certificate, got {len(certs)}")
    return certs[0]


def pem_text(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM).decode("ascii")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_validity(cert: x509.Certificate, now: dt.datetime, what: str = "certificate") -> None:
    """CertificateRejected when `cert` is expired or not yet valid at `now`."""
    if cert.not_valid_after_utc < now:
        raise CertificateRejected(
            f"the {what} ({describe(cert)}) expired on {cert.not_valid_after_utc:%Y-%m-%d}"
        )
    if cert.not_valid_before_utc > now:
        raise CertificateRejected(
            f"the {what} ({describe(cert)}) is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M}"
        )


def is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bool(constraints.ca)


def self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` names and signed `cert`."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_root(cert: x509.Certificate, now: dt.datetime) -> None:
    """The checks a root (trust anchor) passes before it is installed: a CA, valid now, and
    when self-issued, signed by its own key."""
    if not is_ca(cert):
        raise CertificateRejected(f"{describe(cert)} is not a CA certificate (basicConstraints)")
    check_validity(cert, now)
    if self_issued(cert) and not signed_by(cert, cert):
        raise CertificateRejected(f"{describe(cert)}: the self-signature does not verify")


def common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def describe(cert: x509.Certificate) -> str:
    """A short text naming the certificate, for logs and answers."""
    return f"{cert.subject.rfc4514_string() or 'no subject'}, serial {cert.serial_number:x}"
