"""How much of the gap to native C is the binding's own Python? A diagnostic.

    python benchmarks/binding_floor.py [--workload handshake|bulk] [--rounds N] [--seconds S]

Runs one of ``py_bench.py``'s workloads (TLS 1.3, ECDSA) with these variants,
alternating, each round in fresh processes:

- ``connection``: s2npy's ``Connection`` (what the benchmark table measures);
- ``raw``: the same s2n calls made straight through ``s2npy.lib`` with no
  wrapper (create or reuse a wiped connection as ``Config`` does, configure,
  set fd, negotiate, wipe for reuse; for bulk, one
  ``s2n_send`` per write and one ``s2npy_recv`` burst, with the same
  read-ahead, per read): the floor any cffi binding driven from Python
  threads could reach in this harness. For bulk, ``Connection`` goes below
  that floor: its send/recv_into are one call into ``s2npy._datapath`` (C
  API: no cffi buffer export), so there it measures above 1.0x of raw;
- ``raw-gil`` (handshake only): ``raw``, but the set-up is the one call
  ``Connection`` makes with the GIL held (``s2npy._datapath.create_connection``)
  instead of one cffi call per setting, each of which hands the GIL to the
  other thread: the floor of a binding whose connections cost no Python at all;
- ``raw+16us`` (handshake only): ``raw`` plus 16 us of busy Python per side
  after each handshake: what each microsecond of per-connection Python costs
  once the two threads serialise on the GIL.

``handshake`` is the socketpair handshake row, ``bulk`` the 64 KiB-writes row
(1 GiB at the default 1 s). Prints the medians (handshakes/s or MB/s) and the ratios to ``raw``.
It does not write results: the point is the relative cost, see BENCHMARKS.md
("Why the misses").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_args import at_least, positive_seconds

HERE = Path(__file__).resolve().parent
VARIANTS = {"handshake": ("connection", "raw", "raw-gil", "raw+16us"), "bulk": ("connection", "raw")}


def raw_contestant(opts: dict[str, str], busy_seconds: float, gil_held_setup: bool = False):
    """A py_bench contestant making the s2n calls directly (the Config objects only own the configs)."""
    import py_bench
    from s2npy import ffi, lib
    from s2npy._native import address
    from s2npy.connection import _ACCEPT_ANY_HOST, _CONNECTION_POINTER, READ_AHEAD_SIZE, _create_connection

    configs = py_bench.S2npyContestant(opts)

    def busy() -> None:
        deadline = time.perf_counter() + busy_seconds
        while time.perf_counter() < deadline:
            pass

    idle: dict[int, list] = {lib.S2N_SERVER: [], lib.S2N_CLIENT: []}  # wiped for reuse, as Config keeps them

    def set_up(config, mode: int, sock):
        """A connection set up as Connection's create call does: one cffi call per setting."""
        conn = idle[mode].pop() if idle[mode] else lib.s2n_connection_new(mode)
        lib.s2n_connection_set_config(conn, config.ptr)
        lib.s2n_connection_set_blinding(conn, lib.S2N_SELF_SERVICE_BLINDING)
        if mode == lib.S2N_CLIENT:
            lib.s2n_set_server_name(conn, b"localhost")
        lib.s2n_connection_set_fd(conn, sock.fileno())
        return conn

    def set_up_gil_held(config, mode: int, sock):
        """The same settings in Connection's one create call, made with the GIL held."""
        reuse = address(idle[mode].pop()) if idle[mode] else 0
        server = mode == lib.S2N_SERVER
        made = _create_connection(reuse, mode, address(config.ptr), 0, _ACCEPT_ANY_HOST if server else 0, 0,
                                  lib.S2N_SELF_SERVICE_BLINDING, None if server else b"localhost", sock.fileno(), 0)
        if made <= 0:
            raise RuntimeError(f"raw set-up failed at step {-made}")
        return ffi.cast(_CONNECTION_POINTER, made)

    def handshake(conn) -> None:
        if lib.s2n_negotiate(conn, ffi.new("s2n_blocked_status *")) != lib.S2N_SUCCESS:
            raise RuntimeError("raw handshake failed")
        if busy_seconds:
            busy()

    set_up_connection = set_up_gil_held if gil_held_setup else set_up

    def started(side: str, sock):
        """A connection set up on ``sock`` for ``side`` ("server" or "client"), not negotiated."""
        server = side == "server"
        return set_up_connection(configs.server_config if server else configs.client_config,
                                 lib.S2N_SERVER if server else lib.S2N_CLIENT, sock)

    def negotiated(side: str, sock, prefer=None):
        conn = started(side, sock)
        if prefer == "throughput":
            lib.s2n_connection_prefer_throughput(conn)
        handshake(conn)
        return conn if prefer is None else RawData(conn, sock.fileno())

    class RawData:
        """Bulk's two calls on a raw connection, with no checks: one s2n call each."""

        def __init__(self, conn, fd: int) -> None:
            self.conn, self.blocked, self.failed = conn, ffi.new("s2n_blocked_status *"), ffi.new("int *")
            self.reader = ffi.new("struct s2npy_fd_reader *", {"fd": fd})
            self.ahead = ffi.new("uint8_t[]", READ_AHEAD_SIZE)  # as Connection gives 64 KiB readers
            self.reader.ahead, self.reader.capacity = self.ahead, READ_AHEAD_SIZE

        def recv_into(self, buffer) -> int:
            with ffi.from_buffer(buffer, require_writable=True) as view:
                return lib.s2npy_recv(self.conn, view, len(view), self.reader, self.blocked, self.failed)

        def sendall(self, data: bytes) -> None:
            sent = lib.s2n_send(self.conn, data, len(data), self.blocked)
            if sent != len(data):
                raise RuntimeError("raw send: partial or failed")

    class Raw:
        """A py_bench contestant, and handshake_phases' steps (start, negotiate, close)."""

        start = staticmethod(started)
        negotiate = staticmethod(handshake)

        @staticmethod
        def server(sock, prefer=None):
            return negotiated("server", sock, prefer)

        @staticmethod
        def client(sock, prefer=None):
            return negotiated("client", sock, prefer)

        @staticmethod
        def close(conn, sock) -> None:
            kept = idle[lib.s2n_connection_get_mode(conn)]
            if len(kept) < 8 and lib.s2n_connection_wipe(conn) == lib.S2N_SUCCESS:
                kept.append(conn)
            else:
                lib.s2n_connection_free(conn)
            sock.close()

    return Raw()


def measure(workload: str, variant: str, seconds: float) -> float:
    """One variant in a fresh process: handshakes or MB per second."""
    output = subprocess.run([sys.executable, __file__, "--workload", workload, "--child", variant,
                             "--seconds", str(seconds)], check=True, capture_output=True, text=True).stdout
    return float(output)


def child(workload: str, variant: str, seconds: float) -> None:
    sys.path.insert(0, str(HERE))
    import py_bench
    import run

    pki = run.write_pki()["ecdsa"]
    total = max(16, int(seconds * 1024)) << 20  # bulk: 1 GiB per second asked (~0.5 s here), whole MiB
    opts = {**pki, "policy": run.TLS13_POLICY, "seconds": str(seconds), "chunk": "65536", "total": str(total)}
    if variant == "connection":
        contestant = py_bench.S2npyContestant(opts)
    else:
        contestant = raw_contestant(opts, 16e-6 if variant == "raw+16us" else 0.0, gil_held_setup=variant == "raw-gil")
    run_workload = py_bench.run_bulk if workload == "bulk" else py_bench.run_handshake
    print(run_workload(contestant, opts)["value"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=VARIANTS, default="handshake")
    parser.add_argument("--rounds", type=at_least(1), default=5)
    parser.add_argument("--seconds", type=positive_seconds, default=1.0)
    parser.add_argument("--child", choices=VARIANTS["handshake"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.workload, args.child, args.seconds)
        return
    variants = VARIANTS[args.workload]
    samples: dict[str, list[float]] = {variant: [] for variant in variants}
    for round_index in range(args.rounds):
        turn = round_index % len(variants)
        for variant in variants[turn:] + variants[:turn]:
            samples[variant].append(measure(args.workload, variant, args.seconds))
    floor = statistics.median(samples["raw"])
    unit = "mb_per_s" if args.workload == "bulk" else "hs_per_s"
    print(json.dumps({variant: {unit: round(statistics.median(values)),
                                "ratio_to_raw": round(statistics.median(values) / floor, 3)}
                      for variant, values in samples.items()}, indent=2))


if __name__ == "__main__":
    main()
