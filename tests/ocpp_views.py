"""What the test CSMS saw and can do, the same for OCPP 1.6J and 2.0.1.

The integration suite runs each scenario once per version; a view turns a scenario's
version-free question ("start a session remotely", "the signed values of the second session",
"the connector's statuses") into that version's messages, written out here from the
specifications (not from the daemon's own mapping tables).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chargepoint.testcsms import Received, TestCsms
from tests.station_harness import STATION_ID, signed_values, wait_until


@dataclass
class Session:
    """One transaction as the CSMS received it."""

    tx_id: str
    id_tag: str | None
    meter_start: int | None
    reason: str | None  # the wire's stop reason (1.6 reason / 2.0.1 stoppedReason)
    meter_stop: int | None
    # context -> {"ocmf", "public_key" (hex or ""), "sampled_value"} from the end message
    signed: dict[str, dict[str, Any]] = field(default_factory=dict)
    starts: int = 0
    ends: int = 0
    payloads: list[dict[str, Any]] = field(default_factory=list)


def _oca_key_hex(value: str) -> str:
    return base64.b64decode(value).decode().removeprefix("oca:base16:asn1:") if value else ""


class View:
    version = ""
    end_action = ""
    # statuses a connector shows for a remote session whose EV leaves afterwards
    session_statuses: tuple[str, ...] = ()
    faulted = "Faulted"
    unavailable = "Unavailable"
    available = "Available"
    # the core's stop reasons as this version's wire names them
    reasons: ClassVar[dict[str, str]] = {}

    def __init__(self, csms: TestCsms) -> None:
        self.csms = csms

    # ---- CSMS -> station -----------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return await self.csms.call(STATION_ID, action, payload, **kwargs)

    async def remote_start(self, connector: int, id_tag: str) -> str:
        raise NotImplementedError

    async def remote_stop(self, tx_id: str) -> str:
        raise NotImplementedError

    async def meter_key(self, connector: int) -> str:
        raise NotImplementedError

    async def reset(self, kind: str) -> str:
        raise NotImplementedError

    async def change_availability(self, connector: int, operative: bool) -> str:
        raise NotImplementedError

    async def trigger(self, message: str, connector: int | None = None) -> str:
        raise NotImplementedError

    async def unlock(self, connector: int) -> str:
        raise NotImplementedError

    async def get_setting(self, key: str) -> str:
        raise NotImplementedError

    # ---- station -> CSMS -----------------------------------------------------------------

    def sessions(self) -> list[Session]:
        raise NotImplementedError

    def status_of(self, rec: Received, connector: int) -> str | None:
        raise NotImplementedError

    def is_end(self, rec: Received) -> bool:
        raise NotImplementedError

    def is_start(self, rec: Received) -> bool:
        raise NotImplementedError

    def authorized_id(self, rec: Received) -> str:
        raise NotImplementedError

    def statuses(self, connector: int, after: int = 0) -> list[str]:
        found = [self.status_of(r, connector) for r in self.csms.received[after:]]
        return [s for s in found if s is not None]

    def ends(self) -> list[Received]:
        return [r for r in self.csms.received if self.is_end(r)]

    def starts(self) -> list[Received]:
        return [r for r in self.csms.received if self.is_start(r)]

    async def wait_started(self, n: int = 1, timeout: float = 15) -> Session:
        await wait_until(lambda: len(self.sessions()) >= n, timeout, f"session {n} started")
        return self.sessions()[n - 1]

    async def wait_ended(self, n: int = 1, timeout: float = 15) -> Session:
        def ended() -> bool:
            s = self.sessions()
            return len(s) >= n and s[n - 1].ends > 0

        await wait_until(ended, timeout, f"session {n} ended")
        return self.sessions()[n - 1]

    async def wait_status(self, connector: int, status: str, after: int = 0) -> None:
        await wait_until(
            lambda: status in self.statuses(connector, after), 15, f"{status} on {connector}"
        )


class View16(View):
    version = "1.6"
    end_action = "StopTransaction"
    session_statuses = ("Preparing", "Charging", "Finishing", "Available")
    reasons: ClassVar[dict[str, str]] = {
        r: r
        for r in (
            "Local",
            "Remote",
            "PowerLoss",
            "SoftReset",
            "HardReset",
            "EVDisconnected",
            "DeAuthorized",
            "Other",
        )
    }

    async def remote_start(self, connector: int, id_tag: str) -> str:
        answer = await self.call(
            "RemoteStartTransaction", {"idTag": id_tag, "connectorId": connector}
        )
        return str(answer["status"])

    async def remote_stop(self, tx_id: str) -> str:
        answer = await self.call("RemoteStopTransaction", {"transactionId": int(tx_id)})
        return str(answer["status"])

    async def meter_key(self, connector: int) -> str:
        answer = await self.call("GetConfiguration", {"key": [f"MeterPublicKey{connector}"]})
        return _oca_key_hex(answer["configurationKey"][0]["value"])

    async def reset(self, kind: str) -> str:
        answer = await self.call("Reset", {"type": kind})
        return str(answer["status"])

    async def change_availability(self, connector: int, operative: bool) -> str:
        answer = await self.call(
            "ChangeAvailability",
            {"connectorId": connector, "type": "Operative" if operative else "Inoperative"},
        )
        return str(answer["status"])

    async def trigger(self, message: str, connector: int | None = None) -> str:
        payload: dict[str, Any] = {"requestedMessage": message}
        if connector is not None:
            payload["connectorId"] = connector
        return str((await self.call("TriggerMessage", payload))["status"])

    async def unlock(self, connector: int) -> str:
        return str((await self.call("UnlockConnector", {"connectorId": connector}))["status"])

    async def get_setting(self, key: str) -> str:
        answer = await self.call("GetConfiguration", {"key": [key]})
        return str(answer["configurationKey"][0]["value"])

    def sessions(self) -> list[Session]:
        out = []
        for tx_id, entry in sorted(self.csms.transaction_log().items()):
            start = entry["start"] or {}
            stop = entry["stop"]
            out.append(
                Session(
                    tx_id=str(tx_id),
                    id_tag=start.get("idTag"),
                    meter_start=start.get("meterStart"),
                    reason=stop.get("reason") if stop else None,
                    meter_stop=stop.get("meterStop") if stop else None,
                    signed=signed_values(stop) if stop else {},
                    starts=len(entry["starts"]),
                    ends=len(entry["stops"]),
                    payloads=[p for p in (entry["start"], stop) if p],
                )
            )
        return out

    def status_of(self, rec: Received, connector: int) -> str | None:
        if rec.action == "StatusNotification" and rec.payload["connectorId"] == connector:
            return str(rec.payload["status"])
        return None

    def is_end(self, rec: Received) -> bool:
        return rec.action == "StopTransaction"

    def is_start(self, rec: Received) -> bool:
        return rec.action == "StartTransaction"

    def authorized_id(self, rec: Received) -> str:
        return str(rec.payload["idTag"])


def signed_values_201(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """context -> {"ocmf", "public_key", "timestamp", "sampled_value"} from a TransactionEvent."""
    found: dict[str, dict[str, Any]] = {}
    for mv in payload.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            smv = sv.get("signedMeterValue")
            if not smv:
                continue
            found[sv.get("context", "Sample.Periodic")] = {
                "ocmf": base64.b64decode(smv["signedMeterData"]).decode(),
                "public_key": _oca_key_hex(smv["publicKey"]),
                "timestamp": mv["timestamp"],
                "sampled_value": sv,
            }
    return found


def _energy(payload: dict[str, Any], context: str) -> int | None:
    for mv in payload.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            if (
                sv.get("context") == context
                and sv.get("measurand", "Energy.Active.Import.Register")
                == "Energy.Active.Import.Register"
            ):
                return int(sv["value"])
    return None


class View201(View):
    version = "2.0.1"
    end_action = "TransactionEvent"
    session_statuses = ("Occupied", "Available")
    reasons: ClassVar[dict[str, str]] = {
        "Local": "Local",
        "Remote": "Remote",
        "PowerLoss": "PowerLoss",
        "SoftReset": "ImmediateReset",
        "HardReset": "ImmediateReset",
        "EVDisconnected": "EVDisconnected",
        "DeAuthorized": "DeAuthorized",
        "Other": "Other",
    }

    async def remote_start(self, connector: int, id_tag: str) -> str:
        self._remote_ids = getattr(self, "_remote_ids", 0) + 1
        answer = await self.call(
            "RequestStartTransaction",
            {
                "idToken": {"idToken": id_tag, "type": "Central"},
                "remoteStartId": self._remote_ids,
                "evseId": connector,
            },
        )
        return str(answer["status"])

    async def remote_stop(self, tx_id: str) -> str:
        answer = await self.call("RequestStopTransaction", {"transactionId": tx_id})
        return str(answer["status"])

    async def get_variable(self, component: dict[str, Any], variable: str) -> dict[str, Any]:
        answer = await self.call(
            "GetVariables",
            {"getVariableData": [{"component": component, "variable": {"name": variable}}]},
        )
        result: dict[str, Any] = answer["getVariableResult"][0]
        return result

    async def meter_key(self, connector: int) -> str:
        result = await self.get_variable(
            {"name": "FiscalMetering", "evse": {"id": connector}}, "PublicKey"
        )
        assert result["attributeStatus"] == "Accepted", result
        return _oca_key_hex(result["attributeValue"])

    async def reset(self, kind: str) -> str:
        wire = "OnIdle" if kind == "OnIdle" else "Immediate"
        return str((await self.call("Reset", {"type": wire}))["status"])

    async def change_availability(self, connector: int, operative: bool) -> str:
        payload: dict[str, Any] = {"operationalStatus": "Operative" if operative else "Inoperative"}
        if connector:
            payload["evse"] = {"id": connector}
        return str((await self.call("ChangeAvailability", payload))["status"])

    async def trigger(self, message: str, connector: int | None = None) -> str:
        payload: dict[str, Any] = {"requestedMessage": message}
        if connector is not None:
            payload["evse"] = {"id": connector, "connectorId": 1}
        return str((await self.call("TriggerMessage", payload))["status"])

    async def unlock(self, connector: int) -> str:
        answer = await self.call("UnlockConnector", {"evseId": connector, "connectorId": 1})
        return str(answer["status"])

    async def get_setting(self, key: str) -> str:
        component, variable = {
            "HeartbeatInterval": ("OCPPCommCtrlr", "HeartbeatInterval"),
            "MeterValueSampleInterval": ("SampledDataCtrlr", "TxUpdatedInterval"),
        }[key]
        result = await self.get_variable({"name": component}, variable)
        return str(result["attributeValue"])

    def sessions(self) -> list[Session]:
        out = []
        for tx_id, entry in self.csms.transaction_log_201().items():
            events: list[dict[str, Any]] = entry["events"]
            ended = entry["ended"]
            id_tag = next(
                (e["idToken"]["idToken"] for e in events if e.get("idToken", {}).get("idToken")),
                None,
            )
            meter_start = next(
                (v for v in (_energy(e, "Transaction.Begin") for e in events) if v is not None),
                None,
            )
            out.append(
                Session(
                    tx_id=tx_id,
                    id_tag=id_tag,
                    meter_start=meter_start,
                    reason=ended["transactionInfo"].get("stoppedReason") if ended else None,
                    meter_stop=_energy(ended, "Transaction.End") if ended else None,
                    signed=signed_values_201(ended) if ended else {},
                    starts=sum(1 for e in events if e["eventType"] == "Started"),
                    ends=int(entry["ended_count"]),
                    payloads=events,
                )
            )
        return out

    def status_of(self, rec: Received, connector: int) -> str | None:
        if rec.action == "StatusNotification" and rec.payload["evseId"] == connector:
            return str(rec.payload["connectorStatus"])
        return None

    def is_end(self, rec: Received) -> bool:
        return rec.action == "TransactionEvent" and rec.payload.get("eventType") == "Ended"

    def is_start(self, rec: Received) -> bool:
        return rec.action == "TransactionEvent" and rec.payload.get("eventType") == "Started"

    def authorized_id(self, rec: Received) -> str:
        return str(rec.payload["idToken"]["idToken"])


VIEWS: dict[str, type[View]] = {"1.6": View16, "2.0.1": View201}


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True)
