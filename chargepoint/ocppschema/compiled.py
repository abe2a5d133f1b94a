"""The `ocpp` library's JSON schemas compiled to Python (fastjsonschema), read as the library
reads them: draft 4, no format checks, nothing filled in. A compiled check takes some 20 us a
frame; the library's jsonschema check 0.3 ms and a trip to a thread.

The three OCPP 1.6 schemas the library checks with Decimal numbers (float precision in charging
schedules: their `multipleOf`) are not compiled: those are left to the library's own check.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp

SCHEMA_DIR = Path(ocpp.__file__).parent
Check = Callable[[Any], Any]  # raises fastjsonschema.JsonSchemaValueException
# (version, action, is a CALLRESULT): the schemas the library checks with Decimal numbers
DECIMAL_CHECKS = frozenset(
    {
        ("1.6", "SetChargingProfile", False),
        ("1.6", "RemoteStartTransaction", False),
        ("1.6", "GetCompositeSchedule", True),
    }
)
_compiled: dict[tuple[str, str, bool], Check | None] = {}


async def compiled_check(version: str, action: str, result: bool) -> Check | None:
    """The compiled schema of `action`'s CALL (or, `result`, its CALLRESULT) in OCPP `version`,
    compiled on a thread at first use; None when the library has no such schema or checks it
    its own way (DECIMAL_CHECKS)."""
    key = (version, action, result)
    if key not in _compiled:
        _compiled[key] = await asyncio.to_thread(compile_schema, *key)
    return _compiled[key]


def compile_schema(version: str, action: str, result: bool) -> Check | None:
    """The schema compiled (see compiled_check), without the cache."""
    if (version, action, result) in DECIMAL_CHECKS:
        return None
    folder = "v" + version.replace(".", "")
    suffix = "Response" if result else ("Request" if version != "1.6" else "")
    path = SCHEMA_DIR / folder / "schemas" / f"{action}{suffix}.json"
    try:
        schema = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    schema["$schema"] = "http://json-schema.org/draft-04/schema#"  # as the library checks
    check: Check = fastjsonschema.compile(schema, use_default=False, use_formats=False)
    return check
