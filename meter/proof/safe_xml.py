"""The XML file the S.A.F.E. transparency software (and Chargy) opens: signed values per
transaction, written and read as a stream.

    <values>
      <value transactionId="17" context="Transaction.Begin">
        <signedData format="OCMF" encoding="plain">OCMF|...</signedData>
        <publicKey encoding="hex">3059...</publicKey>
      </value>
      <value transactionId="17" context="Transaction.End">...</value>
    </values>

No namespace; numeric transactionId; one Begin and one End per transaction; the same key in
every value of a transaction; no white space around a record (field guide 5). The record is
written byte for byte (XML-escaped, never re-serialised) and read back the same way.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BEGIN = "Transaction.Begin"
END = "Transaction.End"
CONTEXTS = (BEGIN, END)


@dataclass(frozen=True)
class SignedValue:
    transaction_id: int
    context: str  # Transaction.Begin | Transaction.End
    ocmf: str
    public_key_hex: str


class SafeXmlError(ValueError):
    """The file is not a transparency-software XML this reader understands."""


def write_values(out: IO[str], values: Iterable[SignedValue]) -> int:
    """Write the document; returns how many values were written."""
    from xml.sax.saxutils import escape, quoteattr  # imports urllib: only when writing

    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<values>\n')
    count = 0
    for v in values:
        if v.context not in CONTEXTS:
            raise ValueError(f"context {v.context!r} is not one of {CONTEXTS}")
        out.write(
            f"  <value transactionId={quoteattr(str(int(v.transaction_id)))} "
            f"context={quoteattr(v.context)}>"
            f'<signedData format="OCMF" encoding="plain">{escape(v.ocmf)}</signedData>'
            f'<publicKey encoding="hex">{escape(v.public_key_hex)}</publicKey></value>\n'
        )
        count += 1
    out.write("</values>\n")
    return count


def read_values(source: Path | IO[bytes]) -> Iterator[SignedValue]:
    """The values of a document, in file order, streamed (constant memory per value)."""
    stream: IO[bytes] = source.open("rb") if isinstance(source, Path) else source
    try:
        depth = 0
        root: ET.Element | None = None
        for event, elem in ET.iterparse(stream, events=("start", "end")):
            if event == "start":
                depth += 1
                if depth == 1:
                    if elem.tag != "values":
                        raise SafeXmlError(f"root element is <{elem.tag}>, expected <values>")
                    root = elem
                continue
            depth -= 1
            if depth == 1 and elem.tag == "value":
                yield _value(elem)
                if root is not None:
                    root.clear()  # the parsed values are not kept: constant memory
    except ET.ParseError as exc:
        raise SafeXmlError(f"not well-formed XML: {exc}") from None
    finally:
        if isinstance(source, Path):
            stream.close()


def _value(elem: ET.Element) -> SignedValue:
    tid = elem.get("transactionId", "")
    if not tid.isdigit():
        raise SafeXmlError(f"transactionId {tid!r} is not numeric")
    context = elem.get("context", "")
    signed = elem.find("signedData")
    key = elem.find("publicKey")
    if signed is None or signed.text is None:
        raise SafeXmlError(f"transaction {tid} {context}: no signedData")
    if signed.get("format", "OCMF") != "OCMF" or signed.get("encoding", "plain") != "plain":
        raise SafeXmlError(
            f"transaction {tid}: signedData format {signed.get('format')!r} encoding "
            f"{signed.get('encoding')!r} is not plain OCMF"
        )
    if signed.text != signed.text.strip():
        raise SafeXmlError(f"transaction {tid} {context}: white space around the record")
    key_hex = (key.text or "") if key is not None else ""
    if key is not None and key.get("encoding", "hex") != "hex":
        raise SafeXmlError(f"transaction {tid}: publicKey encoding is not hex")
    return SignedValue(int(tid), context, signed.text, key_hex.strip())


def is_safe_xml(head: bytes) -> bool:
    """Whether a file's first bytes look like this XML (for `chargepoint verify FILE`)."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"<?xml") or text.startswith(b"<values")


def dumps(values: Iterable[SignedValue]) -> str:
    out = io.StringIO()
    write_values(out, values)
    return out.getvalue()
