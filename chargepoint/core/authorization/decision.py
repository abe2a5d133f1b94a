"""The authorization decision, in the order the specifications give it, for both versions.

`decide` is a pure function: what was presented (`Presentation`), the rules in force
(`AuthRules`: the 1.6 keys / 2.0.1 AuthCtrlr, AuthCacheCtrlr and LocalAuthListCtrlr variables),
what the station knows about the token (`Known`: local list, cache, the CSMS's answer) and the
reservations that concern the connector (`ReservationFacts`). It answers with an
`AuthDecision`: accepted, refused, or "ask the CSMS first" (the caller sends Authorize and asks
again with the answer, or with `CsmsAnswer.UNREACHABLE`), always with a reason a person can
read ("blocked in local list", "reserved for another card until 14:30").

The order (OCPP 1.6 3.5 and 5.x; 2.0.1 C01, C10-C15, D, H03):

1. Stopping a session: the card that started it stops it without authorization. Another card
   is authorized as for a start and stops it only when it is Accepted and has the session's
   group (parentIdTag / groupIdToken).
2. A remote start is not authorized again unless AuthorizeRemoteTxRequests (AuthCtrlr.
   AuthorizeRemoteStart); a token of type NoAuthorization needs none.
3. Local checks are allowed online with LocalPreAuthorize, offline with LocalAuthorizeOffline.
   The local list (when enabled) takes precedence over the cache for the same token:
   - Accepted and not expired, local checks allowed: accepted, no Authorize (C14.FR.02).
   - Any other status: online the CSMS is asked (C14.FR.03); offline it is refused, also
     with AllowOfflineTxForUnknownId - the token is known, not unknown (1.6 3.5.3, C13.FR.04).
4. The cache (when enabled, and the token not in the list): the same, an Accepted entry whose
   expiry passed is Expired and refused offline (1.6 3.5.3: apparently expired ids are
   rejected); an entry whose AuthCacheCtrlr.LifeTime ran out is gone (not looked at).
5. Online: the CSMS's answer decides. When it cannot be reached, the offline rules apply.
6. Offline, unknown token: accepted only with AllowOfflineTxForUnknownId
   (OfflineTxForUnknownIdEnabled); the CSMS's later answer may deauthorize the session.
7. Reservations, for an accepted start: a connector reserved for a card is refused to every
   other card unless its id or group matches the reservation's id or group (1.6 5.13, H03);
   a card holding a reservation for any connector (connector 0 / no evseId) may start on any
   free one; other cards may take a free connector only while enough stay free for those
   reservations (H01.FR.07/09: N reservations keep N EVSEs).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from chargepoint.core.authorization.tokens import (
    AuthStatus,
    IdTagInfo,
    clock_text,
    effective_status,
    same_token,
)

NO_AUTHORIZATION_TYPES = frozenset({"NoAuthorization"})


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    ASK_CSMS = "ask the CSMS"


class Source(enum.StrEnum):
    """Where a decision came from (the words appear in the control interface's answers)."""

    SESSION_CARD = "the card that started the session"
    REMOTE = "remote start"
    NO_AUTHORIZATION = "no authorization needed"
    LOCAL_LIST = "local list"
    CACHE = "authorization cache"
    CSMS = "CSMS"
    OFFLINE_UNKNOWN = "offline, unknown id allowed"
    OFFLINE = "offline"
    RESERVATION = "reservation"
    PENDING = "waiting for the CSMS"


class CsmsAnswer(enum.Enum):
    NOT_ASKED = "not asked"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class AuthRules:
    """The settings the decision reads (1.6 key names)."""

    local_pre_authorize: bool = False
    local_authorize_offline: bool = True
    allow_offline_unknown: bool = False
    authorize_remote: bool = False
    local_list_enabled: bool = True
    cache_enabled: bool = True


@dataclass(frozen=True)
class SessionOwner:
    """The session a presented card would stop: who started it and their group."""

    id_tag: str
    parent_id_tag: str | None


@dataclass(frozen=True)
class Presentation:
    id_tag: str
    online: bool
    remote: bool = False  # a start the CSMS asked for (RemoteStart / RequestStart)
    token_type: str | None = None
    stopping: SessionOwner | None = None


@dataclass(frozen=True)
class Known:
    """What the station knows about the presented token."""

    local_list: IdTagInfo | None = None
    list_version: int = 0
    cache: IdTagInfo | None = None
    csms: IdTagInfo | CsmsAnswer = CsmsAnswer.NOT_ASKED


@dataclass(frozen=True)
class Hold:
    """A reservation as the decision sees it."""

    reservation_id: int
    id_tag: str
    parent_id_tag: str | None
    expiry: datetime

    def matches(self, id_tag: str, parent_id_tag: str | None) -> bool:
        """The card, or its group, is the reservation's card or group (1.6 5.13: "the
        incoming idTag or the parent idTag match the idTag or parent idTag of the
        reservation"; 2.0.1 H03: idToken or groupIdToken)."""
        mine = [t for t in (id_tag, parent_id_tag) if t]
        theirs = [t for t in (self.id_tag, self.parent_id_tag) if t]
        return any(same_token(a, b) for a in mine for b in theirs)


@dataclass(frozen=True)
class ReservationFacts:
    """The reservations that concern a start on one connector: the one on that connector,
    those for any connector, and how many connectors are free (this one included)."""

    here: Hold | None = None
    unspecified: tuple[Hold, ...] = ()
    free_connectors: int = 1


NO_RESERVATIONS = ReservationFacts()


@dataclass(frozen=True)
class AuthDecision:
    verdict: Verdict
    source: Source
    reason: str
    info: IdTagInfo | None = None
    reservation_id: int | None = None
    offline: bool = False  # decided without the CSMS while it was unreachable

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    @property
    def parent_id_tag(self) -> str | None:
        return self.info.parent_id_tag if self.info is not None else None

    @property
    def status(self) -> str:
        """The authorization status for messages and logs."""
        if self.info is not None:
            return self.info.status.value
        return AuthStatus.ACCEPTED.value if self.accepted else "Refused"


def _accept(source: Source, reason: str, info: IdTagInfo | None = None) -> AuthDecision:
    return AuthDecision(Verdict.ACCEPTED, source, reason, info)


def _refuse(source: Source, reason: str, info: IdTagInfo | None = None) -> AuthDecision:
    return AuthDecision(Verdict.REFUSED, source, reason, info)


ASK = AuthDecision(Verdict.ASK_CSMS, Source.PENDING, "asking the CSMS")


def decide(
    p: Presentation,
    rules: AuthRules,
    known: Known,
    now: datetime,
    reservations: ReservationFacts = NO_RESERVATIONS,
) -> AuthDecision:
    """The decision for a presented token; see the module docstring for the order."""
    if p.stopping is not None and same_token(p.id_tag, p.stopping.id_tag):
        return _accept(Source.SESSION_CARD, "the card that started the session")
    decision = _authorize(p, rules, known, now)
    if decision.verdict is Verdict.ASK_CSMS:
        return decision
    if p.stopping is not None:
        return _may_stop(decision, p.stopping)
    if not decision.accepted:
        return decision
    return _reservation_check(decision, p, reservations)


def _authorize(p: Presentation, rules: AuthRules, known: Known, now: datetime) -> AuthDecision:
    if p.remote and not rules.authorize_remote:
        return _accept(Source.REMOTE, "remote start (AuthorizeRemoteTxRequests is false)")
    if p.token_type in NO_AUTHORIZATION_TYPES:
        return _accept(Source.NO_AUTHORIZATION, "token type NoAuthorization")
    online = p.online and known.csms is not CsmsAnswer.UNREACHABLE
    local_ok = rules.local_pre_authorize if online else rules.local_authorize_offline
    listed = known.local_list if rules.local_list_enabled else None
    cached = known.cache if rules.cache_enabled and listed is None else None
    if listed is not None:
        status = effective_status(listed, now)
        where = f"local list (version {known.list_version})"
        if status is AuthStatus.ACCEPTED and local_ok:
            return _accept(Source.LOCAL_LIST, f"accepted by the {where}", listed)
        if status is not AuthStatus.ACCEPTED and not online:
            return _refuse(Source.LOCAL_LIST, f"{status.value.lower()} in local list", listed)
    elif cached is not None:
        status = effective_status(cached, now)
        if status is AuthStatus.ACCEPTED and local_ok:
            return _accept(Source.CACHE, "accepted from the authorization cache", cached)
        if status is not AuthStatus.ACCEPTED and not online:
            refused = IdTagInfo(status, cached.expiry, cached.parent_id_tag)
            return _refuse(
                Source.CACHE, f"{status.value.lower()} in the authorization cache", refused
            )
    if online:
        answer = known.csms
        if answer is CsmsAnswer.NOT_ASKED:
            return ASK
        assert isinstance(answer, IdTagInfo)
        if effective_status(answer, now) is AuthStatus.ACCEPTED:
            return _accept(Source.CSMS, "accepted by the CSMS", answer)
        return _refuse(Source.CSMS, f"{answer.status.value} according to the CSMS", answer)
    decision = _offline(rules, listed is not None or cached is not None)
    return replace(decision, offline=True)


def _offline(rules: AuthRules, known_accepted: bool) -> AuthDecision:
    """Offline, for a token no local entry decides: unknown, or known Accepted while
    LocalAuthorizeOffline is false."""
    if rules.allow_offline_unknown:
        return _accept(
            Source.OFFLINE_UNKNOWN,
            "offline: unknown id allowed (AllowOfflineTxForUnknownId)"
            if not known_accepted
            else "offline: LocalAuthorizeOffline is false, allowed as an unknown id",
        )
    if known_accepted:
        return _refuse(Source.OFFLINE, "offline and LocalAuthorizeOffline is false")
    if rules.local_list_enabled:
        return _refuse(Source.OFFLINE, "not in local list and offline unknown ids not allowed")
    return _refuse(Source.OFFLINE, "unknown id while offline and offline unknown ids not allowed")


def _may_stop(decision: AuthDecision, owner: SessionOwner) -> AuthDecision:
    """Another card stops a session only when accepted and of the session's group."""
    if not decision.accepted:
        return replace(decision, reason=f"may not stop this session: {decision.reason}")
    group = decision.parent_id_tag
    if group and same_token(group, owner.parent_id_tag):
        return replace(decision, reason=f"same group as the session's card ({decision.reason})")
    return _refuse(
        decision.source,
        "may not stop this session: not the card that started it nor of its group",
        decision.info,
    )


def _reservation_check(
    decision: AuthDecision, p: Presentation, facts: ReservationFacts
) -> AuthDecision:
    parent = decision.parent_id_tag
    here = facts.here
    if here is not None:
        if here.matches(p.id_tag, parent):
            return replace(
                decision,
                reservation_id=here.reservation_id,
                reason=f"{decision.reason}; reservation {here.reservation_id}",
            )
        return _refuse(
            Source.RESERVATION,
            f"reserved for another card until {clock_text(here.expiry)}",
            decision.info,
        )
    mine = next((h for h in facts.unspecified if h.matches(p.id_tag, parent)), None)
    if mine is not None:
        return replace(
            decision,
            reservation_id=mine.reservation_id,
            reason=f"{decision.reason}; reservation {mine.reservation_id}",
        )
    if facts.unspecified and facts.free_connectors <= len(facts.unspecified):
        until = min(h.expiry for h in facts.unspecified)
        return _refuse(
            Source.RESERVATION,
            f"the free connectors are reserved for other cards until {clock_text(until)}",
            decision.info,
        )
    return decision
