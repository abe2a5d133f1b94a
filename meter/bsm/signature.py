"""The BSM-WS36A snapshot signature ("Chargy/BSM" format, field guide 1.5).

The meter hashes an abstract byte string of its snapshot fields with SHA-256 and signs the
digest with ECDSA P-256 (DER signature, not low-S normalised).
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from meter.proof.keys import PublicKeyInfo
from meter.snapshot import LegacySnapshotFields, SnapshotFields


class Unit(enum.IntEnum):
    """DLMS unit codes used in the abstract representation."""

    MINUTE = 6
    SECOND = 7
    WATT = 27
    WATT_HOUR = 30
    NONE = 255


class _Scale(enum.Enum):
    NONE = "none"
    WH = "wh_sf"
    W = "w_sf"


@dataclass(frozen=True)
class _Num:
    attr: str
    unit: Unit = Unit.NONE
    scale: _Scale = _Scale.NONE
    signed: bool = False  # int16 register, sign-extended to 32 bits


@dataclass(frozen=True)
class _Str:
    attr: str


_Field = _Num | _Str

CURRENT_LAYOUT: tuple[_Field, ...] = (
    _Num("typ"),
    _Num("rcr", Unit.WATT_HOUR, _Scale.WH),
    _Num("tot_wh_imp", Unit.WATT_HOUR, _Scale.WH),
    _Num("w", Unit.WATT, _Scale.W, signed=True),
    _Str("ma1"),
    _Num("rcnt"),
    _Num("os", Unit.SECOND),
    _Num("epoch", Unit.SECOND),
    _Num("tzo", Unit.MINUTE, signed=True),
    _Num("epoch_set_cnt"),
    _Num("epoch_set_os", Unit.SECOND),
    _Num("di"),
    _Num("do"),
    _Str("meta1"),
    _Str("meta2"),
    _Str("meta3"),
    _Num("evt"),
)

LEGACY_LAYOUT: tuple[_Field, ...] = (
    _Num("typ"),
    _Num("tot_wh_imp", Unit.WATT_HOUR, _Scale.WH),
    _Num("w", Unit.WATT, _Scale.W, signed=True),
    _Str("ma1"),
    _Num("rcnt"),
    _Num("os", Unit.SECOND),
    _Num("epoch", Unit.SECOND),
    _Num("tzo", Unit.MINUTE, signed=True),
    _Num("epoch_set_cnt"),
    _Num("epoch_set_os", Unit.SECOND),
    _Num("di"),
    _Num("do"),
    _Num("di_chg_os", Unit.SECOND),
    _Num("di_chg_epoch", Unit.SECOND),
    _Num("di_chg_tzo", Unit.MINUTE, signed=True),
    _Num("do_chg_os", Unit.SECOND),
    _Num("do_chg_epoch", Unit.SECOND),
    _Num("do_chg_tzo", Unit.MINUTE, signed=True),
    _Str("meta1"),
    _Str("meta2"),
    _Str("meta3"),
    _Num("evt"),
)

AnyFields = SnapshotFields | LegacySnapshotFields


@dataclass(frozen=True)
class SnapshotVerification:
    """Outcome of a snapshot signature check; `reason` is one line."""

    valid: bool
    reason: str


def _int16(value: int, name: str) -> int:
    if 0x8000 <= value <= 0xFFFF:  # raw register word: sign-extend
        return value - 0x10000
    if not -0x8000 <= value <= 0x7FFF:
        raise ValueError(f"{name} = {value} does not fit an int16 register")
    return value


def _number(value: int, scale: int, unit: Unit, signed: bool, name: str) -> bytes:
    if not -128 <= scale <= 127:
        raise ValueError(f"scale factor {scale} of {name} does not fit int8")
    if signed:
        packed = struct.pack(">i", _int16(value, name))
    else:
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"{name} = {value} does not fit a uint32")
        packed = struct.pack(">I", value)
    return packed + struct.pack(">bB", scale, unit)


def _string(value: bytes) -> bytes:
    data = value.rstrip(b"\x00")
    return struct.pack(">I", len(data)) + data


def _represent(fields: AnyFields, layout: Sequence[_Field]) -> bytes:
    parts: list[bytes] = []
    for spec in layout:
        value = getattr(fields, spec.attr)
        if isinstance(spec, _Str):
            parts.append(_string(value))
            continue
        scale = 0 if spec.scale is _Scale.NONE else int(getattr(fields, spec.scale.value))
        parts.append(_number(int(value), scale, spec.unit, spec.signed, spec.attr))
    return b"".join(parts)


def abstract_representation(fields: SnapshotFields) -> bytes:
    """The byte string current firmware hashes (17 fields); ValueError if a value won't fit."""
    return _represent(fields, CURRENT_LAYOUT)


def legacy_abstract_representation(fields: LegacySnapshotFields) -> bytes:
    """The byte string firmware 1.7 hashes (22 fields, manual appendix D)."""
    return _represent(fields, LEGACY_LAYOUT)


def _any_representation(fields: AnyFields) -> bytes:
    if isinstance(fields, LegacySnapshotFields):
        return legacy_abstract_representation(fields)
    return abstract_representation(fields)


def snapshot_digest(fields: AnyFields) -> bytes:
    """SHA-256 of the abstract representation (legacy layout for LegacySnapshotFields)."""
    return hashlib.sha256(_any_representation(fields)).digest()


def sign_snapshot(private_key: ec.EllipticCurvePrivateKey, fields: AnyFields) -> bytes:
    """DER ECDSA signature over the snapshot digest, as the meter makes it."""
    return private_key.sign(snapshot_digest(fields), ec.ECDSA(Prehashed(hashes.SHA256())))


def verify_snapshot_signature(
    fields: AnyFields, signature_der: bytes, public_key: PublicKeyInfo
) -> SnapshotVerification:
    """Check a snapshot signature; never raises for bad fields or a malformed signature."""
    try:
        digest = snapshot_digest(fields)
    except ValueError as exc:
        return SnapshotVerification(False, f"snapshot fields cannot be hashed: {exc}")
    try:
        decode_dss_signature(signature_der)
    except ValueError:
        return SnapshotVerification(False, f"malformed DER signature ({len(signature_der)} bytes)")
    try:
        public_key.key.verify(signature_der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return SnapshotVerification(
            False,
            f"signature does not match snapshot sha256 {digest.hex()} and key "
            f"sha256:{public_key.fingerprint[:16]} ({public_key.curve_name})",
        )
    return SnapshotVerification(True, f"valid signature over snapshot sha256 {digest.hex()}")
