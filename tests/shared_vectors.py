"""Access to the real-device data in ../shared/vectors (beside the project checkout)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """`../shared` beside the checkout, or $CHARGEPOINT_SHARED_DIR."""
    env = os.environ.get("CHARGEPOINT_SHARED_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared"
    if not (path / "vectors").is_dir():
        raise FileNotFoundError(
            f"real meter vectors not found at {path}/vectors: put the project's shared/ folder "
            "beside the checkout or set CHARGEPOINT_SHARED_DIR"
        )
    return path


@cache
def bsm_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_dir() / "vectors" / "bsm-vectors.json").read_text())
    return data


@cache
def multivendor_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (shared_dir() / "vectors" / "ocmf-multivendor.json").read_text()
    )
    return data


def bsm_public_key_hex(name: str) -> str:
    key: str = bsm_vectors()["public_keys"][name]["der_hex"]
    return key
