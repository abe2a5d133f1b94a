"""The station's security, version-free: certificate store, security events, certificate
signing and the CSMS connection profiles, built once per daemon and shared by the OCPP adapter
(`adapter.security`) and whoever else needs them (signed firmware: `certificates.verify_chain`,
`events.record`).

- `certificates`: chargepoint.core.certificates.CertificateStore under
  `<state_dir>/certificates/`;
- `events`: chargepoint.core.security_events.SecurityEvents (`<state_dir>/security.log`, critical
  events through the outbox);
- `signing`: chargepoint.core.certificates.CertificateSigning (the adapter sets `send_csr`,
  `organization` and `parameters`);
- `connection`: chargepoint.core.connection_profiles.ConnectionProfiles (the adapter sets
  `base` and, on 2.0.1, `priority`).

`load()` reads the stored connection state; `start()` records StartupOfTheDevice and starts the
renewal watch; `stop()` ends every task.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Final

from cryptography import x509

from chargepoint.config import StationConfig
from chargepoint.core.certificates import (
    CertificateSigning,
    CertificateStore,
    KeyType,
    SigningParameters,
)
from chargepoint.core.certificates.parsing import CertificateRejected, parse_pem_chain
from chargepoint.core.connection_profiles import ConnectionProfiles
from chargepoint.core.csms_password import PasswordFile
from chargepoint.core.security_events import SecurityEvents, SecurityEventType
from chargepoint.core.status import ConnectorStatus, StatusReport
from chargepoint.store import AsyncStore

log = logging.getLogger("chargepoint.security")

CERTIFICATES_DIR: Final = "certificates"
# meter faults that mean the meter was swapped or tampered with (meter.errors names)
TAMPER_FAULTS: Final = frozenset({"PublicKeyMismatch", "MeterSerialChanged", "MeterEventsSet"})


class StationSecurity:
    def __init__(self, config: StationConfig, store: AsyncStore) -> None:
        state_dir = Path(config.store.state_dir)
        self.config = config
        self.certificates = CertificateStore(
            state_dir / CERTIFICATES_DIR, max_roots=config.security.max_root_certificates
        )
        self.events = SecurityEvents(state_dir, store)
        self.signing = CertificateSigning(
            self.certificates,
            self.events,
            config.station.id,
            organization=lambda: config.station.vendor,
            parameters=self._signing_parameters,
            extra_roots=self.configured_csms_roots,
        )
        self.connection = ConnectionProfiles(
            lambda: config.csms,
            self.certificates,
            PasswordFile(state_dir),
            store,
            self.events,
            attempts=config.security.connection_attempts,
        )
        self._tampered: set[int] = set()

    def _signing_parameters(self) -> SigningParameters:
        """The defaults of the YAML's security section; the adapter replaces this with its
        version's CertSigningWaitMinimum / CertSigningRepeatTimes."""
        return self.signing_defaults()

    def signing_defaults(
        self, wait_minimum_s: float | None = None, repeat_times: int | None = None
    ) -> SigningParameters:
        sec = self.config.security
        return SigningParameters(
            key_type=KeyType(sec.key_type),
            wait_minimum_s=float(
                sec.cert_signing_wait_minimum if wait_minimum_s is None else wait_minimum_s
            ),
            repeat_times=sec.cert_signing_repeat_times if repeat_times is None else repeat_times,
            renew_before=dt.timedelta(days=sec.renew_before_days),
        )

    def configured_csms_roots(self) -> list[x509.Certificate]:
        """The CAs of the YAML's csms.ca_file (trusted for the CSMS like installed roots)."""
        path = self.config.csms.ca_file
        if path is None:
            return []
        try:
            return list(parse_pem_chain(path.read_text(encoding="ascii")))
        except (OSError, UnicodeDecodeError, CertificateRejected) as exc:
            log.warning("csms.ca_file %s not usable as a CSMS root: %s", path, exc)
            return []

    async def load(self) -> None:
        """Read the stored connection state (before the device model and adapter use it)."""
        await self.connection.load()

    async def start(self) -> None:
        await self.events.record(SecurityEventType.STARTUP_OF_THE_DEVICE)
        self.signing.start()

    async def stop(self) -> None:
        await self.signing.stop()
        await self.events.close()

    def on_status(self, report: StatusReport) -> None:
        """A connector status change: a meter swapped or tampered with is TamperDetectionActivated
        (once per fault)."""
        cid = report.connector_id
        if report.status is ConnectorStatus.FAULTED and report.info in TAMPER_FAULTS:
            if cid not in self._tampered:
                self._tampered.add(cid)
                self.events.record_soon(
                    SecurityEventType.TAMPER_DETECTION_ACTIVATED,
                    f"connector {cid}: meter {report.info}",
                )
        elif report.status is not ConnectorStatus.FAULTED:
            self._tampered.discard(cid)
