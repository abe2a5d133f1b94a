"""Running the web page: the state built from the configuration, the listening socket (HTTPS
when configured), and a clean stop on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from chargepoint.config import StationConfig
from chargepoint.service.control import ControlAddress
from chargepoint.web.app import build_app
from chargepoint.web.auth import OperatorPassword
from chargepoint.web.context import WebState
from chargepoint.web.feed import StatusFeed
from chargepoint.web.reader import StoreReader
from chargepoint.web.settings import WebSettings, WebSettingsError

log = logging.getLogger("chargepoint.web")

STORE_FILE = "chargepoint.sqlite"  # as chargepoint.service.daemon names it
SHUTDOWN_TIMEOUT_S = 5.0


def tls_context(settings: WebSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise WebSettingsError(
            f"cannot use web.tls_cert {settings.tls_cert} / web.tls_key {settings.tls_key}: {exc}"
        ) from None
    return context


def build_state(
    settings: WebSettings, config: StationConfig, password: OperatorPassword | None
) -> WebState:
    state_dir = Path(config.store.state_dir)
    control = ControlAddress(config.control.listen, state_dir)
    return WebState(
        settings=settings,
        config=config,
        feed=StatusFeed(control, settings.poll_interval),
        reader=StoreReader(state_dir / STORE_FILE, config.station.id),
        control=control,
        password=password,
    )


@contextlib.asynccontextmanager
async def serving(state: WebState) -> AsyncIterator[web.AppRunner]:
    """The page served until the block ends; then every request and connection is closed."""
    context = tls_context(state.settings)
    runner = web.AppRunner(
        build_app(state), handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, state.settings.host, state.settings.port, ssl_context=context)
        await site.start()
        log.info("web page on %s", state.settings.url())
        yield runner
    finally:
        await runner.cleanup()
        await state.reader.close()


async def serve_until_stopped(state: WebState) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serving(state):
            await stop.wait()
            log.info("stopping the web page")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
