"""The web page screenshots in README.md, made from a real run, not by hand.

    .venv/bin/python docs/screenshots.py            # writes docs/web-*.png

A station on the embedded simulator (two connectors) against the project's test CSMS on
loopback charges three sessions; the web page is served beside it and headless Chromium
(Debian's /usr/bin/chromium through /usr/bin/chromedriver) takes the pictures: the status page
while connector 1 charges (logged in, with the operator's actions), the transaction log, the
verifier page checking session 1's S.A.F.E. XML, and the status page on a phone-sized screen.

To show every kind of lock mark, two sessions are added to the store after the daemon
stopped: a copy of session 1 with one digit of its signed End changed (the yellow mark) and
a session that ended without a signed End (no lock).
"""

from __future__ import annotations

import asyncio
import io
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chargepoint.cli.main import main as cli  # noqa: E402
from chargepoint.config import load_config  # noqa: E402
from chargepoint.service.daemon import STORE_FILE  # noqa: E402
from chargepoint.store import Store  # noqa: E402
from chargepoint.testcsms import TestCsms  # noqa: E402
from tests.ocpp_views import View16  # noqa: E402
from tests.station_env import Env  # noqa: E402
from tests.station_harness import STATION_ID  # noqa: E402
from tests.test_web_support import PASSWORD, chromium, served, web_state  # noqa: E402

OUT = ROOT / "docs"
WIDTH = 1100


def shoot(driver: Any, name: str, width: int = WIDTH) -> None:
    """The whole page (as tall as its content) as docs/NAME.png."""
    phone = width < 600
    metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": phone}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    time.sleep(0.3)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics["height"] = min(height, 2400)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    time.sleep(0.3)
    path = OUT / f"{name}.png"
    png = driver.get_screenshot_as_png()
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    try:
        from PIL import Image

        image = Image.open(io.BytesIO(png)).convert("P", palette=Image.Palette.ADAPTIVE)
        image.save(path, optimize=True)
    except ImportError:
        path.write_bytes(png)
    print(f"wrote {path.relative_to(ROOT)}")


def wait_text(driver: Any, selector: str, text: str, timeout: float = 10) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while driver.find_element(By.CSS_SELECTOR, selector).text != text:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{selector} never showed {text!r}")
        time.sleep(0.05)


def add_examples(state_dir: Path) -> None:
    """A tampered copy of session 1 and an unsigned session, for the yellow and no mark."""
    store = Store(state_dir / STORE_FILE, STATION_ID)
    try:
        first = store.transaction(1)
        assert first is not None and first.begin_ocmf and first.end_ocmf
        digit = re.search(r'"RV":(\d)', first.end_ocmf)
        assert digit is not None
        other = str((int(digit.group(1)) + 1) % 10)
        changed = first.end_ocmf[: digit.start(1)] + other + first.end_ocmf[digit.end(1) :]
        for end, reason in ((changed, None), (None, "the meter did not answer")):
            local_id = store.start_transaction(
                connector_id=1,
                evse_id="DE*XYZ*E0001*1",
                id_tag="04A1B2C3" if end else "04D5E6F7",
                meter_serial=first.meter_serial or "",
                public_key_hex=first.public_key_hex or "",
                started_at=first.started_at or first.opened_at,
                meter_start_wh=first.meter_start_wh or 0,
                begin_ocmf=first.begin_ocmf,
                begin_fields=first.begin_fields or "{}",
                messages=[],
            )
            store.end_transaction(
                local_id,
                stopped_at=first.stopped_at or first.opened_at,
                meter_stop_wh=first.meter_stop_wh or 0,
                end_ocmf=end,
                end_fields=first.end_fields if end else None,
                stop_reason="Local",
                stop_id_tag=None,
                unsigned_end_reason=reason,
                messages=[],
            )
    finally:
        store.close()


async def session(env: Env, connector: int, tag: str, n: int, seconds: float) -> None:
    assert await env.view.remote_start(connector, tag) == "Accepted"
    started = await env.view.wait_started(n)
    await asyncio.sleep(seconds)
    assert await env.view.remote_stop(started.tx_id) == "Accepted"
    await env.view.wait_ended(n)


async def run(tmp: Path) -> None:
    csms = TestCsms(heartbeat_interval=300)
    await csms.start()
    env = Env(csms, View16(csms), tmp)
    try:
        # a fast simulated EV (50 kW) so that short sessions draw some energy
        await env.start(connectors=2, sign_delay=0.3, ev={"power_w": 50000})
        await session(env, 1, "04A1B2C3", 1, 1.5)
        await session(env, 2, "04E9F0A1", 2, 2.5)
        assert await env.view.remote_start(1, "04A1B2C3") == "Accepted"
        await env.view.wait_started(3)
        config = load_config(tmp / "station.yaml").config
        state = web_state(config)
        with chromium(WIDTH, 800) as driver:
            async with served(state) as base:

                def status() -> None:
                    driver.get(f"{base}/login?next=/")
                    driver.find_element("css selector", "#password").send_keys(PASSWORD)
                    driver.find_element("css selector", "form.login button").click()
                    wait_text(driver, "#live-state", "live")
                    wait_text(driver, '[data-live="c1.status"]', "Charging")
                    time.sleep(1.5)
                    shoot(driver, "web-status")
                    shoot(driver, "web-phone", 390)

                await asyncio.to_thread(status)
            await env.view.remote_stop((await env.view.wait_started(3)).tx_id)
            await env.view.wait_ended(3)
            await env.outbox_drained()
            assert env.station is not None
            await env.station.stop()
            add_examples(tmp / "state")
            xml = tmp / "session-1.xml"
            export = ["transactions", "export", "--config", str(tmp / "station.yaml")]
            assert cli([*export, "--format", "safe-xml", "--id", "1", "-o", str(xml), "-q"]) == 0
            state = web_state(load_config(tmp / "station.yaml").config)
            async with served(state) as base:

                def log_and_verifier() -> None:
                    driver.get(f"{base}/transactions")
                    shoot(driver, "web-transactions")
                    label = keys_of(tmp)[1]
                    driver.get(f"{base}/verify#key={label}")
                    driver.execute_script(
                        "document.getElementById('data').value = arguments[0]", xml.read_text()
                    )
                    driver.find_element("css selector", "#check").click()
                    time.sleep(0.5)
                    shoot(driver, "web-verify")

                await asyncio.to_thread(log_and_verifier)
    finally:
        if env.station is not None:
            await env.station.stop()
        await csms.stop()


def keys_of(tmp: Path) -> dict[int, str]:
    store = Store.open_read_only(tmp / "state" / STORE_FILE, STATION_ID)
    try:
        return {k.connector_id: k.public_key_hex for k in store.meter_keys() if not k.replaced_at}
    finally:
        store.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="chargepoint-screenshots-") as folder:
        asyncio.run(run(Path(folder)))
