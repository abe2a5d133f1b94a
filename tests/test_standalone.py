"""A fresh clone runs its tests on its own: the real meter data is in tests/vectors/, and nothing
reads the developers' research folder that sits beside their checkouts (a user's clone has none).

The suite is collected, and the vector-based verification tests run, in a copy of the checkout
(every tracked or new, not ignored, file of the working tree) whose parent has no such folder,
with an audit hook that records every file or directory the run opens there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.real_vectors import REPO_ROOT, VECTORS_DIR
from tests.tools import require_tool

# the research folder's name; the needles below are built from it so this file does not match them
RESEARCH_FOLDER = "shared"
FORBIDDEN = (f"../{RESEARCH_FOLDER}", f"CHARGEPOINT_{RESEARCH_FOLDER.upper()}_DIR")
# the one file that may name it: it says where the vectors were copied from
ALLOWED = {"tests/vectors/README.md"}

# Runs pytest with an audit hook; writes the paths it touched that have a RESEARCH_FOLDER
# component, and where the project's packages were imported from, to the report file (argv[1]).
RUNNER = """
import json, os, sys
report, folder, args = sys.argv[1], sys.argv[2], sys.argv[3:]
touched = set()

def hook(event, hook_args):
    if event in ("open", "os.listdir", "os.scandir") and hook_args:
        path = hook_args[0]
        if isinstance(path, (str, bytes, os.PathLike)):
            full = os.path.abspath(os.fsdecode(path))
            if folder in full.split(os.sep):
                touched.add(full)

sys.addaudithook(hook)
import pytest
code = pytest.main(args)
names = ("chargepoint", "meter", "tests", "tests.real_vectors")
modules = {n: getattr(sys.modules.get(n), "__file__", None) for n in names}
with open(report, "w") as out:
    json.dump({"touched": sorted(touched), "modules": modules}, out)
sys.exit(int(code))
"""


def project_files() -> list[str]:
    """The working tree's tracked and new (not ignored) files, as the next commit will hold them."""
    git = require_tool("git", "apt-get install git")
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout: the project's file list comes from git")
    listed = subprocess.run(
        [git, "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    names = [name for name in os.fsdecode(listed.stdout).split("\0") if name]
    # deleted in the working tree but still in the index: gone from the next commit
    return [name for name in names if (REPO_ROOT / name).is_file()]


def run_in(
    checkout: Path, report: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop(FORBIDDEN[1], None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNNER,
            str(report),
            RESEARCH_FOLDER,
            "-p",
            "no:cacheprovider",
            *args,
        ],
        check=False,
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    data: dict[str, object] = json.loads(report.read_text()) if report.exists() else {}
    return done, data


def test_a_copy_without_the_research_folder_collects_and_verifies_the_real_vectors(
    tmp_path: Path,
) -> None:
    checkout = tmp_path / "clone" / "chargepoint"
    for name in project_files():
        target = checkout / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    assert not (checkout.parent / RESEARCH_FOLDER).exists()
    # the vectors are part of the tree, not ignored or left behind
    for vectors in VECTORS_DIR.glob("*.json"):
        copied = checkout / "tests" / "vectors" / vectors.name
        assert copied.read_bytes() == vectors.read_bytes()

    counts = {}
    for label, args in {
        "collect": ("--collect-only", "-q"),
        "verify": ("-q", "tests/test_verification.py"),
    }.items():
        done, report = run_in(checkout, tmp_path / f"{label}.json", *args)
        output = done.stdout[-3000:] + done.stderr[-3000:]
        assert done.returncode == 0, f"{label} failed in the standalone copy:\n{output}"
        assert report["touched"] == [], f"{label} touched the research folder: {report['touched']}"
        modules = report["modules"]
        assert isinstance(modules, dict)
        assert modules["tests.real_vectors"] is not None, f"{label} did not load the vectors"
        for module, where in modules.items():
            # imported from the copy, not from this checkout (the venv's editable install)
            assert where is None or Path(str(where)).is_relative_to(checkout), (module, where)
        found = re.search(r"(\d+) (tests collected|passed)", done.stdout)
        assert found, output
        counts[label] = int(found.group(1))
    assert counts["collect"] > counts["verify"] > 0


def test_no_project_file_names_the_research_folder() -> None:
    offenders = []
    for name in project_files():
        if name in ALLOWED:
            continue
        try:
            text = (REPO_ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{name}: {needle}" for needle in FORBIDDEN if needle in text]
    assert offenders == []
