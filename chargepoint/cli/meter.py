"""`chargepoint simulate-meter` and `chargepoint meter ...`: the meter from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chargepoint.cli.label import add_label_parser, run_label
from meter.bsm.driver import BsmWs36a, MeterTimeouts
from meter.bsm.ocmf import OcmfStyle
from meter.errors import MeterError, explain
from meter.modbus.bus import ModbusBus
from meter.modbus.link import LinkKind, LinkUrlError, parse_link_url
from meter.modbus.wiretime import LineSettings
from meter.proof.keys import load_public_key
from meter.sim.device import SimulatedBsm, SimulatorConfig
from meter.sim.server import SimulatedBus
from meter.snapshot import SignedSnapshot, SnapshotKind, SnapshotStatus

EXIT_METER_ERROR = 3


def add_simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate-meter",
        help="run simulated BSM-WS36A meters on a Modbus server",
        description="Serve one or more simulated BSM-WS36A meters. Prints each meter's public key.",
    )
    p.add_argument(
        "--listen",
        default="tcp://127.0.0.1:5020",
        help="tcp://HOST:PORT or serial:///dev/ttyX?baudrate=19200&parity=E",
    )
    p.add_argument(
        "--framer",
        choices=("socket", "rtu"),
        default="socket",
        help="framing on TCP: socket (Modbus TCP) or rtu (serial gateway)",
    )
    p.add_argument("--unit", type=int, action="append", help="unit id (repeat for several meters)")
    p.add_argument("--key", type=Path, help="private key file (one meter), created if missing")
    p.add_argument(
        "--state-dir",
        type=Path,
        help="keep each meter's key and non-volatile state here (unit-N.key/.json)",
    )
    p.add_argument("--sign-delay", type=float, default=2.0, help="seconds to sign a snapshot")
    p.add_argument(
        "--power", type=float, default=11000.0, help="watts drawn while the output is on"
    )
    p.add_argument(
        "--baud", type=int, help="emulate wire time at this baud rate (8E1); off when not given"
    )
    p.add_argument(
        "--legacy-ocmf",
        action="store_true",
        help="print OCMF like older firmware (integer Wh, no X2/X3)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        help=(
            "snapshot-status=N | events=0xFLAGS | no-reply | reply-delay=S | doe-low | "
            "error-code=FFCODE"
        ),
    )
    p.set_defaults(func=run_simulate)


def add_meter_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("meter", help="talk to a BSM-WS36A meter (JSON output)")
    p.add_argument(
        "--url",
        help="serial:///dev/ttyUSB0?baudrate=19200&parity=E, rtu+tcp://H:P or tcp://H:P "
        "(required, except for `label` with --config/--connector or --public-key/--serial)",
    )
    p.add_argument("--unit", type=int, default=42, help="the meter's Modbus unit id (default: 42)")
    p.add_argument("--pinned-key", help="expected public key (hex or file): refuse another one")
    p.add_argument("--timeout", type=float, default=12.0, help="per-request timeout in seconds")
    ops = p.add_subparsers(dest="operation", required=True)
    ops.add_parser("info", help="identity, firmware versions and hash, clock, energy")
    ops.add_parser("pubkey", help="the meter's public key")
    ops.add_parser("energy", help="total energy, power, event flags")
    ops.add_parser("clock", help="the meter's clock and its set counter")
    sc = ops.add_parser("set-clock", help="set the meter clock to this host's time (once in 24 h)")
    sc.add_argument("--tzo", type=int, help="time zone offset in minutes (default: this host's)")
    sc.add_argument("--force", action="store_true", help="set it even within 24 h of the last set")
    snap = ops.add_parser("snapshot", help="take a signed snapshot")
    snap.add_argument("kind", help="current | turn-on | turn-off | start | end")
    snap.add_argument("--meta1", help="identification (becomes OCMF ID); writes all three")
    snap.add_argument("--meta2", help="second metadata field (becomes OCMF X2), e.g. the EVSE id")
    snap.add_argument("--meta3", help="third metadata field (becomes OCMF X3)")
    last = ops.add_parser("last-snapshot", help="read the last snapshot of a kind, take none")
    last.add_argument("kind", help="current | turn-on | turn-off | start | end")
    ops.add_parser("transaction", help="does the meter show an open turn-on/start snapshot?")
    add_label_parser(ops)
    p.set_defaults(func=run_meter)


# ---- simulate-meter ---------------------------------------------------------------------


def _apply_faults(meter: SimulatedBsm, specs: list[str]) -> None:
    for spec in specs:
        name, _, value = spec.partition("=")
        if name == "snapshot-status":
            meter.faults.snapshot_status = SnapshotStatus(int(value))
        elif name == "events":
            meter.faults.events = int(value, 0)
        elif name == "no-reply":
            meter.faults.no_reply = True
        elif name == "reply-delay":
            meter.faults.reply_delay = float(value)
        elif name == "doe-low":
            meter.faults.doe_high = False
        elif name == "error-code":
            meter.faults.error_code = value
        else:
            raise ValueError(f"unknown fault {spec!r}")


def build_simulated_meters(args: argparse.Namespace) -> list[SimulatedBsm]:
    units: list[int] = args.unit or [42]
    if args.key is not None and len(units) > 1:
        raise ValueError("--key serves one meter; use --state-dir for several")
    meters = []
    for unit in units:
        key_file, state_file = args.key, None
        if args.state_dir is not None:
            key_file = key_file or args.state_dir / f"unit-{unit}.key"
            state_file = args.state_dir / f"unit-{unit}.json"
        cfg = SimulatorConfig(
            unit=unit,
            sign_delay=args.sign_delay,
            power_w=args.power,
            ocmf_style=OcmfStyle.WH_INTEGER if args.legacy_ocmf else OcmfStyle.KWH_TWO_DECIMALS,
            key_file=key_file,
            state_file=state_file,
        )
        meter = SimulatedBsm(cfg)
        _apply_faults(meter, args.fault)
        meters.append(meter)
    return meters


async def _simulate(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    meters = build_simulated_meters(args)
    wire = LineSettings(baudrate=args.baud) if args.baud else None
    bus = SimulatedBus(meters, wire_time=wire)
    link = parse_link_url(args.listen)
    if link.kind is LinkKind.SERIAL:
        await bus.serve_serial(link.port, link.line)
    elif link.kind is LinkKind.TCP:
        await bus.serve_tcp(link.host, link.tcp_port, rtu_framing=args.framer == "rtu")
    else:
        raise LinkUrlError("listen on tcp://HOST:PORT (with --framer) or serial://DEVICE")
    for m in meters:
        print(
            f"unit {m.config.unit} {m.meter_address} public key {m.public_key_der.hex()}",
            flush=True,
        )
    try:
        await stop.wait()
    finally:
        await bus.aclose()
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_simulate(args))
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"simulate-meter: {exc}", file=sys.stderr)
        return 2


# ---- meter ------------------------------------------------------------------------------


def snapshot_json(snap: SignedSnapshot) -> dict[str, Any]:
    f = snap.fields
    local = f.local_time
    return {
        "kind": snap.kind.name.lower().replace("_", "-"),
        "status": snap.status.name.lower(),
        "meter_address": f.ma1_text,
        "response_counter": f.rcnt,
        "energy_since_turn_on_wh": _num(f.energy_since_turn_on_wh),
        "total_energy_wh": _num(f.total_energy_wh),
        "power_w": _num(f.power_w),
        "time": local.isoformat() if local else None,
        "events": f.evt,
        "fields": {
            k: (v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v)
            for k, v in asdict(f).items()
        },
        "signature": snap.signature.hex(),
        "ocmf": snap.ocmf,
    }


def _num(value: object) -> float | int | None:
    if value is None:
        return None
    as_float = float(str(value))
    return int(as_float) if as_float.is_integer() else as_float


async def _meter_op(args: argparse.Namespace, meter: BsmWs36a) -> dict[str, Any]:
    op = args.operation
    if op == "info":
        ident = await meter.identity()
        energy = await meter.energy()
        clock = await meter.clock()
        data = asdict(ident)
        data["firmware_hash"] = ident.firmware_hash.hex()
        data["energy"] = {
            "total_wh": _num(energy.total_wh),
            "power_w": _num(energy.power_w),
            "events": energy.events,
        }
        data["clock"] = asdict(clock)
        return data
    if op == "pubkey":
        key = await meter.public_key()
        return {"public_key": key.der_hex, "curve": key.curve_name, "sha256": key.fingerprint}
    if op == "energy":
        e = await meter.energy()
        return {"total_wh": _num(e.total_wh), "power_w": _num(e.power_w), "events": e.events}
    if op == "clock":
        return asdict(await meter.clock())
    if op == "set-clock":
        state = await meter.set_clock(datetime.now(UTC).astimezone(), args.tzo, force=args.force)
        return asdict(state)
    if op == "transaction":
        return asdict(await meter.transaction_state())
    kind = SnapshotKind.from_name(args.kind)
    if op == "last-snapshot":
        await meter.identity()
        return snapshot_json(await meter.read_snapshot(kind))
    await meter.identity()
    if any(v is not None for v in (args.meta1, args.meta2, args.meta3)):
        await meter.write_metadata(args.meta1 or "", args.meta2 or "", args.meta3 or "")
    return snapshot_json(await meter.take_snapshot(kind))


async def _meter(args: argparse.Namespace) -> dict[str, Any]:
    pinned = load_public_key(args.pinned_key) if args.pinned_key else None
    async with ModbusBus.from_url(args.url, request_timeout=args.timeout) as bus:
        meter = BsmWs36a(bus, unit=args.unit, pinned_key=pinned, timeouts=MeterTimeouts())
        return await _meter_op(args, meter)


def run_meter(args: argparse.Namespace) -> int:
    if args.operation == "label":
        return run_label(args)
    if not args.url:
        print("meter: --url is required (where the meter is)", file=sys.stderr)
        return 2
    return _run_json(lambda: _meter(args))


def _run_json(factory: Callable[[], Awaitable[dict[str, Any]]]) -> int:
    async def main() -> dict[str, Any]:
        return await factory()

    try:
        result = asyncio.run(main())
    except (LinkUrlError, ValueError) as exc:
        print(f"meter: {exc}", file=sys.stderr)
        return 2
    except MeterError as exc:
        print(f"meter: {explain(exc)}", file=sys.stderr)
        if exc.snapshot is not None:
            # The meter signed a snapshot (e.g. one carrying event flags): it is evidence,
            # print it with the error rather than drop it.
            data = snapshot_json(exc.snapshot)
            data["error"] = {
                "type": type(exc).__name__,
                "message": str(exc),
                "action": exc.action.value,
            }
            print(json.dumps(data, indent=2, default=str))
        return EXIT_METER_ERROR
    print(json.dumps(result, indent=2, default=str))
    return 0
