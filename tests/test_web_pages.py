"""The operator's pages over HTTP (no browser): the transaction log with each session's lock
mark, filters and pages, downloads that `chargepoint verify` accepts, the key history, and a
store that is only ever read."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chargepoint.cli.main import main
from chargepoint.service.daemon import STORE_FILE
from chargepoint.store import Store, StoreError
from chargepoint.web.app import build_app
from chargepoint.web.context import WebState
from meter.proof.keys import load_public_key
from tests.signed_store import STATION_ID, real_meter_station, signed_station
from tests.test_web_support import LogStation, log_station, station_config, web_state

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def station(tmp_path: Path) -> LogStation:
    return log_station(tmp_path)


@pytest.fixture
async def state(station: LogStation) -> AsyncIterator[WebState]:
    s = web_state(station_config(station.config))
    yield s
    await s.reader.close()


@pytest.fixture
async def client(state: WebState) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(state))) as c:
        yield c


def rows(html: str) -> dict[int, str]:
    """Session id -> the mark its row shows (data-mark), from the log page."""
    return {int(i): m for i, m in re.findall(r'id="session-(\d+)" data-mark="([^"]+)"', html)}


def row_html(html: str, local_id: int) -> str:
    match = re.search(rf'<tr id="session-{local_id}".*?</tr>', html, re.S)
    assert match is not None, html
    return match.group(0)


async def test_each_session_shows_the_mark_our_verifier_gives_it(
    client: Client, station: LogStation
) -> None:
    response = await client.get("/transactions")
    html = await response.text()
    assert response.status == 200
    ids = station.ids
    assert rows(html) == {
        ids["verified"]: "verified",
        ids["tampered"]: "not verified",
        ids["unsigned"]: "unsigned",
        ids["foreign"]: "not verified",
        ids["open"]: "open",
    }
    verified = row_html(html, ids["verified"])
    # the mark says in words what it means, not by colour alone, and the energy is the signed one
    assert ">verified</span>" in verified and "0.050 kWh" in verified
    assert 'class="lock"' in verified and "the key pinned for connector 1" in verified
    tampered = row_html(html, ids["tampered"])
    assert ">not verified</span>" in tampered and "signature does not match" in tampered
    assert 'class="lock"' in tampered
    unsigned = row_html(html, ids["unsigned"])
    assert ">unsigned</span>" in unsigned and "the meter did not answer" in unsigned
    assert 'class="lock"' not in unsigned  # no lock at all
    foreign = row_html(html, ids["foreign"])
    assert "the key pinned for connector 1 then is" in foreign


async def test_the_log_filters_and_pages(
    client: Client, state: WebState, station: LogStation
) -> None:
    html = await (await client.get("/transactions?card=TAMPER")).text()
    assert list(rows(html)) == [station.ids["tampered"]]
    html = await (await client.get("/transactions?since=2026-11-03")).text()
    assert rows(html) == {} and "No sessions match this filter" in html
    html = await (await client.get("/transactions?since=2026-11-02&until=2026-11-02")).text()
    assert len(rows(html)) == 5
    html = await (await client.get("/transactions?connector=2")).text()
    assert rows(html) == {}
    bad = await client.get("/transactions?since=yesterday")
    assert bad.status == 400 and "not a date" in await bad.text()

    state.settings = type(state.settings)(**{**state.settings.__dict__, "page_size": 2})
    first = await (await client.get("/transactions")).text()
    assert list(rows(first)) == [5, 4] and 'rel="prev"' not in first
    older = re.search(r'href="/transactions\?([^"]+)" rel="next"', first)
    assert older is not None
    second = await (
        await client.get("/transactions?" + older.group(1).replace("&amp;", "&"))
    ).text()
    assert list(rows(second)) == [3, 2]
    newer = re.search(r'href="/transactions\?([^"]+)" rel="prev"', second)
    assert newer is not None
    back = await (await client.get("/transactions?" + newer.group(1).replace("&amp;", "&"))).text()
    assert list(rows(back)) == [5, 4]


async def test_one_session_shows_its_records_and_the_reason(
    client: Client, station: LogStation
) -> None:
    html = await (await client.get(f"/transactions/{station.ids['tampered']}")).text()
    assert "not verified" in html and "OCMF|{" in html and "signature does not match" in html
    missing = await client.get("/transactions/999")
    assert missing.status == 404 and "no session 999" in await missing.text()


async def test_key_history_shows_every_pinned_key(client: Client, station: LogStation) -> None:
    html = await (await client.get("/keys")).text()
    fingerprint = hashlib.sha256(bytes.fromhex(station.key_hex)).hexdigest()
    assert station.key_hex in html and fingerprint in html and "first contact" in html
    assert "current" in html


async def download(client: Client, query: str, target: Path) -> Path:
    response = await client.get(f"/download?{query}")
    assert response.status == 200, await response.text()
    assert "attachment" in response.headers["Content-Disposition"]
    return save(target, await response.read())


def save(target: Path, data: bytes) -> Path:
    target.write_bytes(data)
    return target


def verify(path: Path, key: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", str(path), "--public-key", key])
    return code, capsys.readouterr().out


async def test_downloads_verify_with_the_cli(
    client: Client,
    station: LogStation,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    one = await download(
        client, f"format=safe-xml&scope=session&id={station.ids['verified']}", tmp_path / "1.xml"
    )
    code, out = verify(one, station.key_hex, capsys)
    assert code == 0 and "1 transaction: 1 verified, 0 failed" in out, out
    csv = await download(client, "format=csv&scope=connector&connector=1", tmp_path / "c.csv")
    text = csv.read_text()
    assert text.startswith("session,connector") and ",verified," in text and ",failed," in text
    # the whole log: the tampered and the foreign session are named as failures
    every = await download(client, "format=safe-xml&scope=all", tmp_path / "all.xml")
    code, out = verify(every, station.key_hex, capsys)
    assert code == 1 and "3 transactions: 1 verified, 2 failed" in out, out  # + 1 unsigned
    assert f"transaction {station.ids['tampered']}: " in out
    ranged = await download(
        client, "format=safe-xml&scope=range&since=2026-11-02&until=2026-11-02", tmp_path / "r.xml"
    )
    assert ranged.read_bytes() == every.read_bytes()
    # what cannot be given is said before anything is sent
    for query, why in (
        ("format=chargy&scope=all", "one session"),
        ("format=safe-xml&scope=session&id=999", "no closed session"),
        ("format=pdf", "unknown format"),
        ("format=csv&scope=range&since=2026-13-01", "not a date"),
    ):
        response = await client.get(f"/download?{query}")
        assert response.status == 404 and why in await response.text(), query


async def test_a_chargy_download_carries_the_meters_snapshots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = real_meter_station(tmp_path)
    state = web_state(station_config(real.config))
    try:
        async with TestClient(TestServer(build_app(state))) as client:
            html = await (await client.get("/transactions")).text()
            assert f"format=chargy&amp;scope=session&amp;id={real.ids[0]}" in html
            path = await download(
                client, f"format=chargy&scope=session&id={real.ids[0]}", tmp_path / "s.json"
            )
    finally:
        await state.reader.close()
    code, out = verify(path, real.key_point_hex, capsys)
    assert code == 0 and "001BZR1521070006" in out, out


async def test_a_large_export_streams(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    many = signed_station(tmp_path, 400, connectors=(1, 2))
    state = web_state(station_config(many.config))
    try:
        async with TestClient(TestServer(build_app(state))) as client:
            response = await client.get("/download?format=safe-xml&scope=all")
            assert response.status == 200
            assert "Content-Length" not in response.headers  # chunked: streamed, not built
            chunks = [chunk async for chunk in response.content.iter_chunked(16 * 1024)]
    finally:
        await state.reader.close()
    path = save(tmp_path / "all.xml", b"".join(chunks))
    assert len(chunks) > 2
    code, out = verify(path, many.key_hex, capsys)
    assert code == 0 and "400 transactions: 400 verified, 0 failed" in out, out


async def test_the_store_is_only_read(client: Client, station: LogStation) -> None:
    path = station.config.parent / "state" / STORE_FILE
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for page in ("/", "/transactions", "/keys", "/download?format=csv&scope=all"):
        assert (await client.get(page)).status == 200
    reader = Store.open_read_only(path, STATION_ID)
    try:
        with pytest.raises(StoreError, match="readonly"):
            reader.set_setting("x", "y")
    finally:
        reader.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    # a station whose daemon never ran: the pages say so, nothing is created
    empty = tmp_path_store(station)
    with pytest.raises(StoreError, match="no store"):
        Store.open_read_only(empty, STATION_ID)
    assert not empty.exists()


def tmp_path_store(station: LogStation) -> Path:
    return station.config.parent / "elsewhere" / STORE_FILE


async def test_pages_without_a_store_or_daemon_say_what_is_missing(tmp_path: Path) -> None:
    station = log_station(tmp_path)
    cfg = station_config(station.config).with_overrides(state_dir=tmp_path / "none")
    state = web_state(cfg)
    try:
        async with TestClient(TestServer(build_app(state))) as client:
            status = await client.get("/")
            html = await status.text()
            assert status.status == 200 and "not answering" in html and "no store at" in html
            log = await (await client.get("/transactions")).text()
            assert "no store at" in log
    finally:
        await state.reader.close()
    assert not (tmp_path / "none").exists()


def test_the_log_key_is_the_labels_key(station: LogStation) -> None:
    assert load_public_key(station.key_hex).curve_name == "secp256r1"
