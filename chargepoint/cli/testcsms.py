"""`chargepoint test-csms`: the test CSMS on the command line, to watch a station talk.

Prints one JSON line per CALL a station sends to stdout ({"time", "station", "ocppVersion",
"action", "uniqueId", "payload"}); the listening URL and connection events go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
import ssl
import sys
from pathlib import Path

from chargepoint.testcsms import Received, TestCsms

EXIT_USAGE = 2
EXIT_FAILED = 1
OCPP_VERSION_CHOICES: dict[str, tuple[str, ...]] = {
    "1.6": ("1.6",),
    "2.0.1": ("2.0.1",),
    "both": ("1.6", "2.0.1"),
}


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _basic_auth(text: str) -> tuple[str, str]:
    station, sep, password = text.partition(":")
    if not sep or not station or not password:
        raise argparse.ArgumentTypeError(f"expected STATION:PASSWORD, got {text!r}")
    return station, password


def add_test_csms_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "test-csms",
        help="run the test CSMS (OCPP 1.6J and 2.0.1) and print what stations send",
        description=(
            "A CSMS for tests and demos: accepts stations at ws[s]://HOST:PORT/ocpp/<station id> "
            "(subprotocol ocpp1.6 and/or ocpp2.0.1; of those it offers, the first one the station "
            "lists is used), answers their messages per the spec and prints one JSON line "
            "per received message to stdout. Runs until SIGINT or SIGTERM."
        ),
    )
    p.add_argument(
        "--ocpp-version",
        choices=tuple(OCPP_VERSION_CHOICES),
        default="both",
        help="OCPP versions to offer (default both)",
    )
    p.add_argument(
        "--listen",
        type=_listen_address,
        default=("127.0.0.1", 9000),
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:9000)",
    )
    p.add_argument(
        "--boot-status",
        choices=("Accepted", "Pending", "Rejected"),
        default="Accepted",
        help="BootNotification answer (default Accepted)",
    )
    p.add_argument(
        "--heartbeat-interval",
        type=int,
        default=300,
        metavar="N",
        help="interval in BootNotification answers, seconds (default 300)",
    )
    p.add_argument("--tls-cert", type=Path, metavar="CERT", help="server certificate (PEM)")
    p.add_argument("--tls-key", type=Path, metavar="KEY", help="server private key (PEM)")
    p.add_argument(
        "--client-ca",
        type=Path,
        metavar="CA",
        help="require TLS client certificates issued by this CA (security profile 3)",
    )
    p.add_argument(
        "--basic-auth",
        type=_basic_auth,
        action="append",
        metavar="STATION:PASSWORD",
        help="require HTTP Basic auth; repeat for several stations",
    )
    p.add_argument(
        "--accept-id-tag",
        action="append",
        metavar="TAG",
        help="accept only these id tags (repeat); others are Invalid. Default: accept all",
    )
    p.set_defaults(func=run_test_csms)


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls_cert is None:
        if args.tls_key is not None or args.client_ca is not None:
            raise ValueError("--tls-key and --client-ca need --tls-cert")
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    if args.client_ca is not None:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _print_received(rec: Received) -> None:
    line = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "station": rec.station_id,
        "ocppVersion": rec.ocpp_version,
        "action": rec.action,
        "uniqueId": rec.unique_id,
        "payload": rec.payload,
    }
    print(json.dumps(line, separators=(",", ":")), flush=True)


async def _serve(args: argparse.Namespace) -> int:
    try:
        ssl_context = _tls_context(args)
    except (ValueError, OSError, ssl.SSLError) as error:
        print(f"test-csms: TLS setup failed: {error}", file=sys.stderr)
        return EXIT_USAGE
    csms = TestCsms(
        boot_status=args.boot_status,
        heartbeat_interval=args.heartbeat_interval,
        accept_id_tags=set(args.accept_id_tag) if args.accept_id_tag else None,
        ssl_context=ssl_context,
        basic_auth=dict(args.basic_auth) if args.basic_auth else None,
        require_client_cert=args.client_ca is not None,
        versions=OCPP_VERSION_CHOICES[args.ocpp_version],
    )
    csms.add_listener(_print_received)
    host, port = args.listen
    try:
        await csms.start(host, port)
    except OSError as error:
        print(f"test-csms: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"test CSMS listening on {csms.url} (stations connect to {csms.url}/<station id>; "
        f"subprotocols {', '.join(csms.subprotocols)})",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await csms.stop()
    return 0


def run_test_csms(args: argparse.Namespace) -> int:
    # Connection events of the CSMS are worth seeing even without -v.
    logger = logging.getLogger("chargepoint.testcsms")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
        if not logging.getLogger().handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            logger.addHandler(handler)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(args))
    return 0
