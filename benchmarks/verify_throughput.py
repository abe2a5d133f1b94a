"""`chargepoint verify` of a file of signed OCMF records against its floor, in one run.

Writes N BSM-format OCMF records (one per line, as a meter's file holds them), each signed with
the same P-256 test key, then measures, each in its own process (wall time, CPU time and peak
RSS):
- the floor: plain `cryptography` verifying the same N signatures (SHA-256 of the exact payload
  bytes, prehashed, one key object; the records split at their last `|`, nothing else parsed);
- `chargepoint verify FILE --public-key KEY`, on one core;
- `chargepoint verify FILE --public-key KEY --jobs 2`;
and prints each one's ratio to the floor. The outputs of --jobs 1 and --jobs 2 must be equal.
Each is run `--rounds` times, interleaved, and its best round counts (the machine may be
shared). The records are signed in a child process, so this process stays smaller than the
measured ones (a child's peak RSS counts the parent's pages it was forked with). Then, for
memory: one core on a file of `--memory-factor` times as many records (the same file
repeated), whose peak RSS must be that of the small file's (the file is streamed).

Every command runs as a user runs it: from compiled bytecode (kept in the temporary
directory; a first untimed run compiles it) and with its output block-buffered into the pipe,
whatever PYTHONDONTWRITEBYTECODE or PYTHONUNBUFFERED say here (unbuffered, each of the
command's lines would be a system call of its own, and the floor prints one line).

Usage: python benchmarks/verify_throughput.py [--records 20000] [--jobs 2] [--rounds 3]
           [--memory-factor 5]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = (
    '{"FV":"1.0","GI":"BAUER Electronic BSM-WS36A-H01-1311-0000","GS":"001BZR1521070006",'
    '"GV":"1.9:32CA:AFF4, f1d3d06","PG":"T%(rcnt)d","MV":"BAUER Electronic",'
    '"MM":"BSM-WS36A-H01-1311-0000","MS":"001BZR1521070006","IS":true,"IT":"UNDEFINED",'
    '"ID":"rfid:%(tag)s","X2":"DE*XYZ*E0001*1","RD":[{"TM":"%(tm)s S","TX":"%(tx)s",'
    '"RV":%(rv)s,"RI":"1-0:1.8.0*198","RU":"kWh","XV":%(xv)s,"XI":"1-0:1.8.0*255","XU":"kWh",'
    '"XT":%(xt)d,"RT":"AC","EF":"","ST":"G"}]}'
)

# The floor, run as its own process like the command: read, split, hash, verify; nothing else.
FLOOR = """
import sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import load_der_public_key

key = load_der_public_key(bytes.fromhex(sys.argv[2]))
algorithm = ec.ECDSA(Prehashed(hashes.SHA256()))
verified = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        payload, _, signature = line.rstrip(b"\\n")[5:].rpartition(b"|")
        sd = signature[signature.index(b'"SD":"') + 6 : -2]
        digest = hashes.Hash(hashes.SHA256())
        digest.update(payload)
        key.verify(bytes.fromhex(sd.decode()), digest.finalize(), algorithm)
        verified += 1
print(f"{verified} verified")
"""


def write_records(path: Path, count: int) -> str:
    """`count` signed records, one per line; returns the public key (DER hex)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from meter.bsm.ocmf import sign_and_assemble
    from meter.proof.keys import public_der

    key = ec.generate_private_key(ec.SECP256R1())
    total = 1_000_000
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            begin = n % 2 == 0
            energy = 10 * (1 + n % 2000)
            day, sec = divmod(n * 300, 86400)
            tm = (
                f"2026-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{sec // 3600:02d}:"
                f"{sec // 60 % 60:02d}:{sec % 60:02d},000+0000"
            )
            fields = {
                "rcnt": n + 1,
                "tag": f"{n // 2:08x}",
                "tm": tm,
                "tx": "B" if begin else "E",
                "rv": "0.00" if begin else f"{energy / 1000:.2f}",
                "xv": f"{total / 1000:.2f}",
                "xt": 1 if begin else 2,
            }
            out.write(sign_and_assemble(key, PAYLOAD % fields) + "\n")
            if not begin:
                total += energy
    return public_der(key).hex()


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    rss_mib: float  # peak RSS of the largest process of the run
    out: str  # the first lines of the output
    lines: int
    verified: int  # lines that start with "verified: "
    digest: str  # SHA-256 of the whole output


def timed(args: list[str], env: dict[str, str] | None = None) -> Run:
    """A command in its own process, measured. Its output is read in large blocks into a pipe
    that holds 1 MiB (the command never waits for this process to read) and kept only as a
    digest and counts: this process stays small, since a child it starts counts the pages of
    this one in its peak RSS."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    assert proc.stdout is not None
    with contextlib.suppress(OSError, AttributeError):  # Linux only, up to its pipe-max-size
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 2**20)
    digest = hashlib.sha256()
    head = b""
    rest = b""  # a line not yet ended
    lines = verified = 0
    while block := os.read(proc.stdout.fileno(), 2**20):
        digest.update(block)
        head = head or block[:4096]
        text = rest + block
        ended = text.rfind(b"\n") + 1
        complete, rest = text[:ended], text[ended:]
        lines += complete.count(b"\n")
        verified += (b"\n" + complete).count(b"\nverified: ")
    lines += bool(rest)
    verified += rest.startswith(b"verified: ")
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    out = head.decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed ({code}):\n{out[-2000:]}")
    # wait4's usage covers the process and the children it reaped (--jobs: its workers)
    return Run(
        seconds,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        out,
        lines,
        verified,
        digest.hexdigest(),
    )


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda run: run.seconds)


def main(records: int, jobs: int, rounds: int, memory_factor: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chargepoint-verify-throughput-") as tmp:
        measure(Path(tmp), records, jobs, rounds, memory_factor)


def user_environment(tmp: Path) -> dict[str, str]:
    """This environment, with bytecode kept (under `tmp`) and output buffered."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def measure(tmp: Path, records: int, jobs: int, rounds: int, memory_factor: int) -> None:
    path = tmp / "records.ocmf"
    t0 = time.monotonic()
    key_hex = timed([sys.executable, __file__, "--write", str(path), "--records", str(records)])
    size = path.stat().st_size / 2**20
    print(f"{records} records signed in {time.monotonic() - t0:.1f} s, file {size:.1f} MiB")
    key = key_hex.out.strip()

    env = user_environment(tmp)
    verify = [sys.executable, "-m", "chargepoint", "verify", str(path), "--public-key", key]
    with path.open(encoding="utf-8") as f:
        first = f.readline().strip()
    timed([sys.executable, "-m", "chargepoint", "verify", first, "--public-key", key], env)
    commands = {
        "floor": [sys.executable, "-c", FLOOR, str(path), key],
        "one": verify,
        "jobs": [*verify, "--jobs", str(jobs)],
    }
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            runs[name].append(timed(command, env))
    floor, one, many = best(runs["floor"]), best(runs["one"]), best(runs["jobs"])

    assert floor.out.strip() == f"{records} verified", floor.out
    assert one.verified == records == one.lines, f"{one.verified} of {records} verified"
    assert all(run.digest == one.digest for run in runs["one"] + runs["jobs"]), "outputs differ"

    print(
        f"floor (plain cryptography): {floor.seconds:.2f} s, CPU {floor.cpu_seconds:.2f} s, "
        f"peak RSS {floor.rss_mib:.1f} MiB"
    )
    print(
        f"chargepoint verify: {one.seconds:.2f} s = {one.seconds / floor.seconds:.2f}x the floor "
        f"(CPU {one.cpu_seconds:.2f} s = {one.cpu_seconds / floor.cpu_seconds:.2f}x), "
        f"{records / one.seconds:.0f} records/s, peak RSS {one.rss_mib:.1f} MiB "
        f"({one.rss_mib / floor.rss_mib:.2f}x)"
    )
    print(
        f"chargepoint verify --jobs {jobs}: {many.seconds:.2f} s = "
        f"{many.seconds / floor.seconds:.2f}x the floor, {records / many.seconds:.0f} records/s, "
        f"peak RSS {many.rss_mib:.1f} MiB (largest process); output identical to one process's"
    )
    print(f"best of {rounds} rounds each, on {os.cpu_count()} cores")
    if memory_factor > 1:
        flat(tmp, path, records, memory_factor, key, env, one)


def flat(
    tmp: Path, path: Path, records: int, factor: int, key: str, env: dict[str, str], one: Run
) -> None:
    """One core on `factor` times the records: the peak RSS stays that of the small file."""
    big = tmp / "more-records.ocmf"
    with big.open("wb") as out:
        for _ in range(factor):
            with path.open("rb") as f:
                shutil.copyfileobj(f, out)
    run = timed([sys.executable, "-m", "chargepoint", "verify", str(big), "--public-key", key], env)
    assert run.verified == run.lines == records * factor, f"{run.verified} of {run.lines}"
    print(
        f"memory: peak RSS {one.rss_mib:.1f} MiB for {records} records, {run.rss_mib:.1f} MiB "
        f"for {records * factor} ({big.stat().st_size / 2**20:.0f} MiB file, "
        f"{records * factor / run.seconds:.0f} records/s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--memory-factor",
        type=int,
        default=5,
        help="also verify a file this many times larger, for its peak RSS (1: skip)",
    )
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the child's job
    options = parser.parse_args()
    if options.write:
        print(write_records(options.write, options.records))
    else:
        main(options.records, options.jobs, options.rounds, options.memory_factor)
