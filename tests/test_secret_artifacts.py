"""No secret in any artefact of a full session with security profile 2 (Basic auth over TLS,
debug logging; tests/full_session.py): neither password (the configured one, the one the CSMS
set through OCPP, the web operator's), nor either as the Basic-auth header carries it (base64
of `station:password`), nor a private key, in the daemon's journal output, any file under the
state directory (the store included; not the 0600 files that hold them by design), the
uploaded diagnostics and security log archives, or `chargepoint status`."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

import pytest

from chargepoint.config import load_config
from chargepoint.core.diagnostics import all_secrets
from tests.full_session import NEW_PASSWORD, PASSWORD, FullSession, run_full_session
from tests.station_harness import STATION_ID, station_yaml


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        found: dict[str, bytes] = {}
        for member in tar.getmembers():
            f = tar.extractfile(member)
            assert f is not None
            found[member.name] = f.read()
        return found


def key_lines(path: Path) -> list[bytes]:
    """The base64 lines of the PEM private key(s) in `path`."""
    found: list[bytes] = []
    inside = False
    for line in path.read_bytes().splitlines():
        if b"BEGIN" in line and b"PRIVATE KEY" in line:
            inside = True
        elif b"END" in line and b"PRIVATE KEY" in line:
            inside = False
        elif inside and len(line) >= 40:
            found.append(line)
    return found


def leaks(
    session: FullSession, where: str, content: bytes, keys: list[bytes], tokens: list[str]
) -> list[str]:
    found = [
        f"{where}: {secret[:6]}..."
        for secret in [*session.secret_forms(), *tokens]
        if secret.encode() in content
    ]
    if b"PRIVATE KEY" in content or any(line in content for line in keys):
        found.append(f"{where}: a private key")
    return found


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_no_password_or_private_key_in_any_artefact(tmp_path: Path, version: str) -> None:
    session = await run_full_session(tmp_path, version)
    state = session.state
    private_keys = [
        *sorted(state.rglob("*.key")),
        state / "certificates" / "station" / "credentials.pem",
    ]
    keys = [line for path in private_keys for line in key_lines(path)]
    # a control token, where the control interface has one (a file of its own)
    token_files = {p for p in state.rglob("*token*") if p.is_file()}
    tokens = [t for t in (p.read_text().strip() for p in token_files) if len(t) >= 8]
    assert len(keys) >= 3  # the station's TLS key and the simulated meters' keys
    # the password the CSMS set is in its own 0600 file, and the session used it
    assert (state / "secrets" / "csms-password").read_text() == NEW_PASSWORD
    assert " DEBUG " in session.journal  # the journal is the debug log
    assert ("AuthorizationKey" if version == "1.6" else "BasicAuthPassword") in session.journal
    found: list[str] = []
    found += leaks(session, "journal", session.journal.encode(), keys, tokens)
    found += leaks(session, "status", session.status_output.encode(), keys, tokens)
    checked = 0
    for path in sorted(state.rglob("*")):
        exempt = session.secret_files | token_files
        if not path.is_file() or path in exempt or path.suffix == ".key":
            continue
        checked += 1
        content = path.read_bytes()
        found += leaks(session, str(path.relative_to(state)), content, keys, tokens)
    assert checked >= 10
    assert (state / "chargepoint.sqlite").stat().st_size > 0
    assert (state / "logs" / "chargepoint.log").stat().st_size > 0
    names: set[str] = set()
    for archive, data in session.uploads.items():
        for name, content in members(data).items():
            names.add(name)
            found += leaks(session, f"{archive}:{name}", content, keys, tokens)
    assert {"config.json", "status.json", "security.log", "logs/chargepoint.log"} <= names
    assert not found, found


def test_archives_are_checked_for_the_passwords_the_csms_set_and_their_header_form(
    tmp_path: Path,
) -> None:
    cfg = station_yaml(
        tmp_path / "station.yaml",
        "ws://127.0.0.1:9/ocpp",
        tmp_path / "state",
        csms={"security_profile": 1, "password": PASSWORD},
    )
    secrets = tmp_path / "state" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "csms-password").write_text(NEW_PASSWORD)
    found = all_secrets(load_config(cfg).config, tmp_path / "state", STATION_ID)
    for secret in (PASSWORD, NEW_PASSWORD):
        header = base64.b64encode(f"{STATION_ID}:{secret}".encode()).decode()
        assert secret in found and header in found
