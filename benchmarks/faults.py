"""The full fault run: power losses at seeded random points on both OCPP versions, then the
property-based fuzzing of CSMS frames and configurations, with the figures.

- kills: the daemon (with its embedded simulated meters) SIGKILLed at seeded instants while a
  test CSMS starts and stops sessions on two connectors and starts firmware updates, log
  uploads and certificate renewals, restarted each time (tests/kill_harness.py); afterwards the
  CSMS's log is audited: every session ended once, nothing delivered twice with other content,
  nothing missing (lost and duplicated must be 0), signed Begin and End verify and pair (the
  share of billable sessions signed, must be 100 %), every job reached a final status the
  specification allows with its notifications in order, an uploaded log opens, the station
  certificate on disk is whole and the last one accepted; kills are counted per step they
  landed in (session and job steps), and every step must get kills;
- recovery: seconds from the restart until the CSMS accepted the new boot (worst of all kills),
  and until every session open at the last kill was ended and delivered;
- fuzz: tests/test_fuzz.py with CHARGEPOINT_FUZZ_CASES per target (2 OCPP versions + YAML):
  generated inbound frames (wrong types, missing fields, unknown actions, frames up to 1 MB
  and nested up to 200,000 levels, duplicate message ids, binary frames, results for unknown
  ids) sent by a test CSMS on loopback; every one answered or ignored as OCPP-J says, the same
  connection and the accepted boot kept throughout, the RSS of the test process read before
  and after.

Usage: python benchmarks/faults.py [--kills 500] [--seed 7] [--fuzz-cases 10000]
(--kills per OCPP version, so 1,000 kills by default; 0 skips them, --fuzz-cases 0 skips the
fuzzing; the CI sample is tests/test_fault_kills.py)
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

from tests.kill_harness import ALL_STEPS, KillRun, run_kills  # noqa: E402


def report(run: KillRun, seconds: float) -> None:
    a, j = run.audit, run.jobs
    print(
        f"OCPP {run.version} (seed {run.seed}): {run.kills} kills survived in {seconds:.0f} s "
        f"({run.per_kill_s:.2f} s per kill cycle); {a.sessions} sessions checked "
        f"({run.starts_requested} starts and {run.stops_requested} stops requested), "
        f"{a.messages} transaction messages: lost {a.lost}, duplicated {a.duplicated} "
        f"(resent with the same content after a lost answer: {a.duplicates}); billable sessions "
        f"signed {a.signed_percent:.1f} % ({a.signed} of {a.billable}); "
        f"recovery to an accepted boot {run.mean_recovery_s:.2f} s on average, worst "
        f"{run.worst_recovery_s:.2f} s; "
        f"{run.settle_seconds:.2f} s to a drained outbox and ended jobs at the end"
    )
    for kind in ("firmware", "log", "certificate"):
        finals = ", ".join(f"{n} {status}" for status, n in sorted(j.jobs.get(kind, {}).items()))
        print(f"  {kind} jobs by final status: {finals or 'none'}")
    print(
        f"  job status notifications {j.status_messages} (said again after a restart: "
        f"{j.duplicates}); station certificates installed {j.certificates_installed}; "
        f"daemon restarts after an installation {run.firmware_restarts}; "
        f"stale temporary files in the certificate store {len(j.stale_temp_files)}"
        + (f" ({', '.join(j.stale_temp_files[:4])})" if j.stale_temp_files else "")
    )
    for problem in run.problems()[:20]:
        print(f"  PROBLEM: {problem}")


def step_table(runs: list[KillRun]) -> bool:
    """Kills per step and version; False when a step got none."""
    counts = [run.steps() for run in runs]
    header = "".join(f"{'OCPP ' + run.version:>12}" for run in runs)
    print("kills per step (a kill counts once in each step it landed in: per connector, per job)")
    print(f"  {'step':62}{header}{'total':>8}")
    empty = []
    for step in ALL_STEPS:
        row = [c[step] for c in counts]
        if not sum(row):
            empty.append(step)
        print(f"  {step:62}" + "".join(f"{n:>12}" for n in row) + f"{sum(row):>8}")
    if empty:
        print(f"steps without a kill: {', '.join(empty)}")
    return not empty


async def kills(per_version: int, seed: int, versions: list[str], keep: Path | None) -> bool:
    ok = True
    runs = []
    t0 = time.monotonic()
    for offset, version in enumerate(("1.6", "2.0.1")):
        if version not in versions:
            continue
        with tempfile.TemporaryDirectory(prefix=f"chargepoint-faults-{version}-") as tmp:
            where = Path(tmp) if keep is None else keep / version
            where.mkdir(parents=True, exist_ok=True)
            t1 = time.monotonic()
            run = await run_kills(version, seed + offset, per_version, where)
            report(run, time.monotonic() - t1)
            runs.append(run)
            ok = ok and not run.problems() and run.audit.lost == 0
    total = sum(r.kills for r in runs)
    seconds = time.monotonic() - t0
    covered = step_table(runs)
    lost = sum(r.audit.lost for r in runs)
    duplicated = sum(r.audit.duplicated for r in runs)
    billable = sum(r.audit.billable for r in runs)
    signed = sum(r.audit.signed for r in runs)
    problems = sum(len(r.problems()) for r in runs)
    print(
        f"kills in total: {total} ({', '.join(f'{r.kills} on OCPP {r.version}' for r in runs)}) "
        f"in {seconds / 60:.1f} min ({seconds / max(total, 1):.2f} s per kill); lost {lost}, "
        f"duplicated {duplicated}, billable sessions signed "
        f"{100.0 * signed / billable if billable else 100.0:.1f} % ({signed} of {billable}), "
        f"worst recovery {max(r.worst_recovery_s for r in runs):.2f} s, problems {problems}"
    )
    return ok and covered


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
    parser.add_argument("--kills", type=int, default=500, help="per OCPP version")
    parser.add_argument("--seed", type=int, default=7, help="of OCPP 1.6; 2.0.1 uses seed + 1")
    parser.add_argument("--versions", default="1.6,2.0.1", help="OCPP versions to kill")
    parser.add_argument(
        "--keep", type=Path, help="keep each version's state, daemon log and uploads here"
    )
    parser.add_argument("--fuzz-cases", type=int, default=10_000, help="per target (0: no fuzzing)")
    args = parser.parse_args()
    versions = args.versions.split(",")
    ok = asyncio.run(kills(args.kills, args.seed, versions, args.keep)) if args.kills else True
    if args.fuzz_cases:
        ok = fuzz(args.fuzz_cases) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
