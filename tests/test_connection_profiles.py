"""The connection profiles of the core: which URL, security profile, password and TLS material
the next attempt uses, profiles raised only when their certificates are there, trials given up
after their attempts (never a station locked out), no way back below a profile that worked."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest

from chargepoint.config import CsmsConfig, SecretRef
from chargepoint.core.certificates import CertificateStore, CertificateType, build_csr
from chargepoint.core.connection_profiles import (
    BASE_SLOT,
    ConnectionProfiles,
    NetworkProfile,
    url_for_profile,
)
from chargepoint.core.csms_password import PasswordFile
from chargepoint.core.security_events import SecurityEvents
from tests.pki import make_ca, pem

PASSWORD = "0123456789abcdef-secret"


class Settings:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get_setting(self, key: str) -> str | None:
        return self.values.get(key)

    async def set_setting(self, key: str, value: str) -> None:
        self.values[key] = value


class Outbox:
    async def enqueue(
        self, kind: str, data: dict[str, object], local_tx_id: int | None = None
    ) -> int:
        return 1


class Rig:
    def __init__(self, tmp: Path, csms: CsmsConfig) -> None:
        self.tmp = tmp
        self.csms = csms
        self.settings = Settings()
        self.certificates = CertificateStore(tmp / "certificates")
        self.events = SecurityEvents(tmp, Outbox())
        self.profiles = self.make()

    def make(self) -> ConnectionProfiles:
        return ConnectionProfiles(
            lambda: self.csms,
            self.certificates,
            PasswordFile(self.tmp),
            self.settings,
            self.events,
            attempts=2,
        )

    def station_certificate(self) -> None:
        ca = make_ca("csms root")
        self.certificates.install_root(CertificateType.CSMS_ROOT, ca.pem)
        key = self.certificates.new_pending_key()
        cert = ca.sign_csr(build_csr(key, "CP-1", None))
        assert self.certificates.install_station_certificate(pem(cert), "CP-1").accepted


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(
        tmp_path,
        CsmsConfig(
            url="ws://csms.example:9000/ocpp",
            security_profile=1,
            password=SecretRef(value=PASSWORD),
        ),
    )


def test_url_scheme_follows_the_profile() -> None:
    assert url_for_profile("ws://h:1/ocpp", 3) == "wss://h:1/ocpp"
    assert url_for_profile("wss://h:1/a/b", 1) == "ws://h:1/a/b"


async def test_the_configured_connection_when_nothing_was_changed(rig: Rig) -> None:
    attempt = rig.profiles.next_attempt()
    assert attempt.slot == BASE_SLOT and attempt.csms is rig.csms and not attempt.trial
    assert attempt.tls.ca_pem is None and attempt.tls.credentials_file is None


async def test_profile_3_needs_its_certificates_and_is_never_lowered(rig: Rig) -> None:
    profiles = rig.profiles
    problem = profiles.profile_change_problem(3)
    assert problem is not None and "CSMS root" in problem and "station certificate" in problem
    assert "cannot be lowered" in (profiles.profile_change_problem(0) or "")
    assert profiles.profile_change_problem(1) is None  # the same: nothing to do
    rig.station_certificate()
    assert profiles.profile_change_problem(3) is None
    assert await profiles.raise_profile(3)
    assert profiles.take_reconnect() and not profiles.take_reconnect()
    attempt = profiles.next_attempt()
    assert attempt.trial and attempt.csms.url == "wss://csms.example:9000/ocpp"
    assert attempt.security_profile == 3
    assert attempt.tls.ca_pem and attempt.tls.credentials_file is not None
    ctx = ssl.create_default_context(cadata=attempt.tls.ca_pem)
    ctx.load_cert_chain(attempt.tls.credentials_file)
    await profiles.connected(attempt)
    assert profiles.profile() == 3
    # once 3 worked, 2 is a downgrade; and the state survives a restart
    assert "cannot be lowered" in (profiles.profile_change_problem(2) or "")
    again = rig.make()
    await again.load()
    assert again.next_attempt().security_profile == 3 and not again.next_attempt().trial
    logged = [(e.event_type, e.tech_info) for e in rig.events.entries()]
    assert logged[-1] == (
        "ReconfigurationOfSecurityParameters",
        "connected with security profile 3 (was 1)",
    )


async def test_a_trial_that_does_not_connect_is_given_up(rig: Rig) -> None:
    rig.station_certificate()
    profiles = rig.profiles
    await profiles.raise_profile(3)
    first = profiles.next_attempt()
    await profiles.failed(first, ConnectionError("refused"))
    assert profiles.next_attempt().security_profile == 3  # one more attempt
    # a restart in between keeps the count
    profiles = rig.make()
    await profiles.load()
    await profiles.failed(profiles.next_attempt(), ConnectionError("refused"))
    back = profiles.next_attempt()
    assert back.security_profile == 1 and back.csms.url.startswith("ws://") and not back.trial
    assert profiles.profile() == 1
    # an outage of the configured connection is no trial: it is never given up
    for _ in range(5):
        await profiles.failed(back, ConnectionError("refused"))
    assert profiles.next_attempt().csms is rig.csms


async def test_a_new_password_is_kept_0600_and_reverted_when_it_does_not_work(rig: Rig) -> None:
    profiles = rig.profiles
    assert await profiles.set_password("short") is not None
    assert await profiles.set_password("has space in it 123") is not None
    assert await profiles.set_password("fedcba9876543210-renewed") is None
    reverted: list[str | None] = []
    profiles.on_password_reverted = reverted.append
    secret = rig.tmp / "secrets" / "csms-password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    attempt = profiles.next_attempt()
    assert attempt.password_trial and attempt.csms.password is not None
    assert attempt.csms.password.resolve() == "fedcba9876543210-renewed"
    # an outage is not the password's fault: the CSMS may have switched to it already
    for _ in range(5):
        await profiles.failed(attempt, ConnectionError("unreachable"))
    assert profiles.next_attempt().password_trial and reverted == []
    for _ in range(2):
        await profiles.failed(attempt, ConnectionError("HTTP 401"), credentials_refused=True)
    back = profiles.next_attempt()
    assert back.csms.password is not None and back.csms.password.resolve() == PASSWORD
    assert not secret.exists()
    assert reverted == [None]  # none was set through OCPP before: the YAML's again
    # a password that works stays, without the previous one
    await profiles.set_password("fedcba9876543210-renewed")
    await profiles.connected(profiles.next_attempt())
    assert secret.read_text() == "fedcba9876543210-renewed"
    assert not (rig.tmp / "secrets" / "csms-password.previous").exists()


async def test_a_new_password_is_tried_on_the_network_profile_slot_in_use(rig: Rig) -> None:
    """2.0.1: BasicAuthPassword applies to every slot. Set while the station is connected
    through slot 2, it is tried there, kept once it worked there, and given up for the
    previous one when slot 2's CSMS refuses it (the station stays on slot 2)."""
    profiles = rig.profiles
    await profiles.connected(profiles.next_attempt())
    await profiles.set_network_profile(2, NetworkProfile("ws://other.example/ocpp", 1))
    profiles.priority = lambda: [2, 1]
    on_two = profiles.next_attempt()
    assert on_two.slot == 2 and on_two.slot_trial
    await profiles.connected(on_two)
    reverted: list[str | None] = []
    profiles.on_password_reverted = reverted.append
    renewed = "fedcba9876543210-renewed"
    await profiles.try_password(renewed)
    attempt = profiles.next_attempt()
    assert attempt.slot == 2 and attempt.password_trial and not attempt.slot_trial
    assert attempt.csms.password is not None and attempt.csms.password.resolve() == renewed
    for _ in range(2):
        await profiles.failed(attempt, ConnectionError("HTTP 401"), credentials_refused=True)
    back = profiles.next_attempt()
    assert back.slot == 2 and not back.trial
    assert back.csms.password is not None and back.csms.password.resolve() == PASSWORD
    assert reverted == [None]
    # one that works on slot 2 stays, without the previous one
    await profiles.try_password(renewed)
    await profiles.connected(profiles.next_attempt())
    secrets = rig.tmp / "secrets"
    assert (secrets / "csms-password").read_text() == renewed
    assert not (secrets / "csms-password.previous").exists()
    assert not profiles.next_attempt().trial


async def test_an_outage_during_a_raised_profile_keeps_the_new_password_on_trial(
    rig: Rig,
) -> None:
    """1.6: AuthorizationKey, then SecurityProfile 2; the CSMS switches to the new key at
    once. The profile's attempts fail for want of the network: the profile is given up, the
    key stays on trial (at profile 1), and only the CSMS's refusals take it back."""
    profiles = rig.profiles
    await profiles.connected(profiles.next_attempt())
    reverted: list[str | None] = []
    profiles.on_password_reverted = reverted.append
    renewed = "fedcba9876543210-renewed"
    assert await profiles.set_password(renewed) is None
    rig.station_certificate()
    assert await profiles.raise_profile(2)
    attempt = profiles.next_attempt()
    assert attempt.security_profile == 2 and attempt.profile_trial and attempt.password_trial
    for _ in range(2):
        await profiles.failed(attempt, ConnectionError("unreachable"))
    back = profiles.next_attempt()
    assert back.security_profile == 1 and not back.profile_trial and back.password_trial
    assert back.csms.password is not None and back.csms.password.resolve() == renewed
    assert reverted == []
    for _ in range(2):
        await profiles.failed(back, ConnectionError("HTTP 401"), credentials_refused=True)
    assert reverted == [None] and not profiles.next_attempt().trial


async def test_refusals_on_a_slot_that_never_worked_do_not_take_back_a_password(
    rig: Rig,
) -> None:
    """2.0.1: a slot that never worked refuses the station (it does not know it): that
    slot is given up, the new password is not; it is then tried on the slot that works."""
    profiles = rig.profiles
    await profiles.connected(profiles.next_attempt())
    await profiles.set_network_profile(2, NetworkProfile("ws://other.example/ocpp", 1))
    profiles.priority = lambda: [2, 1]
    reverted: list[str | None] = []
    profiles.on_password_reverted = reverted.append
    await profiles.try_password("fedcba9876543210-renewed")
    attempt = profiles.next_attempt()
    assert attempt.slot == 2 and attempt.slot_trial and attempt.password_trial
    for _ in range(2):
        await profiles.failed(attempt, ConnectionError("HTTP 403"), credentials_refused=True)
    on_one = profiles.next_attempt()
    assert on_one.slot == BASE_SLOT and on_one.password_trial and reverted == []
    await profiles.connected(on_one)
    assert not (rig.tmp / "secrets" / "csms-password.previous").exists()


async def test_network_profiles_priority_and_fallback(rig: Rig) -> None:
    profiles = rig.profiles
    await profiles.connected(profiles.next_attempt())  # the configured one works
    tls = NetworkProfile("wss://other.example/ocpp", 3, 20)
    assert "in use" in (profiles.network_profile_problem(BASE_SLOT, tls) or "")
    assert "wss://" in (profiles.network_profile_problem(2, NetworkProfile("ws://x/ocpp", 3)) or "")
    assert profiles.network_profile_problem(2, tls) is None
    await profiles.set_network_profile(2, tls)
    assert "slot(s) 3" in (profiles.priority_problem([3, 1]) or "")
    missing = profiles.priority_problem([2, 1])
    assert missing is not None and "station certificate" in missing
    rig.station_certificate()
    assert profiles.priority_problem([2, 1]) is None
    profiles.priority = lambda: [2, 1]
    attempt = profiles.next_attempt()
    assert attempt.slot == 2 and attempt.trial and attempt.csms.call_timeout == 20.0
    for _ in range(2):
        await profiles.failed(attempt, ConnectionError("refused"))
    fallback = profiles.next_attempt()
    assert fallback.slot == BASE_SLOT and not fallback.trial
    # a restart tries the new slot again; when it works nothing below it is used any more
    profiles = rig.make()
    profiles.priority = lambda: [2, 1]
    await profiles.load()
    attempt = profiles.next_attempt()
    assert attempt.slot == 2
    await profiles.connected(attempt)
    for _ in range(5):
        await profiles.failed(profiles.next_attempt(), ConnectionError("refused"))
        assert profiles.next_attempt().slot == 2
    assert "below" in (profiles.network_profile_problem(3, NetworkProfile("ws://x/ocpp", 1)) or "")
    assert profiles.uses_last_csms_root()
