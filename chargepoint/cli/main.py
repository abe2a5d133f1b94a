"""The `chargepoint` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chargepoint.cli.config_commands import add_check_config_parser
from chargepoint.cli.config_reference import add_config_reference_parser
from chargepoint.cli.demo import add_demo_parser
from chargepoint.cli.health import add_health_parser
from chargepoint.cli.meter import add_meter_parser, add_simulate_parser
from chargepoint.cli.meter_demo import add_meter_demo_parser
from chargepoint.cli.run import add_run_parsers
from chargepoint.cli.testcsms import add_test_csms_parser
from chargepoint.cli.transactions import add_transactions_parser
from meter.proof.safe_xml import is_safe_xml
from meter.proof.safe_xml_check import check_xml
from meter.proof.verification import verify_input


def _xml_file(source: str) -> Path | None:
    path = Path(source).expanduser()
    try:
        with path.open("rb") as f:
            return path if is_safe_xml(f.read(64)) else None
    except OSError:
        return None


def run_verify(args: argparse.Namespace) -> int:
    keys: list[str] = args.public_key or []
    xml = _xml_file(args.source) if not args.source.lstrip().startswith("OCMF|") else None
    if xml is not None:
        result = check_xml(xml, keys)
        for line in result.lines:
            print(line)
        return 0 if result.ok else 1
    if len(keys) != 1:
        print("not verified: give the meter's public key once with --public-key")
        return 2
    outcome = verify_input(args.source, keys[0])
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
    add_config_reference_parser(sub)
    add_health_parser(sub)
    add_test_csms_parser(sub)
    add_meter_demo_parser(sub)
    add_simulate_parser(sub)
    add_meter_parser(sub)
    add_transactions_parser(sub)
    v = sub.add_parser("verify", help="verify signed OCMF records against a meter's public key")
    v.add_argument(
        "source",
        help="an OCMF string, a file holding one record per line, or an exported "
        "S.A.F.E./Chargy XML file (every session in it is checked as a Begin/End pair)",
    )
    v.add_argument(
        "--public-key",
        action="append",
        help="the meter's public key: hex or a file (for XML: the keys you trust, repeatable; "
        "without one the key in the file is used and the result says so)",
    )
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
