"""Firmware download on loopback: throughput and peak memory of the station's downloader
(chargepoint.core.transfer.UrlTransfers, the one the firmware job uses) for a 10 MB and a
50 MB file served over HTTP by a stdlib server in this process.

Each download runs in a fresh interpreter (`--one URL`) that reports its own peak RSS
(ru_maxrss), so the figures do not mix: the file is streamed to disk, so the peak must not grow
with the file size.

Usage: python benchmarks/firmware_download.py [--sizes 10 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MB = 1024 * 1024


def one(url: str, dest: Path) -> None:
    """Download `url` to `dest` and print {seconds, bytes, sha256, peak_rss_kb} as JSON."""
    from chargepoint.core.transfer import UrlTransfers

    transfers = UrlTransfers(timeout=30)
    started = time.perf_counter()
    got = asyncio.run(transfers.download(url, dest, max_bytes=1 << 34))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "bytes": got.size, "peak_rss_kb": peak}))


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50], help="MB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--dest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, Path(args.dest))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "www"
        root.mkdir()
        for size in args.sizes:
            with (root / f"fw-{size}.bin").open("wb") as f:
                for _ in range(size):
                    f.write(os.urandom(MB))

        def handler(*a: object, **kw: object) -> Quiet:
            return Quiet(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.server_address[1]
        print(f"{'file':>8} {'MB/s (median)':>14} {'peak RSS MB (max)':>18}")
        try:
            for size in args.sizes:
                speeds, peaks = [], []
                for run in range(args.runs):
                    dest = Path(tmp) / f"got-{size}-{run}.bin"
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--one",
                            f"http://127.0.0.1:{port}/fw-{size}.bin",
                            "--dest",
                            str(dest),
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    assert result["bytes"] == size * MB
                    speeds.append(result["bytes"] / MB / result["seconds"])
                    peaks.append(result["peak_rss_kb"] / 1024)
                    dest.unlink()
                print(f"{size:>6}MB {statistics.median(speeds):>14.0f} {max(peaks):>18.1f}")
        finally:
            server.shutdown()
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
