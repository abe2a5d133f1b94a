"""The station's certificates: the store of roots and of the station certificate with its key,
chain validation, key pairs and CSRs, and the signing of the station certificate.

Typed API for the rest of the daemon (the OCPP adapters, signed firmware updates):

- `CertificateStore(directory)`: `install_root(type, pem)`, `roots(type)`, `hash_data(...)`,
  `delete(hash_data, keep_last_csms_root=...)`, `verify_chain(leaf_pem, root_type)` ->
  `ChainResult`, `station_certificate()` -> `StationCertificate` (the chain and the file with
  it and its key, for TLS), `tls_material(...)`, `remove_stale_temp_files()` (at start: what
  a write cut off by a power loss left);
- `CertificateType` (the OCPP 2.0.1 names; `TYPES_16`/`NAMES_16` for 1.6's);
- `CertificateHashData` (RFC 6960: issuerNameHash over the issuer Name DER, issuerKeyHash over
  the issuer's subjectPublicKey bits, serialNumber hex without leading zeros);
- `CertificateSigning`: the CSR round trip with retries and renewal before expiry.

Every store method blocks on files: call it through `asyncio.to_thread` from the event loop.
"""

from chargepoint.core.certificates.chain import ChainProblem, ChainResult
from chargepoint.core.certificates.hash_data import (
    CertificateHashData,
    HashAlgorithm,
    UnknownHashAlgorithm,
    certificate_hash_data,
    hash_algorithm,
)
from chargepoint.core.certificates.keys import KeyType, build_csr, generate_key
from chargepoint.core.certificates.parsing import CertificateRejected, parse_pem_chain
from chargepoint.core.certificates.signing import (
    CertificateSigning,
    SigningParameters,
    SigningState,
)
from chargepoint.core.certificates.store import (
    CertificateStore,
    DeleteOutcome,
    DeleteStatus,
    InstalledCertificate,
    InstallOutcome,
    InstallStatus,
    StationCertificate,
    TlsMaterial,
)
from chargepoint.core.certificates.usage import NAMES_16, TYPES_16, TYPES_201, CertificateType

__all__ = [
    "NAMES_16",
    "TYPES_16",
    "TYPES_201",
    "CertificateHashData",
    "CertificateRejected",
    "CertificateSigning",
    "CertificateStore",
    "CertificateType",
    "ChainProblem",
    "ChainResult",
    "DeleteOutcome",
    "DeleteStatus",
    "HashAlgorithm",
    "InstallOutcome",
    "InstallStatus",
    "InstalledCertificate",
    "KeyType",
    "SigningParameters",
    "SigningState",
    "StationCertificate",
    "TlsMaterial",
    "UnknownHashAlgorithm",
    "build_csr",
    "certificate_hash_data",
    "generate_key",
    "hash_algorithm",
    "parse_pem_chain",
]
