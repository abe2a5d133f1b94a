"""Power loss at seeded random points, both OCPP versions: the CI sample of the fault suite
(`python benchmarks/faults.py` is the full run). Nothing lost, nothing delivered twice with
other content, every session ended once with signed values that verify."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.kill_harness import run_kills

# a sample in CI: 2 x 16 = 32 kills; CHARGEPOINT_KILLS raises it
KILLS = int(os.environ.get("CHARGEPOINT_KILLS", "16"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("version", "seed"), [("1.6", 1601), ("2.0.1", 2001)])
async def test_random_power_losses_lose_and_duplicate_nothing(
    version: str, seed: int, tmp_path: Path
) -> None:
    run = await run_kills(version, seed, KILLS, tmp_path)
    a = run.audit
    assert run.kills == KILLS
    assert a.problems == [], a.problems
    assert a.lost == 0
    assert a.sessions >= KILLS // 4, f"only {a.sessions} sessions started: the run tested little"
    assert a.ended == a.sessions
