"""Which CSMS connection the next attempt uses, and how a change of it is tried without ever
locking the station out.

The connections:

- slot 1 (`BASE_SLOT`): the configured one, `base()` (the YAML's csms section; on OCPP 2.0.1
  with the device model's SecurityProfile and BasicAuthPassword applied). On OCPP 1.6 the CSMS
  may raise its security profile (`SecurityProfile` key; the URL scheme follows: ws:// for 0
  and 1, wss:// for 2 and 3, same host, port and path) and set its password
  (`AuthorizationKey`, kept in `csms_password.PasswordFile`; on 2.0.1 BasicAuthPassword is
  kept there too, through `try_password`);
- other slots (OCPP 2.0.1 SetNetworkProfile), tried in the order of `priority()`
  (NetworkConfigurationPriority).

Rules (OCPP 1.6 security whitepaper, 2.0.1 A05/B10):

- a security profile is only raised, never lowered, and only when what it needs is there: a
  password for 1 and 2, a CSMS root (installed, or the YAML's csms.ca_file) for 2 and 3, a
  station certificate (installed through CertificateSigned, or the YAML's client_cert/key) for
  3;
- a change is a trial until a connection with it opened: after `attempts` failed attempts it is
  given up (1.6: the previous profile comes back) or the next slot of the priority list is
  tried (2.0.1), so the station always falls back to a connection that worked;
- a new password (either version; on 2.0.1 on whichever slot is in use) only counts the
  CSMS's refusals of it (HTTP 401/403) on a slot that worked before, never an outage: the
  CSMS may have switched to it already;
- once a connection opened with a higher profile, no connection below it is used again.

State is kept in the store under `STATE_KEY` (JSON), the password in its own 0600 file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit, urlunsplit

from chargepoint.config import CsmsConfig, SecretRef
from chargepoint.core.certificates import CertificateStore, CertificateType, TlsMaterial
from chargepoint.core.csms_password import PasswordFile, password_problem
from chargepoint.core.security_events import SecurityEvents, SecurityEventType

log = logging.getLogger("chargepoint.security")

BASE_SLOT: Final = 1
STATE_KEY: Final = "security.connection"
DEFAULT_ATTEMPTS: Final = (
    3  # failed attempts before a trial is given up (NetworkProfileConnectionAttempts)
)


class SettingsStore(Protocol):
    async def get_setting(self, key: str) -> str | None: ...

    async def set_setting(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class NetworkProfile:
    """A connection the CSMS set in a configuration slot (2.0.1 NetworkConnectionProfile)."""

    url: str
    security_profile: int
    message_timeout: int | None = None

    def data(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "security_profile": self.security_profile,
            "message_timeout": self.message_timeout,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> NetworkProfile:
        timeout = data.get("message_timeout")
        return cls(
            str(data["url"]), int(data["security_profile"]), int(timeout) if timeout else None
        )


@dataclass(frozen=True)
class Attempt:
    """One connection attempt: what the websocket link uses."""

    slot: int
    csms: CsmsConfig
    tls: TlsMaterial
    profile_trial: bool = False  # slot 1 with a raised security profile not proven yet
    password_trial: bool = False  # a new Basic-auth password not proven yet
    slot_trial: bool = False  # a network profile slot that never worked, with others to try

    @property
    def trial(self) -> bool:
        """A change that has not worked yet."""
        return self.profile_trial or self.password_trial or self.slot_trial

    @property
    def security_profile(self) -> int:
        return self.csms.security_profile


@dataclass
class _State:
    profile: int | None = None  # 1.6: the security profile of slot 1 the CSMS set (proven)
    trial_profile: int | None = None  # 1.6: a raised profile not proven yet
    failures: int = 0  # failed attempts of the trial (or of the current slot)
    minimum: int = 0  # the lowest profile allowed: the highest that worked
    slots: dict[int, NetworkProfile] = field(default_factory=dict)
    connected_slot: int | None = None

    def data(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "trial_profile": self.trial_profile,
            "failures": self.failures,
            "minimum": self.minimum,
            "slots": {str(k): v.data() for k, v in self.slots.items()},
            "connected_slot": self.connected_slot,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> _State:
        return cls(
            data.get("profile"),
            data.get("trial_profile"),
            int(data.get("failures", 0)),
            int(data.get("minimum", 0)),
            {int(k): NetworkProfile.from_data(v) for k, v in data.get("slots", {}).items()},
            data.get("connected_slot"),
        )


def url_for_profile(url: str, profile: int) -> str:
    """`url` with the scheme security profile `profile` uses (ws:// for 0-1, wss:// for 2-3)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="wss" if profile >= 2 else "ws"))


class ConnectionProfiles:
    """See the module docstring. `on_committed(profile)` runs when a raised profile worked,
    `on_password_reverted(password)` when a new password was given up for the previous one
    (None: none set through OCPP)."""

    def __init__(
        self,
        base: Callable[[], CsmsConfig],
        certificates: CertificateStore,
        password: PasswordFile,
        store: SettingsStore,
        events: SecurityEvents,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        self.base = base
        self.certificates = certificates
        self.password = password
        self._store = store
        self._events = events
        self.attempts = attempts
        self.priority: Callable[[], list[int]] = lambda: [BASE_SLOT]
        self.on_committed: Callable[[int], Awaitable[None]] | None = None
        self.on_password_reverted: Callable[[str | None], None] | None = None
        self._state = _State()
        self._position = 0  # index into the candidates (2.0.1 priority order)
        self._reconnect = False  # a change that applies from the next connection
        # TLS refusals recorded since the last connection: one security event per kind and
        # slot while the station retries (not one per attempt through a long outage)
        self._refusals_recorded: set[tuple[int, SecurityEventType]] = set()

    async def load(self) -> None:
        text = await self._store.get_setting(STATE_KEY)
        if text:
            try:
                self._state = _State.from_data(json.loads(text))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("stored connection state unusable (%s); using the configured one", exc)

    async def _save(self) -> None:
        await self._store.set_setting(STATE_KEY, json.dumps(self._state.data()))

    # ---- what a security profile needs ---------------------------------------------------

    def missing_for(self, profile: int, csms: CsmsConfig, password: str | None) -> list[str]:
        """What security profile `profile` lacks (empty: nothing). Blocks on files."""
        missing = []
        if profile in (1, 2) and password is None and csms.password is None:
            missing.append(f"security profile {profile} needs a password")
        if profile in (2, 3):
            has_file = csms.ca_file is not None and csms.ca_file.is_file()
            if not has_file and not self.certificates.roots(CertificateType.CSMS_ROOT):
                missing.append(f"security profile {profile} needs a CSMS root certificate")
        if profile == 3 and self.certificates.station_certificate() is None:
            files = (csms.client_cert, csms.client_key)
            if not all(p is not None and p.is_file() for p in files):
                missing.append("security profile 3 needs a station certificate")
        return missing

    # ---- OCPP 1.6: SecurityProfile and AuthorizationKey ------------------------------------

    def profile(self) -> int:
        """The security profile of slot 1 in force (a trial counts once it worked)."""
        state = self._state
        return state.profile if state.profile is not None else self.base().security_profile

    def profile_change_problem(self, new: int) -> str | None:
        """Why slot 1 may not go to security profile `new` (None: it may). Blocks on files."""
        current = max(self.profile(), self._state.minimum)
        if new < current:
            return f"the station uses security profile {current}; it cannot be lowered"
        if new == current:
            return None
        missing = self.missing_for(new, self.base(), self.password.read())
        return "; ".join(missing) or None

    async def raise_profile(self, new: int) -> bool:
        """Try slot 1 with profile `new` from the next connection on; False when it is the
        profile in force already (nothing to do)."""
        if new == max(self.profile(), self._state.minimum) and self._state.trial_profile is None:
            return False
        self._state.trial_profile = new
        self._state.failures = 0
        self._reconnect = True
        await self._save()
        log.warning("security profile %d requested by the CSMS; trying it", new)
        return True

    async def set_password(self, value: str) -> str | None:
        """A new Basic-auth password (1.6 AuthorizationKey) from the next connection on; the
        reason when refused."""
        problem = password_problem(value)
        if problem is not None:
            return problem
        self._reconnect = True
        await self.try_password(value)
        return None

    async def try_password(self, value: str) -> None:
        """A new Basic-auth password, already checked against its version's rule (2.0.1
        BasicAuthPassword: the device model's): a trial from the next connection on (every
        slot with Basic auth), the previous password kept until a connection with the new one
        opened, and restored after `attempts` refusals of it (see `failed`). The change is a
        security event (2.0.1 A01.FR.11), without the value."""
        await asyncio.to_thread(self.password.replace, value)
        self._state.failures = 0
        await self._save()
        await self._events.record(
            SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
            "Basic-auth password changed by the CSMS; used from the next connection",
        )

    def take_reconnect(self) -> bool:
        """Whether a change asks for a new connection (once: it is then forgotten)."""
        wanted, self._reconnect = self._reconnect, False
        return wanted

    # ---- OCPP 2.0.1: network profiles ------------------------------------------------------

    def slot(self, slot: int) -> NetworkProfile | None:
        return self._state.slots.get(slot)

    def slots(self) -> list[int]:
        return sorted({BASE_SLOT, *self._state.slots})

    def network_profile_problem(self, slot: int, profile: NetworkProfile) -> str | None:
        """Why SetNetworkProfile may not store `profile` in `slot` (None: it may)."""
        if slot == self._state.connected_slot or (
            slot == BASE_SLOT and self._state.connected_slot is None
        ):
            return f"slot {slot} holds the connection in use"
        if profile.security_profile < self._state.minimum:
            return f"security profile {profile.security_profile} is below the one in use"
        scheme = urlsplit(profile.url).scheme
        wanted = "wss" if profile.security_profile >= 2 else "ws"
        if scheme != wanted:
            return f"security profile {profile.security_profile} needs a {wanted}:// URL"
        return None

    async def set_network_profile(self, slot: int, profile: NetworkProfile) -> None:
        self._state.slots[slot] = profile
        await self._save()
        log.info(
            "network profile slot %d set: %s, security profile %d",
            slot,
            profile.url,
            profile.security_profile,
        )

    def priority_problem(self, slots: list[int]) -> str | None:
        """Why NetworkConfigurationPriority may not be `slots` (None: it may)."""
        if not slots:
            return "no slot given"
        unknown = [s for s in slots if s != BASE_SLOT and s not in self._state.slots]
        if unknown:
            return f"no network profile in slot(s) {', '.join(map(str, unknown))}"
        first = slots[0]
        csms = self._slot_config(first)
        if csms.security_profile < self._state.minimum:
            return f"slot {first} uses a lower security profile than the one in use"
        missing = self.missing_for(csms.security_profile, csms, self._password_for(first))
        return "; ".join(missing) or None

    # ---- the connection loop -------------------------------------------------------------

    def _password_for(self, slot: int) -> str | None:
        return self.password.read() if slot == BASE_SLOT else None

    def _slot_config(self, slot: int) -> CsmsConfig:
        """The CsmsConfig of a slot (not validated as a YAML would be: the link checks)."""
        base = self.base()
        update: dict[str, Any] = {}
        network = self._state.slots.get(slot) if slot != BASE_SLOT else None
        if network is not None:
            update = {"url": network.url, "security_profile": network.security_profile}
            if network.message_timeout:
                update["call_timeout"] = float(network.message_timeout)
        else:
            profile = self._state.trial_profile or self._state.profile
            if profile is not None and profile != base.security_profile:
                update = {"url": url_for_profile(base.url, profile), "security_profile": profile}
        password = self.password.read()  # the password set through OCPP: every slot's
        if password is not None:
            update["password"] = SecretRef(value=password)
        return base.model_copy(update=update) if update else base

    def _candidates(self) -> list[int]:
        slots = [s for s in dict.fromkeys(self.priority()) if s in self.slots()] or [BASE_SLOT]
        allowed = [s for s in slots if self._slot_config(s).security_profile >= self._state.minimum]
        return allowed or slots  # never none: a station that cannot connect is lost

    def next_attempt(self) -> Attempt:
        """The connection to try now. Blocks on files (certificates)."""
        candidates = self._candidates()
        slot = candidates[self._position % len(candidates)]
        csms = self._slot_config(slot)
        profile = csms.security_profile
        tls = self.certificates.tls_material(profile == 3) if profile >= 2 else TlsMaterial()
        return Attempt(
            slot,
            csms,
            tls,
            profile_trial=slot == BASE_SLOT and self._state.trial_profile is not None,
            # the password applies to every slot that uses Basic auth (2.0.1)
            password_trial=csms.security_profile in (1, 2) and self.password.trial,
            # a slot that never worked is given up after its attempts when there is another
            slot_trial=slot != self._state.connected_slot and len(candidates) > 1,
        )

    async def failed(
        self, attempt: Attempt, error: BaseException, *, credentials_refused: bool = False
    ) -> None:
        """A connection attempt failed (`error`: what open_link raised; `credentials_refused`:
        the CSMS answered the handshake with 401/403).

        What a failure counts against: a raised profile on slot 1, any failure (a new
        password tried with it goes too when the CSMS refused the credentials, else it stays
        on trial); a new password, only refusals of the credentials on a slot that worked
        before, so that an outage right after a change never takes back a password the CSMS
        already switched to (2.0.1 A01.FR.03); a slot that never worked, any failure."""
        refusal = tls_refusal(error)
        if refusal is not None and (attempt.slot, refusal) not in self._refusals_recorded:
            self._refusals_recorded.add((attempt.slot, refusal))
            await self._events.record(refusal, f"slot {attempt.slot}: {error}")
        # a slot that never worked cannot tell a wrong slot from a wrong password: its
        # failures move on to a proven slot, where refusals count against the password
        password_at_fault = (
            attempt.password_trial and credentials_refused and not attempt.slot_trial
        )
        if not (attempt.profile_trial or password_at_fault or attempt.slot_trial):
            return
        self._state.failures += 1
        if self._state.failures < self.attempts:
            await self._save()
            return
        self._state.failures = 0
        if attempt.profile_trial or password_at_fault:
            log.error(
                "%s did not connect %d times; back to the previous connection settings",
                f"security profile {attempt.security_profile}"
                if attempt.profile_trial
                else "the new password",
                self.attempts,
            )
            self._state.trial_profile = None
            if password_at_fault:  # else it stays on trial with the previous profile
                await self._revert_password()
        else:
            log.error(
                "network profile slot %d did not connect %d times; trying the next one",
                attempt.slot,
                self.attempts,
            )
            self._position += 1
        await self._save()

    async def _revert_password(self) -> None:
        await asyncio.to_thread(self.password.revert)
        if self.on_password_reverted is not None:
            self.on_password_reverted(await asyncio.to_thread(self.password.read))

    async def connected(self, attempt: Attempt) -> None:
        """A connection with `attempt` opened: a trial becomes the connection in force."""
        state = self._state
        self._refusals_recorded.clear()
        before = max(state.minimum, self._committed_profile())
        if attempt.slot == BASE_SLOT and state.trial_profile is not None:
            state.profile = state.trial_profile
            state.trial_profile = None
        if attempt.password_trial:  # the CSMS took the new password, on whichever slot
            await asyncio.to_thread(self.password.confirm)
        state.connected_slot = attempt.slot
        state.failures = 0
        state.minimum = max(state.minimum, attempt.security_profile)
        if attempt.trial:
            await self._save()
        if attempt.security_profile > before:
            await self._events.record(
                SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                f"connected with security profile {attempt.security_profile} (was {before})",
            )
            if self.on_committed is not None:
                await self.on_committed(attempt.security_profile)

    def _committed_profile(self) -> int:
        state = self._state
        if state.connected_slot is not None and state.connected_slot in state.slots:
            return state.slots[state.connected_slot].security_profile
        return state.profile if state.profile is not None else self.base().security_profile

    def uses_last_csms_root(self) -> bool:
        """Whether the connection depends on the installed CSMS roots (TLS without a
        configured csms.ca_file): the last one must not be deleted."""
        csms = self._slot_config(self._state.connected_slot or BASE_SLOT)
        return csms.security_profile >= 2 and csms.ca_file is None


_TLS_VERSION_REASONS: Final = (
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "WRONG_SSL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "VERSION_TOO_LOW",
)


def is_tls_version_refusal(error: ssl.SSLError) -> bool:
    """The handshake failed because the server offers no TLS version the station accepts."""
    text = f"{error.reason or ''} {error}".upper()
    return any(reason in text for reason in _TLS_VERSION_REASONS)


def tls_refusal(error: BaseException) -> SecurityEventType | None:
    """The security event of a connection attempt the station refused at the TLS handshake
    (`error` or what caused it): the server's certificate or host name did not verify
    (InvalidCsmsCertificate) or it offered only TLS below 1.2 (InvalidTLSVersion)."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return SecurityEventType.INVALID_CSMS_CERTIFICATE
        if isinstance(seen, ssl.SSLError) and is_tls_version_refusal(seen):
            return SecurityEventType.INVALID_TLS_VERSION
        seen = seen.__cause__ or seen.__context__
    return None
