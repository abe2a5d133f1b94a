"""Downloads of stored sessions: S.A.F.E. XML, Chargy JSON or the CSV transaction log, for one
session, one connector, a date range or all, written by chargepoint.proof.export.

The export runs on a download thread and hands the file over in chunks through a small queue:
the response is streamed, never built in memory, and a client that reads slowly slows the
export down instead of filling memory. A client that goes away stops it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import IO, Any, cast

from aiohttp import web

from chargepoint.config import StationInfo
from chargepoint.proof.export import NotExportable, chargy_document, write_csv, write_safe_xml
from chargepoint.proof.sessions import ProvenSession
from chargepoint.store import Store, TransactionRow
from chargepoint.web.marks import MarkCache
from chargepoint.web.reader import StoreReader

log = logging.getLogger("chargepoint.web.downloads")

FORMATS = {
    "safe-xml": ("xml", "application/xml; charset=utf-8"),
    "chargy": ("json", "application/json; charset=utf-8"),
    "csv": ("csv", "text/csv; charset=utf-8"),
}
SCOPES = ("session", "connector", "range", "all")
CHUNK = 64 * 1024
QUEUE_CHUNKS = 4
PUT_TIMEOUT_S = 60.0  # a client that reads nothing for this long is given up


class BadSelection(ValueError):
    """The download asked for cannot be given; the message says why (shown to the user)."""


@dataclass(frozen=True)
class Selection:
    """Which sessions (closed ones only: an open session has no End to prove)."""

    fmt: str
    scope: str
    session: int | None = None
    connector: int | None = None
    since: date | None = None
    until: date | None = None  # inclusive

    @classmethod
    def from_query(cls, query: Any) -> Selection:
        fmt = str(query.get("format", "safe-xml"))
        if fmt not in FORMATS:
            raise BadSelection(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
        scope = str(query.get("scope", "all"))
        if scope not in SCOPES:
            raise BadSelection(f"unknown scope {scope!r} (one of {', '.join(SCOPES)})")
        session = _number(query.get("id"), "session") if scope == "session" else None
        connector = _number(query.get("connector"), "connector") if scope == "connector" else None
        since = until = None
        if scope == "range":
            since = _day(query.get("since"), "from")
            until = _day(query.get("until"), "to")
            if since is None and until is None:
                raise BadSelection("a date range needs a first or a last day")
            if since is not None and until is not None and until < since:
                raise BadSelection("the last day is before the first day")
        if scope == "session" and session is None:
            raise BadSelection("which session? (id)")
        if scope == "connector" and connector is None:
            raise BadSelection("which connector? (connector)")
        if fmt == "chargy" and scope != "session":
            raise BadSelection("Chargy takes one session per file: choose one session")
        return cls(fmt, scope, session, connector, since, until)

    def filename(self, station_id: str) -> str:
        ext = FORMATS[self.fmt][0]
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in station_id)
        if self.scope == "session":
            what = f"session-{self.session}"
        elif self.scope == "connector":
            what = f"connector-{self.connector}"
        elif self.scope == "range":
            what = f"{self.since or 'start'}_{self.until or 'today'}"
        else:
            what = "all"
        return f"{safe}-{what}.{ext}"

    def rows(self, store: Store) -> Iterator[TransactionRow]:
        until = None if self.until is None else (self.until + timedelta(days=1)).isoformat()
        for row in store.transactions_between(
            since=None if self.since is None else self.since.isoformat(),
            until=until,
            connector_id=self.connector,
            local_ids=None if self.session is None else [self.session],
        ):
            if not row.open:
                yield row


def _number(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    if not text.isdigit():
        raise BadSelection(f"{what} {text!r} is not a number")
    return int(text)


def _day(value: Any, what: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise BadSelection(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


class _Gone(Exception):
    """The client went away: the export stops."""


class _ChunkWriter(io.TextIOBase):
    """A text stream whose bytes go, in chunks, to a queue the response reads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]):
        self._loop = loop
        self._queue = queue
        self._buffer = io.BytesIO()
        self.stopped = threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer.write(text.encode("utf-8"))
        if self._buffer.tell() >= CHUNK:
            self.flush()
        return len(text)

    def flush(self) -> None:
        data = self._buffer.getvalue()
        if data:
            self._buffer = io.BytesIO()
            self._put(data)

    def _put(self, item: bytes | None) -> None:
        if self.stopped.is_set():
            raise _Gone()
        future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        try:
            future.result(PUT_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise _Gone() from None

    def finish(self) -> None:
        self.flush()
        self._put(None)


def _proven(
    rows: Iterator[TransactionRow], keys: list[Any], cache: MarkCache
) -> Generator[ProvenSession, None, None]:
    for row in rows:
        mark = cache.marks([row], keys)[0]
        yield ProvenSession(row, mark.as_proof(row.meter_serial))


def _first(store: Store, selection: Selection) -> TransactionRow | None:
    return next(selection.rows(store), None)


def _chargy(store: Store, selection: Selection, station: StationInfo) -> bytes:
    row = next(selection.rows(store), None)
    if row is None:
        raise BadSelection(f"no closed session {selection.session}")
    try:
        doc = chargy_document(row, station)
    except NotExportable as exc:
        raise BadSelection(str(exc)) from None
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _export(store: Store, selection: Selection, writer: _ChunkWriter, cache: MarkCache) -> int:
    keys = store.meter_keys()
    sessions = _proven(selection.rows(store), keys, cache)
    out = cast(IO[str], writer)
    try:
        if selection.fmt == "csv":
            written = write_csv(out, sessions)
        else:
            written = write_safe_xml(out, sessions) // 2
    finally:
        sessions.close()
    writer.finish()
    return written


async def stream(
    request: web.Request, reader: StoreReader, selection: Selection, station: StationInfo
) -> web.StreamResponse:
    """The response for `selection`; BadSelection before anything is sent."""
    content_type = FORMATS[selection.fmt][1]
    headers = {
        "Content-Type": content_type,
        "Content-Disposition": f'attachment; filename="{selection.filename(station.id)}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if selection.fmt == "chargy":
        body = await reader.download(_chargy, selection, station)
        return web.Response(body=body, headers=headers)
    if selection.scope != "all" and await reader.download(_first, selection) is None:
        raise BadSelection("no closed session matches this selection")
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_CHUNKS)
    writer = _ChunkWriter(loop, queue)
    job = asyncio.ensure_future(reader.download(_export, selection, writer, MarkCache()))
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            try:
                await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done() and job.done():
                    job.result()  # the export failed before its end: raise its error
                chunk = await getter  # (an export that ended put its last chunks first)
            finally:
                getter.cancel()
            if chunk is None:
                break
            await response.write(chunk)
        count = await job
    except BaseException:
        writer.stopped.set()
        while not queue.empty():  # unblock the export thread so it sees the stop
            queue.get_nowait()
        job.add_done_callback(_retrieve)
        raise
    log.info("download %s: %d sessions", selection.filename(station.id), count)
    await response.write_eof()
    return response


def _retrieve(job: asyncio.Future[Any]) -> None:
    if not job.cancelled() and job.exception() is not None:
        log.info("download stopped: %r", job.exception())
