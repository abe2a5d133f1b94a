"""`chargepoint web` (the operator's web page, a process beside the daemon) and
`chargepoint verifier-page` (the driver's self-contained verify.html)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from chargepoint.cli.config_commands import add_config_arguments, config_from_args
from chargepoint.cli.output_file import OutputRefused, ask_on_terminal, is_stdout, open_output
from chargepoint.config import EXIT_CONFIG, ConfigError
from chargepoint.service.logsetup import setup_logging
from chargepoint.web.auth import OperatorPassword, PasswordFileError
from chargepoint.web.server import build_state, serve_until_stopped, tls_context
from chargepoint.web.settings import WebSettingsError, from_config
from chargepoint.web.verifier import verifier_page
from meter.proof.keys import KeyFormatError, load_public_key


def add_web_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    web = sub.add_parser(
        "web",
        help="serve the operator's web page (status, transactions, downloads, verifier)",
        description=(
            "Serve the station's web page beside the running daemon: live status, the "
            "transaction log with each session's verification, downloads (S.A.F.E. XML, "
            "Chargy JSON, CSV), the meter keys, and the driver's verifier at /verify. It reads "
            "the store read-only and reaches the daemon through its control interface. "
            f"Exits {EXIT_CONFIG} when the configuration does not allow it to start."
        ),
    )
    add_config_arguments(web, overrides=False)
    web.add_argument(
        "--listen",
        help="HOST:PORT to serve on, overriding web.listen (default 127.0.0.1:8080)",
    )
    web.set_defaults(func=run_web)

    page = sub.add_parser(
        "verifier-page",
        help="write the driver's verifier: one HTML file that checks signed readings offline",
        description=(
            "Write verify.html: one self-contained page that checks OCMF records, S.A.F.E. XML "
            "and Chargy JSON files against the public key on the station's label, in any "
            "current browser, offline. Publish it where drivers find it (web.verifier_url)."
        ),
    )
    page.add_argument(
        "-o", "--output", type=Path, help="the file to write; - or nothing: standard output"
    )
    page.add_argument("--public-key", help="fill in this key (hex, PEM or a file)")
    page.add_argument("--force", action="store_true", help="replace an existing file")
    page.set_defaults(func=run_verifier_page)


def run_web(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args).config
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    level = "debug" if args.verbose >= 2 else "info" if args.verbose else cfg.logging.level
    setup_logging(level, cfg.logging.format, cfg.logging.journal)
    if not args.verbose:  # one line per request (and per live page) only when asked for
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        settings = from_config(cfg.web, args.listen)
        tls_context(settings)  # unreadable certificate files stop here, not at the first request
        password = (
            OperatorPassword.from_file(settings.password_file) if settings.password_file else None
        )
    except (WebSettingsError, PasswordFileError) as exc:
        print(f"web: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    state = build_state(settings, cfg, password)
    try:
        asyncio.run(serve_until_stopped(state))
    except OSError as exc:
        print(f"web: cannot serve on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def run_verifier_page(args: argparse.Namespace) -> int:
    key = ""
    if args.public_key:
        try:
            key = load_public_key(args.public_key).der_hex
        except (KeyFormatError, ValueError) as exc:
            print(f"verifier-page: public key: {exc}", file=sys.stderr)
            return 1
    html = verifier_page(key).html
    try:
        with open_output(args.output, args.force, ask_on_terminal()) as out:
            out.write(html)
    except OutputRefused as exc:
        print(f"verifier-page: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"verifier-page: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    if not is_stdout(args.output):
        print(f"wrote the verifier page ({len(html.encode()) // 1024} KiB) to {args.output}")
    return 0
