"""The test CSMS's schema check of every frame, both directions: the OCPP library's JSON schemas
compiled to Python (fastjsonschema), checked inline.

The verdict is the library's: the schemas are compiled as the library reads them (the
station's compiled checks, chargepoint.ocppschema), the three OCPP 1.6 schemas the library
checks with Decimal numbers are left to the library, and a frame the compiled check refuses is
checked again by the library (`ocpp.messages.validate_payload`), so that the error a test sees
(the CALLERROR code, the cause) is the library's own.
"""

from __future__ import annotations

import fastjsonschema
from ocpp.messages import (  # type: ignore[import-untyped, unused-ignore]
    Call,
    CallResult,
    validate_payload,
)

from chargepoint.ocppschema.compiled import compiled_check


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
