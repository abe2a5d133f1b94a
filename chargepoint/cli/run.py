"""`chargepoint run`, `chargepoint status` and `chargepoint control`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from chargepoint.cli.authorization_status import authorization_lines, stored_authorization
from chargepoint.cli.config_commands import (
    StateDirError,
    config_from_args,
    prepare_state_dir,
    readable_state_dir,
    report_state_dir_error,
)
from chargepoint.config import EXIT_CONFIG, ConfigError, LoadedConfig, StationConfig
from chargepoint.service.control import ControlAddress, request
from chargepoint.service.daemon import EXIT_RESTART, STORE_FILE, Daemon, UnsupportedVersion
from chargepoint.service.instance_lock import EXIT_ALREADY_RUNNING, AlreadyRunning
from chargepoint.service.logsetup import add_file_log, setup_logging
from chargepoint.store import StoreError
from chargepoint.store.errors import StoreDamaged

log = logging.getLogger("chargepoint")


def add_common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="the station's YAML file")
    p.add_argument("--state-dir", type=Path, help="where the store and simulated meters live")


def load(args: argparse.Namespace) -> LoadedConfig:
    """The config with the command line's overrides applied before validation."""
    return config_from_args(args)


def load_readable(args: argparse.Namespace) -> StationConfig | int:
    """The config, its state directory readable; or the exit code after saying what is
    wrong."""
    try:
        cfg = load(args).config
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    try:
        readable_state_dir(Path(cfg.store.state_dir))
    except StateDirError as exc:
        return report_state_dir_error(exc)
    return cfg


def add_run_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the charge point daemon")
    add_common_options(run)
    run.add_argument("--csms-url", help="override csms.url (the station id is appended)")
    run.add_argument("--ocpp-version", choices=("1.6", "2.0.1"), help="override csms.ocpp_version")
    run.set_defaults(func=run_daemon)

    status = sub.add_parser("status", help="connectors, open sessions and the outbox")
    add_common_options(status)
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.set_defaults(func=run_status)

    control = sub.add_parser("control", help="act as the charge controller / HMI")
    add_common_options(control)
    control.add_argument(
        "action",
        choices=("plug", "unplug", "fault", "clear-fault", "stop", "id-tag"),
        help="what the charge controller reports or asks for",
    )
    control.add_argument("target", help="connector number, or the id tag for id-tag")
    control.add_argument("--connector", type=int, help="with id-tag: the connector")
    control.add_argument("--info", default="", help="with fault: what is wrong")
    control.set_defaults(func=run_control)


def run_daemon(args: argparse.Namespace) -> int:
    try:
        loaded = load(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    cfg = loaded.config
    try:
        prepare_state_dir(Path(cfg.store.state_dir))
    except StateDirError as exc:
        return report_state_dir_error(exc)
    level = cfg.logging.level
    if getattr(args, "verbose", 0):  # -v / -vv on the command line win over the file
        level = "debug" if args.verbose >= 2 else "info"
    setup_logging(level, cfg.logging.format, cfg.logging.journal)
    diag = cfg.diagnostics
    add_file_log(Path(cfg.store.state_dir) / "logs", diag.log_file_bytes, diag.log_files)
    if getattr(args, "verbose", 0) >= 2:
        logging.getLogger("pymodbus").setLevel(logging.DEBUG)
    for warning in loaded.warnings:
        log.warning("config: %s", warning)
    daemon = Daemon(cfg)
    try:
        asyncio.run(daemon.run_until_signalled())
    except (UnsupportedVersion, ConfigError) as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    except StoreDamaged as exc:  # needs a person: EX_CONFIG, so systemd does not restart
        log.error("store: %s; to salvage what is readable run: %s", exc, _recover_line(args))
        return EXIT_CONFIG
    except StoreError as exc:
        log.error("store: %s", exc)
        return 1
    except AlreadyRunning as exc:
        log.error("%s", exc)
        return EXIT_ALREADY_RUNNING
    return EXIT_RESTART if daemon.restart_requested else 0


def _recover_line(args: argparse.Namespace) -> str:
    """`chargepoint store recover` for the station the command line names."""
    state_dir = getattr(args, "state_dir", None)
    return f"chargepoint store recover --config {args.config}" + (
        f" --state-dir {state_dir}" if state_dir else ""
    )


def _address(cfg: StationConfig) -> ControlAddress:
    return ControlAddress(cfg.control.listen, Path(cfg.store.state_dir))


def run_status(args: argparse.Namespace) -> int:
    cfg = load_readable(args)
    if isinstance(cfg, int):
        return cfg
    try:
        code, data = asyncio.run(request(_address(cfg), "GET", "/status"))
    except (OSError, TimeoutError):
        return _offline_status(cfg, args.json)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0 if code == 200 else 1
    print(
        f"station {data['station']}: {'online' if data['online'] else 'OFFLINE'}, "
        f"outbox {data['outbox']} waiting, {data['failed_messages']} failed"
    )
    if data.get("storage", "ok") != "ok":  # the state dir is full (core/disk_space.py)
        print(f"  storage {data['storage']}")
    for c in data["connectors"]:
        line = f"  connector {c['id']} ({c['evse_id']}): {c['status']}"
        if c["error_code"] != "NoError" or c["info"]:
            line += f" [{c['error_code']}: {c['info']}]"
        if c.get("last_meter_error"):
            line += f"\n    last meter error {c['last_meter_error']}"
        limit = c.get("charging_limit")
        if limit and limit["limit_w"] is not None:
            line += (
                f"\n    charging limit {limit['limit_w']:.0f} W ({limit['limit_a']:.1f} A x "
                f"{limit['phases']}) by {limit['source']}"
            )
        tx = c["transaction"]
        if tx:
            energy = "" if tx["energy_wh"] is None else f", {tx['energy_wh']} Wh so far"
            line += (
                f"; session {tx['local_id']} for {tx['id_tag']} since {tx['started_at']}{energy}"
            )
        print(line)
    for line in authorization_lines(data):
        print(line)
    return 0


def _offline_status(cfg: StationConfig, as_json: bool) -> int:
    from chargepoint.store import Store

    path = Path(cfg.store.state_dir) / STORE_FILE
    if not path.exists():
        print(f"daemon not running and no store at {path}", file=sys.stderr)
        return 1
    try:  # nothing is migrated while the daemon is not there
        store = Store.open_without_migrating(path, cfg.station.id)
    except (StoreError, OSError) as exc:
        print(f"store unreadable: {path}: {_store_reason(exc, path)}", file=sys.stderr)
        return 1
    try:
        data = {
            "daemon": "not running",
            "outbox": store.outbox_length(),
            "failed_messages": len(store.failed_messages()),
            "open_sessions": [
                {
                    "local_id": t.local_id,
                    "connector": t.connector_id,
                    "id_tag": t.id_tag,
                    "started_at": t.started_at,
                }
                for t in store.open_transactions()
            ],
            **stored_authorization(store, cfg),
        }
    finally:
        store.close()
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(
            f"daemon not running; outbox {data['outbox']} waiting, {data['failed_messages']} failed"
        )
        for s in data["open_sessions"]:
            print(
                f"  open session {s['local_id']} on connector {s['connector']} "
                f"for {s['id_tag']} since {s['started_at']}"
            )
        for line in authorization_lines(data):
            print(line)
    return 0


def _store_reason(exc: Exception, path: Path) -> str:
    """The cause, without the path the line already names."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return text.removeprefix(f"{path}: ").removeprefix(f"{path} ")


def run_control(args: argparse.Namespace) -> int:
    cfg = load_readable(args)
    if isinstance(cfg, int):
        return cfg
    if args.action == "id-tag":
        body: dict[str, Any] = {"id_tag": args.target}
        if args.connector:
            body["connector"] = args.connector
        target = "/id-tag"
    else:
        count = len(cfg.connectors)
        if not args.target.isdigit() or not 1 <= int(args.target) <= count:
            print(f"control: connector must be a number 1..{count}", file=sys.stderr)
            return 2
        target = f"/connectors/{args.target}/{args.action}"
        body = {"info": args.info} if args.action == "fault" else {}
    try:
        code, data = asyncio.run(request(_address(cfg), "POST", target, body))
    except (OSError, TimeoutError) as exc:
        print(f"control: daemon not reachable: {exc}", file=sys.stderr)
        return 1
    if code != 200:
        print(f"control: {data.get('error') or data.get('result')}", file=sys.stderr)
        return 1
    print(data.get("result"))
    return 0
