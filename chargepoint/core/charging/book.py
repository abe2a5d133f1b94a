"""The installed charging profiles and the specifications' rules for the set of them.

Replacement (OCPP 1.6 3.13.2, 2.0.1 K01.FR.05/06): a new profile replaces the installed
profile with the same id, and the one with the same purpose and stack level on the same
connector (for a TxProfile: of the same transaction; for an external constraint: from the
same source). A TxDefaultProfile on a connector shadows the one on connector 0 with the same
stack level for that connector only (1.6 3.13.1: "replaced only for that specific
connector"); both stay installed.

Clearing: by id, or by any combination of connector, purpose and stack level (all that match;
with no criterion at all, every profile the requester may clear).

Expiry: a profile whose validTo passed, an Absolute one whose schedule ended, a TxProfile
whose transaction is over: none can apply again, all are removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chargepoint.core.charging.profiles import ChargingProfile, Kind, LimitSource, Purpose
from chargepoint.core.charging.validation import ProfileRejected


@dataclass(frozen=True)
class ClearCriteria:
    """What ClearChargingProfile (or the charge controller) asks to remove. `sources`: whose
    profiles may go (the CSMS clears only its own)."""

    profile_id: int | None = None
    connector_id: int | None = None
    purpose: Purpose | None = None
    stack_level: int | None = None
    sources: frozenset[LimitSource] = frozenset({LimitSource.CSO})

    def matches(self, p: ChargingProfile) -> bool:
        if p.source not in self.sources:
            return False
        if self.profile_id is not None:
            return p.profile_id == self.profile_id
        return (
            (self.connector_id is None or p.connector_id == self.connector_id)
            and (self.purpose is None or p.purpose is self.purpose)
            and (self.stack_level is None or p.stack_level == self.stack_level)
        )


@dataclass(frozen=True)
class ConnectorProfiles:
    """The profiles that concern one connector, by the role they play in its composite."""

    tx: tuple[ChargingProfile, ...] = ()
    tx_default: tuple[ChargingProfile, ...] = ()
    external: tuple[ChargingProfile, ...] = ()  # this connector's external constraints
    station_max: tuple[ChargingProfile, ...] = ()
    station_external: tuple[ChargingProfile, ...] = ()  # external constraints on EVSE 0

    def all(self) -> tuple[ChargingProfile, ...]:
        return (
            *self.tx,
            *self.tx_default,
            *self.external,
            *self.station_max,
            *self.station_external,
        )


def _same_slot(new: ChargingProfile, old: ChargingProfile) -> bool:
    """Would `new` take the place of `old` (same purpose and stack level, same scope)?"""
    if new.purpose is not old.purpose or new.stack_level != old.stack_level:
        return False
    if new.connector_id != old.connector_id:
        return False
    if new.purpose is Purpose.TX:
        return new.transaction == old.transaction
    if new.purpose is Purpose.EXTERNAL:
        return new.source is old.source
    return True


class ProfileBook:
    """The installed profiles, keyed by (source, id)."""

    def __init__(self, profiles: Iterable[ChargingProfile] = ()) -> None:
        self._profiles: dict[tuple[str, int], ChargingProfile] = {p.key: p for p in profiles}

    def __len__(self) -> int:
        return len(self._profiles)

    def all(self) -> list[ChargingProfile]:
        return sorted(self._profiles.values(), key=lambda p: (p.connector_id, p.key))

    def get(self, key: tuple[str, int]) -> ChargingProfile | None:
        return self._profiles.get(key)

    def replaced_by(self, new: ChargingProfile) -> list[ChargingProfile]:
        """The installed profiles `new` replaces."""
        return [
            old for old in self._profiles.values() if old.key == new.key or _same_slot(new, old)
        ]

    def check_room(self, new: ChargingProfile, max_profiles: int) -> list[ChargingProfile]:
        """The profiles `new` replaces; ProfileRejected when the station would hold more
        than `max_profiles` (external constraints of the charge controller do not count)."""
        replaced = self.replaced_by(new)
        if new.source is not LimitSource.CSO:
            return replaced
        gone = {p.key for p in replaced}
        kept = sum(
            1 for p in self._profiles.values() if p.source is LimitSource.CSO and p.key not in gone
        )
        if kept + 1 > max_profiles:
            raise ProfileRejected(f"{max_profiles} charging profiles are installed already")
        return replaced

    def install(self, new: ChargingProfile, replaced: Iterable[ChargingProfile]) -> None:
        for old in replaced:
            self._profiles.pop(old.key, None)
        self._profiles[new.key] = new

    def remove(self, profiles: Iterable[ChargingProfile]) -> None:
        for p in profiles:
            self._profiles.pop(p.key, None)

    def matching(self, criteria: ClearCriteria) -> list[ChargingProfile]:
        return [p for p in self.all() if criteria.matches(p)]

    def for_connector(self, connector_id: int, transaction: int | None) -> ConnectorProfiles:
        """Those that concern `connector_id` with `transaction` open on it (or None)."""
        tx: list[ChargingProfile] = []
        own_default: list[ChargingProfile] = []
        station_default: list[ChargingProfile] = []
        external: list[ChargingProfile] = []
        station_max: list[ChargingProfile] = []
        station_external: list[ChargingProfile] = []
        for p in self._profiles.values():
            if p.purpose is Purpose.STATION_MAX:
                station_max.append(p)
            elif p.purpose is Purpose.EXTERNAL:
                if p.connector_id == 0:
                    station_external.append(p)
                elif p.connector_id == connector_id:
                    external.append(p)
            elif p.connector_id == connector_id and p.purpose is Purpose.TX:
                if transaction is not None and p.transaction == transaction:
                    tx.append(p)
            elif p.purpose is Purpose.TX_DEFAULT:
                if p.connector_id == connector_id:
                    own_default.append(p)
                elif p.connector_id == 0:
                    station_default.append(p)
        shadowed = {p.stack_level for p in own_default}
        defaults = own_default + [p for p in station_default if p.stack_level not in shadowed]
        return ConnectorProfiles(
            tx=tuple(tx),
            tx_default=tuple(defaults),
            external=tuple(external),
            station_max=tuple(station_max),
            station_external=tuple(station_external),
        )

    def station_profiles(self) -> ConnectorProfiles:
        """Those that limit the station as a whole (connector/EVSE 0's composite)."""
        return ConnectorProfiles(
            station_max=tuple(
                p for p in self._profiles.values() if p.purpose is Purpose.STATION_MAX
            ),
            station_external=tuple(
                p
                for p in self._profiles.values()
                if p.purpose is Purpose.EXTERNAL and p.connector_id == 0
            ),
        )

    def expired(
        self, now: datetime, open_transaction: Callable[[int], int | None]
    ) -> list[ChargingProfile]:
        """Profiles that can never apply again."""
        gone = []
        for p in self._profiles.values():
            if p.valid_to is not None and p.valid_to <= now:
                gone.append(p)
            elif p.purpose is Purpose.TX and p.transaction is not None:
                if open_transaction(p.connector_id) != p.transaction:
                    gone.append(p)
            elif (
                p.kind is Kind.ABSOLUTE
                and p.schedule.start is not None
                and p.schedule.duration is not None
                and p.schedule.start + timedelta(seconds=p.schedule.duration) <= now
            ):
                gone.append(p)
        return gone
