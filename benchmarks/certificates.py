"""Time to make a new key pair and its certificate signing request on the controller.

What a signing round costs before SignCertificate goes out (chargepoint.core.certificates):
the key pair (ECDSA P-256 by default, RSA 2048 when `security.key_type: rsa-2048`) written
with mode 0600 as the pending key, and the PKCS#10 request signed with it. RSA key
generation takes a random number of primality tests, so its spread is wide: the median and
the worst of the rounds are printed, with the key generation alone beside the whole step.

Usage: python benchmarks/certificates.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from chargepoint.core.certificates import CertificateStore, KeyType, build_csr, generate_key


def measure(key_type: KeyType, rounds: int, directory: Path) -> tuple[list[float], list[float]]:
    """(key generation alone, key + pending key file + CSR) in seconds, per round."""
    store = CertificateStore(directory)
    keys: list[float] = []
    whole: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        generate_key(key_type)
        keys.append(time.perf_counter() - started)
        started = time.perf_counter()
        key = store.new_pending_key(key_type)
        build_csr(key, "CP-BENCH-0001", "Example CPO")
        whole.append(time.perf_counter() - started)
    return keys, whole


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:8.2f} ms, worst {max(values) * 1000:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for key_type in (KeyType.EC_P256, KeyType.RSA_2048):
            keys, whole = measure(key_type, args.rounds, Path(tmp) / key_type.value)
            print(f"{key_type.value:9} {'key pair:':23}{ms(keys)}")
            step = "key + 0600 file + CSR:"
            print(f"{key_type.value:9} {step:23}{ms(whole)}  ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
