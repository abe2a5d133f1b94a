"""Security on the CSMS side, for OCPP 1.6J (security whitepaper) and 2.0.1 alike: installing,
listing and deleting certificates, asking for and signing the station's CSR, the security
profile upgrade, and the security events received.

Each command builds the station's version of the message from version-free arguments and
`call()`s it (both directions schema-checked); it returns the station's answer as on the wire.
Certificate types are named as in 2.0.1 (`CSMSRootCertificate`, ...); for a 1.6 station
`CSMSRootCertificate` becomes `CentralSystemRootCertificate`.

`sign_station_csrs(pki)` makes the CSMS answer every SignCertificate with Accepted and then send
CertificateSigned with the CSR signed by the test PKI's CA (`csr_answers` says what was sent);
`accept=False` answers Rejected; `chain=` sends a fixed chain instead (a wrong one, for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

from chargepoint.testcsms.commands import Commands
from chargepoint.testcsms.errors import CallErrorReply, StationNotConnected
from chargepoint.testcsms.faults import FaultInjection
from chargepoint.testcsms.pki import TestPki
from chargepoint.testcsms.records import Received

_NAMES_16 = {"CSMSRootCertificate": "CentralSystemRootCertificate"}
_VALID_FOR = dt.timedelta(days=30)


def sign_csr(pki: TestPki, csr_pem: str, valid_for: dt.timedelta = _VALID_FOR) -> str:
    """The CSR's subject and key certified by the test PKI's CA (PEM, leaf only)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    if pki.ca_key is None:
        raise ValueError("this test PKI has no CA key")
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("unsupported CA key")
    csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
    if not csr.is_signature_valid:
        raise ValueError("the CSR's signature does not verify")
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


class SecurityCommands(Commands, FaultInjection):
    def _is_16(self, station_id: str) -> bool:
        return bool(self._info[station_id]["ocpp_version"] == "1.6")

    def _type_name(self, station_id: str, certificate_type: str) -> str:
        if self._is_16(station_id):
            return _NAMES_16.get(certificate_type, certificate_type)
        return certificate_type

    async def install_certificate(
        self, station_id: str, certificate_type: str, pem: str
    ) -> dict[str, Any]:
        return await self.call(
            station_id,
            "InstallCertificate",
            {
                "certificateType": self._type_name(station_id, certificate_type),
                "certificate": pem,
            },
        )

    async def get_installed_certificate_ids(
        self, station_id: str, certificate_type: str = "CSMSRootCertificate"
    ) -> dict[str, Any]:
        """The answer; `hash_data` lists the certificateHashData of both versions' answers."""
        name = self._type_name(station_id, certificate_type)
        payload: dict[str, Any] = (
            {"certificateType": name} if self._is_16(station_id) else {"certificateType": [name]}
        )
        return await self.call(station_id, "GetInstalledCertificateIds", payload)

    @staticmethod
    def hash_data(answer: dict[str, Any]) -> list[dict[str, Any]]:
        """certificateHashData entries of a GetInstalledCertificateIds answer (1.6 or 2.0.1)."""
        if "certificateHashData" in answer:
            return list(answer["certificateHashData"])
        return [c["certificateHashData"] for c in answer.get("certificateHashDataChain", [])]

    async def delete_certificate(
        self, station_id: str, hash_data: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.call(station_id, "DeleteCertificate", {"certificateHashData": hash_data})

    async def request_station_certificate(self, station_id: str) -> dict[str, Any]:
        """1.6 ExtendedTriggerMessage SignChargePointCertificate, 2.0.1 TriggerMessage
        SignChargingStationCertificate."""
        if self._is_16(station_id):
            return await self.call(
                station_id,
                "ExtendedTriggerMessage",
                {"requestedMessage": "SignChargePointCertificate"},
            )
        return await self.call(
            station_id, "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}
        )

    async def certificate_signed(self, station_id: str, chain: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"certificateChain": chain}
        if not self._is_16(station_id):
            payload["certificateType"] = "ChargingStationCertificate"
        return await self.call(station_id, "CertificateSigned", payload)

    def sign_station_csrs(
        self,
        pki: TestPki | None,
        *,
        accept: bool = True,
        chain: str | None = None,
        valid_for: dt.timedelta = _VALID_FOR,
    ) -> None:
        """Answer SignCertificate (Accepted, or Rejected) and send CertificateSigned with the
        CSR signed by `pki`'s CA (or `chain`); the answers land in `csr_answers`."""
        self.csr_answers: list[dict[str, Any]] = []
        tasks: set[asyncio.Task[None]] = set()

        def answer(rec: Received) -> dict[str, Any]:
            if accept:
                task = asyncio.get_running_loop().create_task(
                    self._send_signed(rec, pki, chain, valid_for)
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            return {"status": "Accepted" if accept else "Rejected"}

        self.respond_with("SignCertificate", answer)

    async def _send_signed(
        self, rec: Received, pki: TestPki | None, chain: str | None, valid_for: dt.timedelta
    ) -> None:
        await asyncio.sleep(0.01)  # the answer to SignCertificate goes out first
        if chain is None:
            assert pki is not None
            chain = await asyncio.to_thread(sign_csr, pki, str(rec.payload["csr"]), valid_for)
        with contextlib.suppress(CallErrorReply, StationNotConnected, TimeoutError):
            self.csr_answers.append(await self.certificate_signed(rec.station_id, chain))

    async def set_network_profile(
        self,
        station_id: str,
        slot: int,
        url: str,
        security_profile: int,
        *,
        ocpp_version: str = "OCPP20",
        message_timeout: int = 30,
    ) -> dict[str, Any]:
        """2.0.1 SetNetworkProfile of one slot (wired, JSON)."""
        return await self.call(
            station_id,
            "SetNetworkProfile",
            {
                "configurationSlot": slot,
                "connectionData": {
                    "ocppVersion": ocpp_version,
                    "ocppTransport": "JSON",
                    "ocppCsmsUrl": url,
                    "messageTimeout": message_timeout,
                    "securityProfile": security_profile,
                    "ocppInterface": "Wired0",
                },
            },
        )

    def security_events(self, station_id: str | None = None) -> list[tuple[str, str | None]]:
        """(type, techInfo) of the SecurityEventNotifications received, in order."""
        return [
            (str(r.payload["type"]), r.payload.get("techInfo"))
            for r in self.received
            if r.action == "SecurityEventNotification"
            and (station_id is None or r.station_id == station_id)
        ]
