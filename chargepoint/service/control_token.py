"""The control interface's token on loopback TCP: `<state_dir>/control.token`.

Any local process can reach a TCP port, so on TCP the daemon answers only requests that carry
`Authorization: Bearer <token>`. The daemon writes a new random token at every start (mode
0600, owned by the service user, replaced atomically), so only the service user (and root)
can read it; `chargepoint status`/`control` and the web page read it for every request. A
client that keeps the token must read it again after a 401 (the daemon was restarted).
The Unix socket needs no token: its directory's group decides who may connect.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "control.token"
TOKEN_BYTES = 32


class TokenUnreadable(OSError):
    """The client cannot read the token: the daemon does not run on TCP, or this account may
    not read the service user's files."""


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE


def write_new_token(state_dir: Path) -> str:
    """A fresh token in `<state_dir>/control.token` (0600): written beside it under another
    name, synced, then renamed over the old one, so a reader sees the old or the new token."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path = token_path(state_dir)
    temporary = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask, and if an old temporary file was left
        os.write(fd, f"{token}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return token


def read_token(state_dir: Path) -> str:
    path = token_path(state_dir)
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise TokenUnreadable(
            f"no control token at {path}: is the daemon running with a TCP control interface?"
        ) from None
    except PermissionError:
        raise TokenUnreadable(
            f"cannot read the control token {path}: run as the service user, "
            "or use the Unix socket (control.listen: unix:PATH)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenUnreadable(f"cannot read the control token {path}: {exc}") from None
    if not token:
        raise TokenUnreadable(f"the control token {path} is empty")
    return token


def token_matches(presented: str, token: str) -> bool:
    """Compared in constant time (the length of `token` aside)."""
    return hmac.compare_digest(presented.encode(), token.encode())
