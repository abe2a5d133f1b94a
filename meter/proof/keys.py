"""Elliptic-curve public keys in the forms meters and backends print, and the simulator's key.

Accepted public key forms: DER SubjectPublicKeyInfo (hex, base64 or raw bytes), a raw
curve point (hex or bytes, P-256 unless a curve is named): SEC1 with its 04/02/03 prefix, or
the bare coordinates x||y as meters print them on their display and label (128 hex
characters for P-256), PEM, the OCA form `oca:base16:asn1:<hex>` (also base64 encoded), or a
path to a file holding any of these. Hex may be upper or lower case, grouped by spaces,
line breaks or colons.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class KeyFormatError(ValueError):
    """A key could not be read; the message is a one-line reason."""


CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp192r1": ec.SECP192R1,
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "secp256k1": ec.SECP256K1,
    "brainpoolP256r1": ec.BrainpoolP256R1,
    "brainpoolP384r1": ec.BrainpoolP384R1,
    "brainpoolP512r1": ec.BrainpoolP512R1,
}

_CURVE_ALIASES = {
    "p-192": "secp192r1",
    "prime192v1": "secp192r1",
    "p-256": "secp256r1",
    "p256": "secp256r1",
    "prime256v1": "secp256r1",
    "p-384": "secp384r1",
    "p384": "secp384r1",
    "p-521": "secp521r1",
    "brainpool256r1": "brainpoolP256r1",
    "brainpool384r1": "brainpoolP384r1",
    "brainpool512r1": "brainpoolP512r1",
}

OCA_PREFIX = "oca:base16:asn1:"
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})+$")
_B64_RE = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_MAX_KEY_FILE = 64 * 1024
# bare x||y coordinates (no SEC1 prefix) by length: P-256, P-384, P-521
_BARE_POINT_BITS = {64: 256, 96: 384, 132: 521}
_FORMS = (
    "give the key as printed on the meter's label: 128 hex characters (x||y), 130 with the "
    "04 prefix, DER hex (3059...), PEM, or a file holding one of these"
)


def curve_by_name(name: str) -> ec.EllipticCurve:
    """The curve object for a name such as `secp256r1`, `P-256` or `brainpoolP256r1`."""
    canonical = _CURVE_ALIASES.get(name.strip().lower(), name.strip())
    for known, cls in CURVES.items():
        if known.lower() == canonical.lower():
            return cls()
    raise KeyFormatError(f"unknown curve {name!r} (one of {', '.join(CURVES)})")


@dataclass(frozen=True)
class PublicKeyInfo:
    """A loaded EC public key with its curve name and DER SubjectPublicKeyInfo."""

    key: ec.EllipticCurvePublicKey
    curve_name: str
    der: bytes

    @classmethod
    def from_key(cls, key: ec.EllipticCurvePublicKey) -> PublicKeyInfo:
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(key=key, curve_name=key.curve.name, der=der)

    @functools.cached_property
    def der_hex(self) -> str:
        return self.der.hex()

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the DER encoding, lower-case hex (with `cryptography`'s hash, loaded
        already: hashlib would add to `verify`'s start-up)."""
        digest = hashes.Hash(hashes.SHA256())
        digest.update(self.der)
        return digest.finalize().hex()


def load_public_key(spec: str | bytes, curve: str | None = None) -> PublicKeyInfo:
    """Load a public key from any accepted form; `curve` names the curve of a raw point.

    Raises KeyFormatError with a one-line reason.
    """
    if isinstance(spec, bytes):
        return _from_file_bytes(spec, curve, "key bytes")
    text = spec.strip()
    if not text:
        raise KeyFormatError("empty public key")
    path = _existing_file(text)
    if path is not None:
        try:
            if path.stat().st_size > _MAX_KEY_FILE:
                raise KeyFormatError(f"key file {path} is too large to hold a public key")
            data = path.read_bytes()
        except OSError as exc:
            raise KeyFormatError(f"cannot read key file {path}: {exc.strerror}") from None
        return _from_file_bytes(data, curve, f"key file {path}")
    try:
        return _from_text(text, curve)
    except KeyFormatError:
        if _looks_like_path(text):
            raise KeyFormatError(f"no such key file: {text}") from None
        raise


def _existing_file(text: str) -> Path | None:
    if "\n" in text or len(text) > 4096:
        return None
    try:
        path = Path(text).expanduser()
        return path if path.is_file() else None
    except (OSError, ValueError):
        return None


def _looks_like_path(text: str) -> bool:
    """Hex, base64, PEM and OCA forms never hold a dot or start with '~'; paths usually do."""
    if "\n" in text or text.startswith("-----"):
        return False
    return "." in text or text.startswith("~") or (text.startswith("/") and "/" in text[1:])


def _from_file_bytes(data: bytes, curve: str | None, what: str) -> PublicKeyInfo:
    stripped = data.strip()
    if not stripped:
        raise KeyFormatError(f"{what}: empty")
    if data[:1] == b"\x30" or (data[:1] == b"\x04" and len(data) in (65, 97, 133)):
        with contextlib.suppress(KeyFormatError):
            return _from_binary(data, curve)
    try:
        text = stripped.decode("ascii")
    except UnicodeDecodeError:
        if len(data) in _BARE_POINT_BITS:
            return _from_binary(data, curve)
        raise KeyFormatError(f"{what}: neither a DER key nor text") from None
    return _from_text(text, curve)


def _from_text(text: str, curve: str | None) -> PublicKeyInfo:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return _from_pem(text.encode("ascii", errors="replace"))
    if text.lower().startswith("oca:"):
        return _from_oca(text, curve)
    compact = "".join(text.split())
    if _HEX_RE.match(compact):
        return _from_binary(bytes.fromhex(compact), curve)
    if ":" in compact and _HEX_RE.match(compact.replace(":", "")):
        return _from_binary(bytes.fromhex(compact.replace(":", "")), curve)
    if _B64_RE.match(compact):
        padded = compact + "=" * (-len(compact) % 4)
        try:
            if "-" in compact or "_" in compact:
                decoded = base64.urlsafe_b64decode(padded)
            else:
                decoded = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            raise KeyFormatError("public key is neither hex, base64, PEM nor OCA form") from None
        if decoded.startswith(b"oca:"):
            return _from_oca(decoded.decode("ascii", errors="replace"), curve)
        if decoded.startswith(b"-----BEGIN"):
            return _from_pem(decoded)
        return _from_binary(decoded, curve)
    raise KeyFormatError("public key is neither hex, base64, PEM, OCA form nor a file")


def _from_oca(text: str, curve: str | None) -> PublicKeyInfo:
    if not text.lower().startswith(OCA_PREFIX):
        raise KeyFormatError(f"unsupported OCA key form (expected {OCA_PREFIX}<hex>)")
    body = "".join(text[len(OCA_PREFIX) :].split())
    if not _HEX_RE.match(body):
        raise KeyFormatError("OCA key form holds no hex after 'oca:base16:asn1:'")
    return _from_binary(bytes.fromhex(body), curve)


def _from_pem(data: bytes) -> PublicKeyInfo:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"PEM is not a readable public key: {_first_line(exc)}") from None
    return _ec_info(key)


def _from_binary(data: bytes, curve: str | None) -> PublicKeyInfo:
    if len(data) in _BARE_POINT_BITS:
        # no DER key and no prefixed point has these lengths: the bare coordinates x||y
        return _from_point(b"\x04" + data, curve)
    if data[:1] in (b"\x02", b"\x03", b"\x04"):
        return _from_point(data, curve)
    if data[:1] != b"\x30":
        raise KeyFormatError(
            f"{len(data)} key bytes are neither DER SubjectPublicKeyInfo nor a curve point: "
            f"{_FORMS}"
        )
    try:
        key = serialization.load_der_public_key(data)
    except UnsupportedAlgorithm:
        raise KeyFormatError("DER key uses a curve this system cannot verify") from None
    except ValueError as exc:
        raise KeyFormatError(f"not a DER public key: {_first_line(exc)}") from None
    info = _ec_info(key)
    if curve is not None and curve_by_name(curve).name != info.curve_name:
        raise KeyFormatError(f"key is on {info.curve_name}, not on {curve}")
    return info


def _from_point(data: bytes, curve: str | None) -> PublicKeyInfo:
    if curve is not None:
        curve_obj = curve_by_name(curve)
    else:
        size = {65: 256, 33: 256, 97: 384, 49: 384, 133: 521, 67: 521}.get(len(data))
        if size is None:
            raise KeyFormatError(
                f"raw curve point of {len(data)} bytes fits no known curve: {_FORMS}"
            )
        curve_obj = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}[size]
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(curve_obj, data)
    except ValueError as exc:
        raise KeyFormatError(f"not a point on {curve_obj.name}: {_first_line(exc)}") from None
    return PublicKeyInfo.from_key(key)


def _ec_info(key: object) -> PublicKeyInfo:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyFormatError(f"not an elliptic-curve key ({type(key).__name__})")
    return PublicKeyInfo.from_key(key)


def _first_line(exc: BaseException) -> str:
    """A short reason: cryptography's 'Details:' part if it gives one, else the first line."""
    text = str(exc).strip()
    if "Details: " in text:
        text = text.split("Details: ", 1)[1]
    return text.splitlines()[0] if text else type(exc).__name__


def public_der(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """DER SubjectPublicKeyInfo of a private key's public half."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_or_create_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load the P-256 key at `path`, or create it (PKCS8 PEM, mode 0600) if it is absent.

    An existing file is never overwritten; an unreadable or corrupt one raises KeyFormatError.
    """
    if path.exists():
        return _load_private(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if the file appeared meanwhile: never overwrite
        except FileExistsError:
            return _load_private(path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return key


def _load_private(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFormatError(f"cannot read private key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        reason = _first_line(exc)
        raise KeyFormatError(f"private key file {path} is not usable: {reason}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFormatError(f"private key file {path} does not hold a P-256 key")
    return key


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
