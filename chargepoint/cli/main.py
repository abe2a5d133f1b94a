"""The `chargepoint` command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from chargepoint import __version__
from chargepoint.cli.command_log import configure_logging

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

# command -> (module, the function there that adds its parser). A command's module is imported
# only when that command runs (all of them for --help or a mistyped command), so a running
# daemon loads no label, simulator, test CSMS or export code.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("chargepoint.cli.demo", "add_demo_parser"),
    "run": ("chargepoint.cli.run", "add_run_parsers"),
    "status": ("chargepoint.cli.run", "add_run_parsers"),
    "control": ("chargepoint.cli.run", "add_run_parsers"),
    "check-config": ("chargepoint.cli.config_commands", "add_check_config_parser"),
    "config-reference": ("chargepoint.cli.config_reference", "add_config_reference_parser"),
    "health": ("chargepoint.cli.health", "add_health_parser"),
    "test-csms": ("chargepoint.cli.testcsms", "add_test_csms_parser"),
    "meter-demo": ("chargepoint.cli.meter_demo", "add_meter_demo_parser"),
    "simulate-meter": ("chargepoint.cli.meter", "add_simulate_parser"),
    "meter": ("chargepoint.cli.meter", "add_meter_parser"),
    "transactions": ("chargepoint.cli.transactions", "add_transactions_parser"),
    "store": ("chargepoint.cli.store", "add_store_parser"),
    "meter-keys": ("chargepoint.cli.transactions", "add_transactions_parser"),
    "verify": ("chargepoint.cli.verify", "add_verify_parser"),
    "web": ("chargepoint.cli.web", "add_web_parsers"),
    "verifier-page": ("chargepoint.cli.web", "add_web_parsers"),
}

VERBOSE_HELP = "more log output (-vv: debug); also accepted after the command"


def package_version() -> str:
    """The installed distribution's version, or the source tree's when not installed."""
    from importlib import metadata  # only for --version: it costs time and memory

    try:
        return metadata.version("chargepoint")
    except metadata.PackageNotFoundError:
        return __version__


class _VersionAction(argparse.Action):
    """--version, with the version looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"chargepoint {package_version()}")
        parser.exit()


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named on the command line, if it is one of ours."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in COMMANDS else None


def _add_commands(sub: SubParsers, argv: Sequence[str] | None) -> None:
    command = _command_in(argv) if argv is not None else None
    wanted = [COMMANDS[command]] if command else list(dict.fromkeys(COMMANDS.values()))
    for module, function in wanted:
        adder: Callable[[SubParsers], None] = getattr(importlib.import_module(module), function)
        adder(sub)


def _verbose_after_every_command(parser: argparse.ArgumentParser) -> None:
    """`-v` after a (sub)command as well as before it: `chargepoint run --config X -v`.

    Counted apart (dest `verbose_after`, absent unless given) so that a subcommand's parser
    does not reset the count given before it; main() adds the two."""
    seen: set[int] = set()
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for sub in action.choices.values():
            if id(sub) in seen:  # aliases share a parser
                continue
            seen.add(id(sub))
            if "-v" not in sub._option_string_actions:
                sub.add_argument(
                    "-v",
                    "--verbose",
                    action="count",
                    dest="verbose_after",
                    default=argparse.SUPPRESS,
                    help=VERBOSE_HELP,
                )
            _verbose_after_every_command(sub)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `argv`, only the command it names (when it names one)."""
    parser = argparse.ArgumentParser(
        prog="chargepoint",
        description="Eichrecht charge point daemon: signing meters, OCMF, OCPP",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_commands(sub, argv)
    _verbose_after_every_command(parser)
    return parser


def _reader_went_away() -> int:
    """Standard output's reader closed it (`chargepoint ... | head`): stop quietly and
    successfully, as other Unix tools do, and keep the interpreter from reporting the
    unflushable rest of the buffer at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; `verbose` counts -v before and after the command."""
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(words).parse_args(words)
    args.verbose = args.verbose + getattr(args, "verbose_after", 0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not getattr(args, "sets_up_logging", False):  # a command may do it when it needs it
        configure_logging(args.verbose)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _reader_went_away()
    return code


if __name__ == "__main__":
    sys.exit(main())
