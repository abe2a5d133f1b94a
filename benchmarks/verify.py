"""Verification throughput and export memory for a store of 100,000 sessions.

Builds a store of N closed sessions whose Begin and End are BSM-format OCMF records signed with
a P-256 key (the real meter's payload layout, counters and readings varied per session), then
runs, each as its own process:
- `chargepoint transactions export --format safe-xml` (every session's proof is checked and
  kept on the way), its time and peak RSS;
- `chargepoint transactions export --format csv`, its time and peak RSS;
- `chargepoint transactions list` (one line a session, proofs checked), its time and peak RSS;
- `chargepoint verify FILE.xml --public-key KEY` on that export: records per second and peak RSS.

Usage: python benchmarks/verify.py [--sessions 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.store import Store
from meter.bsm.ocmf import sign_and_assemble
from meter.proof.keys import public_der

REPO = Path(__file__).resolve().parent.parent
STATION = "CP-BENCH-VERIFY"
BEGIN_PAYLOAD = (
    '{"FV":"1.0","GI":"BAUER Electronic BSM-WS36A-H01-1311-0000","GS":"001BZR1521070006",'
    '"GV":"1.9:32CA:AFF4, f1d3d06","PG":"T%(rcnt)d","MV":"BAUER Electronic",'
    '"MM":"BSM-WS36A-H01-1311-0000","MS":"001BZR1521070006","IS":true,"IT":"UNDEFINED",'
    '"ID":"rfid:%(tag)s","X2":"DE*XYZ*E0001*1","RD":[{"TM":"%(tm)s S","TX":"%(tx)s",'
    '"RV":%(rv)s,"RI":"1-0:1.8.0*198","RU":"kWh","XV":%(xv)s,"XI":"1-0:1.8.0*255","XU":"kWh",'
    '"XT":%(xt)d,"RT":"AC","EF":"","ST":"G"}]}'
)


def _kwh(wh: int) -> str:
    return f"{wh / 1000:.2f}"


CHUNK = 2000


def _insert(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    with conn:
        conn.executemany(
            "INSERT INTO transactions (connector_id, evse_id, id_tag, meter_serial,"
            " public_key_hex, started_at, meter_start_wh, begin_ocmf, begin_fields, stopped_at,"
            " meter_stop_wh, end_ocmf, end_fields, stop_reason, opened_at, closed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def build_store(path: Path, sessions: int) -> str:
    """The store with `sessions` closed sessions; returns the key (DER hex)."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_hex = public_der(key).hex()
    Store(path, STATION).close()  # the schema, as the daemon creates it
    conn = sqlite3.connect(path)
    total = 1_000_000
    rows: list[tuple[object, ...]] = []
    for n in range(sessions):
        rcnt = 2 * n + 1
        energy = 10 * (1 + n % 2000)
        day, sec = divmod(n * 600, 86400)
        date = f"2026-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}"
        t0 = f"{date}T{sec // 3600:02d}:{sec // 60 % 60:02d}"
        begin_tm, end_tm = f"{t0}:00,000+0000", f"{t0}:59,000+0000"
        tag = f"{n:08x}"
        begin = sign_and_assemble(
            key,
            BEGIN_PAYLOAD
            % {
                "rcnt": rcnt,
                "tag": tag,
                "tm": begin_tm,
                "tx": "B",
                "rv": "0.00",
                "xv": _kwh(total),
                "xt": 1,
            },
        )
        end = sign_and_assemble(
            key,
            BEGIN_PAYLOAD
            % {
                "rcnt": rcnt + 1,
                "tag": tag,
                "tm": end_tm,
                "tx": "E",
                "rv": _kwh(energy),
                "xv": _kwh(total + energy),
                "xt": 2,
            },
        )
        started = f"{t0}:00.000Z"
        stopped = f"{t0}:59.000Z"
        rows.append(
            (
                1,
                "DE*XYZ*E0001*1",
                f"rfid:{tag}",
                "001BZR1521070006",
                key_hex,
                started,
                total,
                begin,
                json.dumps({"rcnt": rcnt, "epoch_set_cnt": 1}),
                stopped,
                total + energy,
                end,
                json.dumps({"rcnt": rcnt + 1, "epoch_set_cnt": 1}),
                "Local",
                started,
                stopped,
            )
        )
        total += energy
        if len(rows) == CHUNK:  # in chunks: this process stays small (its RSS would be
            _insert(conn, rows)  # inherited by the measured children at fork)
            rows = []
    _insert(conn, rows)
    conn.close()
    return key_hex


def timed(args: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of a chargepoint command in its own process."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargepoint", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(args[:3])} failed ({proc.returncode}):\n{out[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def main(sessions: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="chargepoint-verify-bench-"))
    state = tmp / "state"
    state.mkdir()
    t0 = time.monotonic()
    key_hex = build_store(state / "chargepoint.sqlite", sessions)
    print(f"store with {sessions} signed sessions built in {time.monotonic() - t0:.1f} s")
    config = tmp / "station.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "station": {"id": STATION},
                "csms": {"url": "ws://127.0.0.1:9/ocpp"},
                "meter_buses": [{"name": "sim", "url": "simulator"}],
                "simulator": {},
                "connectors": [{"id": 1, "evse_id": "DE*XYZ*E0001*1", "meter": {"bus": "sim"}}],
                "store": {"state_dir": str(state)},
            }
        )
    )
    xml = tmp / "sessions.xml"
    seconds, rss, _ = timed(
        ["transactions", "export", "--config", str(config), "--format", "safe-xml", "-o", str(xml)]
    )
    size = xml.stat().st_size / 2**20
    print(
        f"export safe-xml (checks and keeps each proof): {seconds:.1f} s, "
        f"{sessions / seconds:.0f} sessions/s, peak RSS {rss:.1f} MiB, file {size:.0f} MiB"
    )
    csv_path = tmp / "sessions.csv"
    seconds, rss, _ = timed(
        ["transactions", "export", "--config", str(config), "--format", "csv", "-o", str(csv_path)]
    )
    print(
        f"export csv (proofs already kept): {seconds:.1f} s, {sessions / seconds:.0f} sessions/s, "
        f"peak RSS {rss:.1f} MiB"
    )
    seconds, rss, out = timed(["transactions", "list", "--config", str(config)])
    lines = out.count("\n")
    print(
        f"transactions list: {lines} lines, {seconds:.1f} s, {sessions / seconds:.0f} sessions/s, "
        f"peak RSS {rss:.1f} MiB"
    )
    seconds, rss, out = timed(["verify", str(xml), "--public-key", key_hex])
    summary = out.strip().splitlines()[-1]
    records = 2 * sessions
    print(
        f"verify {xml.name}: {summary}; {seconds:.1f} s, {records / seconds:.0f} records/s "
        f"({sessions / seconds:.0f} sessions/s), peak RSS {rss:.1f} MiB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    main(parser.parse_args().sessions)
