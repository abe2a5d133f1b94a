"""A power loss in the middle of a certificate store write leaves its temporary file (for a
pending key: a private key). The next start deletes those of the store's own files, written
by a process that no longer runs, and nothing else."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from chargepoint.core.certificates import (
    CertificateSigning,
    CertificateStore,
    CertificateType,
    SigningParameters,
)
from chargepoint.core.certificates.files import temp_path
from chargepoint.core.security_events import SecurityEvents
from tests.pki import make_ca

# a process that dies (SIGKILL) in write_atomically after the key's bytes are synced, before
# the rename: what a power loss at that instant leaves
KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from chargepoint.core.certificates import CertificateStore

def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)

os.replace = die
CertificateStore(Path(sys.argv[1])).new_pending_key()
"""


def killed_writer(directory: Path) -> int:
    """The pid of a process killed while writing a pending key into `directory`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(directory)],
        cwd=Path(__file__).resolve().parents[1],
        stderr=subprocess.PIPE,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -9, err.decode()
    return proc.pid


class NoOutbox:
    async def enqueue(
        self, kind: str, data: dict[str, object], local_tx_id: int | None = None
    ) -> int:
        return 0


def test_a_key_write_cut_off_by_a_kill_leaves_a_temp_file_the_store_deletes(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "certificates"
    pid = killed_writer(directory)
    station = directory / "station"
    left = temp_path(station / "pending-key.pem", pid)
    assert left.exists(), sorted(p.name for p in station.iterdir())
    assert b"PRIVATE KEY" in left.read_bytes()
    assert not (station / "pending-key.pem").exists()

    store = CertificateStore(directory)
    root = make_ca("csms root")
    assert store.install_root(CertificateType.CSMS_ROOT, root.pem).accepted
    roots = directory / "csms-root"
    root_file = next(roots.glob("*.pem"))
    dead_root_tmp = temp_path(root_file, pid)
    dead_root_tmp.write_bytes(b"half a root")
    # left alone: a write still running (this process), files not the store's own, and the
    # same pattern outside the certificate directories
    running = temp_path(station / "credentials.pem")
    running.write_bytes(b"being written")
    foreign = station / f".notes.txt.{pid}.tmp"
    foreign.write_bytes(b"not ours")
    elsewhere = tmp_path / "secrets" / f".csms-password.{pid}.tmp"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"not the certificate store's")

    removed = store.remove_stale_temp_files()

    assert sorted(removed) == sorted([left.name, dead_root_tmp.name])
    assert not left.exists() and not dead_root_tmp.exists()
    assert running.exists() and foreign.exists() and elsewhere.exists()
    assert root_file.exists()  # the installed root itself stays
    assert store.remove_stale_temp_files() == []


async def test_the_signing_start_cleans_up_before_anything_else(tmp_path: Path) -> None:
    directory = tmp_path / "certificates"
    pid = killed_writer(directory)
    left = temp_path(directory / "station" / "pending-key.pem", pid)
    assert left.exists()
    store = CertificateStore(directory)
    signing = CertificateSigning(
        store,
        SecurityEvents(tmp_path, NoOutbox()),
        "CP-1",
        lambda: "Example CPO",
        SigningParameters,
    )
    signing.start(check_every_s=3600)
    try:
        for _ in range(100):
            if not left.exists():
                break
            await asyncio.sleep(0.02)
        assert not left.exists()
    finally:
        await signing.stop()
