"""The full fault run: power losses at seeded random points on both OCPP versions, then the
property-based fuzzing of CSMS frames and configurations, with the figures.

- kills: the daemon (with its embedded simulated meters) SIGKILLed at random instants while a
  test CSMS starts and stops sessions on two connectors, restarted each time; afterwards the
  CSMS's log is audited: every session ended once, nothing delivered twice with other content,
  nothing missing (messages lost must be 0), signed Begin and End verify and pair;
- recovery: seconds from the restart until the CSMS accepted the new boot (worst of all kills),
  and until every session open at the last kill was ended and delivered;
- fuzz: tests/test_fuzz.py with CHARGEPOINT_FUZZ_CASES per target (2 OCPP versions + YAML):
  generated inbound frames (wrong types, missing fields, unknown actions, frames up to 1 MB
  and nested up to 200,000 levels, duplicate message ids, binary frames, results for unknown
  ids) sent by a test CSMS on loopback; every one answered or ignored as OCPP-J says, the same
  connection and the accepted boot kept throughout, the RSS of the test process read before
  and after.

Usage: python benchmarks/faults.py [--kills 100] [--seed 7] [--fuzz-cases 10000]
(--kills per OCPP version; the CI sample is tests/test_fault_kills.py, 2 x 16 kills)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the harness lives with the tests

from tests.kill_harness import KillRun, run_kills  # noqa: E402


def report(run: KillRun, seconds: float) -> None:
    a = run.audit
    print(
        f"OCPP {run.version} (seed {run.seed}): {run.kills} kills survived in {seconds:.0f} s; "
        f"{a.sessions} sessions checked ({run.starts_requested} starts and "
        f"{run.stops_requested} stops requested), {a.messages} transaction messages, "
        f"lost {a.lost}, duplicates {a.duplicates} (same content), problems {len(a.problems)}; "
        f"worst recovery {run.worst_recovery_s:.2f} s to an accepted boot, "
        f"{run.settle_seconds:.2f} s to a drained outbox at the end"
    )
    for problem in a.problems[:20]:
        print(f"  PROBLEM: {problem}")


async def kills(per_version: int, seed: int) -> bool:
    ok = True
    total = 0
    for offset, version in enumerate(("1.6", "2.0.1")):
        with tempfile.TemporaryDirectory(prefix=f"chargepoint-faults-{version}-") as tmp:
            t0 = time.monotonic()
            run = await run_kills(version, seed + offset, per_version, Path(tmp))
            report(run, time.monotonic() - t0)
            total += run.kills
            ok = ok and not run.audit.problems and run.audit.lost == 0
    print(f"kills in total: {total}")
    return ok


def fuzz(cases: int) -> bool:
    with tempfile.TemporaryDirectory(prefix="chargepoint-fuzz-report-") as tmp:
        report_path = Path(tmp) / "fuzz.jsonl"
        env = dict(
            os.environ, CHARGEPOINT_FUZZ_CASES=str(cases), CHARGEPOINT_FUZZ_REPORT=str(report_path)
        )
        t0 = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        figures = (
            [json.loads(line) for line in report_path.read_text().splitlines()]
            if report_path.exists()
            else []
        )
    passed = result.returncode == 0
    for f in figures:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(f["kinds"].items(), key=lambda kv: -kv[1]))
        print(
            f"fuzz OCPP {f['version']}: {f['frames']} inbound frames in {f['seconds']:.0f} s "
            f"({kinds}); 0 crashes, connection and accepted boot intact; "
            f"RSS {f['rss_before_mib']:.0f} -> {f['rss_after_mib']:.0f} MiB"
        )
    print(
        f"fuzz: {3 * cases} cases tried (CSMS frames on OCPP 1.6 and 2.0.1, YAML configs), "
        f"{'all handled' if passed else 'FAILED'} in {time.monotonic() - t0:.0f} s"
    )
    if not passed:
        print(result.stdout[-3000:])
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="per OCPP version")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fuzz-cases", type=int, default=10_000, help="per target")
    args = parser.parse_args()
    ok = asyncio.run(kills(args.kills, args.seed))
    ok = fuzz(args.fuzz_cases) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
