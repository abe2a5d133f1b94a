"""`chargepoint transactions list|export|prune` and `chargepoint meter-keys`: the stored
sessions with their proof, for drivers, operators and auditors. They read the store file
directly (SQLite WAL: safe while the daemon runs)."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from chargepoint.cli.output_file import OutputRefused, ask_on_terminal, is_stdout, open_output
from chargepoint.cli.plural import count, id_ranges
from chargepoint.cli.progress import progress
from chargepoint.cli.run import add_common_options, load, load_readable
from chargepoint.config import EXIT_CONFIG, ConfigError, StationConfig
from chargepoint.proof.export import write_chargy, write_csv, write_safe_xml
from chargepoint.proof.sessions import ProvenSession, proven_sessions
from chargepoint.service.daemon import STORE_FILE
from chargepoint.store import Store, StoreError
from meter.proof.keys import load_public_key

DAYS_PER_YEAR = 365.2425


def _open(cfg: StationConfig) -> Store:
    path = Path(cfg.store.state_dir) / STORE_FILE
    if not path.exists():
        raise StoreError(f"no store at {path}")
    return Store.open(path, cfg.station.id)


def _open_for(args: argparse.Namespace, command: str) -> tuple[StationConfig, Store] | int:
    """The config and its store, or the exit code after saying what is wrong."""
    cfg = load_readable(args)
    if isinstance(cfg, int):
        return cfg
    try:
        return cfg, _open(cfg)
    except StoreError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1


def _since(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r} is not a date (YYYY-MM-DD)") from None
    return text


def _proven(store: Store, args: argparse.Namespace) -> Generator[ProvenSession, None, None]:
    ids = [args.id] if getattr(args, "id", None) is not None else None
    include_open = getattr(args, "include_open", False)
    rows = (
        row
        for row in store.transactions_between(
            since=_since(args.since), connector_id=args.connector, local_ids=ids
        )
        if include_open or not row.open
    )
    yield from proven_sessions(store, rows)


def _sessions_named(ids: list[int]) -> str:
    return f"{'session' if len(ids) == 1 else 'sessions'} {id_ranges(ids)}"


def nothing_selected(store: Store, args: argparse.Namespace, closed_only: bool) -> str:
    """Why `--id`/`--connector` selected no session, naming the sessions there are."""
    closed: list[int] = []
    still_open: list[int] = []
    connectors: set[int] = set()
    for row in store.transactions_between():
        if row.open and closed_only:
            still_open.append(row.local_id)
            continue
        closed.append(row.local_id)
        connectors.add(row.connector_id)
    kind = "closed sessions" if closed_only else "sessions"
    there = f"the store holds {_sessions_named(closed)}" if closed else f"the store holds no {kind}"
    if still_open:
        there += f"; still open: {id_ranges(still_open)}"
    since = f" opened on or after {args.since}" if args.since else ""
    if getattr(args, "id", None) is not None:
        if args.id in still_open:
            return f"session {args.id} is still open: only closed sessions are exported"
        if args.id in closed:
            return f"session {args.id} was opened before {args.since}"
        return f"no session {args.id} ({there})"
    on = ", ".join(str(c) for c in sorted(connectors))
    where = f"{kind} on connector{'s' if len(connectors) > 1 else ''} {on}" if connectors else ""
    return f"no {kind} on connector {args.connector}{since} ({where or there})"


def run_list(args: argparse.Namespace) -> int:
    opened = _open_for(args, "transactions")
    if isinstance(opened, int):
        return opened
    _cfg, store = opened
    failed = 0
    listed = 0
    args.include_open = True
    sessions = _proven(store, args)
    try:
        for s in sessions:
            r, p = s.row, s.proof
            energy = "" if p.energy_wh is None else f"{p.energy_wh} Wh"
            state = "-" if r.open else (r.stop_reason or "")
            mark = "open" if r.open else p.mark
            print(
                f"{r.local_id:>6}  connector {r.connector_id}  {r.started_at or r.opened_at}"
                f"  {r.stopped_at or r.closed_at or '-':<24}  {r.id_tag or '-':<16}"
                f"  {energy:>10}  {state:<14}  {mark}"
            )
            listed += 1
            failed += not r.open and p.status.value == "failed"
        if not listed:
            if args.connector is not None:
                print(f"transactions: {nothing_selected(store, args, False)}", file=sys.stderr)
                return 1
            since = f" opened on or after {args.since}" if args.since else ""
            print(f"transactions: no sessions{since}", file=sys.stderr)
    except ValueError as exc:
        print(f"transactions: {exc}", file=sys.stderr)
        return 1
    finally:
        sessions.close()
        store.close()
    return 1 if failed else 0


def run_export(args: argparse.Namespace) -> int:
    opened = _open_for(args, "transactions")
    if isinstance(opened, int):
        return opened
    cfg, store = opened
    sessions = _proven(store, args)
    try:
        first = next(sessions, None)
        if first is None and (args.id is not None or args.connector is not None):
            print(f"transactions export: {nothing_selected(store, args, True)}", file=sys.stderr)
            return 1
        # no progress between the lines of an export that goes to the terminal itself
        to_terminal = is_stdout(args.output) and _is_terminal(sys.stdout)
        chosen = progress(
            itertools.chain([] if first is None else [first], sessions),
            "sessions",
            args.quiet or to_terminal,
        )
        with open_output(args.output, args.force, ask_on_terminal()) as out:
            if args.format == "csv":
                what = count(write_csv(out, chosen), "session")
            elif args.format == "chargy":
                write_chargy(out, chosen, cfg.station)
                what = "1 session (Chargy document)"
            else:
                values = write_safe_xml(out, chosen)
                what = f"{count(values // 2, 'session')} ({count(values, 'signed value')})"
    except OutputRefused as exc:
        print(f"transactions export: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # the reader went away: main() ends quietly
    except (ValueError, OSError, StoreError) as exc:
        print(f"transactions export: {exc}", file=sys.stderr)
        return 1
    finally:
        sessions.close()
        store.close()
    if not is_stdout(args.output) and not args.quiet:
        print(f"exported {what} to {args.output}", file=sys.stderr)
    return 0


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_prune(args: argparse.Namespace) -> int:
    opened = _open_for(args, "transactions")
    if isinstance(opened, int):
        return opened
    cfg, store = opened
    years = cfg.store.retention_years
    cutoff = datetime.now(UTC) - timedelta(days=years * DAYS_PER_YEAR)
    closed_before = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        removed = store.prune(closed_before)
    finally:
        store.close()
    print(
        f"removed {count(len(removed), 'session')} closed before {closed_before} "
        f"(retention {count(years, 'year')}; sessions with messages still waiting are kept)"
    )
    return 0


def run_keys(args: argparse.Namespace) -> int:
    opened = _open_for(args, "meter-keys")
    if isinstance(opened, int):
        return opened
    _cfg, store = opened
    try:
        for k in store.meter_keys(args.connector):
            until = f"until {k.replaced_at}" if k.replaced_at else "current"
            print(
                f"connector {k.connector_id}  meter {k.meter_serial}  pinned {k.pinned_at} "
                f"({k.how}), {until}\n  {k.public_key_hex}"
            )
    finally:
        store.close()
    return 0


def run_replace(args: argparse.Namespace) -> int:
    try:
        cfg = load(args).config
        key = load_public_key(args.public_key)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as exc:
        print(f"meter-keys replace: public key: {exc}", file=sys.stderr)
        return 1
    connectors = {c.id: c for c in cfg.connectors}
    connector = connectors.get(args.connector)
    if connector is None:
        print(f"meter-keys replace: no connector {args.connector} in the config", file=sys.stderr)
        return 1
    if connector.meter.public_key is not None:
        print(
            f"meter-keys replace: connector {args.connector} has meter.public_key in the "
            "config; put the new key there instead",
            file=sys.stderr,
        )
        return 1
    try:
        store = _open(cfg)
    except StoreError as exc:
        print(f"meter-keys: {exc}", file=sys.stderr)
        return 1
    try:
        store.set_setting(f"meter.{args.connector}.public_key", key.der_hex)
        row = store.pin_meter_key(
            args.connector, args.serial, key.der_hex, "replaced by the operator"
        )
    finally:
        store.close()
    print(
        f"connector {args.connector}: pinned key ...{row.public_key_hex[-16:]} "
        f"(sha256:{key.fingerprint[:16]}) since {row.pinned_at}; restart the daemon"
    )
    return 0


def add_transactions_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser("transactions", help="stored sessions with their proof; exports")
    tsub = t.add_subparsers(dest="transactions_command", required=True)
    lst = tsub.add_parser("list", help="one line per session with its verification mark")
    add_common_options(lst)
    lst.add_argument("--since", help="sessions opened on or after this date (YYYY-MM-DD)")
    lst.add_argument("--connector", type=int, help="only the sessions of this connector")
    lst.set_defaults(func=run_list, id=None)
    exp = tsub.add_parser("export", help="CSV transaction log or S.A.F.E./Chargy XML")
    add_common_options(exp)
    exp.add_argument(
        "--format",
        choices=["csv", "safe-xml", "chargy"],
        default="csv",
        help="csv: transaction log, one row per session (started_at/stopped_at are the "
        "controller's clock, begin_/end_signed_meter_time the meter's clock in the signed "
        "records); "
        "safe-xml: S.A.F.E. (and Chargy) XML; chargy: Chargy's JSON with the meter's snapshots, "
        "one session (--id)",
    )
    which = exp.add_mutually_exclusive_group()
    which.add_argument("--id", type=int, help="one session (its local id)")
    which.add_argument("--connector", type=int, help="the sessions of one connector")
    which.add_argument("--all", action="store_true", help="every session (the default)")
    exp.add_argument("--since", help="sessions opened on or after this date (YYYY-MM-DD)")
    exp.add_argument(
        "-o",
        "--output",
        type=Path,
        help="file to write, written beside it and renamed into place when complete; "
        "- for standard output (the default)",
    )
    exp.add_argument(
        "--force",
        action="store_true",
        help="replace an existing file without asking; write through a symbolic link or into "
        "a FIFO or device",
    )
    exp.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress and no summary line on stderr (errors only), for scripts",
    )
    exp.set_defaults(func=run_export)
    prune = tsub.add_parser(
        "prune", help="remove sessions older than store.retention_years (default 6)"
    )
    add_common_options(prune)
    prune.set_defaults(func=run_prune)
    keys = sub.add_parser("meter-keys", help="the meter keys pinned per connector, with history")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    klist = ksub.add_parser("list", help="every key pinned, oldest first")
    add_common_options(klist)
    klist.add_argument("--connector", type=int, help="only the keys of this connector")
    klist.set_defaults(func=run_keys)
    replace = ksub.add_parser(
        "replace",
        help="a new meter on a connector: pin its key (from its label); takes effect when the "
        "daemon next starts, old sessions keep verifying with the key they were signed with",
    )
    add_common_options(replace)
    replace.add_argument(
        "--connector", type=int, required=True, help="the connector whose meter was replaced"
    )
    replace.add_argument("--public-key", required=True, help="hex or a file, from the label")
    replace.add_argument("--serial", default="", help="the new meter's serial (MA1)")
    replace.set_defaults(func=run_replace)


__all__ = ["add_transactions_parser"]
