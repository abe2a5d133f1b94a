"""`chargepoint verify FILE.xml` (and a CSV export): every session in the file checked as a
pair (meter.proof.session), against keys the user trusts or, failing those, the file's own."""

from __future__ import annotations

import bisect
import functools
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from meter.proof.keys import PublicKeyInfo, load_public_key
from meter.proof.safe_xml import BEGIN, END, SafeXmlError, SignedValue, read_values
from meter.proof.session import ProofStatus, SessionProof, check_session

Emit = Callable[[str, bool], None]  # (line, whether it names a failure)


@dataclass
class XmlCheck:
    """One line per session and a summary line last; `failures` holds the lines that name a
    failure (what `verify --quiet` prints). With `emit` the lines go there as they are made
    and are not kept (a file of any size, in constant memory)."""

    sessions: int = 0
    verified: int = 0
    failed: int = 0
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    emit: Emit | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.sessions > 0 and self.failed == 0

    def add(self, line: str, failure: bool = False) -> None:
        if self.emit is not None:
            self.emit(line, failure)
            return
        self.lines.append(line)
        if failure:
            self.failures.append(line)

    def fail(self, line: str) -> None:
        self.failed += 1
        self.add(line, failure=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class SeenIds:
    """The transaction ids met so far, as sorted runs of consecutive ids: an export lists its
    sessions in order, so its ids take one run per gap, not one entry per session (memory
    flat in the file's size); ids out of order are still found when they come again."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []  # inclusive

    def add(self, tid: int) -> bool:
        """Record `tid`; False when it was met before."""
        starts, ends = self._starts, self._ends
        if not ends or tid > ends[-1]:  # the usual case: ascending
            if ends and tid == ends[-1] + 1:
                ends[-1] = tid
            else:
                starts.append(tid)
                ends.append(tid)
            return True
        i = bisect.bisect_right(starts, tid) - 1
        if i >= 0 and tid <= ends[i]:
            return False
        if i >= 0 and tid == ends[i] + 1:
            ends[i] = tid
            if i + 1 < len(starts) and starts[i + 1] == tid + 1:  # two runs meet
                ends[i] = ends.pop(i + 1)
                del starts[i + 1]
        elif i + 1 < len(starts) and starts[i + 1] == tid + 1:
            starts[i + 1] = tid
        else:
            starts.insert(i + 1, tid)
            ends.insert(i + 1, tid)
        return True

    @property
    def runs(self) -> int:
        return len(self._starts)


def _sessions(values: Iterator[SignedValue]) -> Iterator[tuple[int, list[SignedValue]]]:
    """Values grouped by transactionId; a transaction's values must be adjacent."""
    current: list[SignedValue] = []
    seen = SeenIds()
    for v in values:
        if current and v.transaction_id != current[0].transaction_id:
            yield current[0].transaction_id, current
            current = []
        if not current and not seen.add(v.transaction_id):
            raise SafeXmlError(f"transaction {v.transaction_id} appears twice in the file")
        current.append(v)
    if current:
        yield current[0].transaction_id, current


@functools.lru_cache(maxsize=64)
def _der_hex(key_text: str) -> str:
    """A file's hex key in another form than DER (the bare point x||y, 04-prefixed) as DER
    hex, to compare it with the trusted keys; "" when it is no readable hex key (a file's text
    is never taken for a path)."""
    if not key_text or any(c not in string.hexdigits for c in key_text):
        return ""
    try:
        return load_public_key(key_text).der_hex.lower()
    except ValueError:
        return ""


@functools.lru_cache(maxsize=64)
def _file_key(key_text: str) -> PublicKeyInfo | str:
    """The key a file names, loaded once for all its sessions; the reason when unusable."""
    try:
        return load_public_key(key_text)
    except ValueError as exc:
        return str(exc)


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
        key = trusted.get(file_key) or trusted.get(_der_hex(file_key))
        if key is None:
            return SessionProof(
                ProofStatus.FAILED,
                "signed with a key that is not among the trusted keys given",
                None,
                None,
            ), ""
    else:
        loaded = _file_key(file_key)
        if isinstance(loaded, str):
            return SessionProof(ProofStatus.FAILED, f"public key: {loaded}", None, None), ""
        key = loaded
        note = " (against the key in the file: compare it with the meter's label)"
    by_context = {v.context: v for v in values}
    proof = check_session(by_context[BEGIN].ocmf, by_context[END].ocmf, key)
    return proof, note


def check_xml(path: Path, trusted_keys: list[str], emit: Emit | None = None) -> XmlCheck:
    """Check every transaction of the file; never raises for bad input."""
    return check_values(read_values(path), trusted_keys, str(path), emit=emit)


def check_values(
    values: Iterable[SignedValue],
    trusted_keys: list[str],
    source: str,
    noun: str = "transaction",
    unsigned: Callable[[], int] | None = None,
    emit: Emit | None = None,
) -> XmlCheck:
    """Check the sessions in `values` (each session's values adjacent), reading them as they
    come; never raises for bad input. `unsigned` tells, once the values are read, how many
    sessions of the source carried nothing to check (they are named in the summary)."""
    result = XmlCheck(emit=emit)
    trusted: dict[str, PublicKeyInfo] = {}
    for spec in trusted_keys:
        try:
            info = load_public_key(spec)
        except ValueError as exc:
            result.fail(f"not verified: public key {spec[:20]}...: {exc}")
            return result
        trusted[info.der_hex.lower()] = info
    try:
        for tid, group in _sessions(iter(values)):
            proof, note = _check(tid, group, trusted)
            result.sessions += 1
            if proof.status is ProofStatus.VERIFIED:
                result.verified += 1
                test = f" -- {proof.reason}" if proof.reason else ""
                result.add(
                    f"{noun} {tid}: verified, {proof.energy_wh} Wh on meter "
                    f"{proof.meter_serial}{note}{test}"
                )
            else:
                result.fail(f"{noun} {tid}: FAILED: {proof.reason}")
    except (ValueError, OSError) as exc:  # SafeXmlError, a CSV that is not ours, unreadable
        result.fail(f"not verified: {source}: {getattr(exc, 'strerror', None) or exc}")
    if result.sessions == 0 and result.failed == 0:
        empty = f"not verified: {source} holds no {noun} with a signed Begin and End"
        result.add(empty, failure=True)
    skipped = unsigned() if unsigned is not None else 0
    summary = f"{_count(result.sessions, noun)}: {result.verified} verified, {result.failed} failed"
    if skipped:
        summary += f" ({_count(skipped, noun)} without signed Begin and End, not checked)"
    result.add(summary, failure=not result.ok)
    return result
