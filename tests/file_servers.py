"""Loopback file servers for the firmware and log tests: HTTP(S) (stdlib http.server in a
thread, with Range, PUT, a 404, a stall and a throttle) and FTP (pyftpdlib in a thread)."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

FTP_USER = "firmware"
FTP_PASSWORD = "ftp-s3cret-pw"


@dataclass
class HttpBehaviour:
    """How the server misbehaves: `stall_after` bytes of a GET then nothing (once, or every
    time with `stall_always`), `bytes_per_s` throttles GETs, `put_status` answers PUTs."""

    stall_after: int | None = None
    stall_always: bool = False
    bytes_per_s: float | None = None
    put_status: int = 201
    ignore_range: bool = False
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    stalled: int = 0


class FileServer:
    """Serves files from `root` (GET with Range), stores PUTs under `root/uploads/`."""

    def __init__(self, root: Path, tls: ssl.SSLContext | None = None) -> None:
        self.root = root
        self.behaviour = HttpBehaviour()
        self.stop_event = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                b = server.behaviour
                b.requests.append(("GET", self.path, self.headers.get("Range")))
                path = server.root / self.path.lstrip("/").split("?")[0]
                if not path.is_file():
                    self.send_error(404)
                    return
                data_len = path.stat().st_size
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-") and not b.ignore_range:
                    start = int(rng[6:-1])
                    if start >= data_len:
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{data_len - 1}/{data_len}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(data_len - start))
                self.end_headers()
                stall_at = None
                if b.stall_after is not None and (b.stall_always or b.stalled == 0):
                    stall_at = b.stall_after
                sent = 0
                with path.open("rb") as f:
                    f.seek(start)
                    while chunk := f.read(16 * 1024):
                        if stall_at is not None and sent + len(chunk) > stall_at:
                            chunk = chunk[: max(0, stall_at - sent)]
                            self.wfile.write(chunk)
                            self.wfile.flush()
                            b.stalled += 1
                            server.stop_event.wait(30)  # say nothing more
                            return
                        try:
                            self.wfile.write(chunk)
                        except (BrokenPipeError, ConnectionResetError):
                            return
                        sent += len(chunk)
                        if b.bytes_per_s:
                            time.sleep(len(chunk) / b.bytes_per_s)
                        if server.stop_event.is_set():
                            return

            def do_PUT(self) -> None:
                b = server.behaviour
                b.requests.append(("PUT", self.path, None))
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if b.put_status < 300:
                    target = server.root / "uploads" / self.path.lstrip("/").split("?")[0]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(body)
                self.send_response(b.put_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.httpd.server_address[1]}"

    def start(self) -> FileServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def gets(self) -> list[tuple[str, str | None]]:
        return [(p, r) for m, p, r in self.behaviour.requests if m == "GET"]


@contextlib.contextmanager
def file_server(root: Path, tls: ssl.SSLContext | None = None) -> Iterator[FileServer]:
    root.mkdir(parents=True, exist_ok=True)
    server = FileServer(root, tls).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class FtpServer:
    root: Path
    server: ThreadedFTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.address[:2]
        return f"ftp://{FTP_USER}:{FTP_PASSWORD}@{host}:{port}"


@contextlib.contextmanager
def ftp_server(root: Path) -> Iterator[FtpServer]:
    """Passive-mode FTP on loopback; user FTP_USER with FTP_PASSWORD, home `root`."""
    root.mkdir(parents=True, exist_ok=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, str(root), perm="elradfmwMT")

    class Handler(FTPHandler):  # type: ignore[misc]
        pass

    Handler.authorizer = authorizer
    Handler.passive_ports = None
    server = ThreadedFTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.1}, daemon=True)
    thread.start()
    try:
        yield FtpServer(root, server, thread)
    finally:
        server.close_all()
        thread.join(5)
