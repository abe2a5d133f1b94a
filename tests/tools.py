"""External tools some tests need: skipped where they are missing, except in CI.

`.ci/run` installs them and sets CHARGEPOINT_REQUIRE_TOOLS=1, so a missing tool fails there
instead of silently skipping its tests.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REQUIRE_ENV = "CHARGEPOINT_REQUIRE_TOOLS"


def tools_required() -> bool:
    return bool(os.environ.get(REQUIRE_ENV))


def require_tool(name: str, hint: str) -> str:
    """The path of the executable `name` (also looked up beside this Python), or skip/fail."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.is_file() else shutil.which(name)
    if found is not None:
        return found
    message = f"{name} is not installed ({hint})"
    if tools_required():
        pytest.fail(f"{message}; {REQUIRE_ENV} is set, so it must be there")
    pytest.skip(message)
