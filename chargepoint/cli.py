"""The `chargepoint` command."""

from __future__ import annotations

import argparse
import logging
import sys

from chargepoint.config_commands import add_check_config_parser
from chargepoint.demo import add_demo_parser
from chargepoint.meter_commands import add_meter_parser, add_simulate_parser
from chargepoint.meter_demo import add_meter_demo_parser
from chargepoint.run_command import add_run_parsers
from chargepoint.testcsms_command import add_test_csms_parser
from meter.verification import verify_input


def run_verify(args: argparse.Namespace) -> int:
    outcome = verify_input(args.source, args.public_key)
    for line in outcome.lines:
        print(line)
    return 0 if outcome.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chargepoint",
        description="Eichrecht charge point daemon: signing meters, OCMF, OCPP",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)
    add_demo_parser(sub)
    add_run_parsers(sub)
    add_check_config_parser(sub)
    add_test_csms_parser(sub)
    add_meter_demo_parser(sub)
    add_simulate_parser(sub)
    add_meter_parser(sub)
    v = sub.add_parser("verify", help="verify signed OCMF records against a meter's public key")
    v.add_argument("source", help="an OCMF string, or a file holding one record per line")
    v.add_argument("--public-key", required=True, help="the meter's public key: hex or a file")
    v.set_defaults(func=run_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
