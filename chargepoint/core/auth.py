"""Authorization of id tags: online (Authorize), the authorization cache, offline rules."""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from chargepoint.core.settings import Settings
from chargepoint.store import AsyncStore, utc_now

log = logging.getLogger("chargepoint.auth")


class AuthStatus(enum.StrEnum):
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


@dataclass(frozen=True)
class IdTagInfo:
    status: AuthStatus
    expiry: str | None = None
    parent_id_tag: str | None = None


@dataclass(frozen=True)
class Decision:
    accepted: bool
    info: IdTagInfo | None
    source: str  # "csms", "cache", "offline-unknown", "remote-start"


# Ask the CSMS; None when the CSMS cannot be reached now.
OnlineAuthorize = Callable[[str], Awaitable[IdTagInfo | None]]


def _expired(expiry: str | None) -> bool:
    if not expiry:
        return False
    try:
        when = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when <= datetime.now(UTC)


class Authorizer:
    def __init__(self, settings: Settings, store: AsyncStore, online: OnlineAuthorize) -> None:
        self.settings = settings
        self.store = store
        self.online = online

    async def remember(self, id_tag: str, info: IdTagInfo) -> None:
        """Keep what the CSMS said about a tag (Authorize, Start/StopTransaction answers)."""
        if self.settings.flag("AuthorizationCacheEnabled"):
            await self.store.cache_put(id_tag, info.status.value, info.expiry, info.parent_id_tag)

    async def cached(self, id_tag: str) -> IdTagInfo | None:
        if not self.settings.flag("AuthorizationCacheEnabled"):
            return None
        entry = await self.store.cache_get(id_tag)
        if entry is None:
            return None
        status = AuthStatus(entry.status)
        if status is AuthStatus.ACCEPTED and _expired(entry.expiry):
            status = AuthStatus.EXPIRED
        return IdTagInfo(status, entry.expiry, entry.parent_id_tag)

    async def authorize(self, id_tag: str, connected: bool) -> Decision:
        """Decide on a locally presented tag (RFID, app, HMI)."""
        cached = await self.cached(id_tag)
        if (
            connected
            and self.settings.flag("LocalPreAuthorize")
            and cached is not None
            and cached.status is AuthStatus.ACCEPTED
        ):
            return Decision(True, cached, "cache")
        if connected:
            info = await self.online(id_tag)
            if info is not None:
                await self.remember(id_tag, info)
                return Decision(info.status is AuthStatus.ACCEPTED, info, "csms")
        return self.offline(id_tag, cached)

    def offline(self, id_tag: str, cached: IdTagInfo | None) -> Decision:
        if self.settings.flag("LocalAuthorizeOffline") and cached is not None:
            return Decision(cached.status is AuthStatus.ACCEPTED, cached, "cache")
        if cached is None and self.settings.flag("AllowOfflineTxForUnknownId"):
            log.warning("offline: tag %s unknown, allowed by AllowOfflineTxForUnknownId", id_tag)
            return Decision(True, None, "offline-unknown")
        return Decision(False, cached, "offline")

    async def authorize_remote(self, id_tag: str, connected: bool) -> Decision:
        """RemoteStartTransaction: authorize first only when AuthorizeRemoteTxRequests says so."""
        if not self.settings.flag("AuthorizeRemoteTxRequests"):
            return Decision(True, IdTagInfo(AuthStatus.ACCEPTED), "remote-start")
        return await self.authorize(id_tag, connected)

    async def clear(self) -> None:
        await self.store.cache_clear()
        log.info("authorization cache cleared at %s", utc_now())
