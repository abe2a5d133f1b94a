"""Public keys in every form a meter label, a backend or a file may hold; the simulator key."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from meter.proof.keys import (
    KeyFormatError,
    PublicKeyInfo,
    load_or_create_private_key,
    load_public_key,
    public_der,
)
from tests.real_vectors import bsm_public_key_hex, bsm_vectors, multivendor_vectors

A_NAME = "A_meter_001BZR1521070006"


def _a_der_hex() -> str:
    return bsm_public_key_hex(A_NAME)


def _pem(der_hex: str) -> str:
    body = base64.b64encode(bytes.fromhex(der_hex)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def _assert_is_meter_a(info: PublicKeyInfo) -> None:
    assert info.der_hex == _a_der_hex()
    assert info.curve_name == "secp256r1"


def test_der_hex_gives_curve_der_and_fingerprint() -> None:
    info = load_public_key(_a_der_hex())
    _assert_is_meter_a(info)
    assert info.der == bytes.fromhex(_a_der_hex())
    assert info.fingerprint == hashlib.sha256(info.der).hexdigest()
    assert isinstance(info.key, ec.EllipticCurvePublicKey)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(lambda h: h.upper(), id="upper-case-hex"),
        pytest.param(lambda h: f"  {h[:40]}\n{h[40:]}  \n", id="wrapped-hex"),
        pytest.param(lambda h: bsm_vectors()["public_keys"][A_NAME]["raw_point_hex"], id="point"),
        pytest.param(_pem, id="pem"),
        pytest.param(lambda h: base64.b64encode(bytes.fromhex(h)).decode(), id="base64-der"),
        pytest.param(lambda h: f"oca:base16:asn1:{h}", id="oca"),
        pytest.param(
            lambda h: base64.b64encode(f"oca:base16:asn1:{h}".encode()).decode(), id="base64-oca"
        ),
    ],
)
def test_every_text_form_loads_the_same_key(spec: Callable[[str], str]) -> None:
    _assert_is_meter_a(load_public_key(spec(_a_der_hex())))


def test_raw_der_bytes_load() -> None:
    _assert_is_meter_a(load_public_key(bytes.fromhex(_a_der_hex())))


@pytest.mark.parametrize("form", ["hex", "pem", "der", "oca", "point-bytes"])
def test_key_files_in_every_form(tmp_path: Path, form: str) -> None:
    der_hex = _a_der_hex()
    path = tmp_path / f"meter.{form}"
    content: bytes = {
        "hex": (der_hex + "\n").encode(),
        "pem": _pem(der_hex).encode(),
        "der": bytes.fromhex(der_hex),
        "oca": f"oca:base16:asn1:{der_hex}\n".encode(),
        "point-bytes": bytes.fromhex(bsm_vectors()["public_keys"][A_NAME]["raw_point_hex"]),
    }[form]
    path.write_bytes(content)
    _assert_is_meter_a(load_public_key(str(path)))


@pytest.mark.parametrize(
    ("example", "curve"),
    [
        ("example_A", "secp256r1"),
        ("example_C", "brainpoolP256r1"),
        ("example_D", "secp384r1"),
        ("example_G", "secp256k1"),
    ],
)
def test_real_keys_of_other_makers_name_their_curve(example: str, curve: str) -> None:
    der_hex = multivendor_vectors()[example]["public_key_der_hex"]
    info = load_public_key(der_hex)
    assert info.curve_name == curve
    assert info.der_hex == der_hex


def test_raw_point_uses_the_named_curve() -> None:
    der_hex = multivendor_vectors()["example_C"]["public_key_der_hex"]
    point_hex = der_hex[-130:]  # the uncompressed point closes the SubjectPublicKeyInfo
    assert point_hex.startswith("04")
    info = load_public_key(point_hex, curve="brainpoolP256r1")
    assert info.curve_name == "brainpoolP256r1"
    assert info.der_hex == der_hex


def test_raw_point_defaults_to_p256_and_rejects_a_point_off_that_curve() -> None:
    point_hex = multivendor_vectors()["example_C"]["public_key_der_hex"][-130:]
    with pytest.raises(KeyFormatError, match="secp256r1"):
        load_public_key(point_hex)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("not a key at all!", "neither"),
        ("3059301306072a8648ce3d0201", "DER"),
        ("04" + "11" * 64, "not a point"),
        ("04abcdef", "fits no known curve"),
        ("oca:base64:asn1:abcd", "OCA"),
        ("oca:base16:asn1:xyz", "hex"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PEM"),
        ("/nonexistent/dir/meter.pem", "no such key file"),
    ],
)
def test_bad_keys_raise_a_one_line_reason(spec: str, reason: str) -> None:
    with pytest.raises(KeyFormatError, match=reason) as caught:
        load_public_key(spec)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_rsa_key_is_refused() -> None:
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = rsa_pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyFormatError, match="not an elliptic-curve key"):
        load_public_key(pem.decode())


def test_raw_der_of_another_curve_than_named_is_refused() -> None:
    with pytest.raises(KeyFormatError, match="brainpoolP256r1"):
        load_public_key(_a_der_hex(), curve="brainpoolP256r1")


def test_private_key_is_created_p256_pkcs8_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "meter.key"
    key = load_or_create_private_key(path)
    assert key.curve.name == "secp256r1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")
    assert sorted(os.listdir(path.parent)) == ["meter.key"]  # no temporary file left
    loaded = serialization.load_pem_private_key(text.encode(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert public_der(loaded) == public_der(key)


def test_existing_private_key_is_loaded_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "meter.key"
    first = load_or_create_private_key(path)
    content = path.read_bytes()
    second = load_or_create_private_key(path)
    assert public_der(second) == public_der(first)
    assert path.read_bytes() == content


def test_corrupt_private_key_raises_and_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "meter.key"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    before = path.read_bytes()
    with pytest.raises(KeyFormatError, match="not usable"):
        load_or_create_private_key(path)
    assert path.read_bytes() == before


def test_empty_private_key_file_is_corrupt_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "meter.key"
    path.write_bytes(b"")
    with pytest.raises(KeyFormatError):
        load_or_create_private_key(path)
    assert path.read_bytes() == b""


def test_private_key_on_another_curve_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meter.key"
    other = ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyFormatError, match="P-256"):
        load_or_create_private_key(path)


def test_public_der_loads_as_the_same_public_key(tmp_path: Path) -> None:
    key = load_or_create_private_key(tmp_path / "k.pem")
    info = load_public_key(public_der(key).hex())
    assert info.curve_name == "secp256r1"
    assert info.key.public_numbers() == key.public_key().public_numbers()
