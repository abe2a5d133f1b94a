"""Sessions a real station (embedded simulator, test CSMS) kept, listed and exported the way a
driver or auditor gets them, and verified from the export alone: by our verifier, by pyocmf,
and after tampering."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chargepoint.cli.main import main
from chargepoint.store import Store, utc_now
from chargepoint.testcsms import TestCsms
from meter.bsm.chargy import verify_document
from meter.proof.keys import load_public_key
from meter.proof.safe_xml import read_values
from tests.ocpp_views import View16
from tests.station_env import Env, remote_session
from tests.station_harness import STATION_ID
from tests.test_pyocmf_interop import pyocmf_verifies


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def station_with_sessions(tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    """A station that charged three sessions (two on connector 1, one on 2), then stopped:
    its config path and the meter key of connector 1."""
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    env = Env(csms, View16(csms), tmp_path)
    try:
        await env.start(connectors=2)
        key = await env.view.meter_key(1)
        await remote_session(env, 1, "DRIVER-1", seconds=0.3, n=1)
        await remote_session(env, 2, "DRIVER-2", seconds=0.3, n=2)
        await env.view.wait_status(1, "Available")
        await remote_session(env, 1, "DRIVER-3", seconds=0.3, n=3)
        await env.outbox_drained()
    finally:
        if env.station is not None:
            await env.station.stop()
        await csms.stop()
    yield tmp_path / "station.yaml", key


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().out


async def test_list_shows_each_session_with_its_mark(
    station_with_sessions: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = station_with_sessions
    code, out = run(["transactions", "list", "--config", str(config)], capsys)
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3, out
    assert all(line.rstrip().endswith("verified") for line in lines), out
    assert "DRIVER-2" in lines[1] and "connector 2" in lines[1]
    code, out = run(["transactions", "list", "--config", str(config), "--connector", "2"], capsys)
    assert len(out.strip().splitlines()) == 1 and "DRIVER-2" in out


async def test_csv_has_one_row_per_session_with_the_proven_energy(
    station_with_sessions: tuple[Path, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, _ = station_with_sessions
    target = tmp_path / "log.csv"
    code, _ = run(
        ["transactions", "export", "--config", str(config), "--format", "csv", "-o", str(target)],
        capsys,
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["id_tag"] for r in rows] == ["DRIVER-1", "DRIVER-2", "DRIVER-3"]
    for r in rows:
        assert r["verification"] == "verified"
        # the meter's session register (RV) against the difference of its totals (XV): both
        # in 10 Wh steps, so they agree within one step
        energy = int(r["energy_wh"])
        assert energy > 0
        assert abs(energy - (int(r["meter_stop_wh"]) - int(r["meter_start_wh"]))) <= 10
        assert r["begin_ocmf"].startswith("OCMF|") and r["end_ocmf"].startswith("OCMF|")


async def test_safe_xml_export_verifies_with_ours_and_pyocmf(
    station_with_sessions: tuple[Path, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, key = station_with_sessions
    target = tmp_path / "sessions.xml"
    args = ["transactions", "export", "--config", str(config), "--format", "safe-xml"]
    code, _ = run([*args, "-o", str(target)], capsys)
    assert code == 0
    # structure: numeric ids, one Begin and one End each, the same key in every value
    root = ET.parse(target).getroot()
    assert root.tag == "values" and root.attrib == {}
    by_tx: dict[str, list[ET.Element]] = {}
    for value in root:
        assert value.tag == "value" and value.get("transactionId", "").isdigit()
        by_tx.setdefault(value.get("transactionId", ""), []).append(value)
    assert len(by_tx) == 3
    for values in by_tx.values():
        assert sorted(v.get("context", "") for v in values) == [
            "Transaction.Begin",
            "Transaction.End",
        ]
        keys = {v.findtext("publicKey") for v in values}
        assert len(keys) == 1
        for v in values:
            data = v.find("signedData")
            assert data is not None and data.get("format") == "OCMF"
            assert data.text is not None and data.text == data.text.strip()
    # the records are the meter's bytes: pyocmf verifies each against the key of its meter
    for signed in read_values(target):
        assert pyocmf_verifies(signed.ocmf, signed.public_key_hex)
    code, out = run(
        [
            "verify",
            str(target),
            "--public-key",
            key,
            "--public-key",
            next(iter({v.public_key_hex for v in read_values(target)} - {key})),
        ],
        capsys,
    )
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "3 transactions: 3 verified, 0 failed"
    one = tmp_path / "one.xml"
    code, _ = run([*args, "--id", "1", "-o", str(one)], capsys)
    code, out = run(["verify", str(one), "--public-key", key], capsys)
    assert code == 0 and "transaction 1: verified" in out


async def test_a_tampered_export_names_the_session_and_the_reason(
    station_with_sessions: tuple[Path, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, key = station_with_sessions
    target = tmp_path / "sessions.xml"
    code, _ = run(
        [
            "transactions",
            "export",
            "--config",
            str(config),
            "--format",
            "safe-xml",
            "--id",
            "3",
            "-o",
            str(target),
        ],
        capsys,
    )
    text = target.read_text()
    # one digit of the End reading's total register (XV) changed
    end = text.index('context="Transaction.End"')
    at = text.index('"XV":', end) + len('"XV":')
    digit = text[at]
    tampered = text[:at] + ("1" if digit != "1" else "2") + text[at + 1 :]
    target.write_text(tampered)
    code, out = run(["verify", str(target), "--public-key", key], capsys)
    assert code == 1
    assert "transaction 3: FAILED: End record" in out, out
    # without a trusted key the file's own key is used, and the output says so
    code, out = run(["verify", str(target)], capsys)
    assert code == 1 and "FAILED" in out


async def test_meter_keys_keep_their_history_and_old_sessions_keep_verifying(
    station_with_sessions: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, old_key = station_with_sessions
    code, out = run(["meter-keys", "list", "--config", str(config), "--connector", "1"], capsys)
    assert code == 0 and "first contact" in out and old_key in out
    new_key = (
        "3059301306072a8648ce3d020106082a8648ce3d03010703420004"
        "4bfd02c1d85272ceea9977db26d72cc401d9e5602faeee7ec7b6b62f9c0cce34"
        "ad8d345d5ac0e8f65deb5ff0bb402b1b87926bd1b7fc2dbc3a9774e8e70c7254"
    )
    args = ["meter-keys", "replace", "--config", str(config), "--connector", "1"]
    code, out = run([*args, "--public-key", new_key, "--serial", "001BZR1521070006"], capsys)
    assert code == 0, out
    code, out = run(["meter-keys", "list", "--config", str(config), "--connector", "1"], capsys)
    assert "until" in out and "replaced by the operator" in out and "current" in out
    code, out = run(["transactions", "list", "--config", str(config)], capsys)
    assert code == 0 and out.count("verified") == 3


def test_pruning_keeps_the_retention_period_and_waiting_messages(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite", STATION_ID)
    old = "2015-01-01T10:00:00.000Z"

    def session(connector: int, at: str) -> int:
        local_id = store.start_transaction(
            connector_id=connector,
            evse_id="E",
            id_tag="T",
            meter_serial="S",
            public_key_hex="K",
            started_at=at,
            meter_start_wh=1,
            begin_ocmf="OCMF|b",
            begin_fields="{}",
            messages=[("TransactionStarted", {})],
        )
        store.end_transaction(
            local_id,
            stopped_at=at,
            meter_stop_wh=2,
            end_ocmf="OCMF|e",
            end_fields="{}",
            stop_reason="Local",
            stop_id_tag=None,
            unsigned_end_reason=None,
            messages=[("TransactionEnded", {})],
        )
        return local_id

    delivered, waiting, recent = session(1, old), session(2, old), session(3, utc_now())
    for m in store.pending():
        if m.local_tx_id in (delivered, recent):
            store.mark_sent(m.seq)
    assert store.prune("2020-01-01T00:00:00.000Z") == [delivered]
    kept = {r.local_id for r in store.transactions()}
    assert kept == {waiting, recent}
    store.close()


async def test_chargy_document_carries_the_meter_snapshots_and_verifies(
    station_with_sessions: tuple[Path, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, key = station_with_sessions
    target = tmp_path / "session-1.json"
    args = ["transactions", "export", "--config", str(config), "--format", "chargy"]
    code, _ = run([*args, "--id", "1", "-o", str(target)], capsys)
    assert code == 0
    doc = json.loads(target.read_text())
    assert doc["@context"].endswith("charging-station-json-v1")
    begin, end = doc["signedMeterValues"]
    assert begin["contract"] is None or isinstance(begin["contract"], dict)
    assert end["measurementId"] == begin["measurementId"] + 1
    assert [v["measurand"]["name"] for v in begin["additionalValues"]][:3] == [
        "Typ",
        "RCR",
        "TotWhImp",
    ]
    assert verify_document(doc, load_public_key(key)) == []
    # one changed value breaks the meter's snapshot signature
    end["additionalValues"][2]["measuredValue"]["value"] += 1
    assert any("End" in p for p in verify_document(doc, load_public_key(key)))
    # Chargy takes one session per file
    code, _ = run([*args, "-o", str(tmp_path / "all.json")], capsys)
    assert code == 1 and not (tmp_path / "all.json").exists()
