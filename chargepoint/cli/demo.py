"""`chargepoint demo`: the project's test CSMS on loopback, the daemon on the embedded
simulator config, one complete session, then the signed start and end values printed and
verified against the meter key the station reports (1.6: GetConfiguration MeterPublicKey1;
2.0.1: GetVariables FiscalMetering.PublicKey of EVSE 1)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from chargepoint.config import load_config
from chargepoint.service.daemon import Daemon
from chargepoint.service.logsetup import setup_logging
from chargepoint.testcsms import TestCsms
from meter.proof.verification import verify_input

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "simulator.yaml"
# (context -> OCMF of the end message, the meter key hex the station reports)
Signed = tuple[dict[str, str], str]


def decode_oca_key(value: str) -> str:
    text = base64.b64decode(value).decode()
    prefix = "oca:base16:asn1:"
    if not text.startswith(prefix):
        raise ValueError(f"MeterPublicKey is not in the OCA form: {text[:30]}")
    return text[len(prefix) :]


def signed_values(stop: dict[str, Any]) -> dict[str, str]:
    """context -> OCMF from StopTransaction.transactionData (OCA signed value format)."""
    found: dict[str, str] = {}
    for meter_value in stop.get("transactionData", []):
        for sv in meter_value.get("sampledValue", []):
            if sv.get("format") != "SignedData":
                continue
            body = json.loads(sv["value"])
            found[sv["context"]] = base64.b64decode(body["signedMeterData"]).decode()
    return found


def signed_values_201(ended: dict[str, Any]) -> dict[str, str]:
    """context -> OCMF from the signedMeterValue fields of a TransactionEvent."""
    found: dict[str, str] = {}
    for meter_value in ended.get("meterValue", []):
        for sv in meter_value.get("sampledValue", []):
            signed = sv.get("signedMeterValue")
            if signed:
                found[sv["context"]] = base64.b64decode(signed["signedMeterData"]).decode()
    return found


def _energy_201(event: dict[str, Any], context: str) -> int:
    for meter_value in event.get("meterValue", []):
        for sv in meter_value.get("sampledValue", []):
            if sv.get("context") == context and sv.get("measurand") == (
                "Energy.Active.Import.Register"
            ):
                return int(sv["value"])
    raise ValueError(f"no {context} energy value")


async def session_16(csms: TestCsms, station_id: str, seconds: float, id_tag: str) -> Signed:
    await csms.wait_for("StatusNotification", lambda r: r.payload["connectorId"] == 0, timeout=30)
    print("station booted; CSMS sends RemoteStartTransaction for connector 1")
    answer = await csms.call(
        station_id, "RemoteStartTransaction", {"idTag": id_tag, "connectorId": 1}
    )
    print(f"  RemoteStartTransaction: {answer['status']}")
    if answer["status"] != "Accepted":
        return {}, ""
    start = await csms.wait_for("StartTransaction", timeout=60)
    print(
        f"  StartTransaction: meterStart {start.payload['meterStart']} Wh at "
        f"{start.payload['timestamp']}"
    )
    for _ in range(100):  # the CSMS answers StartTransaction with the transaction id
        if csms.transaction_log():
            break
        await asyncio.sleep(0.05)
    transaction_id = max(csms.transaction_log())
    print(f"  charging for {seconds:.0f} s ...")
    await asyncio.sleep(seconds)
    await csms.call(station_id, "RemoteStopTransaction", {"transactionId": transaction_id})
    stop = await csms.wait_for("StopTransaction", timeout=60)
    energy = stop.payload["meterStop"] - start.payload["meterStart"]
    print(
        f"  StopTransaction: meterStop {stop.payload['meterStop']} Wh, {energy} Wh charged, "
        f"reason {stop.payload.get('reason')}"
    )
    config_answer = await csms.call(station_id, "GetConfiguration", {"key": ["MeterPublicKey1"]})
    key_hex = decode_oca_key(config_answer["configurationKey"][0]["value"])
    print(f"meter public key (GetConfiguration MeterPublicKey1): {key_hex}")
    return signed_values(stop.payload), key_hex


async def session_201(csms: TestCsms, station_id: str, seconds: float, id_tag: str) -> Signed:
    await csms.wait_for("StatusNotification", lambda r: r.payload["evseId"] == 1, timeout=30)
    print("station booted; CSMS sends RequestStartTransaction for EVSE 1")
    answer = await csms.call(
        station_id,
        "RequestStartTransaction",
        {"idToken": {"idToken": id_tag, "type": "Central"}, "remoteStartId": 1, "evseId": 1},
    )
    print(f"  RequestStartTransaction: {answer['status']}")
    if answer["status"] != "Accepted":
        return {}, ""

    def event(kind: str) -> Any:
        return lambda r: r.payload.get("eventType") == kind

    started = await csms.wait_for("TransactionEvent", event("Started"), timeout=60)
    transaction_id = started.payload["transactionInfo"]["transactionId"]
    print(
        f"  TransactionEvent Started: transaction {transaction_id}, Begin "
        f"{_energy_201(started.payload, 'Transaction.Begin')} Wh at {started.payload['timestamp']}"
    )
    print(f"  charging for {seconds:.0f} s ...")
    await asyncio.sleep(seconds)
    await csms.call(station_id, "RequestStopTransaction", {"transactionId": transaction_id})
    ended = await csms.wait_for("TransactionEvent", event("Ended"), timeout=60)
    begin = _energy_201(ended.payload, "Transaction.Begin")
    end = _energy_201(ended.payload, "Transaction.End")
    print(
        f"  TransactionEvent Ended: End {end} Wh, {end - begin} Wh charged, stoppedReason "
        f"{ended.payload['transactionInfo'].get('stoppedReason')}"
    )
    variables = await csms.call(
        station_id,
        "GetVariables",
        {
            "getVariableData": [
                {
                    "component": {"name": "FiscalMetering", "evse": {"id": 1}},
                    "variable": {"name": "PublicKey"},
                }
            ]
        },
    )
    key_hex = decode_oca_key(variables["getVariableResult"][0]["attributeValue"])
    print(f"meter public key (GetVariables FiscalMetering.PublicKey, EVSE 1): {key_hex}")
    return signed_values_201(ended.payload), key_hex


async def demo_session(
    config_path: Path, state_dir: Path, seconds: float, id_tag: str, version: str | None = None
) -> bool:
    csms = TestCsms(heartbeat_interval=60)
    port = await csms.start()
    loaded = load_config(config_path)
    config = loaded.config.with_overrides(
        csms_url=csms.url, state_dir=state_dir, ocpp_version=version
    )
    station_id = config.station.id
    daemon = Daemon(config)
    print(f"test CSMS listening on {csms.url}; station {station_id} on {config_path.name}")
    try:
        await daemon.start()
        await csms.wait_connected(station_id, timeout=30)
        print(f"OCPP {config.csms.ocpp_version}")
        run = session_16 if config.csms.ocpp_version == "1.6" else session_201
        values, key_hex = await run(csms, station_id, seconds, id_tag)
        if not key_hex:
            return False
        ok = set(values) == {"Transaction.Begin", "Transaction.End"}
        for context in ("Transaction.Begin", "Transaction.End"):
            record = values.get(context)
            if record is None:
                print(f"{context}: MISSING")
                continue
            print(f"{context}: {record}")
            outcome = verify_input(record, key_hex)
            for line in outcome.lines:
                print(f"  {line}")
            ok = ok and outcome.ok
        return ok
    finally:
        await daemon.stop()
        await csms.stop()
        del port


def run_demo(args: argparse.Namespace) -> int:
    setup_logging("warning" if not args.verbose_log else "info", "plain")
    logging.getLogger("chargepoint.station").setLevel(
        logging.INFO if args.verbose_log else logging.WARNING
    )
    with tempfile.TemporaryDirectory(prefix="chargepoint-demo-") as tmp:
        state_dir = args.state_dir or Path(tmp)
        ok = asyncio.run(
            demo_session(args.config, state_dir, args.seconds, args.id_tag, args.ocpp_version)
        )
    print(
        "demo session: signed begin and end values VERIFIED"
        if ok
        else "demo session: verification FAILED"
    )
    return 0 if ok else 1


def add_demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="a complete OCPP session on the embedded simulator")
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="the station's YAML file (default: the embedded simulator, config/simulator.yaml)",
    )
    p.add_argument(
        "--ocpp-version", choices=["1.6", "2.0.1"], help="default: the config's csms.ocpp_version"
    )
    p.add_argument("--state-dir", type=Path, help="keep the store and meters (default: temp)")
    p.add_argument("--seconds", type=float, default=8.0, help="how long the EV charges")
    p.add_argument(
        "--id-tag",
        default="04A1B2C3D4E5F6",
        help="the driver's id tag (RFID card) the session is started for",
    )
    p.add_argument("--verbose-log", action="store_true", help="show the daemon's log")
    p.set_defaults(func=run_demo)
