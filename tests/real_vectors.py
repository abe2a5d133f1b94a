"""The real meter data in tests/vectors: the project's copies, each entry naming its source."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS_DIR = Path(__file__).resolve().parent / "vectors"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS_DIR / name).read_text(encoding="utf-8"))
    return data


@cache
def bsm_vectors() -> dict[str, Any]:
    """Two Bauer BSM-WS36A meters: keys, snapshots, OCMF records, register dumps."""
    return _load("bsm-vectors.json")


@cache
def multivendor_vectors() -> dict[str, Any]:
    """OCMF records of other meter makers and curves, each with its public key."""
    return _load("ocmf-multivendor.json")


def bsm_public_key_hex(name: str) -> str:
    key: str = bsm_vectors()["public_keys"][name]["der_hex"]
    return key
