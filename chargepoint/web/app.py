"""The aiohttp application: routes, templates, and what every request passes through.

Every request: the Host header must name this station (else 421: DNS rebinding), the answer
carries a strict Content-Security-Policy (scripts and styles from this server only, no
frames) and is not cached. Pages other than the login and the verifier need a logged-in
operator unless the server listens on loopback. Every POST must carry the CSRF token of
the visitor's cookie; a request from another origin is refused.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from chargepoint.web import operator, pages
from chargepoint.web.auth import VISITOR_COOKIE
from chargepoint.web.context import (
    STATE,
    VISITOR,
    WebState,
    csrf_binding,
    error_page,
    operator_of,
    state_of,
)
from chargepoint.web.settings import host_of

log = logging.getLogger("chargepoint.web")

__all__ = ["WebState", "build_app"]

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# paths anyone may open, logged in or not
PUBLIC = ("/login", "/verify", "/static/")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def host_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only requests for this station's names (stops DNS rebinding)."""
    state = state_of(request)
    header = request.headers.get("Host")
    if not header:
        return web.Response(status=400, text="a Host header is needed\n")
    if host_of(header) not in state.settings.host_names():
        log.warning("refused a request for host %r from %s", header, request.remote)
        return web.Response(
            status=421,
            text=f"this station does not answer to {host_of(header)!r} "
            "(add it to web.allowed_hosts)\n",
        )
    return await handler(request)


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers, the visitor cookie, and error pages for what went wrong."""
    state = state_of(request)
    static = request.path.startswith("/static/")
    if VISITOR_COOKIE not in request.cookies and not static:
        request[VISITOR] = secrets.token_urlsafe(24)
    response: web.StreamResponse
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = error_page(request, exc.status, exc.reason)
        else:  # a redirect
            response = web.Response(status=exc.status, headers=exc.headers)
    if VISITOR in request and not response.prepared:
        response.set_cookie(
            VISITOR_COOKIE,
            request[VISITOR],
            httponly=True,
            samesite="Strict",
            secure=state.settings.tls,
            path="/",
        )
    if not response.prepared:
        h = response.headers
        h.setdefault("Content-Security-Policy", PAGE_CSP)
        h.setdefault("Cache-Control", "max-age=600" if static else "no-store")
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = "same-origin"  # (no-referrer would make Origin "null")
        if state.settings.tls:
            h["Strict-Transport-Security"] = "max-age=31536000"
    return response


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Login where needed; CSRF token and same origin on every POST."""
    state = state_of(request)
    public = any(request.path == p or request.path.startswith(p) for p in PUBLIC if p)
    if not public and not state.settings.read_only_pages_open and operator_of(request) is None:
        if request.method == "GET":
            raise web.HTTPSeeOther(f"/login?next={request.path}")
        return error_page(request, 401, "log in first")
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin is not None and origin.partition("://")[2].lower() != request.host.lower():
            return error_page(request, 403, "a request from another site was refused")
        form = await request.post()
        token = form.get("csrf")
        if not isinstance(token, str) or not state.csrf.valid(csrf_binding(request), token):
            return error_page(
                request, 403, "the form has expired (CSRF check): reload the page and try again"
            )
    return await handler(request)


def static_dir() -> Path:
    return Path(str(resources.files("chargepoint.web") / "static"))


async def _shutdown(app: web.Application) -> None:
    await app[STATE].feed.close()


def build_app(state: WebState) -> web.Application:
    app = web.Application(middlewares=[host_check, headers, access], client_max_size=64 * 1024)
    app[STATE] = state
    app.router.add_get("/", pages.status_page)
    app.router.add_get("/events", pages.events)
    app.router.add_get("/transactions", pages.transactions_page)
    app.router.add_get("/transactions/{id:\\d+}", pages.session_page)
    app.router.add_get("/keys", pages.keys_page)
    app.router.add_get("/download", pages.download)
    app.router.add_get("/verify", pages.verify_page)
    app.router.add_get("/login", operator.login_page)
    app.router.add_post("/login", operator.login)
    app.router.add_post("/logout", operator.logout)
    app.router.add_post("/connectors/{id:\\d+}/{action}", operator.connector_action)
    app.router.add_static("/static", static_dir(), append_version=False)
    app.on_shutdown.append(_shutdown)
    return app
