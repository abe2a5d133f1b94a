"""What every handler shares: the process's state, the logged-in operator, the CSRF token of
the request, and rendering a page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jinja2
from aiohttp import web

from chargepoint.config import StationConfig
from chargepoint.service.control import ControlAddress
from chargepoint.web.auth import (
    SESSION_COOKIE,
    VISITOR_COOKIE,
    CsrfTokens,
    LoginLimiter,
    OperatorPassword,
    OperatorSession,
    Sessions,
)
from chargepoint.web.feed import StatusFeed
from chargepoint.web.marks import MarkCache
from chargepoint.web.reader import StoreReader
from chargepoint.web.settings import WebSettings
from chargepoint.web.verifier import VerifierPage, verifier_page


@dataclass
class WebState:
    """Everything the handlers share, one per process."""

    settings: WebSettings
    config: StationConfig
    feed: StatusFeed
    reader: StoreReader
    control: ControlAddress
    password: OperatorPassword | None
    sessions: Sessions = field(default_factory=Sessions)
    csrf: CsrfTokens = field(default_factory=CsrfTokens)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    marks: MarkCache = field(default_factory=MarkCache)  # used on the store's page thread only
    verifier: VerifierPage = field(default_factory=verifier_page)
    templates: jinja2.Environment = field(init=False)

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("chargepoint.web", "templates"),
            autoescape=jinja2.select_autoescape(default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    @property
    def connector_ids(self) -> list[int]:
        return [c.id for c in self.config.connectors]


STATE: web.AppKey[WebState] = web.AppKey("state", WebState)
VISITOR: web.RequestKey[str] = web.RequestKey("visitor", str)  # a new visitor's cookie


def state_of(request: web.Request) -> WebState:
    return request.app[STATE]


def operator_of(request: web.Request) -> OperatorSession | None:
    return state_of(request).sessions.get(request.cookies.get(SESSION_COOKIE))


def csrf_binding(request: web.Request) -> str:
    """What the CSRF token is bound to: the login session, else the visitor cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if token and operator_of(request) is not None:
        return f"session:{token}"
    visitor = request.get(VISITOR) or request.cookies.get(VISITOR_COOKIE) or ""
    return f"visitor:{visitor}"


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    state = state_of(request)
    who = operator_of(request)
    flash = []
    if who is not None:
        flash, who.flash = who.flash, []
    page = state.templates.get_template(template).render(
        station_id=state.config.station.id,
        logged_in=who is not None,
        password_set=state.password is not None,
        csrf=state.csrf.token(csrf_binding(request)),
        path=request.path,
        flash=flash,
        **context,
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", status=status, status_code=status, message=message)
