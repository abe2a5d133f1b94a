"""TEST MODE for a meter that cannot sign: the station signs the readings with its own key. A
session works end to end, and every output says the records are NOT calibration-law
compliant."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from chargepoint.cli.main import main
from chargepoint.testcsms import TestCsms
from meter.proof.ocmf import parse_ocmf
from meter.proof.test_signature import TEST_MARKER, is_test_signature
from tests.ocpp_views import View16
from tests.station_env import Env, check_signed_pair, remote_session


async def test_station_signed_session_is_verifiable_and_marked_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    env = Env(csms, View16(csms), tmp_path)
    try:
        await env.start(connectors=1, meter_options={1: {"signing": "station-test"}})
        key = await env.view.meter_key(1)
        session = await remote_session(env, 1, "TEST-1", seconds=0.3)
        await env.outbox_drained()
    finally:
        if env.station is not None:
            await env.station.stop()
        await csms.stop()
    check_signed_pair(session, key, "TEST-1")  # pairs and verifies with the station's key
    for value in session.signed.values():
        record = parse_ocmf(value["ocmf"])
        assert is_test_signature(record) and TEST_MARKER in record.payload["MM"]
    config = str(tmp_path / "station.yaml")
    assert main(["transactions", "list", "--config", config]) == 0
    listed = capsys.readouterr().out
    assert "verified: TEST signature by the station, NOT calibration-law compliant" in listed
    assert main(["transactions", "export", "--config", config, "--format", "csv"]) == 0
    row = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert "NOT calibration-law compliant" in row["verification_reason"]
    xml = tmp_path / "test.xml"
    args = ["transactions", "export", "--config", config, "--format", "safe-xml"]
    assert main([*args, "-o", str(xml)]) == 0
    capsys.readouterr()
    assert main(["verify", str(xml), "--public-key", key]) == 0
    assert "NOT calibration-law compliant" in capsys.readouterr().out
    assert main(["verify", session.signed["Transaction.End"]["ocmf"], "--public-key", key]) == 0
    assert "TEST signature by the station" in capsys.readouterr().out
