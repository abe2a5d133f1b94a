"""The pages in a real browser (headless Chromium from Debian, driven by its chromedriver):
the status page follows a session on the simulator live and takes the operator's actions,
the transaction log shows each lock mark in colour and in words, the verifier page checks the
real meter data offline and rejects a changed digit, and no page writes a console error."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.cli.main import main
from chargepoint.core.status import StatusReport
from tests.real_vectors import bsm_vectors, multivendor_vectors
from tests.signed_store import real_meter_station
from tests.station_env import running_env
from tests.test_web_support import (
    PASSWORD,
    chromium,
    console_errors,
    log_station,
    page_weight,
    served,
    station_config,
    web_state,
)

SHOW_WITHIN_S = 2.0  # a status change on the station appears on the page within this
PAGE_BUDGET = 40 * 1024  # bytes a page may take over the network (document, style, script)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def shown_text(driver: Any, selector: str) -> str | None:
    """The element's text, or None while it is not there (a page being loaded)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return str(css(driver, selector).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return None


def wait_text(driver: Any, selector: str, text: str, timeout: float = 5.0) -> float:
    """Wait until the element shows `text`; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while True:
        shown = shown_text(driver, selector)
        if shown == text:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} shows {shown!r}, not {text!r}")
        time.sleep(0.02)


def wait_present(driver: Any, selector: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while (shown := shown_text(driver, selector)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {selector}")
        time.sleep(0.02)
    return shown


def click(driver: Any, selector: str) -> None:
    css(driver, selector).click()


def colour(driver: Any, selector: str) -> str:
    return str(css(driver, selector).value_of_css_property("color"))


# ---- the status page, live, on the simulator -------------------------------------------------


def open_status(driver: Any, base: str) -> None:
    driver.get(f"{base}/")
    wait_text(driver, "#live-state", "live")  # the event stream is connected
    wait_text(driver, '[data-live="c1.status"]', "Available")


def log_in(driver: Any, base: str) -> None:
    driver.get(f"{base}/login?next=/")
    css(driver, "#password").send_keys(PASSWORD)
    click(driver, "form.login button")
    wait_text(driver, "#live-state", "live")


async def test_the_status_page_follows_a_session_live_and_takes_actions(
    browser: Any, tmp_path: Path
) -> None:
    async with running_env("1.6", tmp_path) as env:
        await env.start(connectors=2)
        assert env.daemon.station is not None
        seen: dict[str, float] = {}

        def note(report: StatusReport) -> None:
            if report.connector_id == 1:
                seen.setdefault(report.status.value, time.monotonic())

        env.daemon.station.subscribe_status(note)
        state = web_state(station_config(tmp_path / "station.yaml"))
        async with served(state) as base:
            await asyncio.to_thread(open_status, browser, base)
            assert await env.view.remote_start(1, "DRIVER-WEB") == "Accepted"
            shown = await asyncio.to_thread(
                wait_text, browser, '[data-live="c1.status"]', "Charging"
            )
            delay = shown - seen["Charging"]
            print(f"status change shown after {delay:.3f} s")
            assert delay < SHOW_WITHIN_S
            session = await asyncio.to_thread(lambda: css(browser, '[data-live="c1.session"]').text)
            assert "DRIVER-WEB" in session and "charging" in session
            weight = await asyncio.to_thread(page_weight, browser)
            print(f"status page weight {weight / 1024:.1f} KiB")
            assert weight < PAGE_BUDGET

            # the operator: take connector 2 out of service and back, stop the session on 1
            await asyncio.to_thread(log_in, browser, base)
            await asyncio.to_thread(
                click, browser, 'form[action="/connectors/2/unavailable"] button'
            )
            await asyncio.to_thread(wait_text, browser, '[data-live="c2.status"]', "Unavailable")
            flash = await asyncio.to_thread(wait_present, browser, ".flash")
            assert flash.startswith("connector 2: take out of service: done")
            await asyncio.to_thread(click, browser, 'form[action="/connectors/2/available"] button')
            await asyncio.to_thread(wait_text, browser, '[data-live="c2.status"]', "Available")
            await asyncio.to_thread(click, browser, 'form[action="/connectors/1/stop"] button')
            ended = await env.view.wait_ended(1)
            assert ended.ends == 1
            await asyncio.to_thread(wait_text, browser, '[data-live="c1.session"]', "none")

            # the session just charged is in the log, verified with the pinned key
            def the_log() -> tuple[str, str, str]:
                browser.get(f"{base}/transactions")
                mark = css(browser, "#session-1 .mark")
                return (
                    mark.text,
                    str(mark.get_attribute("title")),
                    colour(browser, "#session-1 .mark"),
                )

            text, title, shade = await asyncio.to_thread(the_log)
            assert text == "verified" and "the key pinned for connector 1" in title
            assert shade == "rgba(26, 127, 55, 1)"  # green
            errors = await asyncio.to_thread(console_errors, browser)
            assert errors == []


# ---- the transaction log's marks ----------------------------------------------------------


async def test_the_log_shows_each_mark_in_colour_and_in_words(browser: Any, tmp_path: Path) -> None:
    station = log_station(tmp_path)
    state = web_state(station_config(station.config))
    async with served(state) as base:

        def marks() -> dict[str, tuple[str, str, str, bool]]:
            browser.get(f"{base}/transactions")
            found = {}
            for name, local_id in station.ids.items():
                mark = css(browser, f"#session-{local_id} .mark")
                has_lock = bool(browser.find_elements("css selector", f"#session-{local_id} .lock"))
                found[name] = (
                    mark.text,
                    str(mark.get_attribute("title")),
                    str(mark.value_of_css_property("color")),
                    has_lock,
                )
            return found

        found = await asyncio.to_thread(marks)
        assert found["verified"][0] == "verified" and found["verified"][3]
        assert found["verified"][2] == "rgba(26, 127, 55, 1)"  # green
        assert found["tampered"][0] == "not verified" and found["tampered"][3]
        assert "signature does not match" in found["tampered"][1]
        assert found["tampered"][2] == "rgba(154, 103, 0, 1)"  # yellow
        assert found["foreign"][0] == "not verified"
        assert found["unsigned"][0] == "unsigned" and not found["unsigned"][3]
        assert "the meter did not answer" in found["unsigned"][1]
        weight = await asyncio.to_thread(page_weight, browser)
        print(f"transaction log weight {weight / 1024:.1f} KiB")
        assert weight < PAGE_BUDGET

        def on_a_phone() -> tuple[int, int]:
            browser.set_window_size(390, 844)
            try:
                browser.get(f"{base}/transactions")
                width, viewport = browser.execute_script(
                    "return [document.documentElement.scrollWidth, window.innerWidth]"
                )
                return int(width), int(viewport)
            finally:
                browser.set_window_size(1100, 1000)

        width, viewport = await asyncio.to_thread(on_a_phone)
        assert width <= viewport  # no sideways scrolling on a phone
        assert await asyncio.to_thread(console_errors, browser) == []


# ---- the driver's verifier, offline ------------------------------------------------------


@pytest.fixture(scope="module")
def verifier_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("verifier") / "verify.html"
    assert main(["verifier-page", "-o", str(path)]) == 0
    return path


def check(driver: Any, key: str, data: str) -> str:
    """Type the key and the data, press Check, return the verdict line."""
    driver.execute_script(
        "document.getElementById('key').value = arguments[0];"
        "document.getElementById('data').value = arguments[1];"
        "document.getElementById('result').replaceChildren();",
        key,
        data,
    )
    click(driver, "#check")
    deadline = time.monotonic() + 5
    while not (text := css(driver, "#result").text):
        if time.monotonic() > deadline:
            raise AssertionError("no verdict")
        time.sleep(0.02)
    return str(text.splitlines()[0])


VERIFIED = "Verified: every signature matches the key you entered, and the readings are billable"
REJECTED = "NOT verified: do not rely on these readings"
CANNOT = "Cannot be checked in this browser"


def test_the_verifier_checks_the_real_meter_data_offline(
    browser: Any, verifier_file: Path, tmp_path: Path
) -> None:
    vectors = bsm_vectors()
    meter = vectors["public_keys"]["A_meter_001BZR1521070006"]
    label_key = meter["x"] + meter["y"]  # as the meter's label prints it
    ocmf = vectors["ocmf_vectors"]
    begin, end = ocmf["ostons_T4276"]["ocmf"], ocmf["ostoffs_T4277"]["ocmf"]
    browser.get(f"{verifier_file.as_uri()}#key={meter['der_hex']}")
    assert css(browser, "#key").get_attribute("value") == meter["der_hex"]  # from the QR link

    assert check(browser, label_key, f"{begin}\n{end}") == VERIFIED
    assert "Energy of the session: 0.150 kWh (150 Wh)" in css(browser, "#result").text
    assert check(browser, meter["der_hex"], ocmf["oscs_T4278"]["ocmf"]) == VERIFIED
    # one changed digit of a signed reading
    changed = end.replace('"RV":0.15', '"RV":0.16')
    assert changed != end
    assert check(browser, label_key, f"{begin}\n{changed}") == REJECTED
    assert "INVALID" in css(browser, "#result").text
    # the other meter's key
    other = vectors["public_keys"]["B_meter_001BZR1521290137"]["der_hex"]
    assert check(browser, other, begin) == REJECTED

    # every other maker's records: verified on the NIST curves, named where a browser cannot
    for name, example in multivendor_vectors().items():
        if name == "_about":
            continue
        records = "\n".join(r["ocmf"] for r in example["records"])
        verdict = check(browser, example["public_key_der_hex"], records)
        if name in ("example_C", "example_G"):  # brainpoolP256r1, secp256k1
            assert verdict == CANNOT, name
            assert "chargepoint verify" in css(browser, "#result").text
        elif name == "example_H":  # valid signatures, meter error flags: not billable
            assert verdict == REJECTED and "NOT billable" in css(browser, "#result").text
        else:
            assert verdict == VERIFIED, name

    # the files a driver gets: S.A.F.E. XML and Chargy JSON of a real session
    real = real_meter_station(tmp_path)
    xml, doc = tmp_path / "s.xml", tmp_path / "s.json"
    for fmt, path in (("safe-xml", xml), ("chargy", doc)):
        args = ["transactions", "export", "--config", str(real.config), "--format", fmt]
        assert main([*args, "--id", str(real.ids[0]), "-o", str(path), "-q"]) == 0
    assert check(browser, label_key, xml.read_text()) == VERIFIED
    assert check(browser, "", xml.read_text()).startswith("Not confirmed")  # the file's key only
    assert check(browser, label_key, doc.read_text()) == VERIFIED
    assert "snapshot sha256 f27a14a5bd5a7fa4" in css(browser, "#result").text  # its digest
    data = json.loads(doc.read_text())
    fields = data["signedMeterValues"][1]["additionalValues"]
    rcr = next(f for f in fields if f["measurand"]["name"] == "RCR")
    rcr["measuredValue"]["value"] += 1  # one more 10 Wh than the meter signed
    assert check(browser, label_key, json.dumps(data)) == REJECTED
    assert check(browser, other, doc.read_text()) == REJECTED
    assert "ANOTHER key" in css(browser, "#result").text

    loaded = browser.execute_script("return performance.getEntriesByType('resource').length")
    assert loaded == 0  # nothing fetched: one self-contained file
    assert console_errors(browser) == []


async def test_the_served_verifier_is_the_same_page(browser: Any, tmp_path: Path) -> None:
    state = web_state(station_config(log_station(tmp_path).config))
    vectors = bsm_vectors()
    key = vectors["public_keys"]["A_meter_001BZR1521070006"]["der_hex"]
    record = vectors["ocmf_vectors"]["oscs_T4278"]["ocmf"]
    async with served(state) as base:

        def served_check() -> str:
            browser.get(f"{base}/verify")
            return check(browser, key, record)

        assert await asyncio.to_thread(served_check) == VERIFIED
        assert await asyncio.to_thread(console_errors, browser) == []
