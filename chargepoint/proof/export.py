"""Exports of stored sessions: a CSV transaction log for spreadsheets, the S.A.F.E. XML the
transparency software opens and Chargy's JSON. The first two stream: an export of 100,000
sessions stays small in memory. The CSV is also read back (`chargepoint verify FILE.csv`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from chargepoint import __version__
from chargepoint.config import StationInfo
from chargepoint.proof.sessions import ProvenSession
from chargepoint.store import TransactionRow
from meter.bsm import chargy
from meter.proof.ocmf import OcmfFormatError, parse_ocmf
from meter.proof.safe_xml import BEGIN, END, SignedValue, write_values
from meter.proof.test_signature import is_test_signature_text
from meter.snapshot import SnapshotFields

# started_at/stopped_at: when the controller (this daemon) saw the session start and stop, by its
# own clock, in UTC; begin/end_signed_meter_time: the time inside the signed Begin and End
# records, by the meter's clock (what transparency software shows), with its sync flag when
# that is not S (synchronised). Columns are only ever added, never renamed.
CSV_COLUMNS = (
    "session",
    "connector",
    "evse_id",
    "id_tag",
    "started_at",
    "stopped_at",
    "begin_signed_meter_time",
    "end_signed_meter_time",
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
                signed_meter_time(r.begin_ocmf),
                signed_meter_time(r.end_ocmf),
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


def signed_meter_time(ocmf: str | None) -> str:
    """The meter's time in a signed record (its first reading), ISO 8601 with the meter's UTC
    offset; the sync flag follows when the meter's clock was not synchronised."""
    if not ocmf:
        return ""
    try:
        reading = parse_ocmf(ocmf).readings[0]
    except (OcmfFormatError, IndexError):
        return ""
    spec = "milliseconds" if reading.time.microsecond else "seconds"
    text = reading.time.isoformat(timespec=spec)
    return text if reading.time_status == "S" else f"{text} {reading.time_status}"


@dataclass
class CsvTally:
    """Rows of a CSV export that carry no signed Begin and End (sessions ended unsigned)."""

    unsigned: int = 0


def read_csv_values(path: Path, tally: CsvTally) -> Iterator[SignedValue]:
    """The signed Begin and End of every session in a CSV written by `write_csv`, streamed;
    rows without both are counted in `tally`. Raises ValueError when the file is not such a
    CSV."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"session", "begin_ocmf", "end_ocmf", "public_key_hex"} - set(
            reader.fieldnames or ()
        )
        if missing:
            raise ValueError(
                f"not a chargepoint CSV export: no column {', '.join(sorted(missing))}"
            )
        try:
            for row in reader:
                begin, end = row.get("begin_ocmf") or "", row.get("end_ocmf") or ""
                if not begin or not end:
                    tally.unsigned += 1
                    continue
                session = (row.get("session") or "").strip()
                if not session.isdigit():
                    raise ValueError(f"line {reader.line_num}: session {session!r} is not a number")
                key = (row.get("public_key_hex") or "").strip()
                yield SignedValue(int(session), BEGIN, begin, key)
                yield SignedValue(int(session), END, end, key)
        except csv.Error as exc:
            raise ValueError(f"line {reader.line_num}: {exc}") from None


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


class NotExportable(ValueError):
    """This session cannot be written in the asked format; the message says why."""


def _snapshot(fields_json: str | None, ocmf: str | None, key_hex: str) -> dict[str, Any]:
    if not fields_json or not ocmf:
        raise NotExportable("a signed record is missing")
    data = json.loads(fields_json)
    signature = bytes.fromhex(data.pop("signature"))
    data.pop("read_at", None)
    for name in ("ma1", "meta1", "meta2", "meta3"):
        data[name] = bytes.fromhex(data[name])
    fields = SnapshotFields(**data)
    payload = parse_ocmf(ocmf).payload
    return chargy.snapshot_object(
        fields,
        signature,
        key_hex,
        str(payload.get("MV", "")),
        str(payload.get("MM", "")),
        str(payload.get("GV", "")),
    )


def chargy_document(row: TransactionRow, station: StationInfo) -> dict[str, Any]:
    """Chargy's container for one session: the meter's Begin and End snapshots with every
    signed field, so Chargy checks the snapshot signatures itself. The meter is named by its
    serial (MA1, as signed); the station by its vendor, model and serial number (configured
    `station.serial`; the OCPP identity is no serial number and is not given as one)."""
    if row.begin_ocmf is None or row.end_ocmf is None:
        raise NotExportable(f"session {row.local_id} has no signed Begin and End")
    if is_test_signature_text(row.begin_ocmf):
        raise NotExportable(
            f"session {row.local_id} carries station test signatures, not meter snapshots: "
            "export it as safe-xml"
        )
    key = row.public_key_hex or ""
    try:
        snapshots = [
            _snapshot(row.begin_fields, row.begin_ocmf, key),
            _snapshot(row.end_fields, row.end_ocmf, key),
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise NotExportable(f"session {row.local_id}: snapshot fields unreadable: {exc}") from None
    for snap in snapshots:
        if row.meter_serial and snap["meterInfo"]["meterId"] != row.meter_serial:
            raise NotExportable(
                f"session {row.local_id}: the snapshots name meter "
                f"{snap['meterInfo']['meterId']!r}, the session meter {row.meter_serial!r}"
            )
    info = {
        "manufacturer": station.vendor,
        "type": station.model,
        "controllerSoftwareVersion": f"chargepoint {__version__}",
    }
    if station.serial:
        info["serialNumber"] = station.serial
    return chargy.document(
        chargy.document_id(station.id, row.local_id), row.evse_id, info, snapshots
    )


def write_chargy(out: IO[str], sessions: Iterable[ProvenSession], station: StationInfo) -> int:
    """One session per Chargy document: exactly one session must be given."""
    chosen = list(sessions)
    if len(chosen) != 1:
        raise NotExportable(f"Chargy takes one session per file ({len(chosen)} chosen): use --id")
    json.dump(chargy_document(chosen[0].row, station), out, indent=2, ensure_ascii=False)
    out.write("\n")
    return 1
