"""The station's key pairs and certificate signing requests (PKCS#10).

ECDSA P-256 by default, RSA 2048 when configured. The CSR's subject is the one the OCPP
security specifications ask for: O = the operator's organization (1.6 CpoName, 2.0.1
SecurityCtrlr.OrganizationName), CN = the station identity. Private keys are serialized only
to be written to a file of mode 0600 (`store.py`); nothing here logs them.
"""

from __future__ import annotations

import enum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
ORGANIZATION_MAX = 64  # X.520 ub-organization-name
COMMON_NAME_MAX = 64  # X.520 ub-common-name


class KeyType(enum.StrEnum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"


class KeyMismatch(ValueError):
    """A certificate does not hold the public key of the key pair it should belong to."""


def generate_key(key_type: KeyType = KeyType.EC_P256) -> PrivateKey:
    """A new private key (RSA takes tens of milliseconds or more: call it off the event loop)."""
    if key_type is KeyType.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if key_type is KeyType.EC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    size = 2048 if key_type is KeyType.RSA_2048 else 3072
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def build_csr(key: PrivateKey, common_name: str, organization: str | None) -> str:
    """A PEM PKCS#10 request signed with `key`; subject O=`organization` (left out when
    empty), CN=`common_name`."""
    attributes = []
    if organization:
        attributes.append(
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:ORGANIZATION_MAX])
        )
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name[:COMMON_NAME_MAX]))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: written only to a file of mode 0600."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(data: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"unsupported key type {type(key).__name__}")
    return key


def _public_der(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def holds_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Whether `cert` certifies the public half of `key`."""
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return False
    return _public_der(public) == _public_der(key.public_key())
