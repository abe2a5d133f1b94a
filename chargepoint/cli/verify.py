"""`chargepoint verify SOURCE`: every file this project writes, told apart by its content (not
its name): S.A.F.E. XML, the CSV transaction log, Chargy's JSON document, OCMF records one
per line; or one OCMF record given on the command line.

Files are read as streams and each line is printed as soon as it is known. Only the module a
kind of file needs is imported (the CSV reader pulls in the station's configuration)."""

from __future__ import annotations

import argparse
import enum
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chargepoint.cli.command_log import configure_logging
from meter.proof.verification import MAX_INPUT_FILE, check_records

if TYPE_CHECKING:
    from meter.proof.keys import PublicKeyInfo
    from meter.proof.safe_xml_check import Emit, XmlCheck

_HEAD = 4096
_LINES_PER_WRITE = 64
_BOM = b"\xef\xbb\xbf"


class Kind(enum.Enum):
    OCMF = "OCMF records"
    XML = "S.A.F.E. XML"
    CSV = "chargepoint CSV export"
    CHARGY = "Chargy JSON document"


def sniff(source: str) -> tuple[Kind, Path | None]:
    """What `source` holds, and its file (None for a record given as text or no such file)."""
    if source.lstrip().startswith("OCMF|"):
        return Kind.OCMF, None
    path = Path(source).expanduser()
    try:
        with path.open("rb") as f:
            head = f.read(_HEAD)
    except (OSError, ValueError):
        return Kind.OCMF, None  # verify_input names what is wrong with it
    text = head.removeprefix(_BOM).lstrip()
    if text.startswith(b"OCMF|"):
        return Kind.OCMF, path
    from meter.proof.safe_xml import is_safe_xml

    if is_safe_xml(text) or text.startswith(b"<"):
        return Kind.XML, path
    if text.startswith(b"{"):
        return Kind.CHARGY, path
    first_line = text.split(b"\n", 1)[0]
    if b"begin_ocmf" in first_line and b"," in first_line:
        return Kind.CSV, path
    return Kind.OCMF, path


def check_chargy(path: Path, trusted_keys: list[str], emit: Emit | None = None) -> XmlCheck:
    """A Chargy document: the meter's snapshot signatures and the pair rules."""
    from meter.bsm.chargy import check_document, document_key, is_document
    from meter.proof.keys import load_public_key
    from meter.proof.safe_xml_check import XmlCheck

    result = XmlCheck(emit=emit)
    try:
        if path.stat().st_size > MAX_INPUT_FILE:
            raise ValueError("too large for a Chargy document")
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        result.fail(f"not verified: {path}: {getattr(exc, 'strerror', None) or exc}")
        return result
    if not is_document(doc):
        result.fail(f"not verified: {path}: JSON, but no Chargy document (no signedMeterValues)")
        return result
    trusted: list[PublicKeyInfo] = []
    for spec in trusted_keys:
        try:
            trusted.append(load_public_key(spec))
        except ValueError as exc:
            result.fail(f"not verified: public key {spec[:20]}...: {exc}")
            return result
    name = f"document {doc.get('@id') or path.name}"
    file_key_text = document_key(doc)
    try:
        file_key = load_public_key(file_key_text) if file_key_text else None
    except ValueError:
        file_key = None
    note = ""
    if trusted:
        matching = [k for k in trusted if file_key is not None and k.der == file_key.der]
        candidates = matching or ([] if file_key is not None else trusted)
        if not candidates:
            result.sessions += 1
            result.fail(
                f"{name}: FAILED: signed with a key that is not among the trusted keys given"
            )
            return _summary(result)
    else:
        if file_key is None:
            result.fail(
                f"not verified: {name} names no usable public key: give the meter's key with "
                "--public-key"
            )
            return result
        candidates = [file_key]
        note = " (against the key in the file: compare it with the meter's label)"
    checks = [check_document(doc, key) for key in candidates]
    check = next((c for c in checks if not c.problems), checks[0])
    result.sessions += 1
    if check.problems:
        result.fail(f"{name}: FAILED: {'; '.join(check.problems)}")
    else:
        result.verified += 1
        energy = "?" if check.energy_wh is None else f"{check.energy_wh.normalize():f}"
        result.add(
            f"{name}: verified, {energy} Wh on meter {check.meter_serial} "
            f"(snapshots {check.begin_rcnt} and {check.end_rcnt}){note}"
        )
    return _summary(result)


def _summary(result: XmlCheck) -> XmlCheck:
    noun = "document" if result.sessions == 1 else "documents"
    summary = f"{result.sessions} {noun}: {result.verified} verified, {result.failed} failed"
    result.add(summary, failure=not result.ok)
    return result


def run_verify(args: argparse.Namespace) -> int:
    keys: list[str] = args.public_key or []
    quiet: bool = args.quiet
    kind, path = sniff(args.source)
    if kind is Kind.OCMF:
        if len(keys) != 1:
            print("not verified: give the meter's public key once with --public-key")
            return 2
        ok = True
        write = sys.stdout.write
        # into a pipe or file the lines go in blocks anyway: written a few dozen at a time (a
        # write call costs as much as the line), on a terminal each as soon as it is known
        block = 1 if sys.stdout.isatty() else _LINES_PER_WRITE
        pending: list[str] = []
        for good, line in check_records(args.source, keys[0], jobs=args.jobs):
            ok = ok and good
            if good and quiet:
                continue
            pending.append(line)
            if len(pending) >= block:
                write("\n".join(pending) + "\n")
                pending.clear()
        if pending:
            write("\n".join(pending) + "\n")
        return 0 if ok else 1
    assert path is not None
    configure_logging(args.verbose)  # reading a CSV export loads code that logs

    def emit(line: str, failure: bool) -> None:
        if failure or not quiet:
            print(line)

    from meter.proof.safe_xml_check import check_values, check_xml

    if kind is Kind.XML:
        result = check_xml(path, keys, emit)
    elif kind is Kind.CHARGY:
        result = check_chargy(path, keys, emit)
    else:
        from chargepoint.proof.export import CsvTally, read_csv_values

        tally = CsvTally()
        result = check_values(
            read_csv_values(path, tally),
            keys,
            str(path),
            noun="session",
            unsigned=lambda: tally.unsigned,
            emit=emit,
        )
    return 0 if result.ok else 1


def _jobs(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes") from None
    if jobs < 0:
        raise argparse.ArgumentTypeError("give 1 or more processes, or 0 for one per core")
    return jobs


def add_verify_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    v = sub.add_parser(
        "verify",
        help="verify signed readings: OCMF records or any file chargepoint exports",
        description="Verify signed meter readings against the meter's public key. SOURCE is "
        "an OCMF record, or a file (told apart by its content): OCMF records one per line, "
        "S.A.F.E. XML, the CSV of `transactions export`, or a Chargy JSON document. In a file "
        "of sessions every session is checked as a Begin/End pair. Exit 0 when everything "
        "verified, 1 when something did not.",
    )
    v.add_argument(
        "source",
        help="an OCMF record, or a file: OCMF records one per line, S.A.F.E. XML, the CSV "
        "export, or a Chargy JSON document",
    )
    v.add_argument(
        "--public-key",
        action="append",
        help="the meter's public key as printed on its label or display (128 hex characters "
        "x||y, or 130 with the 04 prefix), DER hex, PEM, or a file holding one; for a file of "
        "sessions: the keys you trust, repeatable (without one the key in the file is used and "
        "the result says so)",
    )
    v.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only what failed (and the summary line when something failed)",
    )
    v.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="check the records of an OCMF file in N processes (0: one per core; default 1); "
        "the lines come out in the file's order all the same",
    )
    # OCMF records are checked without the logging package (it costs a start-up's time)
    v.set_defaults(func=run_verify, sets_up_logging=True)
