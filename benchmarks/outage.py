"""A 24-hour CSMS outage, time-compressed, and the drain when the CSMS returns.

While no CSMS is reachable the station (embedded simulator, two connectors) runs sessions
through the core: each started, with the meter's signed Begin and signed End, periodic meter
values and critical security events, their timestamps spread over 24 hours (the sessions and
events come from the core as they would; the periodic values at a compressed interval). At
least 10,000 messages are queued. Then the CSMS (the test CSMS on loopback) comes back and
`chargepoint run` drains the backlog.

Printed per OCPP version: messages queued (sessions, meter values, security events), the
store's size on disk (database + WAL) before and after the drain, the drain time and msg/s
with the round-trip floor measured in the same run, and the verdict: every queued message
delivered in the outbox's order, exactly once (tests/test_outbox_drain.py `delivery`), and
the project's delivery audit (every session ended once, signed values that verify and pair).

Usage: python benchmarks/outage.py [--messages 10000] [--version 1.6|2.0.1|both]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the harness lives with the tests
sys.path.insert(0, str(HERE))

from outbox_drain import drain, make_dir, report  # noqa: E402

from tests.test_outbox_drain import DAY_S, queue_backlog  # noqa: E402

GOAL_MSG_S = 1000


async def outage(version: str, messages: int, tmp: Path) -> bool:
    make_dir(tmp)
    cfg, backlog = await queue_backlog(version, messages, tmp, span_s=DAY_S)
    print(
        f"OCPP {version}: 24 h outage (time-compressed into {backlog.fill_seconds:.0f} s): "
        f"{backlog.messages} messages queued ({backlog.sessions} sessions, "
        f"{backlog.meter_values} meter values, {backlog.security_events} security events)"
    )
    d = await drain(cfg, backlog, version, audit_sessions=True)
    report(d)
    print(
        f"  store on disk (db + wal): {d.store_bytes_before / 2**20:.1f} MiB with the backlog, "
        f"{d.store_bytes_after / 2**20:.1f} MiB after the drain "
        f"({d.store_bytes_before / max(backlog.messages, 1):.0f} bytes per queued message)"
    )
    a = d.audit
    if a is not None:
        print(
            f"  audit: {a.sessions} sessions, {a.ended} ended, {a.messages} transaction "
            f"messages, lost {a.lost}, duplicates {a.duplicates}, problems {len(a.problems)}"
        )
        for problem in a.problems[:10]:
            print(f"  PROBLEM: {problem}")
    audit_ok = a is not None and not a.problems and a.lost == 0
    return d.rate >= GOAL_MSG_S and d.delivery.in_order_exactly_once and audit_ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--version", choices=("1.6", "2.0.1", "both"), default="both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    versions = ("1.6", "2.0.1") if args.version == "both" else (args.version,)
    ok = True
    for version in versions:
        with tempfile.TemporaryDirectory(prefix=f"chargepoint-outage-{version}-") as name:
            ok = await outage(version, args.messages, Path(name)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
