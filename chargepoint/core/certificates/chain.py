"""Certificate chain validation against installed roots.

A chain is valid when, starting at the leaf, each certificate was signed by the next one
(taken from the intermediates sent with it or from the roots), every issuer is a CA, every
certificate is valid at the time of the check, and the path ends at one of the roots. Paths
are at most `MAX_PATH` certificates long.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography import x509

from chargepoint.core.certificates.parsing import (
    CertificateRejected,
    check_validity,
    describe,
    is_ca,
    parse_pem_chain,
    signed_by,
)

MAX_PATH: Final = 6


class ChainProblem(enum.StrEnum):
    UNREADABLE = "Unreadable"  # not PEM / not X.509
    NO_ROOT = "NoRootInstalled"  # no root of the wanted type to check against
    UNTRUSTED = "Untrusted"  # no path to an installed root
    EXPIRED = "Expired"  # a certificate of the path is expired or not yet valid
    NOT_CA = "IssuerNotCA"  # an issuer of the path is not a CA


@dataclass(frozen=True)
class ChainResult:
    """The outcome of `verify_chain`: `valid`, or the `problem` and a `reason` safe to log.
    `path` runs from the leaf to the root when valid."""

    valid: bool
    problem: ChainProblem | None = None
    reason: str = ""
    leaf: x509.Certificate | None = None
    path: tuple[x509.Certificate, ...] = field(default=())

    @property
    def root(self) -> x509.Certificate | None:
        return self.path[-1] if self.valid and self.path else None

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self.path[1:-1] if self.valid else ()


def _fail(problem: ChainProblem, reason: str, leaf: x509.Certificate | None = None) -> ChainResult:
    return ChainResult(False, problem, reason, leaf)


def verify_certificates(
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    now: dt.datetime,
) -> ChainResult:
    """Validate `chain` (leaf first, then intermediates in any order) against `roots`."""
    if not chain:
        return _fail(ChainProblem.UNREADABLE, "no certificate given")
    leaf = chain[0]
    if not roots:
        return _fail(ChainProblem.NO_ROOT, "no root certificate of that type is installed", leaf)
    intermediates = list(chain[1:])
    path = [leaf]
    current = leaf
    for _ in range(MAX_PATH):
        try:
            check_validity(current, now)
        except CertificateRejected as exc:
            return _fail(ChainProblem.EXPIRED, str(exc), leaf)
        root = next((r for r in roots if r == current), None)
        if root is not None:
            return ChainResult(True, leaf=leaf, path=tuple(path))
        issuer = next((r for r in roots if signed_by(current, r)), None)
        if issuer is not None:
            if not is_ca(issuer):
                return _fail(ChainProblem.NOT_CA, f"{describe(issuer)} is not a CA", leaf)
            try:
                check_validity(issuer, now, "root certificate")
            except CertificateRejected as exc:
                return _fail(ChainProblem.EXPIRED, str(exc), leaf)
            path.append(issuer)
            return ChainResult(True, leaf=leaf, path=tuple(path))
        issuer = next((c for c in intermediates if c not in path and signed_by(current, c)), None)
        if issuer is None:
            return _fail(
                ChainProblem.UNTRUSTED,
                f"{describe(current)} was not issued by an installed root"
                + (" or a certificate sent with it" if intermediates else ""),
                leaf,
            )
        if not is_ca(issuer):
            return _fail(ChainProblem.NOT_CA, f"{describe(issuer)} is not a CA", leaf)
        path.append(issuer)
        current = issuer
    return _fail(ChainProblem.UNTRUSTED, f"no path shorter than {MAX_PATH} certificates", leaf)


def verify_pem_chain(text: str, roots: Sequence[x509.Certificate], now: dt.datetime) -> ChainResult:
    """`verify_certificates` for PEM text (leaf first); unreadable text is a ChainResult
    with problem UNREADABLE, never an exception."""
    try:
        chain = parse_pem_chain(text)
    except CertificateRejected as exc:
        return _fail(ChainProblem.UNREADABLE, str(exc))
    return verify_certificates(chain, roots, now)
