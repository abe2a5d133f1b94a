"""File transfers for firmware downloads and diagnostics uploads: http, https and ftp.

The core uses the typed interface `Transfers` (`download`, `upload`); `UrlTransfers` is the
implementation over the standard library (http.client, ftplib), each transfer run in a worker
thread so that the event loop never blocks. Downloads stream to a `.part` file next to the
destination (never the whole file in memory), resume where the server allows (HTTP Range, FTP
REST), stop at a size limit and end with the SHA-256 of the file. Each socket operation has a
timeout: a server that stalls fails the attempt (`TransferStalled`). https checks the server's
certificate (the system's CAs plus `ca_file`).

Errors say what the caller should do: `TransferFailed` (retry later), `TransferRefused` (the
server said no: 404, 550, a bad URL; retrying may still be asked for by the CSMS),
`TooLarge` (the file exceeds the limit: do not retry).
"""

from __future__ import annotations

import asyncio
import ftplib
import hashlib
import http.client
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import unquote, urlsplit

from chargepoint.store.files import FILE_MODE, fsync_directory, open_binary

log = logging.getLogger("chargepoint.transfer")

CHUNK: Final = 64 * 1024
PART_SUFFIX: Final = ".part"


class TransferError(Exception):
    """A transfer did not complete."""


class TransferFailed(TransferError):
    """Network trouble or a server error: another attempt may succeed."""


class TransferStalled(TransferFailed):
    """No data for longer than the timeout."""


class TransferRefused(TransferError):
    """The server refused the transfer (not found, permission denied) or the URL is unusable."""


class TooLarge(TransferError):
    """The file is larger than the configured limit."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str
    resumed_from: int


class Transfers(Protocol):
    async def download(self, url: str, dest: Path, *, max_bytes: int) -> Downloaded: ...

    async def upload(self, url: str, src: Path, name: str) -> None: ...


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class UrlTransfers:
    """http(s) and ftp transfers over the standard library, in worker threads."""

    def __init__(self, timeout: float, ca_file: Path | None = None) -> None:
        self.timeout = timeout
        self.ca_file = ca_file

    # ---- the interface -------------------------------------------------------------------

    async def download(self, url: str, dest: Path, *, max_bytes: int) -> Downloaded:
        return await asyncio.to_thread(self.download_blocking, url, dest, max_bytes)

    async def upload(self, url: str, src: Path, name: str) -> None:
        await asyncio.to_thread(self.upload_blocking, url, src, name)

    # ---- downloads -----------------------------------------------------------------------

    def download_blocking(self, url: str, dest: Path, max_bytes: int) -> Downloaded:
        part = dest.with_name(dest.name + PART_SUFFIX)
        offset = part.stat().st_size if part.exists() else 0
        scheme = urlsplit(url).scheme.lower()
        try:
            if scheme in ("http", "https"):
                offset = self._http_get(url, part, offset, max_bytes)
            elif scheme == "ftp":
                offset = self._ftp_get(url, part, offset, max_bytes)
            else:
                raise TransferRefused(f"unsupported URL scheme {scheme!r}")
        except TimeoutError as exc:
            raise TransferStalled(f"no data for {self.timeout:g} s") from exc
        except ssl.SSLError as exc:
            raise TransferRefused(f"TLS: {exc.reason or exc}") from exc
        except (OSError, http.client.HTTPException, EOFError) as exc:
            raise TransferFailed(f"{type(exc).__name__}: {exc}") from exc
        size = part.stat().st_size
        digest = sha256_of(part)
        _fsync_file(part)
        os.replace(part, dest)
        fsync_directory(dest.parent)  # "Downloaded" is reported next: the file must be there
        log.info(
            "downloaded %s: %d bytes, sha256 %s%s",
            safe_url(url),
            size,
            digest,
            f" (resumed at byte {offset})" if offset else "",
        )
        return Downloaded(dest, size, digest, offset)

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.ca_file is not None:
            ctx.load_verify_locations(cafile=str(self.ca_file))
        return ctx

    def _http_connection(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(url)
        if not parts.hostname:
            raise TransferRefused("URL without a host")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn: http.client.HTTPConnection
        if parts.scheme.lower() == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=self.timeout, context=self._context()
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        return conn, path

    def _http_get(self, url: str, part: Path, offset: int, max_bytes: int) -> int:
        """Append to `part` from `offset` (or rewrite it); returns where the data started."""
        conn, path = self._http_connection(url)
        try:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            if resp.status == 416 and offset:  # the part is already the whole file
                resp.read()
                return offset
            if resp.status >= 400:
                resp.read()
                if resp.status >= 500:
                    raise TransferFailed(f"HTTP {resp.status} {resp.reason}")
                raise TransferRefused(f"HTTP {resp.status} {resp.reason}")
            mode = "ab"
            if resp.status != 206:
                offset = 0  # the server sends the whole file again
                mode = "wb"
            length = resp.getheader("Content-Length")
            if length is not None and length.isdigit() and offset + int(length) > max_bytes:
                raise TooLarge(f"{offset + int(length)} bytes, the limit is {max_bytes}")
            with open_binary(part, FILE_MODE, append=mode == "ab") as out:
                written = offset
                while chunk := resp.read1(CHUNK):  # what came, even when the server stalls
                    written += len(chunk)
                    if written > max_bytes:
                        raise TooLarge(f"more than {max_bytes} bytes")
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if length is not None and length.isdigit() and written != offset + int(length):
                raise TransferFailed("the connection ended before the whole file came")
            return offset
        finally:
            conn.close()

    def _ftp(self, url: str) -> tuple[ftplib.FTP, str]:
        parts = urlsplit(url)
        if not parts.hostname:
            raise TransferRefused("URL without a host")
        ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(parts.hostname, parts.port or 21)
            ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
            ftp.set_pasv(True)
            ftp.voidcmd("TYPE I")  # SIZE and REST count bytes of the binary file
        except ftplib.error_perm as exc:
            ftp.close()
            raise TransferRefused(f"FTP login: {exc}") from exc
        except BaseException:
            ftp.close()
            raise
        return ftp, unquote(parts.path)

    def _ftp_get(self, url: str, part: Path, offset: int, max_bytes: int) -> int:
        ftp, path = self._ftp(url)
        try:
            try:
                size = ftp.size(path)
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    raise TransferRefused(f"FTP: {exc}") from exc
                size = None
            if size is not None and size > max_bytes:
                raise TooLarge(f"{size} bytes, the limit is {max_bytes}")
            if size is not None and offset > size:
                offset = 0  # the part is not of this file: start again
            if size is not None and offset == size and size > 0:
                return offset
            written = offset
            with open_binary(part, FILE_MODE, append=bool(offset)) as out:

                def write(chunk: bytes) -> None:
                    nonlocal written
                    written += len(chunk)
                    if written > max_bytes:
                        raise TooLarge(f"more than {max_bytes} bytes")
                    out.write(chunk)

                try:
                    ftp.retrbinary(f"RETR {path}", write, CHUNK, rest=offset or None)
                except ftplib.error_perm as exc:
                    if offset and str(exc).startswith(("350", "502", "504", "554")):
                        out.truncate(0)  # no REST: the whole file again
                        written = offset = 0
                        ftp.retrbinary(f"RETR {path}", write, CHUNK)
                    else:
                        raise TransferRefused(f"FTP: {exc}") from exc
                except ftplib.error_temp as exc:
                    raise TransferFailed(f"FTP: {exc}") from exc
                out.flush()
                os.fsync(out.fileno())
            if size is not None and written != size:
                raise TransferFailed("the connection ended before the whole file came")
            return offset
        finally:
            _close_ftp(ftp)

    # ---- uploads -------------------------------------------------------------------------

    def upload_blocking(self, url: str, src: Path, name: str) -> None:
        scheme = urlsplit(url).scheme.lower()
        try:
            if scheme in ("http", "https"):
                self._http_put(url, src, name)
            elif scheme == "ftp":
                self._ftp_put(url, src, name)
            else:
                raise TransferRefused(f"unsupported URL scheme {scheme!r}")
        except TimeoutError as exc:
            raise TransferStalled(f"no progress for {self.timeout:g} s") from exc
        except ssl.SSLError as exc:
            raise TransferRefused(f"TLS: {exc.reason or exc}") from exc
        except (OSError, http.client.HTTPException, EOFError) as exc:
            raise TransferFailed(f"{type(exc).__name__}: {exc}") from exc
        log.info("uploaded %s (%d bytes) to %s", name, src.stat().st_size, safe_url(url))

    @staticmethod
    def _target(path: str, name: str) -> str:
        """The location names a directory (ends with /) or the file itself."""
        return path + name if path.endswith("/") or not path else path

    def _http_put(self, url: str, src: Path, name: str) -> None:
        conn, path = self._http_connection(url)
        target = self._target(path.split("?", 1)[0], name)
        if "?" in path:
            target += "?" + path.split("?", 1)[1]
        try:
            with src.open("rb") as body:
                conn.request(
                    "PUT",
                    target,
                    body=body,
                    headers={
                        "Content-Length": str(src.stat().st_size),
                        "Content-Type": "application/octet-stream",
                    },
                )
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 500:
                raise TransferFailed(f"HTTP {resp.status} {resp.reason}")
            if resp.status >= 400:
                raise TransferRefused(f"HTTP {resp.status} {resp.reason}")
        finally:
            conn.close()

    def _ftp_put(self, url: str, src: Path, name: str) -> None:
        ftp, path = self._ftp(url)
        try:
            with src.open("rb") as body:
                try:
                    ftp.storbinary(f"STOR {self._target(path, name)}", body, CHUNK)
                except ftplib.error_perm as exc:
                    raise TransferRefused(f"FTP: {exc}") from exc
                except ftplib.error_temp as exc:
                    raise TransferFailed(f"FTP: {exc}") from exc
        finally:
            _close_ftp(ftp)


def _close_ftp(ftp: ftplib.FTP) -> None:
    try:
        ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        ftp.close()


__all__ = [
    "Downloaded",
    "TooLarge",
    "TransferError",
    "TransferFailed",
    "TransferRefused",
    "TransferStalled",
    "Transfers",
    "UrlTransfers",
    "safe_url",
    "sha256_of",
]


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
