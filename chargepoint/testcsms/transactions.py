"""Transactions as the test CSMS saw them: OCPP 1.6 transaction ids (assigned here) and the
transaction logs of both versions, built from the CALLs that got a CALLRESULT."""

from __future__ import annotations

from typing import Any

from chargepoint.testcsms.state import CsmsState


class Transactions(CsmsState):
    def __init__(self) -> None:
        super().__init__()
        self._next_transaction_id = 1
        self._tx_by_call: dict[tuple[str, str], int] = {}
        self._tx_by_key: dict[tuple[str, tuple[Any, ...]], int] = {}

    def _start_transaction(self, station_id: str, unique_id: str, key: tuple[Any, ...]) -> int:
        tx = self._tx_by_call.get((station_id, unique_id)) or self._tx_by_key.get((station_id, key))
        if tx is None:
            tx = self._next_transaction_id
            self._next_transaction_id += 1
        self._tx_by_call[(station_id, unique_id)] = tx
        self._tx_by_key[(station_id, key)] = tx
        return tx

    @property
    def transactions(self) -> dict[int, dict[str, Any]]:
        """Same as `transaction_log()`."""
        return self.transaction_log()

    def transaction_log(self) -> dict[int, dict[str, Any]]:
        """transactionId -> {station_id, start, starts, stop, stops, meter_values}.

        Built from the CALLs that got a CALLRESULT: `start`/`stop` are the first
        StartTransaction/StopTransaction payloads, `starts`/`stops` all of them (a resend of a
        start whose answer was lost lands on the same id), `meter_values` the MeterValues
        payloads carrying that transactionId. A StopTransaction for an id never started
        appears with `start` None.
        """
        out: dict[int, dict[str, Any]] = {}

        def entry(tx: int, station_id: str) -> dict[str, Any]:
            return out.setdefault(
                tx,
                {
                    "station_id": station_id,
                    "start": None,
                    "starts": [],
                    "stop": None,
                    "stops": [],
                    "meter_values": [],
                },
            )

        for rec in self.received:
            if not self.answered(rec):
                continue
            if rec.action == "StartTransaction":
                tx = self._tx_by_call.get((rec.station_id, rec.unique_id))
                if tx is None:
                    continue
                e = entry(tx, rec.station_id)
                e["starts"].append(rec.payload)
                if e["start"] is None:
                    e["start"] = rec.payload
            elif rec.action == "StopTransaction" and "transactionId" in rec.payload:
                e = entry(int(rec.payload["transactionId"]), rec.station_id)
                e["stops"].append(rec.payload)
                if e["stop"] is None:
                    e["stop"] = rec.payload
            elif rec.action == "MeterValues" and "transactionId" in rec.payload:
                e = entry(int(rec.payload["transactionId"]), rec.station_id)
                e["meter_values"].append(rec.payload)
        return out

    def transaction_log_201(self) -> dict[str, dict[str, Any]]:
        """OCPP 2.0.1: transactionInfo.transactionId -> the TransactionEvents of that transaction.

        Each entry: {"station_id", "events": the payloads in arrival order, "started": the
        first Started payload or None, "ended": the first Ended payload or None,
        "ended_count": how many Ended, "seq_nos": the seqNo of each event in arrival order}.
        Built, like `transaction_log()`, from the CALLs that got a CALLRESULT: one refused with
        `fail_next` (or as a schema violation) is not in it, its resend is. A resend after an
        answer lost on the way counts twice (same seqNo twice in `seq_nos`).
        """
        out: dict[str, dict[str, Any]] = {}
        for rec in self.received:
            if rec.action != "TransactionEvent" or not self.answered(rec):
                continue
            info = rec.payload.get("transactionInfo")
            if not isinstance(info, dict) or not isinstance(info.get("transactionId"), str):
                continue
            e = out.setdefault(
                info["transactionId"],
                {
                    "station_id": rec.station_id,
                    "events": [],
                    "started": None,
                    "ended": None,
                    "ended_count": 0,
                    "seq_nos": [],
                },
            )
            e["events"].append(rec.payload)
            e["seq_nos"].append(rec.payload.get("seqNo"))
            event_type = rec.payload.get("eventType")
            if event_type == "Started" and e["started"] is None:
                e["started"] = rec.payload
            elif event_type == "Ended":
                e["ended_count"] += 1
                if e["ended"] is None:
                    e["ended"] = rec.payload
        return out
