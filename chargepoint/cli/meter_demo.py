"""A complete charging session on an embedded simulated meter, at the meter level:
metadata, signed turn-on snapshot, load, signed turn-off snapshot, both records verified."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from chargepoint.store.files import make_directory
from meter.bsm.driver import BsmWs36a
from meter.modbus.bus import ModbusBus
from meter.modbus.loopback import free_port
from meter.proof.verification import verify_input
from meter.sim.device import SimulatedBsm, SimulatorConfig
from meter.sim.server import SimulatedBus
from meter.snapshot import SnapshotKind


async def meter_session(state_dir: Path, seconds: float, power_w: float, sign_delay: float) -> bool:
    sim = SimulatedBsm(
        SimulatorConfig(
            unit=42,
            sign_delay=sign_delay,
            power_w=power_w,
            key_file=state_dir / "unit-42.key",
            state_file=state_dir / "unit-42.json",
        )
    )
    bus_sim = SimulatedBus([sim])
    port = free_port()
    await bus_sim.serve_tcp("127.0.0.1", port, rtu_framing=True)
    try:
        async with ModbusBus.from_url(f"rtu+tcp://127.0.0.1:{port}") as bus:
            meter = BsmWs36a(bus, unit=42)
            ident = await meter.identity()
            key = await meter.public_key()
            meter.pinned_key = key
            print(
                f"meter {ident.manufacturer} {ident.model}, MA1 {ident.meter_address}, "
                f"firmware {ident.version_meter} / {ident.version_comm}"
            )
            print(f"public key {key.der_hex}")
            clock = await meter.clock()
            if clock.epoch is None:
                await meter.set_clock(datetime.now(UTC).astimezone())
                print("meter clock set (first commissioning)")
            await meter.write_metadata(
                "contract-id: rfid:04a1b2c3d4e5f6", "evse-id: DE*XYZ*E0001*1", "chargepoint demo"
            )
            begin = await meter.take_snapshot(SnapshotKind.TURN_ON)
            print(
                f"turn-on snapshot T{begin.fields.rcnt} signed; charging {seconds:.0f} s at "
                f"{power_w / 1000:.1f} kW"
            )
            await asyncio.sleep(seconds)
            end = await meter.take_snapshot(SnapshotKind.TURN_OFF)
            charged = end.fields.energy_since_turn_on_wh
            print(f"turn-off snapshot T{end.fields.rcnt} signed; {charged} Wh charged")
            print("Transaction.Begin:", begin.ocmf)
            print("Transaction.End:  ", end.ocmf)
            ok = True
            for label, snap in (("begin", begin), ("end", end)):
                outcome = verify_input(snap.ocmf, key.der_hex)
                for line in outcome.lines:
                    print(f"{label}: {line}")
                ok = ok and outcome.ok
            return ok
    finally:
        await bus_sim.aclose()


def run_demo(args: argparse.Namespace) -> int:
    if args.state_dir is not None:
        make_directory(args.state_dir)
        ok = asyncio.run(meter_session(args.state_dir, args.seconds, args.power, args.sign_delay))
    else:
        with tempfile.TemporaryDirectory(prefix="chargepoint-demo-") as tmp:
            ok = asyncio.run(meter_session(Path(tmp), args.seconds, args.power, args.sign_delay))
    print("demo session verified" if ok else "demo session did NOT verify")
    return 0 if ok else 1


def add_meter_demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("meter-demo", help="a signed session on a simulated meter, no OCPP")
    p.add_argument("--seconds", type=float, default=6.0, help="how long the EV charges")
    p.add_argument("--power", type=float, default=11000.0, help="watts the EV draws")
    p.add_argument("--sign-delay", type=float, default=1.0, help="simulated signing time")
    p.add_argument("--state-dir", type=Path, help="keep the simulated meter here (default: temp)")
    p.set_defaults(func=run_demo)
