"""Draw docs/smart-charging.svg from a real run on the simulator: one session's measured power
(the Power.Active.Import values of its MeterValues, as the CSMS received them) against the
composite schedule the station reported for it (GetCompositeSchedule).

The run: the project's test CSMS on loopback, the daemon in this process on the embedded
simulator (one connector, an EV that draws 11 kW, MeterValueSampleInterval 1 s), a remote
start, then a TxProfile (Relative: 16 A, 8 A after 15 s, 12 A after 30 s, 6 A after 45 s,
16 A after 60 s) and a remote stop after 75 s. The session's end message must carry exactly one
signed Begin and one signed End.

    .venv/bin/python docs/smart_charging_plot.py [--ocpp-version 1.6] [-o docs/smart-charging.svg]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from chargepoint.config import load_config
from chargepoint.service.daemon import Daemon
from chargepoint.testcsms import TestCsms
from chargepoint.testcsms.smart_charging import ProfileSpec

STATION = "CP-PLOT-001"
EV_W = 11040.0
PERIODS = [(0, 16.0), (15, 8.0), (30, 12.0), (45, 6.0), (60, 16.0)]
SESSION_S = 75
ROOT = Path(__file__).resolve().parent


def station_file(folder: Path, url: str, version: str) -> Path:
    doc: dict[str, Any] = {
        "station": {"id": STATION, "vendor": "chargepoint", "model": "Plot"},
        "csms": {"url": url, "ocpp_version": version, "reconnect_min_delay": 0.1},
        "meter_buses": [{"name": "sim", "url": "simulator"}],
        "simulator": {"sign_delay": 0.5},
        "connectors": [
            {
                "id": 1,
                "evse_id": "DE*XYZ*E0001*1",
                "meter": {"bus": "sim", "unit": 42},
                "ev": {"power_w": EV_W, "plug_in_delay": 0.2},
            }
        ],
        "ocpp": {
            "meter_value_sample_interval": 1,
            "meter_values_sampled_data": "Energy.Active.Import.Register,Power.Active.Import",
        },
        "smart_charging": {"ev_ramp_seconds": 3.0},
        "control": {"listen": "unix:control.sock"},
        "store": {"state_dir": str(folder / "state")},
    }
    path = folder / "station.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _wait(predicate: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"no {what}")
        await asyncio.sleep(0.05)


async def run(version: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
    """(measured (s, W), composite steps (s, W), signed values in the end message)."""
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(load_config(station_file(Path(tmp), csms.url, version)).config)
        await daemon.start()
        try:
            await csms.wait_connected(STATION, timeout=15)
            await _wait(lambda: csms.messages("StatusNotification"), 15, "boot")
            if version == "1.6":
                await csms.call(
                    STATION, "RemoteStartTransaction", {"idTag": "PLOT", "connectorId": 1}
                )
                await _wait(lambda: csms.messages("StartTransaction"), 15, "StartTransaction")
                started = csms.messages("StartTransaction")[0]
                await _wait(csms.transaction_log, 5, "a transaction id")
                tx: int | str = next(iter(csms.transaction_log()))
                t0 = _time(started.payload["timestamp"])
            else:
                await csms.call(
                    STATION,
                    "RequestStartTransaction",
                    {
                        "idToken": {"idToken": "PLOT", "type": "Central"},
                        "remoteStartId": 1,
                        "evseId": 1,
                    },
                )
                await _wait(_started_201(csms), 15, "TransactionEvent Started")
                started = _started_201(csms)()
                assert started is not None
                tx = started.payload["transactionInfo"]["transactionId"]
                t0 = _time(started.payload["timestamp"])
            spec = ProfileSpec(1, "Tx", PERIODS, kind="Relative", transaction_id=tx)
            answer = await csms.set_charging_profile(STATION, 1, spec)
            assert answer["status"] == "Accepted", answer
            composite = await csms.get_composite_schedule(STATION, 1, SESSION_S, "W")
            body = composite["chargingSchedule"] if version == "1.6" else composite["schedule"]
            start = _time(composite.get("scheduleStart") or body["scheduleStart"]) - t0
            steps = [(start + p["startPeriod"], p["limit"]) for p in body["chargingSchedulePeriod"]]
            await asyncio.sleep(max(0.0, t0 + SESSION_S - datetime.now().timestamp()))
            if version == "1.6":
                await csms.call(STATION, "RemoteStopTransaction", {"transactionId": tx})
                await _wait(lambda: csms.messages("StopTransaction"), 20, "StopTransaction")
                end = csms.messages("StopTransaction")[0].payload
                signed = [
                    sv
                    for mv in end.get("transactionData", [])
                    for sv in mv["sampledValue"]
                    if sv.get("format") == "SignedData"
                ]
            else:
                await csms.call(STATION, "RequestStopTransaction", {"transactionId": tx})
                await _wait(_ended_201(csms), 20, "TransactionEvent Ended")
                signed = [
                    sv
                    for r in csms.messages("TransactionEvent")
                    for mv in r.payload.get("meterValue", [])
                    for sv in mv["sampledValue"]
                    if "signedMeterValue" in sv
                ]
            measured = _power(csms, version, t0)
        finally:
            await daemon.stop()
            await csms.stop()
    return measured, steps, len(signed)


def _started_201(csms: TestCsms) -> Any:
    def find() -> Any:
        return next(
            (r for r in csms.messages("TransactionEvent") if r.payload["eventType"] == "Started"),
            None,
        )

    return find


def _ended_201(csms: TestCsms) -> Any:
    return lambda: any(r.payload["eventType"] == "Ended" for r in csms.messages("TransactionEvent"))


def _power(csms: TestCsms, version: str, t0: float) -> list[tuple[float, float]]:
    action = "MeterValues" if version == "1.6" else "TransactionEvent"
    points = []
    for r in csms.messages(action):
        for mv in r.payload.get("meterValue", []):
            for sv in mv["sampledValue"]:
                if sv.get("measurand") == "Power.Active.Import":
                    points.append((_time(mv["timestamp"]) - t0, float(sv["value"])))
    return sorted(points)


# ---- the picture ---------------------------------------------------------------------------

W, H = 760, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 50, 60


def svg(measured: list[tuple[float, float]], steps: list[tuple[float, float]], title: str) -> str:
    x_max, y_max = float(SESSION_S + 5), 12.0

    def x(s: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * min(max(s, 0.0), x_max) / x_max

    def y(watts: float) -> float:
        return H - BOTTOM - (H - TOP - BOTTOM) * min(watts / 1000, y_max) / y_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15">{title}</text>',
    ]
    for kw in range(0, 13, 2):
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(kw * 1000):.1f}" y2="{y(kw * 1000):.1f}" '
            'stroke="#ddd"/>'
        )
        out.append(f'<text x="{LEFT - 8}" y="{y(kw * 1000) + 4:.1f}" text-anchor="end">{kw}</text>')
    for s in range(0, int(x_max) + 1, 10):
        out.append(f'<text x="{x(s):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{s}</text>')
    out.append(
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#333"/>'
        f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{H - BOTTOM}" y2="{H - BOTTOM}" stroke="#333"/>'
        f'<text x="{W / 2}" y="{H - 18}" text-anchor="middle">seconds since the session '
        "started</text>"
        f'<text x="18" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {(TOP + H - BOTTOM) / 2})">kW</text>'
    )
    path = []
    for i, (start, watts) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else x_max
        path.append(
            f"{'M' if i == 0 else 'L'}{x(start):.1f},{y(watts):.1f} L{x(end):.1f},{y(watts):.1f}"
        )
    out.append(
        f'<path d="{" ".join(path)}" fill="none" stroke="#1f77b4" stroke-width="2.5" '
        'stroke-dasharray="7 4"/>'
    )
    line = " ".join(f"{x(s):.1f},{y(w):.1f}" for s, w in measured)
    out.append(f'<polyline points="{line}" fill="none" stroke="#d62728" stroke-width="1.5"/>')
    out.extend(
        f'<circle cx="{x(s):.1f}" cy="{y(w):.1f}" r="2.5" fill="#d62728"/>' for s, w in measured
    )
    lx, ly = LEFT + 20, H - BOTTOM - 44  # below the curves (they stay above 4 kW)
    out.append(
        f'<line x1="{lx}" x2="{lx + 30}" y1="{ly}" y2="{ly}" stroke="#1f77b4" '
        'stroke-width="2.5" stroke-dasharray="7 4"/>'
        f'<text x="{lx + 38}" y="{ly + 4}">composite schedule (GetCompositeSchedule)</text>'
        f'<line x1="{lx}" x2="{lx + 30}" y1="{ly + 18}" y2="{ly + 18}" stroke="#d62728" '
        'stroke-width="1.5"/>'
        f'<text x="{lx + 38}" y="{ly + 22}">measured power (MeterValues, every second)</text>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ocpp-version", choices=("1.6", "2.0.1"), default="1.6")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "smart-charging.svg")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    measured, steps, signed = asyncio.run(run(args.ocpp_version))
    if signed != 2:
        raise SystemExit(f"the session carried {signed} signed values, not Begin and End")
    title = f"A session on the simulator (OCPP {args.ocpp_version}): an 11 kW EV under a TxProfile"
    args.output.write_text(svg(measured, steps, title))
    print(
        json.dumps(
            {
                "samples": len(measured),
                "composite": [[s, w] for s, w in steps],
                "signed_values": signed,
                "output": str(args.output),
            }
        )
    )


if __name__ == "__main__":
    main()
