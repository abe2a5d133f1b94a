"""`chargepoint verify FILE.xml`: every session in a transparency-software XML checked as a
pair (meter.proof.session), against keys the user trusts or, failing those, the file's own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from meter.proof.keys import PublicKeyInfo, load_public_key
from meter.proof.safe_xml import BEGIN, END, SafeXmlError, SignedValue, read_values
from meter.proof.session import ProofStatus, SessionProof, check_session


@dataclass
class XmlCheck:
    sessions: int = 0
    verified: int = 0
    failed: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.sessions > 0 and self.failed == 0


def _sessions(values: Iterator[SignedValue]) -> Iterator[tuple[int, list[SignedValue]]]:
    """Values grouped by transactionId; a transaction's values must be adjacent."""
    current: list[SignedValue] = []
    seen: set[int] = set()
    for v in values:
        if current and v.transaction_id != current[0].transaction_id:
            yield current[0].transaction_id, current
            current = []
        if not current:
            if v.transaction_id in seen:
                raise SafeXmlError(f"transaction {v.transaction_id} appears twice in the file")
            seen.add(v.transaction_id)
        current.append(v)
    if current:
        yield current[0].transaction_id, current


def _check(
    tid: int, values: list[SignedValue], trusted: dict[str, PublicKeyInfo]
) -> tuple[SessionProof, str]:
    contexts = [v.context for v in values]
    if sorted(contexts) != sorted([BEGIN, END]):
        return SessionProof(
            ProofStatus.FAILED, f"needs one Begin and one End, has {contexts}", None, None
        ), ""
    keys = {v.public_key_hex.lower() for v in values}
    if len(keys) != 1:
        return SessionProof(
            ProofStatus.FAILED, "Begin and End carry different public keys", None, None
        ), ""
    file_key = keys.pop()
    note = ""
    if trusted:
        key = trusted.get(file_key)
        if key is None:
            return SessionProof(
                ProofStatus.FAILED,
                "signed with a key that is not among the trusted keys given",
                None,
                None,
            ), ""
    else:
        try:
            key = load_public_key(file_key)
        except ValueError as exc:
            return SessionProof(ProofStatus.FAILED, f"public key: {exc}", None, None), ""
        note = " (against the key in the file: compare it with the meter's label)"
    by_context = {v.context: v for v in values}
    proof = check_session(by_context[BEGIN].ocmf, by_context[END].ocmf, key)
    return proof, note


def check_xml(path: Path, trusted_keys: list[str]) -> XmlCheck:
    """Check every transaction of the file; never raises for bad input."""
    result = XmlCheck()
    trusted: dict[str, PublicKeyInfo] = {}
    for spec in trusted_keys:
        try:
            info = load_public_key(spec)
        except ValueError as exc:
            result.lines.append(f"not verified: public key {spec[:20]}...: {exc}")
            result.failed += 1
            return result
        trusted[info.der_hex.lower()] = info
    try:
        for tid, values in _sessions(read_values(path)):
            proof, note = _check(tid, values, trusted)
            result.sessions += 1
            if proof.status is ProofStatus.VERIFIED:
                result.verified += 1
                test = f" -- {proof.reason}" if proof.reason else ""
                result.lines.append(
                    f"transaction {tid}: verified, {proof.energy_wh} Wh on meter "
                    f"{proof.meter_serial}{note}{test}"
                )
            else:
                result.failed += 1
                result.lines.append(f"transaction {tid}: FAILED: {proof.reason}")
    except (SafeXmlError, OSError) as exc:
        result.failed += 1
        result.lines.append(f"not verified: {path}: {exc}")
    if result.sessions == 0 and result.failed == 0:
        result.lines.append(f"not verified: {path} holds no transaction")
    result.lines.append(
        f"{result.sessions} transactions: {result.verified} verified, {result.failed} failed"
    )
    return result
