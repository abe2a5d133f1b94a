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
measured ones (a child's peak RSS counts the parent's pages it was forked with).

Usage: python benchmarks/verify_throughput.py [--records 20000] [--jobs 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
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
    out: str


def timed(args: list[str]) -> Run:
    """A command in its own process, measured."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed ({code}):\n{out[-2000:]}")
    # wait4's usage covers the process and the children it reaped (--jobs: its workers)
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out)


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda run: run.seconds)


def main(records: int, jobs: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chargepoint-verify-throughput-") as tmp:
        measure(Path(tmp) / "records.ocmf", records, jobs, rounds)


def measure(path: Path, records: int, jobs: int, rounds: int) -> None:
    t0 = time.monotonic()
    key_hex = timed([sys.executable, __file__, "--write", str(path), "--records", str(records)])
    size = path.stat().st_size / 2**20
    print(f"{records} records signed in {time.monotonic() - t0:.1f} s, file {size:.1f} MiB")
    key = key_hex.out.strip()

    verify = [sys.executable, "-m", "chargepoint", "verify", str(path), "--public-key", key]
    commands = {
        "floor": [sys.executable, "-c", FLOOR, str(path), key],
        "one": verify,
        "jobs": [*verify, "--jobs", str(jobs)],
    }
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            runs[name].append(timed(command))
    floor, one, many = best(runs["floor"]), best(runs["one"]), best(runs["jobs"])

    assert floor.out.strip() == f"{records} verified", floor.out
    lines = one.out.splitlines()
    verified = sum(line.startswith("verified: ") for line in lines)
    assert verified == records == len(lines), f"{verified} of {records} verified"
    assert all(run.out == one.out for run in runs["one"] + runs["jobs"]), "outputs differ"

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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the child's job
    options = parser.parse_args()
    if options.write:
        print(write_records(options.write, options.records))
    else:
        main(options.records, options.jobs, options.rounds)
