"""What the web page tests share: a station store with sessions of every kind of proof, the web
page served on loopback, and headless Chromium (Debian's, through its chromedriver; never a
downloaded browser). The checks here are about the support itself."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.config import StationConfig, load_config
from chargepoint.service.daemon import STORE_FILE
from chargepoint.store import Store
from chargepoint.web.auth import OperatorPassword
from chargepoint.web.context import WebState
from chargepoint.web.server import STORE_FILE as WEB_STORE_FILE
from chargepoint.web.server import build_state, serving
from chargepoint.web.settings import WebSettings
from meter.bsm.ocmf import sign_and_assemble
from meter.proof.keys import public_der
from tests.signed_store import METER_SERIAL, PAYLOAD, STATION_ID, _config
from tests.tools import REQUIRE_ENV, tools_required

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class LogStation:
    """A store with one session of each mark; `ids` by what it shows."""

    config: Path
    key_hex: str  # the pinned key (DER hex)
    ids: dict[str, int]


def _record(
    key: ec.EllipticCurvePrivateKey, rcnt: int, tx: str, minute: str, rv: str, tag: str
) -> str:
    return sign_and_assemble(
        key,
        PAYLOAD
        % {
            "serial": METER_SERIAL,
            "tag": tag,
            "connector": 1,
            "rcnt": rcnt,
            "tm": f"2026-11-02T{minute}:00,000+0100",
            "tx": tx,
            "rv": rv,
            "xv": "1000.00",
            "xt": 1 if tx == "B" else 2,
        },
    )


def log_station(tmp: Path) -> LogStation:
    """Sessions on connector 1, whose pinned key is K: verified (signed with K), tampered
    (a digit of the signed End changed after signing), unsigned (no End), signed with another
    key than the pinned one, and one still open."""
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    der = public_der(key).hex()
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    ids: dict[str, int] = {}
    store = Store(state / STORE_FILE, STATION_ID)
    try:
        store.pin_meter_key(1, METER_SERIAL, der, "first contact")

        def session(
            name: str, signer: ec.EllipticCurvePrivateKey, rcnt: int, minute: str, end: str | None
        ) -> None:
            begin = _record(signer, rcnt, "B", minute, "0.00", name)
            local_id = store.start_transaction(
                connector_id=1,
                evse_id="DE*XYZ*E0001*1",
                id_tag=f"rfid:{name}",
                meter_serial=METER_SERIAL,
                public_key_hex=public_der(signer).hex(),
                started_at=f"2026-11-02T{minute}:01.000Z",
                meter_start_wh=1_000_000,
                begin_ocmf=begin,
                begin_fields=json.dumps({"rcnt": rcnt, "epoch_set_cnt": 1}),
                messages=[],
            )
            ids[name] = local_id
            if end == "open":
                return
            end_ocmf = None if end is None else end
            store.end_transaction(
                local_id,
                stopped_at=f"2026-11-02T{minute}:59.000Z",
                meter_stop_wh=1_000_050,
                end_ocmf=end_ocmf,
                end_fields=None if end_ocmf is None else json.dumps({"rcnt": rcnt + 1}),
                stop_reason="Local",
                stop_id_tag=None,
                unsigned_end_reason="the meter did not answer" if end_ocmf is None else None,
                messages=[],
            )

        session("verified", key, 11, "10:00", _record(key, 12, "E", "10:00", "0.05", "verified"))
        good_end = _record(key, 14, "E", "11:00", "0.05", "tampered")
        tampered = good_end.replace('"RV":0.05', '"RV":0.09')
        assert tampered != good_end
        session("tampered", key, 13, "11:00", tampered)
        session("unsigned", key, 15, "12:00", None)
        session("foreign", other, 17, "13:00", _record(other, 18, "E", "13:00", "0.05", "foreign"))
        session("open", key, 19, "14:00", "open")
    finally:
        store.close()
    return LogStation(_config(tmp, state, (1,), None), der, ids)


def web_state(
    config: StationConfig,
    host: str = "127.0.0.1",
    password: str | None = PASSWORD,
    **settings: Any,
) -> WebState:
    web = WebSettings(host, 0, **settings)
    return build_state(web, config, OperatorPassword(password) if password else None)


@contextlib.asynccontextmanager
async def served(state: WebState) -> AsyncIterator[str]:
    """The page on a free loopback port; yields its base URL."""
    async with serving(state) as runner:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"


def station_config(path: Path) -> StationConfig:
    return load_config(path).config


def _missing(what: str) -> None:
    message = f"{what} (Debian packages chromium and chromium-driver)"
    if tools_required():
        pytest.fail(f"{message}; {REQUIRE_ENV} is set, so it must be there")
    pytest.skip(message)


@contextlib.contextmanager
def chromium(width: int = 1100, height: int = 1000) -> Iterator[Any]:
    """Headless Chromium from /usr/bin, driven by Debian's chromedriver (selenium)."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        _missing(f"{CHROMIUM} or {CHROMEDRIVER} is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    service = Service(str(CHROMEDRIVER), env=env)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """What the page wrote to the console as errors since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def page_weight(driver: Any) -> int:
    """Bytes the current page took over the network: the document and what it loaded."""
    total: int = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return (n ? n.encodedBodySize : 0) + performance.getEntriesByType('resource')"
        ".reduce((s, r) => s + r.encodedBodySize, 0);"
    )
    return total


def test_the_web_page_finds_the_store_where_the_daemon_keeps_it() -> None:
    assert WEB_STORE_FILE == STORE_FILE


def test_the_browser_is_debians_not_a_download() -> None:
    if shutil.which("chromium") is None and not CHROMIUM.exists():
        _missing("chromium is not installed")
    assert CHROMIUM.resolve().is_relative_to(Path("/usr"))
    assert CHROMEDRIVER.resolve().is_relative_to(Path("/usr"))
