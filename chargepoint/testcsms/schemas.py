"""The test CSMS's schema check of every frame, both directions: the OCPP library's JSON schemas
compiled to Python (fastjsonschema), checked inline.

The verdict is the library's: the schemas are read as the library reads them (draft 4, no
format checks, nothing filled in), the three OCPP 1.6 schemas the library checks with Decimal
numbers (their `multipleOf`) are left to the library, and a frame the compiled check refuses
is checked again by the library (`ocpp.messages.validate_payload`), so that the error a test
sees (the CALLERROR code, the cause) is the library's own. The compiled check costs some 20 us
a frame; the library's jsonschema check 0.3 ms and a trip to a thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp
from ocpp.messages import (  # type: ignore[import-untyped, unused-ignore]
    Call,
    CallResult,
    validate_payload,
)

_SCHEMAS = Path(ocpp.__file__).parent
_Check = Callable[[Any], Any]
_compiled: dict[tuple[str, str, bool], _Check | None] = {}
# the library parses these with Decimal (float precision in charging schedules): its own check
LIBRARY_CHECKS = frozenset(
    {
        ("1.6", "SetChargingProfile", False),
        ("1.6", "RemoteStartTransaction", False),
        ("1.6", "GetCompositeSchedule", True),
    }
)


async def compiled_check(version: str, action: str, result: bool) -> _Check | None:
    """The compiled schema of `action`'s CALL (or, `result`, its CALLRESULT) in OCPP `version`
    (compiled on a thread at first use); None when the library has no such schema or checks it
    its own way (LIBRARY_CHECKS)."""
    key = (version, action, result)
    if key not in _compiled:
        compiled = None if key in LIBRARY_CHECKS else await asyncio.to_thread(_compile, *key)
        _compiled[key] = compiled
    return _compiled[key]


def _compile(version: str, action: str, result: bool) -> _Check | None:
    folder = "v" + version.replace(".", "")
    suffix = "Response" if result else ("Request" if version != "1.6" else "")
    path = _SCHEMAS / folder / "schemas" / f"{action}{suffix}.json"
    try:
        schema = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    schema["$schema"] = "http://json-schema.org/draft-04/schema#"  # as the library checks
    check: _Check = fastjsonschema.compile(schema, use_default=False, use_formats=False)
    return check


async def check_payload(message: Call | CallResult, version: str) -> None:
    """`ocpp.messages.validate_payload(message, version)`, with the same verdict and errors
    (OCPPError when the payload breaks its schema), checked inline by the compiled schema."""
    check = await compiled_check(version, str(message.action), isinstance(message, CallResult))
    if check is not None:
        try:
            check(message.payload)
            return
        except fastjsonschema.JsonSchemaValueException:
            pass  # the library names the error (and has the last word)
    await validate_payload(message, version)
