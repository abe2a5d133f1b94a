"""The version-free authorization decision (chargepoint.core.authorization.decision), branch
by branch in the order of OCPP 1.6 3.5 / 5.x and 2.0.1 C, D and H: what a driver at the
station is told, and whether the CSMS is asked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chargepoint.core.authorization.decision import (
    AuthRules,
    CsmsAnswer,
    Hold,
    Known,
    Presentation,
    ReservationFacts,
    SessionOwner,
    Source,
    Verdict,
    decide,
)
from chargepoint.core.authorization.tokens import AuthStatus, IdTagInfo, clock_text

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
LATER = (NOW + timedelta(days=1)).isoformat()
EARLIER = (NOW - timedelta(minutes=1)).isoformat()
ACCEPTED = IdTagInfo(AuthStatus.ACCEPTED)
BLOCKED = IdTagInfo(AuthStatus.BLOCKED)
RULES = AuthRules()  # the YAML defaults: LocalAuthorizeOffline on, the rest off

ONLINE = Presentation("CARD-1", online=True)
OFFLINE = Presentation("CARD-1", online=False)


def test_online_without_local_pre_authorize_asks_the_csms_even_for_a_listed_card() -> None:
    known = Known(local_list=ACCEPTED, list_version=3)
    assert decide(ONLINE, RULES, known, NOW).verdict is Verdict.ASK_CSMS
    answered = replace(known, csms=IdTagInfo(AuthStatus.ACCEPTED, parent_id_tag="FLEET"))
    decision = decide(ONLINE, RULES, answered, NOW)
    assert decision.accepted and decision.source is Source.CSMS
    assert decision.parent_id_tag == "FLEET"


def test_online_local_pre_authorize_starts_from_the_list_without_asking() -> None:
    rules = replace(RULES, local_pre_authorize=True)
    decision = decide(ONLINE, rules, Known(local_list=ACCEPTED, list_version=7), NOW)
    assert decision.accepted and decision.source is Source.LOCAL_LIST
    assert decision.reason == "accepted by the local list (version 7)"


def test_online_local_pre_authorize_asks_when_the_list_entry_is_not_valid() -> None:
    rules = replace(RULES, local_pre_authorize=True)
    known = Known(local_list=BLOCKED)
    assert decide(ONLINE, rules, known, NOW).verdict is Verdict.ASK_CSMS  # C14.FR.03
    expired = Known(local_list=IdTagInfo(AuthStatus.ACCEPTED, expiry=EARLIER))
    assert decide(ONLINE, rules, expired, NOW).verdict is Verdict.ASK_CSMS


def test_online_local_pre_authorize_uses_the_cache() -> None:
    rules = replace(RULES, local_pre_authorize=True)
    decision = decide(ONLINE, rules, Known(cache=ACCEPTED), NOW)
    assert decision.accepted and decision.source is Source.CACHE
    stale = Known(cache=IdTagInfo(AuthStatus.ACCEPTED, expiry=EARLIER))
    assert decide(ONLINE, rules, stale, NOW).verdict is Verdict.ASK_CSMS


def test_the_csms_refusal_says_the_status() -> None:
    decision = decide(ONLINE, RULES, Known(csms=BLOCKED), NOW)
    assert decision.verdict is Verdict.REFUSED and decision.source is Source.CSMS
    assert decision.reason == "Blocked according to the CSMS"


def test_an_unreachable_csms_means_the_offline_rules() -> None:
    known = Known(cache=ACCEPTED, csms=CsmsAnswer.UNREACHABLE)
    decision = decide(ONLINE, RULES, known, NOW)
    assert decision.accepted and decision.source is Source.CACHE and decision.offline is False
    unknown = decide(ONLINE, RULES, Known(csms=CsmsAnswer.UNREACHABLE), NOW)
    assert not unknown.accepted and unknown.offline


def test_offline_list_hit_is_accepted_with_local_authorize_offline() -> None:
    decision = decide(OFFLINE, RULES, Known(local_list=ACCEPTED, list_version=2), NOW)
    assert decision.accepted and decision.source is Source.LOCAL_LIST


@pytest.mark.parametrize("status", ["Blocked", "Expired", "Invalid"])
def test_offline_a_listed_card_that_is_not_accepted_is_refused_even_for_unknown_ids(
    status: str,
) -> None:
    rules = replace(RULES, allow_offline_unknown=True)
    decision = decide(OFFLINE, rules, Known(local_list=IdTagInfo(AuthStatus(status))), NOW)
    assert decision.verdict is Verdict.REFUSED
    assert decision.reason == f"{status.lower()} in local list"


def test_offline_an_expired_list_entry_is_refused() -> None:
    known = Known(local_list=IdTagInfo(AuthStatus.ACCEPTED, expiry=EARLIER))
    decision = decide(OFFLINE, replace(RULES, allow_offline_unknown=True), known, NOW)
    assert not decision.accepted and decision.reason == "expired in local list"


def test_the_local_list_takes_precedence_over_the_cache() -> None:
    decision = decide(OFFLINE, RULES, Known(local_list=BLOCKED, cache=ACCEPTED), NOW)
    assert not decision.accepted and decision.source is Source.LOCAL_LIST


def test_a_disabled_local_list_is_not_looked_at() -> None:
    rules = replace(RULES, local_list_enabled=False)
    decision = decide(OFFLINE, rules, Known(local_list=BLOCKED, cache=ACCEPTED), NOW)
    assert decision.accepted and decision.source is Source.CACHE


def test_offline_cache_hit_and_cache_hit_after_expiry() -> None:
    hit = decide(OFFLINE, RULES, Known(cache=IdTagInfo(AuthStatus.ACCEPTED, expiry=LATER)), NOW)
    assert hit.accepted and hit.source is Source.CACHE
    rules = replace(RULES, allow_offline_unknown=True)
    known = Known(cache=IdTagInfo(AuthStatus.ACCEPTED, expiry=EARLIER))
    expired = decide(OFFLINE, rules, known, NOW)
    assert not expired.accepted  # apparently expired ids are rejected (1.6 3.5.3)
    assert expired.reason == "expired in the authorization cache"
    assert expired.info is not None and expired.info.status is AuthStatus.EXPIRED


def test_a_disabled_cache_is_not_looked_at() -> None:
    rules = replace(RULES, cache_enabled=False)
    decision = decide(OFFLINE, rules, Known(cache=ACCEPTED), NOW)
    assert not decision.accepted
    assert decision.reason == "not in local list and offline unknown ids not allowed"


def test_offline_unknown_with_and_without_allow_offline_tx_for_unknown_id() -> None:
    refused = decide(OFFLINE, RULES, Known(), NOW)
    assert refused.verdict is Verdict.REFUSED and refused.offline
    assert refused.reason == "not in local list and offline unknown ids not allowed"
    allowed = decide(OFFLINE, replace(RULES, allow_offline_unknown=True), Known(), NOW)
    assert allowed.accepted and allowed.source is Source.OFFLINE_UNKNOWN and allowed.offline


def test_offline_without_local_authorize_offline_a_known_card_counts_as_unknown() -> None:
    rules = replace(RULES, local_authorize_offline=False)
    refused = decide(OFFLINE, rules, Known(local_list=ACCEPTED), NOW)
    assert not refused.accepted
    assert refused.reason == "offline and LocalAuthorizeOffline is false"
    rules = replace(rules, allow_offline_unknown=True)
    allowed = decide(OFFLINE, rules, Known(cache=ACCEPTED), NOW)
    assert allowed.accepted and allowed.source is Source.OFFLINE_UNKNOWN


def test_remote_start_is_authorized_only_with_authorize_remote_tx_requests() -> None:
    remote = replace(ONLINE, remote=True)
    decision = decide(remote, RULES, Known(csms=BLOCKED), NOW)
    assert decision.accepted and decision.source is Source.REMOTE
    rules = replace(RULES, authorize_remote=True)
    assert decide(remote, rules, Known(), NOW).verdict is Verdict.ASK_CSMS
    assert not decide(remote, rules, Known(csms=BLOCKED), NOW).accepted


def test_no_authorization_tokens_need_none() -> None:
    token = replace(ONLINE, token_type="NoAuthorization")
    decision = decide(token, RULES, Known(), NOW)
    assert decision.accepted and decision.source is Source.NO_AUTHORIZATION


def test_the_session_card_stops_without_authorization_case_insensitively() -> None:
    stop = Presentation("card-1", online=False, stopping=SessionOwner("CARD-1", None))
    decision = decide(stop, RULES, Known(), NOW)
    assert decision.accepted and decision.source is Source.SESSION_CARD


def test_another_card_stops_only_with_the_sessions_group() -> None:
    owner = SessionOwner("ALICE", "FLEET-7")
    stop = Presentation("BOB", online=True, stopping=owner)
    assert decide(stop, RULES, Known(), NOW).verdict is Verdict.ASK_CSMS
    same = decide(stop, RULES, Known(csms=IdTagInfo(AuthStatus.ACCEPTED, None, "fleet-7")), NOW)
    assert same.accepted and "same group" in same.reason
    other = decide(stop, RULES, Known(csms=IdTagInfo(AuthStatus.ACCEPTED, None, "OTHER")), NOW)
    assert not other.accepted and "may not stop this session" in other.reason
    blocked = decide(stop, RULES, Known(csms=IdTagInfo(AuthStatus.BLOCKED, None, "FLEET-7")), NOW)
    assert not blocked.accepted
    offline = decide(replace(stop, online=False), RULES, Known(local_list=ACCEPTED), NOW)
    assert not offline.accepted  # no group known: not of the session's group


EXPIRY = NOW + timedelta(hours=4, minutes=30)


def test_a_reserved_connector_refuses_other_cards_and_says_until_when() -> None:
    facts = ReservationFacts(here=Hold(5, "ALICE", None, EXPIRY))
    decision = decide(OFFLINE, RULES, Known(local_list=ACCEPTED), NOW, facts)
    assert decision.verdict is Verdict.REFUSED and decision.source is Source.RESERVATION
    assert decision.reason == f"reserved for another card until {clock_text(EXPIRY)}"


def test_the_reserved_card_or_its_group_uses_the_reservation() -> None:
    facts = ReservationFacts(here=Hold(5, "ALICE", "FLEET", EXPIRY))
    alice = decide(replace(OFFLINE, id_tag="alice"), RULES, Known(local_list=ACCEPTED), NOW, facts)
    assert alice.accepted and alice.reservation_id == 5
    member = IdTagInfo(AuthStatus.ACCEPTED, parent_id_tag="FLEET")
    bob = decide(replace(OFFLINE, id_tag="BOB"), RULES, Known(local_list=member), NOW, facts)
    assert bob.accepted and bob.reservation_id == 5
    # the reservation's card refused by the authorization stays refused
    blocked = decide(replace(OFFLINE, id_tag="ALICE"), RULES, Known(local_list=BLOCKED), NOW, facts)
    assert not blocked.accepted and blocked.source is Source.LOCAL_LIST


def test_reservations_for_any_connector_keep_enough_connectors_free() -> None:
    holds = (Hold(1, "ALICE", None, EXPIRY), Hold(2, "CAROL", None, EXPIRY))
    known = Known(local_list=ACCEPTED)
    spare = ReservationFacts(unspecified=holds, free_connectors=3)
    assert decide(OFFLINE, RULES, known, NOW, spare).accepted
    needed = ReservationFacts(unspecified=holds, free_connectors=2)
    refused = decide(OFFLINE, RULES, known, NOW, needed)
    assert not refused.accepted and refused.reason.startswith("the free connectors are reserved")
    carol = decide(replace(OFFLINE, id_tag="CAROL"), RULES, known, NOW, needed)
    assert carol.accepted and carol.reservation_id == 2
