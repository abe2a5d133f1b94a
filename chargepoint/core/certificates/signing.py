"""Getting the station certificate signed: key pair, CSR, SignCertificate, CertificateSigned.

States: IDLE -> (request) -> WAITING -> (valid CertificateSigned) -> IDLE.

A round starts on the CSMS's request (1.6 ExtendedTriggerMessage SignChargePointCertificate,
2.0.1 TriggerMessage SignChargingStationCertificate) or by itself `renew_before` ahead of the
station certificate's expiry. It makes a new key pair (kept, mode 0600, as the pending key),
sends SignCertificate with a CSR (O = organization, CN = station identity) and waits
`wait_minimum` seconds (CertSigningWaitMinimum) for CertificateSigned; without it the CSR is
sent again, the wait doubled each time, `repeat_times` times (CertSigningRepeatTimes). A
SignCertificate the CSMS answers Rejected ends the round. A CertificateSigned whose chain does
not fit (wrong key, no path to the CSMS root, expired, another CN) is Rejected, logged as the
security event InvalidChargingStationCertificate, and the certificate in use stays; a valid one
replaces it from the next connection on (ReconfigurationOfSecurityParameters).

The adapter sets `send_csr`: it sends SignCertificate and returns True when Accepted, False
when Rejected, and raises when it got no answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509

from chargepoint.core.certificates.keys import KeyType, build_csr
from chargepoint.core.certificates.parsing import utc_now
from chargepoint.core.certificates.store import (
    CertificateStore,
    InstallOutcome,
    InstallStatus,
)
from chargepoint.core.security_events import SecurityEvents, SecurityEventType
from chargepoint.core.tasks import cancel_and_wait

log = logging.getLogger("chargepoint.certificates")

RENEWAL_CHECK_S: Final = 3600.0  # how often the expiry of the station certificate is looked at
RENEWAL_RETRY_S: Final = 86400.0  # after a renewal round without a certificate


class SigningState(enum.StrEnum):
    IDLE = "Idle"
    WAITING = "WaitingForCertificate"


@dataclass(frozen=True)
class SigningParameters:
    key_type: KeyType = KeyType.EC_P256
    wait_minimum_s: float = 60.0  # CertSigningWaitMinimum
    repeat_times: int = 3  # CertSigningRepeatTimes
    renew_before: dt.timedelta = dt.timedelta(days=30)


SendCsr = Callable[[str], Awaitable[bool]]


class CertificateSigning:
    """One station's certificate signing (see the module docstring)."""

    def __init__(
        self,
        store: CertificateStore,
        events: SecurityEvents,
        identity: str,
        organization: Callable[[], str],
        parameters: Callable[[], SigningParameters],
        extra_roots: Callable[[], Sequence[x509.Certificate]] = lambda: (),
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.store = store
        self.events = events
        self.identity = identity
        self.organization = organization
        self.parameters = parameters
        self.extra_roots = extra_roots
        self.send_csr: SendCsr | None = None
        self.state = SigningState.IDLE
        self.last_csr: str | None = None
        self._clock = clock
        self._round: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._signed = asyncio.Event()

    # ---- starting a round --------------------------------------------------------------

    def request(self, why: str) -> bool:
        """Start a signing round unless one is running; False when one already was."""
        if self._round is not None and not self._round.done():
            log.info("certificate signing requested (%s): a request is already open", why)
            return False
        log.info("certificate signing requested (%s)", why)
        self._signed = asyncio.Event()
        self.state = SigningState.WAITING
        self._round = asyncio.get_running_loop().create_task(
            self._run_round(), name="certificate signing"
        )
        return True

    async def _run_round(self) -> None:
        try:
            await self._attempts()
        finally:
            self.state = SigningState.IDLE

    async def _attempts(self) -> None:
        params = self.parameters()
        key = await asyncio.to_thread(self.store.new_pending_key, params.key_type)
        csr = await asyncio.to_thread(build_csr, key, self.identity, self.organization())
        self.last_csr = csr
        wait = max(params.wait_minimum_s, 0.01)
        for attempt in range(params.repeat_times + 1):
            if attempt:
                log.warning(
                    "no CertificateSigned within %.0f s; sending the CSR again (%d of %d)",
                    wait / 2,
                    attempt,
                    params.repeat_times,
                )
            accepted = await self._send(csr)
            if accepted is False:
                log.warning("the CSMS rejected the certificate signing request")
                return
            try:
                await asyncio.wait_for(self._signed.wait(), wait)
            except TimeoutError:
                wait *= 2
                continue
            return
        log.error(
            "no station certificate after %d signing requests; the certificate in use stays",
            params.repeat_times + 1,
        )

    async def _send(self, csr: str) -> bool | None:
        """True/False: the CSMS's answer; None: no answer (retried like a missing certificate)."""
        send = self.send_csr
        if send is None:
            log.warning("certificate signing request not sent: no CSMS connection")
            return None
        try:
            return await send(csr)
        except Exception as exc:
            log.warning("SignCertificate not delivered: %s: %s", type(exc).__name__, exc)
            return None

    # ---- the certificate ---------------------------------------------------------------

    async def certificate_signed(self, chain_pem: str) -> InstallOutcome:
        """CertificateSigned: install the chain as the station certificate when it fits the
        open request, else Rejected (security event InvalidChargingStationCertificate)."""
        outcome = await asyncio.to_thread(
            self.store.install_station_certificate,
            chain_pem,
            self.identity,
            list(self.extra_roots()),
        )
        if outcome.status is InstallStatus.ACCEPTED:
            self._signed.set()
            await self.events.record(
                SecurityEventType.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                "new station certificate installed; used from the next connection",
            )
        else:
            log.warning("CertificateSigned refused: %s", outcome.reason)
            await self.events.record(
                SecurityEventType.INVALID_CHARGING_STATION_CERTIFICATE, outcome.reason
            )
        return outcome

    async def wait_idle(self) -> None:
        """Until the running round (if any) ended."""
        if self._round is not None:
            await asyncio.wait([self._round])

    # ---- renewal -------------------------------------------------------------------------

    def start(self, check_every_s: float = RENEWAL_CHECK_S) -> None:
        """Delete the temporary files a power loss left in the certificate store, then watch
        the station certificate's expiry and renew it in time."""
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(
                self._renewals(check_every_s), name="certificate renewal"
            )

    def renewal_due(self) -> bool:
        """The station certificate has less than `renew_before` left, or less than a quarter
        of its lifetime (a CA that issues certificates shorter than `renew_before` would
        otherwise be asked again at once)."""
        station = self.store.station_certificate()
        if station is None:
            return False
        cert = station.certificate
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        threshold = min(self.parameters().renew_before, lifetime / 4)
        return station.not_after - self._clock() <= threshold

    async def _renewals(self, check_every_s: float) -> None:
        # at start: the temporary files a power loss cut off (a key among them) go; only a
        # dead process's, so a round that already writes here is safe
        try:
            await asyncio.to_thread(self.store.remove_stale_temp_files)
        except OSError as exc:
            log.error("temporary certificate files not cleaned up: %s", exc)
        while True:
            due = await asyncio.to_thread(self.renewal_due)
            if due and self.request("the station certificate expires soon"):
                await self.wait_idle()
                if await asyncio.to_thread(self.renewal_due):
                    await asyncio.sleep(RENEWAL_RETRY_S)
                    continue
            await asyncio.sleep(check_every_s)

    async def stop(self) -> None:
        tasks = [t for t in (self._round, self._watch) if t is not None]
        await cancel_and_wait(tasks)
        self._round = self._watch = None
        self.state = SigningState.IDLE
