"""The few raw DER pieces of a certificate that RFC 6960 hashes: the issuer's Name as
encoded in the certificate and the subjectPublicKey BIT STRING contents.

cryptography re-encodes parsed Names and keys; these are read from the certificate's own
bytes instead, so the hashes match what any other implementation computes from the same
certificate.
"""

from __future__ import annotations

from cryptography import x509

_SEQUENCE = 0x30
_BIT_STRING = 0x03
_VERSION_TAG = 0xA0  # [0] EXPLICIT Version


class DerError(ValueError):
    """The bytes are not the DER structure expected."""


def _element(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the TLV at `pos`."""
    if pos + 2 > len(data):
        raise DerError("truncated DER element")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError("DER element runs past the end")
    return tag, pos, end


def _tbs_fields(cert: x509.Certificate) -> list[tuple[int, int, int]]:
    """The top-level fields of TBSCertificate (version left out), as (tag, start, end) with
    `start` at the field's tag, so that data[start:end] is the whole encoded field."""
    data = cert.tbs_certificate_bytes
    tag, pos, end = _element(data, 0)
    if tag != _SEQUENCE:
        raise DerError("TBSCertificate is not a SEQUENCE")
    fields = []
    first = True
    while pos < end:
        field_tag, _, field_end = _element(data, pos)
        if not (first and field_tag == _VERSION_TAG):
            fields.append((field_tag, pos, field_end))
        first = False
        pos = field_end
    return fields


def issuer_name_der(cert: x509.Certificate) -> bytes:
    """The DER of the certificate's issuer Name, as the certificate encodes it."""
    fields = _tbs_fields(cert)  # serialNumber, signature, issuer, validity, subject, spki, ...
    if len(fields) < 6:
        raise DerError("TBSCertificate has too few fields")
    _, start, end = fields[2]
    return cert.tbs_certificate_bytes[start:end]


def subject_public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING contents of the certificate (the key itself, without
    the algorithm identifier and without the unused-bits octet)."""
    data = cert.tbs_certificate_bytes
    fields = _tbs_fields(cert)
    if len(fields) < 6:
        raise DerError("TBSCertificate has too few fields")
    tag, start, _ = fields[5]
    if tag != _SEQUENCE:
        raise DerError("subjectPublicKeyInfo is not a SEQUENCE")
    _, body, _ = _element(data, start)
    _, _, algorithm_end = _element(data, body)
    key_tag, key_body, key_end = _element(data, algorithm_end)
    if key_tag != _BIT_STRING or key_body >= key_end:
        raise DerError("subjectPublicKey is not a BIT STRING")
    if data[key_body] != 0:
        raise DerError("subjectPublicKey has unused bits")
    return data[key_body + 1 : key_end]
