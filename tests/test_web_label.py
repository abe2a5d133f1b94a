"""The commissioning label can point at the published verifier page: its QR code then holds
`URL#key=<key>`, which opens the page with the meter's key filled in."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
import zxingcpp
from PIL import Image

from chargepoint.cli.main import main
from tests.real_vectors import bsm_public_key_hex
from tests.signed_store import real_meter_station

URL = "https://station.example/verify.html"


def scan(path: Path) -> list[str]:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(path.read_bytes())))
    return [b.text for b in found if b.format == zxingcpp.BarcodeFormat.QRCode]


def label(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert main(["meter", "label", "--format", "png", *args]) == 0
    answer: dict[str, str] = json.loads(capsys.readouterr().out)
    return answer


def test_the_qr_code_opens_the_verifier_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = bsm_public_key_hex("A_meter_001BZR1521070006")
    base = ["--public-key", key, "--serial", "001BZR1521070006"]
    plain = label([*base, "--output", str(tmp_path / "plain")], capsys)
    assert scan(Path(plain["png"])) == [key.upper()]  # without a URL: the key alone
    linked = label([*base, "--verifier-url", URL, "--output", str(tmp_path / "link")], capsys)
    expected = f"{URL}#key={key.upper()}"
    assert linked["qr_code"] == expected and scan(Path(linked["png"])) == [expected]


def test_the_station_config_names_the_verifier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = real_meter_station(tmp_path)
    doc = yaml.safe_load(real.config.read_text())
    doc["web"] = {"verifier_url": URL}
    real.config.write_text(yaml.safe_dump(doc))
    answer = label(
        ["--config", str(real.config), "--connector", "1", "--public-key", real.key_hex,
         "--serial", "S1", "--output", str(tmp_path / "cfg")],
        capsys,
    )  # fmt: skip
    assert answer["qr_code"] == f"{URL}#key={real.key_hex.upper()}"
