"""Authorization of id tags: gathers what the station knows about a token (local list,
authorization cache), asks the CSMS when the decision says so, keeps the CSMS's answers in
the cache, and returns the decision (chargepoint.core.authorization.decision) with its reason.

Cache rules (1.6 3.5.1, 2.0.1 C10/C11): every IdTagInfo the CSMS sends (Authorize, the start
and stop answers) updates the entry - unless the token is in the local list, which the CSMS's
answers never change; an Accepted entry whose expiry passed counts as Expired; with
AuthCacheCtrlr.LifeTime (2.0.1) an entry not used for that long is dropped; the cache keeps at
most `CACHE_MAX_ENTRIES` entries, dropping the ones not Accepted first, then the least
recently used (AuthCacheCtrlr.Policy LRU).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chargepoint.core.authorization.decision import (
    NO_RESERVATIONS,
    AuthDecision,
    AuthRules,
    CsmsAnswer,
    Known,
    Presentation,
    ReservationFacts,
    SessionOwner,
    Source,
    Verdict,
    decide,
)
from chargepoint.core.authorization.local_list import ListLimits, LocalList
from chargepoint.core.authorization.tokens import AuthStatus, IdTagInfo, parse_time, status_of
from chargepoint.core.settings import Settings
from chargepoint.store import AsyncStore, utc_now

__all__ = [
    "AuthDecision",
    "AuthStatus",
    "Authorizer",
    "Decision",
    "IdTagInfo",
    "OnlineAuthorize",
]

log = logging.getLogger("chargepoint.auth")

CACHE_MAX_ENTRIES = 10_000

# The decision the station acts on (the name the callers used before).
Decision = AuthDecision

# Ask the CSMS; None when the CSMS cannot be reached now.
OnlineAuthorize = Callable[[str], Awaitable[IdTagInfo | None]]


def local_list_enabled(settings: Settings) -> bool:
    """LocalAuthListEnabled: its default, or the value the CSMS set (kept in the store)."""
    return settings.known("LocalAuthListEnabled") and settings.flag("LocalAuthListEnabled")


class Authorizer:
    def __init__(self, settings: Settings, store: AsyncStore, online: OnlineAuthorize) -> None:
        self.settings = settings
        self.store = store
        self.online = online
        self.local_list = LocalList(store)
        # AuthCacheCtrlr.LifeTime in seconds (2.0.1; set by its adapter), None: no lifetime
        self.cache_lifetime_s: Callable[[], int | None] = lambda: None

    async def start(self) -> None:
        await self.local_list.load()

    # ---- rules -------------------------------------------------------------------------

    def rules(self) -> AuthRules:
        flag = self.settings.flag
        return AuthRules(
            local_pre_authorize=flag("LocalPreAuthorize"),
            local_authorize_offline=flag("LocalAuthorizeOffline"),
            allow_offline_unknown=flag("AllowOfflineTxForUnknownId"),
            authorize_remote=flag("AuthorizeRemoteTxRequests"),
            local_list_enabled=self.local_list_enabled(),
            cache_enabled=flag("AuthorizationCacheEnabled"),
        )

    def local_list_enabled(self) -> bool:
        return local_list_enabled(self.settings)

    def list_limits(self) -> ListLimits:
        s = self.settings
        return ListLimits(
            enabled=self.local_list_enabled(),
            max_length=s.number("LocalAuthListMaxLength"),
            max_per_message=s.number("SendLocalListMaxLength"),
        )

    # ---- the decision --------------------------------------------------------------------

    async def decide(
        self,
        id_tag: str,
        online: bool,
        *,
        remote: bool = False,
        token_type: str | None = None,
        stopping: SessionOwner | None = None,
        reservations: ReservationFacts = NO_RESERVATIONS,
    ) -> AuthDecision:
        """The decision for a presented token; asks the CSMS when the rules say so."""
        presented = Presentation(id_tag, online, remote, token_type, stopping)
        rules = self.rules()
        known = Known(
            local_list=self.local_list.lookup(id_tag) if rules.local_list_enabled else None,
            list_version=self.local_list.version,
            cache=await self.cached(id_tag) if rules.cache_enabled else None,
        )
        now = datetime.now(UTC)
        decision = decide(presented, rules, known, now, reservations)
        if decision.verdict is Verdict.ASK_CSMS:
            info = await self.online(id_tag)
            if info is not None:
                await self.remember(id_tag, info)
            known = replace(known, csms=info if info is not None else CsmsAnswer.UNREACHABLE)
            decision = decide(presented, rules, known, datetime.now(UTC), reservations)
        if decision.source is Source.CACHE and decision.accepted and known.cache is not None:
            await self._touch(id_tag, known.cache)  # AuthCacheCtrlr.LifeTime counts from use
        log.info(
            "id tag %s %s: %s (%s)",
            id_tag,
            decision.verdict.value,
            decision.reason,
            decision.source.value,
        )
        return decision

    async def authorize(self, id_tag: str, connected: bool) -> AuthDecision:
        """Decide on a locally presented tag (RFID, app, HMI), no reservation involved."""
        return await self.decide(id_tag, connected)

    async def authorize_remote(self, id_tag: str, connected: bool) -> AuthDecision:
        """RemoteStartTransaction: authorize first only when AuthorizeRemoteTxRequests says so."""
        return await self.decide(id_tag, connected, remote=True)

    # ---- the cache -----------------------------------------------------------------------

    async def remember(self, id_tag: str, info: IdTagInfo) -> None:
        """Keep what the CSMS said about a tag (Authorize, start and stop answers); a tag in
        the local list keeps its list entry only (1.6 3.5.1)."""
        if not self.settings.flag("AuthorizationCacheEnabled"):
            return
        if self.local_list_enabled() and self.local_list.contains(id_tag):
            return
        await self.store.cache_put(id_tag, info.status.value, info.expiry, info.parent_id_tag)
        await self.store.cache_prune(CACHE_MAX_ENTRIES)

    async def cached(self, id_tag: str) -> IdTagInfo | None:
        """The cache entry as it stands now; an entry past its LifeTime is dropped."""
        if not self.settings.flag("AuthorizationCacheEnabled"):
            return None
        entry = await self.store.cache_get(id_tag)
        if entry is None:
            return None
        lifetime = self.cache_lifetime_s()
        if lifetime is not None and lifetime > 0:
            try:
                used = parse_time(entry.updated_at)
            except ValueError:
                used = None
            if used is None or used + timedelta(seconds=lifetime) <= datetime.now(UTC):
                log.info("cache entry of %s not used for %d s: dropped", id_tag, lifetime)
                await self.store.cache_delete(id_tag)
                return None
        return IdTagInfo(status_of(entry.status), entry.expiry, entry.parent_id_tag)

    async def _touch(self, id_tag: str, info: IdTagInfo) -> None:
        await self.store.cache_put(id_tag, info.status.value, info.expiry, info.parent_id_tag)

    async def clear(self) -> bool:
        """ClearCache: False (Rejected) while the cache is disabled (2.0.1 C11.FR.04)."""
        if not self.settings.flag("AuthorizationCacheEnabled"):
            return False
        await self.store.cache_clear()
        log.info("authorization cache cleared at %s", utc_now())
        return True
