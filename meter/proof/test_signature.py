"""The marker of records the station signed in TEST MODE (not by a calibrated meter).

Every output of the project (lists, exports, verification) checks it, so a test signature is
never taken for a meter's.
"""

from __future__ import annotations

from meter.proof.ocmf import OcmfRecord, parse_ocmf

TEST_MARKER = "NOT calibration-law compliant"
TEST_MANUFACTURER = "chargepoint station TEST signature"
TEST_MODEL = f"{TEST_MARKER}: signed by the station, not by the meter"


def is_test_signature(record: OcmfRecord) -> bool:
    """A record the station signed in test mode (not by a meter)."""
    return TEST_MARKER in str(record.payload.get("MM", "")) or TEST_MARKER in str(
        record.payload.get("GI", "")
    )


def is_test_signature_text(ocmf: str) -> bool:
    try:
        return is_test_signature(parse_ocmf(ocmf))
    except ValueError:
        return False
