"""The kill harness's job audit finds what it is there to find: statuses out of order, sent
twice without a restart, after the final one or never final; a log archive cut short; a
station certificate file holding half a pair or another key."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.kill_jobs import INSTALLED, check_order, pair_problem, tar_problem
from tests.pki import make_ca, name, pem


def numbered(statuses: list[str], start: int = 10, step: int = 10) -> list[tuple[int, str]]:
    return [(start + step * i, s) for i, s in enumerate(statuses)]


def test_a_straight_firmware_job_is_delivered_once_in_order() -> None:
    check = check_order("firmware", numbered(INSTALLED), boots=[], since=0)
    assert check.problem is None
    assert check.delivered == INSTALLED
    assert check.duplicates == 0


def test_statuses_sent_again_after_a_restart_are_duplicates_not_problems() -> None:
    # killed after SignatureVerified and Installing went out but before their answers were
    # stored: both come again after the boot (index 45), then the job goes on
    statuses = [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "SignatureVerified",
        "Installing",
        "InstallationFailed",
    ]
    check = check_order("firmware", numbered(statuses), boots=[45], since=0)
    assert check.problem is None
    assert check.delivered == [*statuses[:4], "InstallationFailed"]
    assert check.duplicates == 2


def test_a_download_begun_again_after_downloaded_is_a_problem_even_across_a_restart() -> None:
    # the station keeps a file it reported Downloaded (the status is queued before the step
    # is saved, and a resumed job sees it in the outbox): fetching it again is a step back
    # (Downloaded queued before the kill, sent after the boot at index 15, then fetched again)
    statuses = ["Downloading", "Downloaded", "Downloading", "Downloaded", "SignatureVerified"]
    problem = check_order("firmware", numbered(statuses), boots=[15], since=0).problem
    assert problem is not None and "Downloaded -> Downloading" in problem
    problem = check_order("firmware", numbered(statuses), boots=[], since=0).problem
    assert problem is not None and "Downloaded -> Downloading" in problem


def test_a_status_queued_before_the_kill_goes_out_after_the_boot_then_the_job_goes_on() -> None:
    # Downloaded was queued, not sent, when the kill came: after the boot (index 15) it goes
    # out, then the resumed job goes on from there
    statuses = ["Downloading", "Downloaded", "SignatureVerified", "Installing"]
    check = check_order("firmware", numbered(statuses), boots=[15], since=0)
    assert check.problem is None and check.delivered == statuses
    # a resumed download may say once again where it is (Downloading), not twice
    again = ["Downloading", "Downloading", "Downloaded"]
    check = check_order("firmware", numbered(again), boots=[15], since=0)
    assert check.problem is None and check.delivered == ["Downloading", "Downloaded"]


def test_a_lost_status_is_a_problem_even_across_a_restart() -> None:
    statuses = ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
    problem = check_order("firmware", numbered(statuses), boots=[25], since=0).problem
    assert problem is not None and "Downloaded -> Installing" in problem


def test_a_status_twice_without_a_restart_is_a_problem() -> None:
    statuses = ["Downloading", "Downloaded", "SignatureVerified", "SignatureVerified"]
    problem = check_order("firmware", numbered(statuses), boots=[], since=0).problem
    assert problem is not None and "SignatureVerified -> SignatureVerified" in problem


def test_skipped_steps_and_statuses_after_the_final_one_are_problems() -> None:
    skipped = check_order("firmware", numbered(["Downloading", "Installed"]), [], 0).problem
    assert skipped is not None and "Downloading -> Installed" in skipped
    late = check_order("log", numbered(["Uploading", "Uploaded", "Uploading"]), [], 0).problem
    assert late is not None and "after the final Uploaded" in late
    # a boot before the job started does not excuse anything
    twice = check_order("log", numbered(["Uploading", "Uploading"]), boots=[5], since=0).problem
    assert twice is not None


def test_a_job_that_stops_halfway_has_no_final_status() -> None:
    check = check_order("log", numbered(["Uploading"]), boots=[], since=0)
    assert check.problem is None and check.delivered == ["Uploading"]  # the audit names it


def archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for n in range(3):
            data = (f"log line {n}\n" * 2000).encode()
            info = tarfile.TarInfo(f"logs/daemon.log.{n}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_an_uploaded_archive_must_open_whole(tmp_path: Path) -> None:
    data = archive()
    whole = tmp_path / "whole"
    whole.mkdir()
    (whole / "CP.tar.gz").write_bytes(data)
    assert tar_problem(whole) is None
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "CP.tar.gz").write_bytes(data[: len(data) // 2])
    problem = tar_problem(cut)
    assert problem is not None and "does not open" in problem
    assert tar_problem(tmp_path / "nothing") == "0 files uploaded to nothing/"


def credentials(key: ec.EllipticCurvePrivateKey, cert_pem: str) -> bytes:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem.encode() + key_pem


def test_the_station_certificate_file_must_hold_the_accepted_pair_whole() -> None:
    ca = make_ca("csms ca")
    key = ec.generate_private_key(ec.SECP256R1())
    cert_pem = pem(ca.issue(name("CP-TEST-001"), key.public_key()))
    good = credentials(key, cert_pem)
    assert pair_problem(good, cert_pem) is None
    half = pair_problem(good[: len(good) - 40], cert_pem)
    assert half is not None and "not whole" in half
    assert pair_problem(cert_pem.encode(), cert_pem) == "credentials.pem has no private key"
    other_key = credentials(ec.generate_private_key(ec.SECP256R1()), cert_pem)
    assert pair_problem(other_key, cert_pem) == "credentials.pem: the key is not the certificate's"
    newer = pem(ca.issue(name("CP-TEST-001"), key.public_key()))
    mismatch = pair_problem(good, newer)
    assert mismatch is not None and "another certificate" in mismatch
