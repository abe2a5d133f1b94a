"""Exports of stored sessions: a CSV transaction log for spreadsheets and the S.A.F.E. XML the
transparency software opens. Both stream: an export of 100,000 sessions stays small in memory."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO

from chargepoint.session_proofs import ProvenSession
from meter.safe_xml import BEGIN, END, SignedValue, write_values

CSV_COLUMNS = (
    "session",
    "connector",
    "evse_id",
    "id_tag",
    "started_at",
    "stopped_at",
    "meter_serial",
    "meter_start_wh",
    "meter_stop_wh",
    "energy_wh",
    "verification",
    "verification_reason",
    "stop_reason",
    "csms_transaction_id",
    "public_key_hex",
    "begin_ocmf",
    "end_ocmf",
)


def write_csv(out: IO[str], sessions: Iterable[ProvenSession]) -> int:
    """One row per session; `energy_wh` is what the signed records prove (empty when they
    prove nothing). Spreadsheet-safe: cells that a spreadsheet would run as a formula are
    prefixed with a quote."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for s in sessions:
        r, p = s.row, s.proof
        writer.writerow(
            [
                r.local_id,
                r.connector_id,
                _cell(r.evse_id),
                _cell(r.id_tag),
                r.started_at or r.opened_at,
                r.stopped_at or r.closed_at or "",
                _cell(r.meter_serial or ""),
                "" if r.meter_start_wh is None else r.meter_start_wh,
                "" if r.meter_stop_wh is None else r.meter_stop_wh,
                "" if p.energy_wh is None else p.energy_wh,
                p.status.value,
                _cell(p.reason),
                r.stop_reason or "",
                "" if r.csms_transaction_id is None else r.csms_transaction_id,
                r.public_key_hex or "",
                r.begin_ocmf or "",
                r.end_ocmf or "",
            ]
        )
        count += 1
    return count


def _cell(text: str) -> str:
    """Text cells that start like a formula are kept from being evaluated (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def signed_values(sessions: Iterable[ProvenSession]) -> Iterator[SignedValue]:
    """The Begin and End of every session that has both (others have nothing to show)."""
    for s in sessions:
        r = s.row
        if r.begin_ocmf is None or r.end_ocmf is None:
            continue
        key = r.public_key_hex or ""
        yield SignedValue(r.local_id, BEGIN, r.begin_ocmf, key)
        yield SignedValue(r.local_id, END, r.end_ocmf, key)


def write_safe_xml(out: IO[str], sessions: Iterable[ProvenSession]) -> int:
    """Returns the number of values written (two per exported session)."""
    return write_values(out, signed_values(sessions))
