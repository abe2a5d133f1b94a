"""`chargepoint health`: is the daemon alive? For container health checks and monitoring.

Asks the running daemon for its status over the control interface. Healthy (exit 0) when the
daemon answers, which means its event loop runs and its store answered (the status includes the
outbox length read from the store). A CSMS that cannot be reached or a Faulted connector is
reported but does not count as unhealthy, since restarting the daemon does not fix either;
`--require-online` makes a missing CSMS connection count.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from chargepoint.cli.config_commands import (
    add_config_arguments,
    config_from_args,
    report_config_error,
)
from chargepoint.config import ConfigError
from chargepoint.service.control import ControlAddress, request

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1


def add_health_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "health",
        help="exit 0 when the daemon answers on its control interface (health checks)",
        description=(
            "Ask the running daemon for its status. Exit 0 when it answers (its event loop and "
            "store work), 1 when it does not; one line says what it reported."
        ),
    )
    add_config_arguments(p, overrides=False)
    p.add_argument(
        "--require-online", action="store_true", help="also exit 1 while the CSMS is not connected"
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")
    p.set_defaults(func=run_health)


def summary(status: dict[str, Any]) -> str:
    """One line: the station, its CSMS link, its outbox and its connectors."""
    connectors = ", ".join(f"{c['id']} {c['status']}" for c in status.get("connectors", []))
    return (
        f"station {status.get('station')}: "
        f"{'online' if status.get('online') else 'CSMS not connected'}, "
        f"outbox {status.get('outbox')}, connectors: {connectors}"
    )


def run_health(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args).config
    except ConfigError as exc:
        return report_config_error(exc)
    address = ControlAddress(cfg.control.listen, Path(cfg.store.state_dir))
    try:
        code, status = asyncio.run(request(address, "GET", "/status", timeout=args.timeout))
    except (OSError, TimeoutError, ValueError) as exc:
        print(f"unhealthy: the daemon does not answer on {address.describe()}: {exc}")
        return EXIT_UNHEALTHY
    if code != 200:
        print(f"unhealthy: the daemon answered {code}: {status.get('error', '')}")
        return EXIT_UNHEALTHY
    line = summary(status)
    if args.require_online and not status.get("online"):
        print(f"unhealthy: {line}")
        return EXIT_UNHEALTHY
    print(f"healthy: {line}")
    return EXIT_HEALTHY
