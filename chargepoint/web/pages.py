"""The read-only pages: station and connectors (live), the transaction log, one session, the
meter-key history, downloads, the live event stream and the verifier page."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from chargepoint.store import MeterKeyRow, Store, StoreError, TransactionRow
from chargepoint.web import downloads
from chargepoint.web.context import WebState, render, state_of
from chargepoint.web.feed import FeedClosed
from chargepoint.web.marks import Mark, MarkCache
from chargepoint.web.views import (
    LogRow,
    current_keys,
    key_views,
    live_view,
    station_view,
)

log = logging.getLogger("chargepoint.web")

KEEP_ALIVE_S = 15.0


_state = state_of
_render = render


async def _keys(state: WebState) -> tuple[list[MeterKeyRow], str]:
    """The key history, or none and why the store could not be read."""
    try:
        return await state.reader.read(Store.meter_keys), ""
    except StoreError as exc:
        return [], str(exc)


async def status_page(request: web.Request) -> web.Response:
    state = _state(request)
    snapshot = await state.feed.current()
    keys, store_error = await _keys(state)
    return _render(
        request,
        "status.html",
        station=station_view(state.config),
        connectors=state.config.connectors,
        keys=current_keys(keys),
        live=live_view(snapshot, state.connector_ids),
        store_error=store_error,
    )


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the status page's live map, at once and on every change."""
    state = _state(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    version = 0
    try:
        async with state.feed.listening():
            while True:
                snapshot = await state.feed.wait_newer(version, KEEP_ALIVE_S)
                if snapshot is None:
                    await response.write(b": still here\n\n")
                    continue
                version = snapshot.version
                data = json.dumps(live_view(snapshot, state.connector_ids))
                await response.write(f"event: status\ndata: {data}\n\n".encode())
    except (FeedClosed, ConnectionResetError):
        pass  # shutting down, or the page went away
    return response


@dataclass(frozen=True)
class LogFilter:
    since: date | None = None
    until: date | None = None  # inclusive
    connector: int | None = None
    card: str = ""
    before: int | None = None
    after: int | None = None

    @classmethod
    def from_query(cls, query: Any) -> tuple[LogFilter, list[str]]:
        problems: list[str] = []

        def day(name: str) -> date | None:
            text = str(query.get(name, "")).strip()
            if not text:
                return None
            try:
                return date.fromisoformat(text)
            except ValueError:
                problems.append(f"{text!r} is not a date (YYYY-MM-DD)")
                return None

        def number(name: str) -> int | None:
            text = str(query.get(name, "")).strip()
            if not text:
                return None
            if not text.isdigit():
                problems.append(f"{name} {text!r} is not a number")
                return None
            return int(text)

        card = str(query.get("card", "")).strip()[:64]
        result = cls(
            day("since"), day("until"), number("connector"), card, number("before"), number("after")
        )
        return result, problems

    def query(self, **change: Any) -> str:
        values = {
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "connector": "" if self.connector is None else str(self.connector),
            "card": self.card,
        }
        values.update({k: str(v) for k, v in change.items()})
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def download_query(self) -> str:
        """The download of what this filter shows (a connector, a date range, or all)."""
        if self.since or self.until:
            scope: dict[str, str] = {"scope": "range"}
            if self.since:
                scope["since"] = self.since.isoformat()
            if self.until:
                scope["until"] = self.until.isoformat()
        elif self.connector is not None:
            scope = {"scope": "connector", "connector": str(self.connector)}
        else:
            scope = {"scope": "all"}
        return urlencode(scope)


def _page(
    store: Store, f: LogFilter, size: int, cache: MarkCache
) -> tuple[list[LogRow], bool, bool]:
    """One page of sessions with their marks; whether there are older and newer ones."""
    until = None if f.until is None else (f.until + timedelta(days=1)).isoformat()
    common: dict[str, Any] = {
        "since": None if f.since is None else f.since.isoformat(),
        "until": until,
        "connector_id": f.connector,
        "id_tag": f.card or None,
    }
    rows = store.transactions_page(size + 1, before=f.before, after=f.after, **common)
    if f.after is not None and f.before is None:
        newer = len(rows) > size
        rows = rows[-size:] if newer else rows
        older = bool(rows) and bool(store.transactions_page(1, before=rows[-1].local_id, **common))
    else:
        older = len(rows) > size
        rows = rows[:size]
        newer = (
            f.before is not None
            and bool(rows)
            and bool(store.transactions_page(1, after=rows[0].local_id, **common))
        )
    keys = store.meter_keys()
    marks: list[Mark] = cache.marks(rows, keys)
    return [LogRow(r, m) for r, m in zip(rows, marks, strict=True)], older, newer


async def transactions_page(request: web.Request) -> web.Response:
    state = _state(request)
    f, problems = LogFilter.from_query(request.query)
    rows: list[LogRow] = []
    older = newer = False
    store_error = ""
    if not problems:
        try:
            rows, older, newer = await state.reader.read(
                _page, f, state.settings.page_size, state.marks
            )
        except StoreError as exc:
            store_error = str(exc)
    return _render(
        request,
        "transactions.html",
        rows=rows,
        flt=f,
        problems=problems,
        store_error=store_error,
        older_query=f.query(before=rows[-1].row.local_id) if older and rows else "",
        newer_query=f.query(after=rows[0].row.local_id) if newer and rows else "",
        connectors=state.connector_ids,
        status=400 if problems else 200,
    )


def _session(store: Store, local_id: int, cache: MarkCache) -> tuple[TransactionRow, Mark] | None:
    row = store.transaction(local_id)
    if row is None:
        return None
    return row, cache.marks([row], store.meter_keys())[0]


async def session_page(request: web.Request) -> web.Response:
    state = _state(request)
    local_id = int(request.match_info["id"])
    try:
        found = await state.reader.read(_session, local_id, state.marks)
    except StoreError as exc:
        return _render(request, "error.html", 503, status_code=503, message=str(exc))
    if found is None:
        raise web.HTTPNotFound(reason=f"no session {local_id}")
    row, mark = found
    return _render(request, "session.html", item=LogRow(row, mark))


async def keys_page(request: web.Request) -> web.Response:
    state = _state(request)
    keys, store_error = await _keys(state)
    return _render(request, "keys.html", keys=key_views(keys), store_error=store_error)


async def download(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    try:
        selection = downloads.Selection.from_query(request.query)
        return await downloads.stream(request, state.reader, selection, state.config.station)
    except downloads.BadSelection as exc:
        return _render(request, "error.html", 404, status_code=404, message=str(exc))
    except StoreError as exc:
        return _render(request, "error.html", 503, status_code=503, message=str(exc))


async def verify_page(request: web.Request) -> web.Response:
    page = _state(request).verifier
    return web.Response(
        body=page.html.encode("utf-8"),
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": page.csp, "Cache-Control": "no-cache"},
    )
