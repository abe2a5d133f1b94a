"""`chargepoint meter label`: the label for the enclosure shows the meter's serial and its
public key as text and as a QR code that scanners read back as that key."""

from __future__ import annotations

import asyncio
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
import zxingcpp
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image

from chargepoint.cli.main import main
from chargepoint.service.daemon import STORE_FILE
from chargepoint.store import Store
from meter.proof.keys import PublicKeyInfo, load_public_key
from tests.conftest import StationFactory
from tests.tools import tools_required

SVG = "{http://www.w3.org/2000/svg}"


def other_key_hex() -> str:
    """A P-256 key no simulated meter has."""
    return PublicKeyInfo.from_key(ec.generate_private_key(ec.SECP256R1()).public_key()).der_hex


def files_in(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def print_svg(svg: Path) -> bytes:
    """The SVG as a printer renders it (cairo), 300 dpi."""
    try:
        import cairosvg
    except OSError as exc:  # the package is there, the cairo library is not
        message = f"cairo is not installed (Debian package libcairo2): {exc}"
        if tools_required():
            pytest.fail(message)
        pytest.skip(message)
    printed = cairosvg.svg2png(url=str(svg), output_width=1240)
    assert isinstance(printed, bytes)
    return printed


def scan(png: bytes) -> list[str]:
    """What a QR scanner reads off the picture."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return [b.text for b in found if b.format == zxingcpp.BarcodeFormat.QRCode]


def svg_texts(path: Path, cls: str | None = None) -> list[str]:
    root = ET.parse(path).getroot()
    return [
        "".join(t.itertext())
        for t in root.iter(f"{SVG}text")
        if cls is None or t.get("class") == cls
    ]


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else {}), err


def check_key_on_label(svg: Path, png: Path, der_hex: str) -> None:
    expected = der_hex.upper()
    # the QR code, as printed from the SVG and as the PNG, scans back to the key
    printed = print_svg(svg)
    for picture in (printed, png.read_bytes()):
        assert scan(picture) == [expected]
        assert load_public_key(scan(picture)[0]).der_hex == der_hex.lower()
    # the same key as text, in groups of four, for eyes and hands
    lines = svg_texts(svg, "key")
    assert all(len(group) == 4 for line in lines for group in line.split()[:-1])
    assert "".join(lines).replace(" ", "") == expected


async def test_label_from_the_meter(
    station: StationFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    st = await station()
    sim = st.sim(42)
    out = tmp_path / "label-1"
    code, result, err = await run(
        capsys, "meter", "--url", st.url, "label", "--output", str(out), "--evse-id", "DE*X*E1*1"
    )
    assert code == 0, err
    svg, png = Path(result["svg"]), Path(result["png"])
    assert (svg, png) == (tmp_path / "label-1.svg", tmp_path / "label-1.png")
    assert result["public_key"] == sim.public_key_der.hex().upper()
    check_key_on_label(svg, png, sim.public_key_der.hex())
    values = svg_texts(svg, "value")
    assert values[:4] == [
        "BAUER Electronic BSM-WS36A-H01-1311-0000",
        sim.config.serial_number(),
        sim.meter_address,
        "DE*X*E1*1",
    ]
    with Image.open(png) as picture:
        assert picture.size == (1240, 874)  # A7 landscape at 300 dpi
        assert round(picture.info["dpi"][0]) == 300


async def test_a_meter_showing_another_key_gets_no_label(
    station: StationFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    st = await station()
    out = tmp_path / "label"
    code, _, err = await run(
        capsys,
        "meter",
        "--url",
        st.url,
        "label",
        "--public-key",
        other_key_hex(),
        "--output",
        str(out),
    )
    assert code == 3
    assert "differs from the pinned key" in err and "compare its label" in err
    assert files_in(tmp_path) == []


async def test_label_from_a_pinned_key_without_the_meter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = other_key_hex()
    key_file = tmp_path / "meter-1.pub"
    key_file.write_text(key + "\n")
    out = tmp_path / "reprint"
    code, result, err = await run(
        capsys,
        "meter",
        "label",
        "--public-key",
        str(key_file),
        "--serial",
        "1BSM3102700001",
        "--output",
        str(out),
    )
    assert code == 0, err
    check_key_on_label(Path(result["svg"]), Path(result["png"]), key)
    assert svg_texts(Path(result["svg"]), "value")[0] == "1BSM3102700001"


async def test_without_a_meter_the_key_and_serial_are_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await run(capsys, "meter", "label", "--public-key", other_key_hex())
    assert code == 2
    assert "or --public-key and --serial" in err
    code, _, err = await run(capsys, "meter", "pubkey")
    assert code == 2
    assert "--url is required" in err


def station_file(tmp_path: Path, url: str, public_key: str | None = None) -> Path:
    meter: dict[str, Any] = {"bus": "rs485", "unit": 42}
    if public_key is not None:
        meter["public_key"] = public_key
    doc = {
        "station": {"id": "CP-1"},
        "csms": {"url": "ws://127.0.0.1:9000/ocpp"},
        "meter_buses": [{"name": "rs485", "url": url}],
        "connectors": [{"id": 1, "evse_id": "DE*ABC*E0007*1", "meter": meter}],
        "store": {"state_dir": str(tmp_path / "state")},
    }
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_label_from_the_station_config_checks_the_pinned_key(
    station: StationFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    st = await station()
    key = st.sim(42).public_key_der.hex()
    # the key the daemon pinned in its store at first contact is another one: refused
    cfg = station_file(tmp_path, st.url)
    store = Store.open(tmp_path / "state" / STORE_FILE, "CP-1")
    store.set_setting("meter.1.public_key", other_key_hex())
    store.close()
    label = ("meter", "label", "--config", str(cfg), "--connector", "1")
    code, _, err = await run(capsys, *label, "--output", str(tmp_path / "x"))
    assert code == 3 and "differs from the pinned key" in err
    # the key pinned in the file wins; bus, unit and EVSE id come from the file too
    cfg = station_file(tmp_path, st.url, public_key=key)
    code, result, err = await run(capsys, *label, "--output", str(tmp_path / "c1.svg"))
    assert code == 0, err
    assert result["svg"] == str(tmp_path / "c1.svg")
    check_key_on_label(Path(result["svg"]), Path(result["png"]), key)
    assert svg_texts(Path(result["svg"]), "value")[3] == "DE*ABC*E0007*1"
