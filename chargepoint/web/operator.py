"""The operator: logging in and out, and the actions on a connector (stop its session, take it
out of service or back, unlock), each sent to the daemon over the control interface."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from chargepoint.service.control import request as control_request
from chargepoint.web.auth import SESSION_COOKIE
from chargepoint.web.context import operator_of, render, state_of

log = logging.getLogger("chargepoint.web.operator")

ACTIONS = {
    "stop": "stop the session",
    "unavailable": "take out of service",
    "available": "put back in service",
    "unlock": "unlock",
}
RESULTS = {
    "stopping": "the session is being stopped (the meter signs its end)",
    "scheduled": "out of service once its session has ended",
    "unlocked": "unlocked (no session was open)",
    "ok": "done",
}


def _next_path(value: object) -> str:
    """Where to go after the login: a path on this site only."""
    text = value if isinstance(value, str) else "/"
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", next=_next_path(request.query.get("next")), error="")


async def login(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    form = await request.post()
    next_path = _next_path(form.get("next"))
    if state.password is None:
        return render(
            request,
            "login.html",
            status=403,
            next=next_path,
            error="no operator password is set (web.operator_password_file)",
        )
    client = _client(request)
    wait = state.limiter.retry_after(client)
    if wait:
        log.warning("login refused for %s: too many failed attempts", client)
        response = render(
            request,
            "login.html",
            status=429,
            next=next_path,
            error=f"too many failed logins: try again in {wait} s",
        )
        response.headers["Retry-After"] = str(wait)
        return response
    candidate = form.get("password")
    good = isinstance(candidate, str) and await asyncio.to_thread(state.password.matches, candidate)
    if not good:
        state.limiter.failed(client)
        log.warning("failed operator login from %s", client)
        return render(request, "login.html", status=401, next=next_path, error="wrong password")
    state.limiter.succeeded(client)
    state.sessions.end(request.cookies.get(SESSION_COOKIE))
    session = state.sessions.create()
    log.info("operator logged in from %s", client)
    response = web.Response(status=303, headers={"Location": next_path})
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        httponly=True,
        samesite="Strict",
        secure=state.settings.tls,
        path="/",
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    state_of(request).sessions.end(request.cookies.get(SESSION_COOKIE))
    response = web.Response(status=303, headers={"Location": "/"})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def connector_action(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    who = operator_of(request)
    if who is None:
        return render(
            request,
            "error.html",
            status=401,
            status_code=401,
            message="operator actions need a login",
        )
    cid = int(request.match_info["id"])
    action = request.match_info["action"]
    if action not in ACTIONS or cid not in state.connector_ids:
        raise web.HTTPNotFound(reason=f"no action {action!r} on connector {cid}")
    log.info("operator from %s: %s on connector %d", _client(request), action, cid)
    try:
        code, body = await control_request(
            state.control, "POST", f"/connectors/{cid}/{action}", timeout=5
        )
    except (OSError, TimeoutError, ValueError, IndexError) as exc:
        who.flash.append(f"connector {cid}: {ACTIONS[action]}: the daemon does not answer ({exc})")
    else:
        if code == 200:
            result = str(body.get("result", "ok"))
            who.flash.append(f"connector {cid}: {ACTIONS[action]}: {RESULTS.get(result, result)}")
        else:
            who.flash.append(
                f"connector {cid}: {ACTIONS[action]} refused: {body.get('error', code)}"
            )
    return web.Response(status=303, headers={"Location": "/"})
