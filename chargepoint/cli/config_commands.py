"""`chargepoint check-config`, the config options every daemon subcommand shares, and the
checks of what the file names on this machine (the state directory, serial devices)."""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from pathlib import Path

from chargepoint.config import (
    EXIT_CONFIG,
    ConfigError,
    ConfigProblem,
    LoadedConfig,
    Overrides,
    load_config,
)
from chargepoint.store.files import DIR_MODE, make_directory
from meter.modbus.link import LinkKind, parse_link_url, serial_device_problem


def add_config_arguments(parser: argparse.ArgumentParser, overrides: bool = True) -> None:
    """`--config FILE`, `--state-dir DIR` and (`overrides`) `--csms-url`, `--ocpp-version`."""
    parser.add_argument("--config", type=Path, required=True, help="the station's YAML file")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="override store.state_dir (the store, simulated meters); relative to the "
        "current directory",
    )
    if overrides:
        parser.add_argument(
            "--csms-url", help="override csms.url (ws:// or wss://; the station id is appended)"
        )
        parser.add_argument(
            "--ocpp-version", choices=("1.6", "2.0.1"), help="override csms.ocpp_version"
        )


def config_from_args(args: argparse.Namespace) -> LoadedConfig:
    """Load `args.config` with the overrides given in place of the file's values, before the
    file is validated (as the daemon does).

    Options a subcommand does not have count as not given. Raises ConfigError.
    """
    overrides = Overrides(
        csms_url=getattr(args, "csms_url", None),
        ocpp_version=getattr(args, "ocpp_version", None),
        state_dir=getattr(args, "state_dir", None),
    )
    return load_config(args.config, overrides)


def report_config_error(error: ConfigError) -> int:
    """Print every problem, one per line, to stderr; the exit code for config errors."""
    print(error, file=sys.stderr)
    return EXIT_CONFIG


# --- the state directory ---------------------------------------------------------------------


class StateDirError(Exception):
    """The state directory cannot be created or used; fix the path or its permissions."""

    def __init__(self, path: Path, cause: str) -> None:
        self.path = path
        self.cause = cause
        super().__init__(f"state directory {path}: {cause}")


def prepare_state_dir(path: Path) -> Path:
    """Create the state directory (and its parents) unless it is there; `path`.

    Raises StateDirError naming the path and the cause: "permission denied", "not a
    directory", "read-only file system", ...
    """
    try:
        make_directory(path, DIR_MODE)
    except OSError as exc:
        raise StateDirError(path, _cause(exc)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(
            path, "read-only file system" if _read_only(path) else "permission denied"
        )
    return path


def readable_state_dir(path: Path) -> Path:
    """For commands that only read (status, transactions, control): the state directory, if
    there, must be a directory this user may read. Raises StateDirError like
    `prepare_state_dir`; a missing one is left to the command ("no store at ...")."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return path
    except NotADirectoryError:
        raise StateDirError(path, "not a directory") from None
    except OSError as exc:
        raise StateDirError(path, _cause(exc)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise StateDirError(path, "not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise StateDirError(path, "permission denied")
    return path


def report_state_dir_error(error: StateDirError) -> int:
    """Print the one-line message to stderr; the exit code for config errors."""
    print(error, file=sys.stderr)
    return EXIT_CONFIG


def _cause(exc: OSError) -> str:
    if isinstance(exc, FileExistsError | NotADirectoryError) or exc.errno == errno.ENOTDIR:
        return "not a directory"  # mkdir(exist_ok=True) on a file raises FileExistsError
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    text = exc.strerror or type(exc).__name__
    return text[:1].lower() + text[1:]


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


# --- serial devices --------------------------------------------------------------------------


def serial_device_problems(loaded: LoadedConfig) -> list[ConfigProblem]:
    """A problem, with its line, for each meter bus on a serial device that is not there, is
    no character device or cannot be opened. Network and simulated buses are not checked."""
    problems: list[ConfigProblem] = []
    for i, bus in enumerate(loaded.config.meter_buses):
        if bus.is_simulator:
            continue
        settings = parse_link_url(bus.url)  # validated with the file
        if settings.kind is not LinkKind.SERIAL:
            continue
        reason = serial_device_problem(settings.port)
        if reason is not None:
            problems.append(loaded.problem(("meter_buses", i, "url"), reason))
    return problems


# --- check-config ----------------------------------------------------------------------------


def run_check_config(args: argparse.Namespace) -> int:
    try:
        loaded = config_from_args(args)
    except ConfigError as exc:
        return report_config_error(exc)
    problems = [] if args.no_device_check else serial_device_problems(loaded)
    state_error: StateDirError | None = None
    try:
        prepare_state_dir(loaded.config.store.state_dir)
    except StateDirError as exc:
        state_error = exc
    if problems:
        report_config_error(ConfigError(problems, loaded.path))
    if state_error is not None:
        report_state_dir_error(state_error)
    if problems or state_error is not None:
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return EXIT_CONFIG
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
            "would, and check what it names on this machine: the state directory (created "
            "when missing) and the serial devices of the meter buses. Exits 0 (printing any "
            f"warnings) or prints every problem and exits {EXIT_CONFIG}."
        ),
    )
    add_config_arguments(p)
    p.add_argument(
        "--no-device-check",
        action="store_true",
        help="do not check that the serial devices exist (the systemd unit's start check: a "
        "USB adapter that appears late must not keep the daemon down; the daemon reports "
        "a missing device as a meter fault and retries)",
    )
    p.set_defaults(func=run_check_config)
