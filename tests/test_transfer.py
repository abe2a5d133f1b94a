"""The downloader and uploader on their own, against loopback servers: FTP resume (REST),
HTTP servers that ignore Range, refusals, the size limit, and URLs without their password in
logs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chargepoint.core.transfer import TooLarge, TransferRefused, UrlTransfers, safe_url
from tests.file_servers import FTP_PASSWORD, file_server, ftp_server

DATA = bytes(range(256)) * 2000


async def test_ftp_download_resumes_a_part_file(tmp_path: Path) -> None:
    with ftp_server(tmp_path / "ftp") as ftp:
        (ftp.root / "fw.bin").write_bytes(DATA)
        dest = tmp_path / "got" / "fw.bin"
        dest.parent.mkdir()
        (tmp_path / "got" / "fw.bin.part").write_bytes(DATA[:100_000])
        got = await UrlTransfers(5).download(f"{ftp.url}/fw.bin", dest, max_bytes=10**7)
    assert got.resumed_from == 100_000
    assert dest.read_bytes() == DATA
    assert got.sha256 == hashlib.sha256(DATA).hexdigest()
    assert not (tmp_path / "got" / "fw.bin.part").exists()


async def test_http_server_ignoring_range_restarts_the_file(tmp_path: Path) -> None:
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / "fw.bin").write_bytes(DATA)
        server.behaviour.ignore_range = True
        dest = tmp_path / "fw.bin"
        (tmp_path / "fw.bin.part").write_bytes(DATA[:5000])
        got = await UrlTransfers(5).download(f"{server.url}/fw.bin", dest, max_bytes=10**7)
        assert server.gets() == [("/fw.bin", "bytes=5000-")]
    assert got.resumed_from == 0  # the server sent the whole file: the part was rewritten
    assert dest.read_bytes() == DATA


async def test_refusals_and_limits(tmp_path: Path) -> None:
    transfers = UrlTransfers(5)
    with file_server(tmp_path / "www") as server:
        (tmp_path / "www" / "fw.bin").write_bytes(DATA)
        with pytest.raises(TransferRefused, match="404"):
            await transfers.download(f"{server.url}/nope.bin", tmp_path / "a", max_bytes=10**7)
        with pytest.raises(TooLarge):
            await transfers.download(f"{server.url}/fw.bin", tmp_path / "b", max_bytes=1000)
        server.behaviour.put_status = 403
        (tmp_path / "up.tar.gz").write_bytes(b"x")
        with pytest.raises(TransferRefused, match="403"):
            await transfers.upload(f"{server.url}/in/", tmp_path / "up.tar.gz", "up.tar.gz")
    with pytest.raises(TransferRefused, match="scheme"):
        await transfers.download("gopher://x/y", tmp_path / "c", max_bytes=10)
    with ftp_server(tmp_path / "ftp") as ftp:
        with pytest.raises(TransferRefused):
            await transfers.download(f"{ftp.url}/missing.bin", tmp_path / "d", max_bytes=10**7)
        await transfers.upload(f"{ftp.url}/", tmp_path / "up.tar.gz", "up.tar.gz")
        assert (ftp.root / "up.tar.gz").read_bytes() == b"x"


def test_safe_url_hides_the_password() -> None:
    url = f"ftp://firmware:{FTP_PASSWORD}@127.0.0.1:2121/fw.bin"
    assert FTP_PASSWORD not in safe_url(url)
    assert safe_url(url) == "ftp://firmware:***@127.0.0.1:2121/fw.bin"
    assert safe_url("https://h/x") == "https://h/x"
