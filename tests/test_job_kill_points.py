"""Firmware and log jobs cut off by a power loss after each of their durable writes in turn
(a job file saved, a status queued, an upload done): the next start carries the job to its
end and the CSMS's outbox holds each status once, in order, never a status lost between the
queue and the job file, and a file reported Downloaded is not fetched again.

The power loss is `PowerLoss` raised right after the n-th write, for every n until the job
runs through undisturbed; the "restart" is a new FirmwareUpdates / LogUploads on the same
state dir and store, as the daemon builds them at its next start."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final

import pytest

from chargepoint.config import StationConfig
from chargepoint.config.load import load_config
from chargepoint.core.certificates import CertificateStore, CertificateType
from chargepoint.core.diagnostics import LOG_KIND, LogRequest, LogType, LogUploads
from chargepoint.core.firmware import (
    FINISHED,
    FIRMWARE_KIND,
    FirmwareRequest,
    FirmwareUpdates,
)
from chargepoint.core.transfer import Downloaded
from chargepoint.csms.update_messages import update_message
from chargepoint.store import AsyncStore
from tests.kill_jobs import INSTALLED
from tests.station_harness import STATION_ID, station_yaml
from tests.test_firmware import Signer, now_text

FIRMWARE: Final = b"\x7fFIRMWARE" + bytes(range(256)) * 40
LAST_POINTS: Final = 40  # more writes than a job makes: the loop ends before


class PowerLoss(BaseException):
    """The station lost power here (nothing after it runs, like SIGKILL)."""


class Writes:
    """Counts the durable writes; the power fails right after the `fatal`-th (0: never)."""

    def __init__(self, fatal: int = 0) -> None:
        self.fatal = fatal
        self.count = 0

    def done(self) -> None:
        self.count += 1
        if self.count == self.fatal:
            raise PowerLoss(f"after write {self.count}")


class CountedStore:
    """The store, with a power loss possible right after each status is queued."""

    def __init__(self, store: AsyncStore, writes: Writes) -> None:
        self._inner = store
        self._writes = writes

    async def enqueue(self, kind: str, data: dict[str, Any], local_tx_id: int | None = None) -> int:
        seq = await self._inner.enqueue(kind, data, local_tx_id)
        self._writes.done()
        return seq

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Events:
    def __init__(self) -> None:
        self.recorded: list[str] = []

    async def record(self, event_type: object, text: str = "") -> None:
        self.recorded.append(str(event_type))

    async def entries_between(self, oldest: object, latest: object) -> list[Any]:
        return []


class Server:
    """The firmware file's server and the log upload's target (counts what it did)."""

    def __init__(self) -> None:
        self.downloads = 0
        self.uploads = 0
        self.writes = Writes()

    async def download(self, url: str, dest: Path, *, max_bytes: int) -> Downloaded:
        self.downloads += 1
        await asyncio.to_thread(dest.write_bytes, FIRMWARE)
        return Downloaded(dest, len(FIRMWARE), hashlib.sha256(FIRMWARE).hexdigest(), 0)

    async def upload(self, url: str, src: Path, name: str) -> None:
        self.uploads += 1
        self.writes.done()  # a power loss during the upload: it never completes


def station() -> Any:
    return SimpleNamespace(connectors={}, busy=lambda: False, outbox_changed=lambda: None)


async def statuses(store: AsyncStore, kind: str) -> list[str]:
    return [str(m.data["status"]) for m in await store.pending(1000) if m.kind == kind]


async def settle(task: asyncio.Task[None] | None) -> None:
    """Wait for the job's task to end (a power loss ends it with PowerLoss: taken here)."""
    if task is not None:
        await asyncio.wait_for(asyncio.wait([task]), 20)
        if not task.cancelled() and task.exception() is not None:
            assert isinstance(task.exception(), PowerLoss), task.exception()


# ---- firmware ------------------------------------------------------------------------------


def bench_config(tmp: Path, sections: dict[str, Any]) -> StationConfig:
    """A one-connector station's configuration in `tmp` (no CSMS reachable) with `sections`."""
    path = station_yaml(
        tmp / "station.yaml", "ws://127.0.0.1:9/", tmp / "state", connectors=1, sections=sections
    )
    return load_config(path).config


class FirmwareBench:
    def __init__(self, tmp: Path, signer: Signer) -> None:
        self.tmp = tmp
        self.signer = signer
        tmp.mkdir(parents=True, exist_ok=True)
        self.config = bench_config(
            tmp, {"firmware": {"install_command": "simulated", "default_retries": 0}}
        )
        certificates = CertificateStore(tmp / "state" / "certificates")
        root = CertificateType.MANUFACTURER_ROOT
        assert certificates.install_root(root, signer.root.pem).accepted
        self.security: Any = SimpleNamespace(certificates=certificates, events=Events())
        self.server = Server()

    def updates(self, store: AsyncStore, writes: Writes) -> FirmwareUpdates:
        fw = FirmwareUpdates(
            self.config,
            station(),
            CountedStore(store, writes),  # type: ignore[arg-type]
            self.security,
            self.server,
        )
        save = fw._save_blocking

        def counted_save(text: str) -> None:
            save(text)
            writes.done()

        fw._save_blocking = counted_save  # type: ignore[method-assign]

        async def rebooted(simulated: bool) -> None:
            return None

        fw.restart = rebooted
        return fw

    def request(self) -> FirmwareRequest:
        return FirmwareRequest(
            location="http://127.0.0.1:9/chargepoint-1.0.2.bin",
            retrieve_at=now_text(),
            request_id=5,
            signing_certificate=self.signer.cert_pem,
            signature=self.signer.sign(FIRMWARE),
            signed=True,
        )


async def firmware_cut_off_after(tmp: Path, signer: Signer, fatal: int) -> bool:
    """One job, the power lost after write `fatal`, then a start; False when the job made
    fewer writes (nothing was cut off)."""
    bench = FirmwareBench(tmp, signer)
    store = await AsyncStore.open(tmp / "state" / "chargepoint.sqlite", STATION_ID)
    try:
        writes = Writes(fatal)
        first = bench.updates(store, writes)
        try:
            await first.request(bench.request())
            await settle(first._task)
        except PowerLoss:
            pass
        if writes.count < fatal:
            assert await statuses(store, FIRMWARE_KIND) == INSTALLED
            return False
        before = await statuses(store, FIRMWARE_KIND)
        downloads = bench.server.downloads

        second = bench.updates(store, Writes())
        await second.start()
        await settle(second._task)
        after = await statuses(store, FIRMWARE_KIND)
        what = f"power lost after write {fatal} (queued then: {before}): {after}"
        assert after[: len(before)] == before, what
        resumed = after[len(before) :]
        if before[-1:] == ["Downloading"] and resumed[:1] == ["Downloading"]:
            resumed = resumed[1:]  # a download cut off: its new attempt says so again
        cut_in_installer = [*INSTALLED[:4], "InstallationFailed"]
        assert before + resumed in (INSTALLED, cut_in_installer), what
        assert second.job is not None and second.job.step in FINISHED, what
        if "Downloaded" in before:  # the file it reported is the one it installs
            assert bench.server.downloads == downloads == 1, what
        return True
    finally:
        await store.close()


async def test_firmware_step_and_status_exactly_once_whatever_write_the_power_loss_follows(
    tmp_path: Path,
) -> None:
    signer = Signer()
    cut = 0
    for fatal in range(1, LAST_POINTS):
        if not await firmware_cut_off_after(tmp_path / f"cut-{fatal}", signer, fatal):
            break
        cut += 1
    assert 10 <= cut < LAST_POINTS - 1  # every write of the job was a kill point


async def test_signature_verified_queued_then_power_lost_before_the_step_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case the kill harness saw (SignatureVerified lost, Downloaded -> Installing): the
    power fails between queuing SignatureVerified and saving the step."""
    bench = FirmwareBench(tmp_path, Signer())
    store = await AsyncStore.open(tmp_path / "state" / "chargepoint.sqlite", STATION_ID)
    try:
        first = bench.updates(store, Writes())
        real = first._save_blocking

        def die_on_verified(text: str) -> None:
            if '"step": "verified"' in text:
                raise PowerLoss("before the verified step is saved")
            real(text)

        first._save_blocking = die_on_verified  # type: ignore[method-assign]
        await first.request(bench.request())
        await settle(first._task)
        assert await statuses(store, FIRMWARE_KIND) == INSTALLED[:3]
        second = bench.updates(store, Writes())
        await second.start()
        await settle(second._task)
        assert await statuses(store, FIRMWARE_KIND) == INSTALLED
        assert bench.server.downloads == 1
    finally:
        await store.close()


# ---- log uploads ---------------------------------------------------------------------------


class LogBench:
    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.config = bench_config(tmp, {"diagnostics": {"retries": 0}})
        self.security: Any = SimpleNamespace(events=Events())
        self.server = Server()
        self.uploads_dir = tmp / "state" / "uploads"

    def uploads(self, store: AsyncStore, writes: Writes) -> LogUploads:
        self.server.writes = writes
        logs = LogUploads(
            self.config,
            station(),
            CountedStore(store, writes),  # type: ignore[arg-type]
            self.security,
            self.server,
        )
        for name in ("_write_job", "_forget"):
            wrap(logs, name, writes.done)
        return logs


def wrap(obj: Any, name: str, after: Callable[[], None]) -> None:
    real = getattr(obj, name)

    def counted(*args: Any) -> Any:
        result = real(*args)
        after()
        return result

    setattr(obj, name, counted)


@pytest.mark.parametrize("diagnostics", [False, True])
async def test_a_log_job_reports_one_final_status_whatever_write_the_power_loss_follows(
    tmp_path: Path, diagnostics: bool
) -> None:
    cut = 0
    for fatal in range(1, LAST_POINTS):
        tmp = tmp_path / f"cut-{fatal}"
        bench = LogBench(tmp)
        store = await AsyncStore.open(tmp / "state" / "chargepoint.sqlite", STATION_ID)
        try:
            writes = Writes(fatal)
            first = bench.uploads(store, writes)
            request = LogRequest(
                "http://127.0.0.1:9/logs/",
                LogType.SECURITY,
                request_id=None if diagnostics else 9,
                diagnostics=diagnostics,
            )
            try:
                await first.request(request)
                await settle(first._task)
            except PowerLoss:
                pass
            if writes.count < fatal:
                assert await statuses(store, LOG_KIND) == ["Uploading", "Uploaded"]
                assert not bench.uploads_dir.exists() or not list(bench.uploads_dir.iterdir())
                break
            cut += 1
            before = await statuses(store, LOG_KIND)
            uploads = bench.server.uploads

            second = bench.uploads(store, Writes())
            await second.start()
            after = await statuses(store, LOG_KIND)
            what = f"power lost after write {fatal} (queued then: {before}): {after}"
            final = "Uploaded" if "Uploaded" in before else "UploadFailure"
            assert after == ["Uploading", final], what
            assert bench.server.uploads == uploads, what  # not uploaded again
            assert not second.busy()
            # nothing of the job stays: its file and its archive
            assert not bench.uploads_dir.exists() or not list(bench.uploads_dir.iterdir()), what
            # a third start reports nothing more
            third = bench.uploads(store, Writes())
            await third.start()
            assert await statuses(store, LOG_KIND) == after, what
            messages = [m.data for m in await store.pending(1000) if m.kind == LOG_KIND]
            assert {m["request_id"] for m in messages} == {request.request_id}
            assert {m["diagnostics"] for m in messages} == {diagnostics}
            if diagnostics and final == "UploadFailure":  # 1.6 GetDiagnostics' name for it
                assert update_message(LOG_KIND, messages[-1], "1.6") == (
                    "DiagnosticsStatusNotification",
                    {"status": "UploadFailed"},
                )
        finally:
            await store.close()
    assert cut >= 4  # the job file, Uploading, the upload, Uploaded
