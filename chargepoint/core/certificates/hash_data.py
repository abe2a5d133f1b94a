"""CertificateHashData: how OCPP names an installed certificate (RFC 6960 CertID).

- issuerNameHash: the hash of the DER of the issuer's distinguished name;
- issuerKeyHash: the hash of the issuer's public key, the subjectPublicKey BIT STRING contents
  only (not the whole SubjectPublicKeyInfo);
- serialNumber: the serial in hexadecimal, without "0x" and without leading zeros.

Both hashes are lowercase hex. A root is its own issuer. Matching ignores hex case and leading
zeros of the serial, since a CSMS may send either.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509

from chargepoint.core.certificates.der import issuer_name_der, subject_public_key_bits


class HashAlgorithm(enum.StrEnum):
    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"


_HASHLIB: Final[dict[HashAlgorithm, str]] = {
    HashAlgorithm.SHA256: "sha256",
    HashAlgorithm.SHA384: "sha384",
    HashAlgorithm.SHA512: "sha512",
}


class UnknownHashAlgorithm(ValueError):
    """A CSMS named a hash algorithm OCPP does not define."""


def hash_algorithm(name: str) -> HashAlgorithm:
    try:
        return HashAlgorithm(name)
    except ValueError:
        raise UnknownHashAlgorithm(f"unknown hash algorithm {name!r}") from None


@dataclass(frozen=True)
class CertificateHashData:
    hash_algorithm: HashAlgorithm
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str

    def wire(self) -> dict[str, str]:
        """CertificateHashDataType as on the wire (camelCase), both versions."""
        return {
            "hashAlgorithm": self.hash_algorithm.value,
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> CertificateHashData:
        """From camelCase or snake_case keys (the ocpp library hands over snake_case);
        UnknownHashAlgorithm for an algorithm OCPP does not define, KeyError when a field is
        missing."""

        def field(camel: str, snake: str) -> str:
            value = data[camel] if camel in data else data[snake]
            return str(value)

        return cls(
            hash_algorithm(field("hashAlgorithm", "hash_algorithm")),
            field("issuerNameHash", "issuer_name_hash"),
            field("issuerKeyHash", "issuer_key_hash"),
            field("serialNumber", "serial_number"),
        )

    def matches(self, other: CertificateHashData) -> bool:
        return (
            self.hash_algorithm == other.hash_algorithm
            and self.issuer_name_hash.lower() == other.issuer_name_hash.lower()
            and self.issuer_key_hash.lower() == other.issuer_key_hash.lower()
            and _serial(self.serial_number) == _serial(other.serial_number)
        )


def _serial(text: str) -> str:
    return text.lower().removeprefix("0x").lstrip("0") or "0"


def serial_hex(cert: x509.Certificate) -> str:
    """The serial number as OCPP writes it: lowercase hex without leading zeros."""
    return format(cert.serial_number, "x")


def certificate_hash_data(
    cert: x509.Certificate,
    issuer: x509.Certificate | None = None,
    algorithm: HashAlgorithm = HashAlgorithm.SHA256,
) -> CertificateHashData:
    """The hash data of `cert` issued by `issuer` (None: `cert` is its own issuer, a root)."""
    name = hashlib.new(_HASHLIB[algorithm], issuer_name_der(cert)).hexdigest()
    key = hashlib.new(_HASHLIB[algorithm], subject_public_key_bits(issuer or cert)).hexdigest()
    return CertificateHashData(algorithm, name, key, serial_hex(cert))
