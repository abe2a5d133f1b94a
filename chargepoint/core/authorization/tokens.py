"""What the station knows about an id token: its status, expiry and group (parent), how two
tokens compare, and what an entry says at a given moment.

Id tokens are compared case-insensitively: OCPP 1.6 idTag is a CiString, OCPP 2.0.1 IdToken is
case insensitive too. The 1.6 parentIdTag and the 2.0.1 groupIdToken are the same thing here:
the token's group (`IdTagInfo.parent_id_tag`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime


class AuthStatus(enum.StrEnum):
    """The 1.6 AuthorizationStatus values (2.0.1's other statuses count as Invalid)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


@dataclass(frozen=True)
class IdTagInfo:
    """1.6 IdTagInfo / 2.0.1 IdTokenInfo: `expiry` is the expiryDate / cacheExpiryDateTime
    (ISO 8601 text as received), `parent_id_tag` the parentIdTag / groupIdToken."""

    status: AuthStatus
    expiry: str | None = None
    parent_id_tag: str | None = None


def token_key(id_tag: str) -> str:
    """The form tokens are compared and indexed in."""
    return id_tag.casefold()


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and token_key(a or "") == token_key(b or "")


def parse_time(text: str | None) -> datetime | None:
    """An OCPP date-time as an aware datetime (a missing zone is UTC); None when absent;
    ValueError when it is not a date-time."""
    if not text:
        return None
    when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def expired(expiry: str | None, now: datetime) -> bool:
    """Whether an expiry date has passed; an unreadable one counts as passed."""
    try:
        when = parse_time(expiry)
    except ValueError:
        return True
    return when is not None and when <= now


def effective_status(info: IdTagInfo, now: datetime) -> AuthStatus:
    """The status an entry has now: an Accepted entry whose expiry passed is Expired."""
    if info.status is AuthStatus.ACCEPTED and expired(info.expiry, now):
        return AuthStatus.EXPIRED
    return info.status


def status_of(text: str | None) -> AuthStatus:
    """A status as received; anything 1.6 does not name (2.0.1 Unknown, NoCredit,
    NotAllowedTypeEVSE, NotAtThisLocation, NotAtThisTime) is Invalid."""
    try:
        return AuthStatus(text or "Invalid")
    except ValueError:
        return AuthStatus.INVALID


def clock_text(when: datetime) -> str:
    """A time as a driver reads it on the HMI: local HH:MM, with the date when it is not
    today."""
    local = when.astimezone()
    today = datetime.now(UTC).astimezone().date()
    if local.date() == today:
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")
