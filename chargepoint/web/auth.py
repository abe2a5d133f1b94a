"""Who may act on the station: the operator password, login sessions, CSRF tokens and the
login rate limit.

- The password file holds the password as one plain line. It is read once at start and kept
  only as a scrypt hash with a random salt (never the text); a login attempt is hashed the same
  way and compared in constant time, off the event loop.
- A login gives a random session token in a cookie (HttpOnly, SameSite=Strict, Secure under
  TLS) that lasts `SESSION_TTL_S` at most; the sessions live in this process only, so a
  restart logs everybody out.
- Every form that posts carries a CSRF token: an HMAC of the visitor's cookie under a key made
  at start, checked on every POST (a page from elsewhere can neither read nor forge it).
- Failed logins are limited per client address and overall (`LoginLimiter`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

SESSION_COOKIE = "cp_session"
VISITOR_COOKIE = "cp_visitor"
SESSION_TTL_S = 12 * 3600.0
MAX_SESSIONS = 64
MAX_PASSWORD_FILE = 4096
# scrypt cost: about 30 ms and 16 MiB per check on a small controller
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1


class PasswordFileError(ValueError):
    """The password file cannot be used; the message names the file, never its content."""


def _kdf(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )


class OperatorPassword:
    """The operator password as a salted scrypt hash."""

    def __init__(self, password: str) -> None:
        if not password:
            raise PasswordFileError("the operator password is empty")
        self._salt = os.urandom(16)
        self._hash = _kdf(password, self._salt)

    @classmethod
    def from_file(cls, path: Path) -> OperatorPassword:
        """The first line of `path` (without its line end) is the password."""
        try:
            if path.stat().st_size > MAX_PASSWORD_FILE:
                raise PasswordFileError(f"password file {path} is too large for one line")
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PasswordFileError(
                f"cannot read password file {path}: {exc.strerror or exc}"
            ) from None
        except UnicodeDecodeError:
            raise PasswordFileError(f"password file {path} is not UTF-8 text") from None
        line = text.split("\n", 1)[0].rstrip("\r")
        if not line:
            raise PasswordFileError(f"password file {path} holds no password on its first line")
        return cls(line)

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison of the hashes; slow on purpose (run it in a thread)."""
        return hmac.compare_digest(_kdf(candidate, self._salt), self._hash)


@dataclass
class OperatorSession:
    token: str
    created: float
    flash: list[str] = field(default_factory=list)  # messages for the next page


class Sessions:
    """Logged-in operators, by the token in their cookie."""

    def __init__(self, ttl_s: float = SESSION_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._sessions: dict[str, OperatorSession] = {}

    def create(self) -> OperatorSession:
        self._expire()
        while len(self._sessions) >= MAX_SESSIONS:  # the oldest login gives way
            oldest = min(self._sessions.values(), key=lambda s: s.created)
            del self._sessions[oldest.token]
        session = OperatorSession(secrets.token_urlsafe(32), time.monotonic())
        self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> OperatorSession | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if time.monotonic() - session.created > self._ttl_s:
            del self._sessions[token]
            return None
        return session

    def end(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._sessions.items() if now - s.created > self._ttl_s]:
            del self._sessions[token]


class CsrfTokens:
    """Tokens bound to the visitor's cookie: HMAC-SHA256 under a key made at start."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def token(self, cookie: str) -> str:
        return hmac.new(self._key, cookie.encode(), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.token(cookie), token)


class LoginLimiter:
    """At most `per_client` failed logins per client address and `overall` in all within
    `window_s` seconds; more are refused without checking the password."""

    def __init__(self, per_client: int = 5, overall: int = 30, window_s: float = 300.0) -> None:
        self.per_client = per_client
        self.overall = overall
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        now = time.monotonic()
        self._trim(now)
        waits = []
        mine = self._failures.get(client)
        if mine is not None and len(mine) >= self.per_client:
            waits.append(mine[0] + self.window_s - now)
        if len(self._all) >= self.overall:
            waits.append(self._all[0] + self.window_s - now)
        return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, client: str) -> None:
        now = time.monotonic()
        self._failures.setdefault(client, deque()).append(now)
        self._all.append(now)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _trim(self, now: float) -> None:
        limit = now - self.window_s
        while self._all and self._all[0] < limit:
            self._all.popleft()
        for client in list(self._failures):
            queue = self._failures[client]
            while queue and queue[0] < limit:
                queue.popleft()
            if not queue:
                del self._failures[client]
