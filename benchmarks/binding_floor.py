"""How much of the handshake gap to native C is the binding's own Python? A diagnostic.

    python benchmarks/binding_floor.py [--rounds N] [--seconds S]

Runs ``py_bench.py``'s socketpair handshake workload (TLS 1.3, ECDSA) with
three variants, alternating, each round in fresh processes:

- ``connection``: s2npy's ``Connection`` (what the benchmark table measures);
- ``raw``: the same s2n calls made straight through ``s2npy.lib`` with no
  wrapper (create, configure, set fd, negotiate, free): the floor any cffi
  binding driven from Python threads could reach in this harness;
- ``raw+16us``: ``raw`` plus 16 us of busy Python per side after each
  handshake: what each microsecond of per-connection Python costs once the
  two threads serialise on the GIL.

Prints handshakes/s medians and the ratios to ``raw``. It does not write
results: the point is the relative cost, see BENCHMARKS.md ("Why the misses").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("connection", "raw", "raw+16us")


def raw_contestant(opts: dict[str, str], busy_seconds: float):
    """A py_bench contestant making the s2n calls directly (the Config objects only own the configs)."""
    import py_bench
    from s2npy import ffi, lib

    configs = py_bench.S2npyContestant(opts)

    def busy() -> None:
        deadline = time.perf_counter() + busy_seconds
        while time.perf_counter() < deadline:
            pass

    def negotiated(config, mode: int, sock):
        blocked = ffi.new("s2n_blocked_status *")
        conn = lib.s2n_connection_new(mode)
        lib.s2n_connection_set_config(conn, config.ptr)
        lib.s2n_connection_set_blinding(conn, lib.S2N_SELF_SERVICE_BLINDING)
        if mode == lib.S2N_CLIENT:
            lib.s2n_set_server_name(conn, b"localhost")
        lib.s2n_connection_set_fd(conn, sock.fileno())
        if lib.s2n_negotiate(conn, blocked) != lib.S2N_SUCCESS:
            raise RuntimeError("raw handshake failed")
        if busy_seconds:
            busy()
        return conn

    class Raw:
        @staticmethod
        def server(sock, prefer=None):
            return negotiated(configs.server_config, lib.S2N_SERVER, sock)

        @staticmethod
        def client(sock, prefer=None):
            return negotiated(configs.client_config, lib.S2N_CLIENT, sock)

        @staticmethod
        def close(conn, sock) -> None:
            lib.s2n_connection_free(conn)
            sock.close()

    return Raw()


def measure(variant: str, seconds: float) -> float:
    """One variant in a fresh process: handshakes per second."""
    output = subprocess.run([sys.executable, __file__, "--child", variant, "--seconds", str(seconds)],
                            check=True, capture_output=True, text=True).stdout
    return float(output)


def child(variant: str, seconds: float) -> None:
    sys.path.insert(0, str(HERE))
    import py_bench
    import run

    pki = run.write_pki()["ecdsa"]
    opts = {**pki, "policy": run.TLS13_POLICY, "seconds": str(seconds)}
    if variant == "connection":
        contestant = py_bench.S2npyContestant(opts)
    else:
        contestant = raw_contestant(opts, 16e-6 if variant == "raw+16us" else 0.0)
    print(py_bench.run_handshake(contestant, opts)["value"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds)
        return
    samples: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for round_index in range(args.rounds):
        for variant in VARIANTS[round_index % 3:] + VARIANTS[:round_index % 3]:
            samples[variant].append(measure(variant, args.seconds))
    floor = statistics.median(samples["raw"])
    print(json.dumps({variant: {"hs_per_s": round(statistics.median(values)),
                                "ratio_to_raw": round(statistics.median(values) / floor, 3)}
                      for variant, values in samples.items()}, indent=2))


if __name__ == "__main__":
    main()
