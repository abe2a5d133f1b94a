"""`chargepoint store check|recover`: is the store file damaged, and salvaging what is readable.

`check` reads the store without changing it (a copy of it, or the live file read-only while
the daemon runs). `recover` refuses while a daemon runs, never changes the damaged file,
builds a new store with every readable row, checks that each salvaged session's signed
records prove what they proved before, and only then puts it in place, keeping the damaged
file beside it (`chargepoint.sqlite.damaged-<UTC time>`, with its -wal and -shm).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from chargepoint.cli.plural import count, id_ranges
from chargepoint.cli.run import add_common_options, load_readable
from chargepoint.config import StationConfig
from chargepoint.proof.sessions import prove
from chargepoint.service.daemon import STORE_FILE
from chargepoint.service.instance_lock import EXIT_ALREADY_RUNNING, AlreadyRunning, InstanceLock
from chargepoint.store import Store, StoreError
from chargepoint.store.integrity import SalvageReport, check_store, install, publish, salvage

EXIT_DAMAGED = 1


def add_store_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store = sub.add_parser("store", help="check the store file, or salvage a damaged one")
    actions = store.add_subparsers(dest="store_action", required=True)
    check = actions.add_parser(
        "check", help="is the store damaged? (exit 0 healthy, 1 damaged, 78 config)"
    )
    add_common_options(check)
    check.set_defaults(func=run_check)
    recover = actions.add_parser(
        "recover",
        help="salvage every readable session and message into a new store "
        "(the daemon must be stopped; the damaged file is kept beside it)",
    )
    add_common_options(recover)
    recover.add_argument(
        "--output",
        type=Path,
        help="write the salvaged store here and leave the damaged one where it is",
    )
    recover.set_defaults(func=run_recover)


def _station(args: argparse.Namespace) -> tuple[StationConfig, Path] | int:
    cfg = load_readable(args)
    if isinstance(cfg, int):
        return cfg
    path = Path(cfg.store.state_dir) / STORE_FILE
    if not path.exists():
        print(f"no store at {path}", file=sys.stderr)
        return EXIT_DAMAGED
    return cfg, path


def _lock(lock: InstanceLock, what: str) -> None:
    """Hold the daemon's instance lock (AlreadyRunning: a daemon runs). A lock file that is
    not there yet is not created: a daemon never ran here, and one made by another user
    (root) would keep the service's daemon from ever taking it."""
    if lock.path.exists():
        lock.acquire(what)


def recover_command(args: argparse.Namespace) -> str:
    """The command line that salvages the store of the station `args` name."""
    line = f"chargepoint store recover --config {args.config}"
    if getattr(args, "state_dir", None):
        line += f" --state-dir {args.state_dir}"
    return line


def run_check(args: argparse.Namespace) -> int:
    found = _station(args)
    if isinstance(found, int):
        return found
    cfg, path = found
    lock = InstanceLock(path.parent)
    live = False
    try:
        _lock(lock, "store check")
    except AlreadyRunning:
        live = True  # read the live file read-only; the daemon keeps writing it
    except OSError:
        pass  # cannot take the lock (read-only state dir): nobody writes there either
    try:
        report = check_store(path, cfg.station.id, live=live)
    except StoreError as exc:
        print(f"store check: {exc}", file=sys.stderr)
        return EXIT_DAMAGED
    finally:
        lock.release()
    if not report.healthy:
        print(f"{path} is DAMAGED:")
        for problem in report.problems:
            print(f"  {problem}")
        print(f"to salvage every readable session: {recover_command(args)}")
        return EXIT_DAMAGED
    counts = ", ".join(f"{name} {n}" for name, n in report.counts.items())
    print(f"{path}: healthy (schema {report.version}; {counts})")
    print(
        f"  integrity_check ok; {count(report.signed_records, 'signed record')} parse as OCMF"
        + ("" if report.wal_checked else "; the daemon is running, its WAL was not walked")
    )
    return 0


def _verify(built: Path, station_id: str) -> tuple[dict[str, int], list[int]]:
    """Each salvaged session's proof, recomputed from its records, by status; and the ids of
    those whose result differs from the one the damaged store had kept."""
    by_status: dict[str, int] = {}
    differ: list[int] = []
    store = Store.open(built, station_id)
    try:
        for row in store.transactions(limit=2**62):
            proof = prove(row)
            by_status[proof.status.value] = by_status.get(proof.status.value, 0) + 1
            kept = store.proof(row.local_id)
            if kept is not None and (kept.status, kept.energy_wh) != (
                proof.status.value,
                proof.energy_wh,
            ):
                differ.append(row.local_id)
    finally:
        store.close()
    return by_status, differ


def _summary(report: SalvageReport, by_status: dict[str, int], differ: list[int]) -> list[str]:
    sessions = report.table("transactions")
    lost = sorted(sessions.unreadable_ids)
    proven = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
    lines = [
        f"sessions: {sessions.copied} salvaged ({proven or 'none'}), "
        f"{len(lost) + sessions.refused} lost"
        + (f" (unreadable ids {id_ranges(lost)})" if lost else "")
        + (f" ({sessions.refused} refused by the schema)" if sessions.refused else "")
    ]
    outbox = report.table("outbox")
    lines.append(
        f"messages: {outbox.copied} salvaged, {len(outbox.unreadable_ids) + outbox.refused} lost"
    )
    others = [
        f"{t.name} {t.copied}"
        + (
            f" ({len(t.unreadable_ids) + t.refused} lost)"
            if t.unreadable_ids or t.refused
            else (" (some unreadable)" if t.unreadable_unknown else "")
        )
        for t in report.tables.values()
        if t.name not in ("transactions", "outbox", "meta")
        and (t.copied or t.unreadable_ids or t.refused or t.unreadable_unknown)
    ]
    lines.append("other rows: " + (", ".join(others) or "none"))
    if differ:
        lines.append(
            f"WARNING: sessions {id_ranges(differ)} no longer prove what they proved before"
        )
    else:
        lines.append("every salvaged session's signed records prove what they proved before")
    lines.extend(report.notes)
    return lines


def run_recover(args: argparse.Namespace) -> int:
    found = _station(args)
    if isinstance(found, int):
        return found
    cfg, path = found
    output: Path | None = args.output
    if output is not None and (output.exists() or output.is_symlink()):
        print(f"store recover: {output} exists; refusing to overwrite it", file=sys.stderr)
        return 1
    target = output if output is not None else path
    built = target.with_name(f".{target.name}.recover-{os.getpid()}")
    lock = InstanceLock(path.parent)
    try:
        _lock(lock, "store recover")
    except AlreadyRunning as exc:
        print(f"store recover: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    except OSError as exc:
        print(f"store recover: cannot take the lock in {path.parent}: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            report = salvage(path, cfg.station.id, built)
            by_status, differ = _verify(built, cfg.station.id)
        except (StoreError, OSError) as exc:
            built.unlink(missing_ok=True)
            print(f"store recover: nothing was changed: {exc}", file=sys.stderr)
            return 1
        try:
            if output is not None:
                publish(built, output)
                where = f"salvaged into {output}; {path} was left as it is"
            else:
                aside = install(built, path)
                where = f"salvaged into a new {path}; the damaged file is kept as {aside}"
        except (StoreError, OSError) as exc:
            built.unlink(missing_ok=True)
            print(f"store recover: nothing was changed: {exc}", file=sys.stderr)
            return 1
    finally:
        lock.release()
    print(where)
    for line in _summary(report, by_status, differ):
        print(f"  {line}")
    return 1 if differ else 0
