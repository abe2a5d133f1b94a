"""A station's store filled with closed sessions whose Begin and End are signed OCMF records in
the BSM-WS36A's own layout (a fresh P-256 key), without running the daemon: for the commands
that read the store (`transactions list|export`, `verify` of their files)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.service.daemon import STORE_FILE
from chargepoint.store import Store
from meter.bsm.ocmf import sign_and_assemble
from meter.proof.keys import public_der
from tests.real_vectors import bsm_public_key_hex, bsm_vectors
from tests.test_bsm_signature import snapshot_fields

STATION_ID = "CP-CLI-TEST"
METER_SERIAL = "001BZR1521070006"
PAYLOAD = (
    '{"FV":"1.0","GI":"BAUER Electronic BSM-WS36A-H01-1311-0000","GS":"%(serial)s",'
    '"GV":"1.9:32CA:AFF4, f1d3d06","PG":"T%(rcnt)d","MV":"BAUER Electronic",'
    '"MM":"BSM-WS36A-H01-1311-0000","MS":"%(serial)s","IS":true,"IT":"UNDEFINED",'
    '"ID":"rfid:%(tag)s","X2":"evse-id: DE*XYZ*E0001*%(connector)d","RD":[{"TM":"%(tm)s S",'
    '"TX":"%(tx)s","RV":%(rv)s,"RI":"1-0:1.8.0*198","RU":"kWh","XV":%(xv)s,'
    '"XI":"1-0:1.8.0*255","XU":"kWh","XT":%(xt)d,"RT":"AC","EF":"","ST":"G"}]}'
)


@dataclass(frozen=True)
class SignedStation:
    config: Path
    key_hex: str  # DER hex of the meter key
    key_point_hex: str  # the bare x||y, as the meter's label prints it
    ids: list[int]


def _kwh(wh: int) -> str:
    return f"{wh / 1000:.2f}"


def _config(
    tmp: Path, state: Path, connectors: tuple[int, ...], station_serial: str | None
) -> Path:
    station: dict[str, object] = {"id": STATION_ID}
    if station_serial is not None:
        station["serial"] = station_serial
    config = tmp / "station.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "station": station,
                "csms": {"url": "ws://127.0.0.1:9/ocpp"},
                "meter_buses": [{"name": "sim", "url": "simulator"}],
                "simulator": {},
                "connectors": [
                    {
                        "id": c,
                        "evse_id": f"DE*XYZ*E0001*{c}",
                        "meter": {"bus": "sim", "unit": 41 + c},
                    }
                    for c in connectors
                ],
                "store": {"state_dir": str(state)},
            }
        )
    )
    return config


def _stored_fields(vector: dict[str, object]) -> str:
    """A real snapshot vector as the daemon keeps it beside the session."""
    fields = snapshot_fields(vector["fields"])  # type: ignore[arg-type]
    data = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in asdict(fields).items()}
    data["signature"] = vector["signature_der_hex"]
    return json.dumps(data, sort_keys=True)


REAL_METER_KEY = "A_meter_001BZR1521070006"


def real_meter_station(tmp: Path, station_serial: str | None = None) -> SignedStation:
    """One closed session of a real BSM-WS36A (001BZR1521070006): its turn-on T4276 and
    turn-off T4277, the OCMF records and the snapshots the meter signed (tests/vectors)."""
    vectors = bsm_vectors()
    ocmf, snaps = vectors["ocmf_vectors"], vectors["snapshot_vectors"]
    key_hex = bsm_public_key_hex(REAL_METER_KEY)
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    store = Store(state / STORE_FILE, STATION_ID)
    try:
        local_id = store.start_transaction(
            connector_id=1,
            evse_id="DE*BDO*E8025334492*2",
            id_tag="12345678abcdef",
            meter_serial=METER_SERIAL,
            public_key_hex=key_hex,
            started_at="2022-07-08T08:00:27.400Z",
            meter_start_wh=99840,
            begin_ocmf=ocmf["ostons_T4276"]["ocmf"],
            begin_fields=_stored_fields(snaps["stons_4276"]),
            messages=[],
        )
        store.end_transaction(
            local_id,
            stopped_at="2022-07-08T08:05:51.900Z",
            meter_stop_wh=100000,
            end_ocmf=ocmf["ostoffs_T4277"]["ocmf"],
            end_fields=_stored_fields(snaps["stoffs_4277"]),
            stop_reason="Local",
            stop_id_tag=None,
            unsigned_end_reason=None,
            messages=[],
        )
    finally:
        store.close()
    key = vectors["public_keys"][REAL_METER_KEY]
    return SignedStation(
        _config(tmp, state, (1,), station_serial), key_hex, key["x"] + key["y"], [local_id]
    )


def signed_station(
    tmp: Path,
    sessions: int,
    connectors: tuple[int, ...] = (1,),
    open_sessions: int = 0,
    station_serial: str | None = None,
) -> SignedStation:
    """`sessions` closed sessions, spread over `connectors` in turn, then `open_sessions`
    open ones (signed Begin, no End yet) on the first connector."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = public_der(key)
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    store = Store(state / STORE_FILE, STATION_ID)
    total = 1_000_000
    ids: list[int] = []
    rcnt = 101
    try:
        for n in range(sessions + open_sessions):
            connector = connectors[n % len(connectors)] if n < sessions else connectors[0]
            energy = 10 * (1 + n % 50)
            minute = f"2026-11-{1 + n // 600 % 28:02d}T{n // 60 % 10 + 10:02d}:{n % 60:02d}"
            common = {"serial": METER_SERIAL, "tag": f"{n:08x}", "connector": connector}
            begin = sign_and_assemble(
                key,
                PAYLOAD
                % {
                    **common,
                    "rcnt": rcnt,
                    "tm": f"{minute}:00,000+0100",
                    "tx": "B",
                    "rv": "0.00",
                    "xv": _kwh(total),
                    "xt": 1,
                },
            )
            local_id = store.start_transaction(
                connector_id=connector,
                evse_id=f"DE*XYZ*E0001*{connector}",
                id_tag=f"rfid:{n:08x}",
                meter_serial=METER_SERIAL,
                public_key_hex=der.hex(),
                started_at=f"{minute}:01.000Z",
                meter_start_wh=total,
                begin_ocmf=begin,
                begin_fields=json.dumps({"rcnt": rcnt, "epoch_set_cnt": 1}),
                messages=[],
            )
            ids.append(local_id)
            if n >= sessions:
                continue
            end = sign_and_assemble(
                key,
                PAYLOAD
                % {
                    **common,
                    "rcnt": rcnt + 1,
                    "tm": f"{minute}:59,000+0100",
                    "tx": "E",
                    "rv": _kwh(energy),
                    "xv": _kwh(total + energy),
                    "xt": 2,
                },
            )
            store.end_transaction(
                local_id,
                stopped_at=f"{minute}:59.500Z",
                meter_stop_wh=total + energy,
                end_ocmf=end,
                end_fields=json.dumps({"rcnt": rcnt + 1, "epoch_set_cnt": 1}),
                stop_reason="Local",
                stop_id_tag=None,
                unsigned_end_reason=None,
                messages=[],
            )
            total += energy
            rcnt += 2
    finally:
        store.close()
    config = _config(tmp, state, connectors, station_serial)
    point = key.public_key().public_numbers()
    return SignedStation(config, der.hex(), f"{point.x:064x}{point.y:064x}", ids)
