"""What the CSMS received, audited: every started session ended exactly once, nothing delivered
twice with different content, nothing missing, every ended session's signed Begin and End
verify against its meter's key and pair (RCnt + 1), counted as the share of billable sessions
signed (`Audit.signed_percent`). Problems are collected, not asserted, so
the fault benchmark can print figures and the tests can assert none."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chargepoint.testcsms import Received
from meter.proof.keys import load_public_key
from meter.proof.ocmf import parse_ocmf, verify_ocmf
from tests.ocpp_views import View, canonical, signed_values_201
from tests.station_harness import signed_values


@dataclass
class Audit:
    sessions: int = 0
    ended: int = 0
    messages: int = 0  # transaction messages the CSMS accepted
    duplicates: int = 0  # the same message again (an answer lost on the way): allowed
    lost: int = 0  # a message that never arrived: must be 0
    # a message again with other content, a session ended twice or under two ids: must be 0
    duplicated: int = 0
    billable: int = 0  # sessions the meter signed a Begin for
    signed: int = 0  # of those: signed Begin and End that verify and pair
    problems: list[str] = field(default_factory=list)

    @property
    def signed_percent(self) -> float:
        """Billable sessions with signed Begin and End values that verify, in per cent."""
        return 100.0 * self.signed / self.billable if self.billable else 100.0


def _check_pair(values: dict[str, dict[str, Any]], key_hex: str, what: str) -> str | None:
    if set(values) != {"Transaction.Begin", "Transaction.End"}:
        return f"{what}: signed values {sorted(values)}, expected Begin and End"
    key = load_public_key(key_hex)
    begin = parse_ocmf(values["Transaction.Begin"]["ocmf"])
    end = parse_ocmf(values["Transaction.End"]["ocmf"])
    for record in (begin, end):
        check = verify_ocmf(record, key)
        if not check.billable:
            return f"{what}: {record.pagination} does not verify: {check.reason}"
    if int(str(end.pagination)[1:]) != int(str(begin.pagination)[1:]) + 1:
        return f"{what}: End {end.pagination} does not pair with Begin {begin.pagination}"
    return None


def audit(view: View, keys: dict[int, str]) -> Audit:
    """`keys`: connector id -> its meter's public key (DER hex) as the station reported it."""
    return _audit_201(view, keys) if view.version == "2.0.1" else _audit_16(view, keys)


def _audit_201(view: View, keys: dict[int, str]) -> Audit:
    result = Audit()
    log = view.csms.transaction_log_201()
    for tid, entry in log.items():
        events: list[dict[str, Any]] = entry["events"]
        result.sessions += 1
        result.messages += len(events)
        by_seq: dict[int, set[str]] = {}
        for e in events:
            by_seq.setdefault(int(e["seqNo"]), set()).add(canonical(e))
        result.duplicates += len(events) - len(by_seq)
        for seq, contents in by_seq.items():
            if len(contents) > 1:
                result.duplicated += 1
                result.problems.append(f"{tid}: seqNo {seq} delivered with other content")
        missing = sorted(set(range(max(by_seq) + 1)) - set(by_seq))
        if missing:
            result.lost += len(missing)
            result.problems.append(f"{tid}: seqNo {missing} never arrived")
        started = entry["started"]
        billable = any(signed_values_201(e) for e in events)
        result.billable += billable
        if started is None:
            result.problems.append(f"{tid}: no Started")
            continue
        ended = entry["ended"]
        if ended is None:
            result.lost += 1
            result.problems.append(f"{tid}: never ended")
            continue
        result.ended += 1
        connector = int(started["evse"]["id"])
        values = signed_values_201(ended)
        if not billable:
            continue  # closed before the meter signed anything: nothing was billed
        problem = _check_pair(values, keys[connector], tid)
        if problem:
            result.problems.append(problem)
        else:
            result.signed += 1
    return result


def _audit_16(view: View, keys: dict[int, str]) -> Audit:
    result = Audit()
    csms = view.csms
    log = csms.transaction_log()
    # a StartTransaction resent after a lost answer gets another id: the same content is the
    # same session
    by_content: dict[tuple[Any, ...], list[int]] = {}
    for tx_id, entry in sorted(log.items()):
        start = entry["start"]
        key = (start["connectorId"], start["idTag"], start["meterStart"], start["timestamp"])
        by_content.setdefault(key, []).append(tx_id)
    stops: dict[int, list[Received]] = {}
    for r in csms.messages("StopTransaction"):
        if csms.answered(r):
            stops.setdefault(int(r.payload["transactionId"]), []).append(r)
    unknown = set(stops) - set(log)
    if unknown:
        result.problems.append(f"StopTransaction for ids never started: {sorted(unknown)}")
    starts = [r for r in csms.messages("StartTransaction") if csms.answered(r)]
    result.messages = len(starts) + sum(len(s) for s in stops.values())
    result.duplicates = len(starts) - len(by_content)
    for (connector, *_), ids in by_content.items():
        result.sessions += 1
        result.billable += 1  # 1.6: StartTransaction goes out once the meter signed the Begin
        stopped = [i for i in ids if i in stops]
        if not stopped:
            result.lost += 1
            result.problems.append(f"session {ids}: never stopped")
            continue
        if len(stopped) > 1:
            result.duplicated += 1
            result.problems.append(f"session {ids}: stopped under {len(stopped)} ids")
        received = stops[stopped[0]]
        result.duplicates += len(received) - 1
        if len({canonical(s.payload) for s in received}) != 1:
            result.duplicated += 1
            result.problems.append(f"session {ids}: StopTransaction repeated with other content")
        result.ended += 1
        problem = _check_pair(signed_values(received[0].payload), keys[connector], str(ids))
        if problem:
            result.problems.append(problem)
        else:
            result.signed += 1
    return result
