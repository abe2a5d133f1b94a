"""`chargepoint check-config`, and the config options every daemon subcommand shares."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chargepoint.config import EXIT_CONFIG, ConfigError, LoadedConfig, load_config


def add_config_arguments(parser: argparse.ArgumentParser, overrides: bool = True) -> None:
    """`--config FILE`, `--state-dir DIR` and (`overrides`) `--csms-url`, `--ocpp-version`."""
    parser.add_argument("--config", type=Path, required=True, help="the station's YAML file")
    parser.add_argument(
        "--state-dir", type=Path, help="override store.state_dir (the store, simulated meters)"
    )
    if overrides:
        parser.add_argument(
            "--csms-url", help="override csms.url (ws:// or wss://; the station id is appended)"
        )
        parser.add_argument(
            "--ocpp-version", choices=("1.6", "2.0.1"), help="override csms.ocpp_version"
        )


def config_from_args(args: argparse.Namespace) -> LoadedConfig:
    """Load `args.config` and apply the overrides given, as the daemon does.

    Options a subcommand does not have count as not given. Raises ConfigError.
    """
    loaded = load_config(args.config)
    csms_url: str | None = getattr(args, "csms_url", None)
    ocpp_version: str | None = getattr(args, "ocpp_version", None)
    state_dir: Path | None = getattr(args, "state_dir", None)
    if csms_url is None and ocpp_version is None and state_dir is None:
        return loaded
    return loaded.with_overrides(csms_url=csms_url, ocpp_version=ocpp_version, state_dir=state_dir)


def report_config_error(error: ConfigError) -> int:
    """Print every problem, one per line, to stderr; the exit code for config errors."""
    print(error, file=sys.stderr)
    return EXIT_CONFIG


def run_check_config(args: argparse.Namespace) -> int:
    try:
        loaded = config_from_args(args)
    except ConfigError as exc:
        return report_config_error(exc)
    print(f"config OK: {loaded.path}")
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def add_check_config_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config",
        help="validate the station's YAML file",
        description=(
            "Validate the station's YAML file with the given overrides applied, as `run` "
            f"would. Exits 0 (printing any warnings) or prints every problem and exits "
            f"{EXIT_CONFIG}."
        ),
    )
    add_config_arguments(p)
    p.set_defaults(func=run_check_config)
