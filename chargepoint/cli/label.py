"""`chargepoint meter label`: the commissioning label of a meter, as SVG and PNG.

From the meter itself (`--url`: its identity and public key, refused when it differs from
`--public-key`/`--pinned-key`), or without a meter from a key already pinned
(`--public-key KEY --serial SN`), e.g. to print a label again. `--config FILE --connector N`
takes the meter's bus, unit, EVSE id and pinned key (the config's, else the one the store
pinned) from the station's configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

from chargepoint.config import EXIT_CONFIG, ConfigError, StationConfig, load_config
from chargepoint.proof.label import (
    LabelData,
    LabelError,
    key_text,
    qr_text,
    render_png,
    render_svg,
)
from chargepoint.service.daemon import STORE_FILE
from chargepoint.store import Store, StoreError
from chargepoint.store.files import FILE_MODE, open_binary, open_text
from meter.bsm.driver import BsmWs36a, MeterTimeouts
from meter.errors import MeterError, explain
from meter.modbus.bus import ModbusBus
from meter.modbus.link import LinkUrlError
from meter.proof.keys import KeyFormatError, load_public_key

EXIT_USAGE = 2
EXIT_METER_ERROR = 3  # as every `chargepoint meter` command


def add_label_parser(ops: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = ops.add_parser(
        "label",
        help="write the commissioning label: serial and public key as text and QR code",
        description=(
            "Write a printable label (A7, SVG and 300 dpi PNG) with the meter's serial number, "
            "its OCMF meter id and its public key as text and as a QR code, for the station's "
            "enclosure. Reads the meter given by --url, or takes --public-key and --serial "
            "without a meter. Prints what it wrote as JSON."
        ),
    )
    p.add_argument(
        "--output",
        type=Path,
        help="path of the label without extension (default: ./meter-label-SERIAL)",
    )
    p.add_argument(
        "--format",
        choices=("both", "svg", "png"),
        default="both",
        help="write the SVG, the 300 dpi PNG, or both (default)",
    )
    p.add_argument(
        "--public-key",
        help="the key (hex or a file, e.g. the one pinned in the config): with --url the meter "
        "must show this key; without --url the label shows it",
    )
    p.add_argument("--serial", help="the serial number to print (default: the meter's)")
    p.add_argument("--meter-id", help="the OCMF meter id (MS) to print (default: the meter's)")
    p.add_argument("--model", help="manufacturer and model to print (default: the meter's)")
    p.add_argument("--evse-id", help="the EVSE id of the meter's connector")
    p.add_argument(
        "--config",
        type=Path,
        help="the station's YAML file: with --connector, the meter's bus, unit, EVSE id and "
        "pinned key come from it (stop the daemon first: one program at a time on the line)",
    )
    p.add_argument("--connector", type=int, help="with --config: the connector of the meter")
    p.add_argument(
        "--verifier-url",
        help="the address of the published verifier page (chargepoint verifier-page): the QR "
        "code then holds URL#key=KEY and opens it with the key filled in (default with "
        "--config: web.verifier_url)",
    )


def _apply_config(args: argparse.Namespace) -> None:
    """Fill in what `--config FILE --connector N` knows and the command line does not say."""
    if args.config is None and args.connector is None:
        return
    if args.config is None or args.connector is None:
        raise LabelError("--config and --connector go together")
    cfg = load_config(args.config).config
    try:
        connector = cfg.connector(args.connector)
    except KeyError:
        raise LabelError(f"no connector {args.connector} in {args.config}") from None
    if args.evse_id is None:
        args.evse_id = connector.evse_id
    if args.verifier_url is None:
        args.verifier_url = cfg.web.verifier_url
    if args.public_key is None and args.pinned_key is None:
        args.public_key = connector.meter.public_key or _store_pinned_key(cfg, args.connector)
    bus = cfg.bus(connector.meter.bus)
    if args.url is None and not bus.is_simulator:
        args.url, args.unit = bus.url, connector.meter.unit


def _store_pinned_key(cfg: StationConfig, connector_id: int) -> str | None:
    """The key the daemon pinned for the connector at first contact, if it has a store."""
    path = Path(cfg.store.state_dir) / STORE_FILE
    if not path.exists():
        return None
    try:
        store = Store.open(path, cfg.station.id)
    except StoreError as exc:
        raise LabelError(f"cannot read the pinned key from {path}: {exc}") from None
    try:
        return store.get_setting(f"meter.{connector_id}.public_key")
    finally:
        store.close()


async def _from_meter(args: argparse.Namespace) -> LabelData:
    expected = args.public_key or args.pinned_key
    pinned = load_public_key(expected) if expected else None
    async with ModbusBus.from_url(args.url, request_timeout=args.timeout) as bus:
        meter = BsmWs36a(bus, unit=args.unit, pinned_key=pinned, timeouts=MeterTimeouts())
        ident = await meter.identity()
        key = await meter.public_key()
    model = args.model if args.model is not None else f"{ident.manufacturer} {ident.model}"
    return LabelData(
        key=key,
        serial=args.serial or ident.serial_number,
        meter_id=args.meter_id if args.meter_id is not None else ident.meter_address,
        model=model.strip(),
        evse_id=args.evse_id or "",
        verifier_url=args.verifier_url or "",
    )


def _offline(args: argparse.Namespace) -> LabelData:
    if not args.public_key or not args.serial:
        raise LabelError(
            "give --url (read the meter), --config and --connector, or --public-key and --serial"
        )
    return LabelData(
        key=load_public_key(args.public_key),
        serial=args.serial,
        meter_id=args.meter_id or "",
        model=args.model or "",
        evse_id=args.evse_id or "",
        verifier_url=args.verifier_url or "",
    )


def _safe_name(serial: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", serial).strip("_") or "meter"


def write_label(data: LabelData, output: Path | None, fmt: str) -> dict[str, Any]:
    """Render and write the label files; what was written, for the JSON answer."""
    base = output if output is not None else Path(f"meter-label-{_safe_name(data.serial)}")
    if base.suffix.lower() in (".svg", ".png"):
        base = base.with_suffix("")
    written: dict[str, Any] = {}
    if fmt in ("both", "svg"):
        svg = base.with_name(base.name + ".svg")
        with open_text(svg, FILE_MODE) as f:
            f.write(render_svg(data))
        written["svg"] = str(svg)
    if fmt in ("both", "png"):
        png = base.with_name(base.name + ".png")
        with open_binary(png, FILE_MODE) as b:
            b.write(render_png(data))
        written["png"] = str(png)
    return {
        **written,
        "serial": data.serial,
        "meter_id": data.meter_id,
        "model": data.model,
        "public_key": key_text(data.key),
        "qr_code": qr_text(data.key, data.verifier_url),
        "curve": data.key.curve_name,
        "sha256": data.key.fingerprint,
    }


def run_label(args: argparse.Namespace) -> int:
    try:
        _apply_config(args)
        data = asyncio.run(_from_meter(args)) if args.url else _offline(args)
        result = write_label(data, args.output, args.format)
    except MeterError as exc:
        print(f"meter: {explain(exc)}", file=sys.stderr)
        return EXIT_METER_ERROR
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except (LabelError, KeyFormatError, LinkUrlError) as exc:
        print(f"meter label: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"meter label: cannot write the label: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(result, indent=2))
    return 0
