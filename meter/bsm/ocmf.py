"""The OCMF record a BSM-WS36A prints for a snapshot (field guide 1.6).

Used by the meter simulator to produce records and by the driver to bound their length.
What real records do not show (escaping of unusual metadata, rounding, error state) is the
simulator's best knowledge and documented where it is decided.
"""

from __future__ import annotations

import enum
from decimal import ROUND_DOWN, Decimal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from meter.snapshot import INT16_NA, OcmfIdentity, SnapshotFields, SnapshotKind

SIGNATURE_ALGORITHM = "ECDSA-secp256r1-SHA256"
MAX_SIGNATURE_DER_LEN = 72  # P-256 DER signature: 70-72 bytes (shorter is rare but possible)
UNSET_TIME = "1970-01-01T00:00:00,000+0000 U"


class OcmfStyle(enum.Enum):
    """How a firmware generation prints energy."""

    KWH_TWO_DECIMALS = "kwh"  # newer comm module (e.g. f1d3d06): kWh, 2 decimals, X2/X3
    WH_INTEGER = "wh"  # older comm module (08d1aa3, 6d1dd3c): integer Wh, no X2/X3


def json_string(value: str | bytes) -> str:
    """A JSON string literal as the simulator prints it.

    `"` and `\\` get a backslash; control characters (U+0000-U+001F, U+007F) and `|` are
    written as \\u00XX (the long form for all of them, never \\n or \\t), so a record never
    holds a bare `|` inside its payload. Bytes are decoded as UTF-8 (invalid sequences become
    U+FFFD) and non-ASCII characters are kept as they are, not \\u-escaped.
    """
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or code == 0x7F or char == "|":
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _energy_wh(raw: int, scale: int, name: str) -> Decimal:
    if scale == INT16_NA:
        raise ValueError(f"{name} cannot be printed: the Wh scale factor is not available")
    return Decimal(raw).scaleb(scale)


def format_energy(wh: Decimal, style: OcmfStyle) -> str:
    """Energy in the style's unit: kWh with exactly 2 decimals, or integer Wh.

    Finer values are truncated (not rounded); real records never show this case, because
    the meter's 10 Wh resolution (Wh_SF 1) fits 2 kWh decimals exactly.
    """
    if style is OcmfStyle.KWH_TWO_DECIMALS:
        return str((wh / 1000).quantize(Decimal("0.01"), rounding=ROUND_DOWN))
    return str(int(wh.to_integral_value(rounding=ROUND_DOWN)))


def format_time(fields: SnapshotFields) -> str:
    """TM from Epoch + TZO in the meter's local offset, or the unset-clock form."""
    local = fields.local_time
    if local is None:
        return UNSET_TIME
    return local.strftime("%Y-%m-%dT%H:%M:%S,000%z") + " S"


def build_payload(fields: SnapshotFields, identity: OcmfIdentity, style: OcmfStyle) -> str:
    """The payload JSON exactly as the meter prints it (one line, no spaces).

    Evt != 0 prints ST "E" and EF "Et", as the real record of a meter with an event does
    (multivendor example_H); the device's exact rule for other error states is unknown.
    ValueError when Wh_SF holds its "not available" sentinel.
    """
    unit = "kWh" if style is OcmfStyle.KWH_TWO_DECIMALS else "Wh"
    rv = format_energy(_energy_wh(fields.rcr, fields.wh_sf, "RCR"), style)
    xv = format_energy(_energy_wh(fields.tot_wh_imp, fields.wh_sf, "TotWhImp"), style)
    tx = SnapshotKind(fields.typ).ocmf_tx
    mn, md = identity.manufacturer, identity.model
    parts = [
        '"FV":"1.0"',
        f'"GI":{json_string(f"{mn} {md}")}',
        f'"GS":{json_string(fields.ma1)}',
        f'"GV":{json_string(f"{identity.version_meter}, {identity.version_comm}")}',
        f'"PG":"T{fields.rcnt}"',
        f'"MV":{json_string(mn)}',
        f'"MM":{json_string(md)}',
        f'"MS":{json_string(fields.ma1)}',
        f'"IS":{"true" if fields.meta1 else "false"}',
        '"IT":"UNDEFINED"',
        f'"ID":{json_string(fields.meta1)}',
    ]
    if style is OcmfStyle.KWH_TWO_DECIMALS:
        if fields.meta2:
            parts.append(f'"X2":{json_string(fields.meta2)}')
        if fields.meta3:
            parts.append(f'"X3":{json_string(fields.meta3)}')
    ef, st = ("", "G") if fields.evt == 0 else ("Et", "E")
    reading = ",".join(
        [
            f'"TM":"{format_time(fields)}"',
            f'"TX":"{tx}"',
            f'"RV":{rv}',
            '"RI":"1-0:1.8.0*198"',
            f'"RU":"{unit}"',
            f'"XV":{xv}',
            '"XI":"1-0:1.8.0*255"',
            f'"XU":"{unit}"',
            f'"XT":{fields.typ}',
            '"RT":"AC"',
            f'"EF":"{ef}"',
            f'"ST":"{st}"',
        ]
    )
    parts.append(f'"RD":[{{{reading}}}]')
    return "{" + ",".join(parts) + "}"


def assemble(payload: str, signature_der: bytes) -> str:
    """`OCMF|<payload>|{"SA":"ECDSA-secp256r1-SHA256","SD":"<lower-case hex DER>"}`."""
    signature = f'{{"SA":"{SIGNATURE_ALGORITHM}","SD":"{signature_der.hex()}"}}'
    return f"OCMF|{payload}|{signature}"


def sign_payload(private_key: ec.EllipticCurvePrivateKey, payload: str) -> bytes:
    """DER ECDSA P-256 signature over SHA-256 of the payload's UTF-8 bytes."""
    return private_key.sign(payload.encode("utf-8"), ec.ECDSA(hashes.SHA256()))


def sign_and_assemble(private_key: ec.EllipticCurvePrivateKey, payload: str) -> str:
    """Sign the payload and return the whole record."""
    return assemble(payload, sign_payload(private_key, payload))


def max_record_length(payload: str) -> int:
    """Upper bound of the record's length in UTF-8 bytes (longest DER signature)."""
    return len(assemble(payload, bytes(MAX_SIGNATURE_DER_LEN)).encode("utf-8"))
