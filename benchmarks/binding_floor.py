"""How much of the gap to native C is the binding's own Python? A diagnostic.

    python benchmarks/binding_floor.py [--workload handshake|bulk] [--row ROW] [--rounds N] [--seconds S]

Runs one of ``py_bench.py``'s workloads (TLS 1.3, ECDSA; for handshakes ``--row`` picks
another socketpair row of the benchmark table: ``hs_tls13_rsa``, ``hs_tls12_ecdsa``,
``hs_tls13_resumed``) with these variants, alternating, each round in fresh processes:

- ``connection``: s2npy's ``Connection`` (what the benchmark table measures);
- ``raw``: the same s2n calls made straight through ``s2npy.lib`` with no
  wrapper (create or reuse a wiped connection as ``Config`` does, configure
  (a resuming client's session too), set fd, negotiate, wipe for reuse; for bulk, one
  ``s2n_send`` per write and one ``s2npy_recv`` burst, with the same
  read-ahead, per read): the floor any cffi binding driven from Python
  threads could reach in this harness. For bulk, ``Connection`` goes below
  that floor: its send/recv_into are one call into ``s2npy._datapath`` (C
  API: no cffi buffer export), so there it measures above 1.0x of raw;
- ``raw-gil`` (handshake only): ``raw``, but the set-up is the one call
  ``Connection`` makes (``s2npy._datapath.create_connection``, which also sets the
  session, with the GIL held: it releases it only to allocate a connection, which
  reuse avoids) instead of one cffi call per setting, each of which hands the GIL
  to the other thread: the same s2n calls set up as ``Connection`` sets them up;
- ``raw+16us`` (handshake only): ``raw`` plus 16 us of busy Python per side
  after each handshake: what each microsecond of per-connection Python costs
  once the two threads serialise on the GIL;
- ``one-call`` (handshake only): py_bench's harness (Python threads, socketpairs,
  queues) making one C call per side and handshake, native_bench's own set-up,
  negotiate and give-back (``native_bench.so``): the harness's share of the gap,
  what a binding with no per-connection cost at all would measure;
- ``py-class`` (handshake only): the same harness with a Python class in
  ``Connection``'s place, of the same signature, whose ``__init__``, ``negotiate()``
  (returning a facts object made as ``facts_from_struct`` makes it) and ``close()``
  each make one C call into ``native_bench.so`` (set-up and give-back with the GIL
  held, as ``Connection``'s are): the ceiling of a binding that keeps
  ``Connection`` a Python class and moves all of its work into C;
- ``c-class`` (handshake only): ``py-class`` with a type written in C in the class's
  place (``native_class.c``, compiled into ``native_bench.so``): the same three calls
  from C methods, so no Python frame runs in a connection's life: the ceiling of
  a binding whose ``Connection`` is a C type;
- ``native`` (handshake only): ``native_bench``, the benchmark table's C contestant.

``handshake`` is the socketpair handshake row, ``bulk`` the 64 KiB-writes row
(1 GiB at the default 1 s). Prints the medians (handshakes/s or MB/s) and the ratios to
``raw`` (and to ``native`` for handshakes).
It does not write results: the point is the relative cost, see BENCHMARKS.md
("Why the misses").
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_args import at_least, positive_seconds

HERE = Path(__file__).resolve().parent
VARIANTS = {"handshake": ("connection", "raw", "raw-gil", "raw+16us", "py-class", "c-class", "one-call", "native"),
            "bulk": ("connection", "raw")}
DEFAULT_ROW = "hs_tls13_ecdsa"


def raw_contestant(opts: dict[str, str], busy_seconds: float, gil_held_setup: bool = False):
    """A py_bench contestant making the s2n calls directly (the Config objects only own the configs)."""
    import py_bench
    from s2npy import ffi, lib
    from s2npy._native import address
    from s2npy.connection import (_ACCEPT_ANY_HOST, _CONNECTION_POINTER, _NO_OVERRIDES, READ_AHEAD_SIZE,
                                  _create_connection)

    configs = py_bench.S2npyContestant(opts)  # configs.session: the ticket clients resume, once primed

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
            if configs.session is not None:
                lib.s2n_connection_set_session(conn, configs.session, len(configs.session))
        lib.s2n_connection_set_fd(conn, sock.fileno())
        return conn

    def set_up_gil_held(config, mode: int, sock):
        """The same settings in Connection's one create call, made with the GIL held."""
        reuse = address(idle[mode].pop()) if idle[mode] else 0
        server = mode == lib.S2N_SERVER
        made = _create_connection(reuse, mode, address(config.ptr), 0, _ACCEPT_ANY_HOST if server else 0, 0,
                                  lib.S2N_SELF_SERVICE_BLINDING, None if server else b"localhost", sock.fileno(), 0,
                                  *_NO_OVERRIDES, None if server else configs.session)
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
        def prime_session() -> None:
            configs.prime_session()  # the same configs: their server issued the ticket

        @staticmethod
        def resumed(conn) -> bool:
            return lib.s2n_connection_is_session_resumed(conn) == 1

        @staticmethod
        def close(conn, sock) -> None:
            kept = idle[lib.s2n_connection_get_mode(conn)]
            if len(kept) < 8 and lib.s2n_connection_wipe(conn) == lib.S2N_SUCCESS:
                kept.append(conn)
            else:
                lib.s2n_connection_free(conn)
            sock.close()

    return Raw()


def native_library(opts: dict[str, str]):
    """native_bench.so set up for ``opts`` (its configs; the ticket primed when resuming), by ctypes."""
    import ctypes

    import run

    path = str(run.NATIVE_LIBRARY)  # built by the parent (main) before any child runs
    library = ctypes.CDLL(path)  # releases the GIL around each call, as a binding's negotiate does
    args = [b"native_bench", b"handshake", *(f"{key}={value}".encode() for key, value in opts.items())]
    library.native_bench_setup(len(args), (ctypes.c_char_p * len(args))(*args))
    return library, ctypes.PyDLL(path)  # the second keeps the GIL: Connection's set-up and give-back do


class NativeSides:
    """What py_bench's harness asks of a contestant over native_bench.so besides ``server``/``client``.

    native_bench_setup primed the ticket when resuming, and native_bench.so checks resumption
    itself (a client that did not resume ends the process).
    """

    @staticmethod
    def prime_session() -> None:
        """native_bench_setup did: the ticket lives in the C side."""

    @staticmethod
    def resumed(conn) -> bool:
        return True

    @staticmethod
    def close(conn, sock) -> None:
        if conn is not None:
            conn.close()
        sock.close()


class OneCall(NativeSides):
    """Every side of a handshake is one call into native_bench.so (nothing is left to close)."""

    def __init__(self, opts: dict[str, str]) -> None:
        self.side = native_library(opts)[0].native_bench_side

    def server(self, sock, prefer=None) -> None:
        self.side(1, sock.fileno())

    def client(self, sock, prefer=None) -> None:
        self.side(0, sock.fileno())


class ClassSides(NativeSides):
    """Sides made by ``self.connection_class``, a class in ``Connection``'s place (same signature)."""

    connection_class: type

    def server(self, sock, prefer=None):
        connection = self.connection_class(None, "server", io=sock, trace=None, prefer=prefer)
        connection.negotiate()
        return connection

    def client(self, sock, prefer=None):
        connection = self.connection_class(None, "client", io=sock, server_name="localhost", trace=None,
                                           session=None, prefer=prefer)
        connection.negotiate()
        return connection


class PyClass(ClassSides):
    """A Python class in Connection's place whose three methods each make one C call."""

    def __init__(self, opts: dict[str, str]) -> None:
        self.connection_class = py_class_connection(*native_library(opts))


class CClass(ClassSides):
    """A C type in Connection's place making the same three calls from C methods (native_class.c)."""

    def __init__(self, opts: dict[str, str]) -> None:
        from importlib.machinery import ExtensionFileLoader
        from importlib.util import module_from_spec, spec_from_loader

        import run

        native_library(opts)  # set up first: the module is the same loaded library
        loader = ExtensionFileLoader("native_bench", str(run.NATIVE_LIBRARY))
        module = module_from_spec(spec_from_loader("native_bench", loader))
        loader.exec_module(module)
        self.connection_class = module.NativeConnection


def py_class_connection(releasing, holding) -> type:
    """The class, over native_bench.so's start/negotiate/release (``holding``: through the GIL-holding handle)."""
    import ctypes

    from s2npy.facts import NegotiatedFacts

    start, negotiate, release = holding.native_bench_start, releasing.native_bench_negotiate, holding.native_bench_release
    start.restype = ctypes.c_void_p
    negotiate.argtypes = release.argtypes = [ctypes.c_void_p]

    class PyClassConnection:
        _conn = None

        def __init__(self, config: object, mode: str = "client", *, io=None, server_name=None, cert_auth=None,
                     policy=None, alpn=None, session=None, trace=None, blinding="self-service", prefer=None) -> None:
            self._conn = start(mode == "server", io.fileno())

        def negotiate(self) -> NegotiatedFacts:
            negotiate(self._conn)
            facts = object.__new__(NegotiatedFacts)  # as facts_from_struct makes them
            facts.__dict__.update(_raw=None, _chain=None)
            return facts

        def close(self) -> None:
            if self._conn is not None:
                release(self._conn)
                self._conn = None

        def __del__(self) -> None:
            if self._conn is not None:
                self.close()

    return PyClassConnection


def handshake_rows(seconds: float = 1.0) -> dict:
    """The benchmark table's socketpair handshake rows that every variant can run, by key."""
    import run

    return {row.key: row for row in run.rows(smoke=False, seconds=seconds)
            if row.workload == "handshake" and "native" in row.contestants and not {"reuse", "trace"} & set(row.params)}


@functools.lru_cache(maxsize=None)
def pki() -> dict[str, dict[str, str]]:
    """The PEM files, written once per process (the parent measures native with them every round)."""
    import run

    return run.write_pki()


def options(workload: str, row_key: str, seconds: float) -> dict[str, str]:
    """The key=value options of the measured row (native_bench's and py_bench's)."""
    import run

    if workload == "bulk":
        total = max(16, int(seconds * 1024)) << 20  # 1 GiB per second asked (~0.5 s here), whole MiB
        return {**pki()["ecdsa"], "policy": run.TLS13_POLICY, "seconds": str(seconds), "chunk": "65536",
                "total": str(total)}
    return run.row_options(handshake_rows(seconds)[row_key], pki())


def measure(workload: str, row_key: str, variant: str, seconds: float) -> float:
    """One variant in a fresh process: handshakes or MB per second."""
    if variant == "native":  # handshake rows only, measured as the benchmark table measures them
        import run

        return run.measure("native", handshake_rows(seconds)[row_key], pki())[0]
    output = subprocess.run([sys.executable, __file__, "--workload", workload, "--row", row_key, "--child", variant,
                             "--seconds", str(seconds)], check=True, capture_output=True, text=True).stdout
    return float(output)


def child(workload: str, row_key: str, variant: str, seconds: float) -> None:
    import py_bench

    opts = options(workload, row_key, seconds)
    if variant == "connection":
        contestant = py_bench.S2npyContestant(opts)
    elif variant == "one-call":
        contestant = OneCall(opts)
    elif variant == "py-class":
        contestant = PyClass(opts)
    elif variant == "c-class":
        contestant = CClass(opts)
    else:
        contestant = raw_contestant(opts, 16e-6 if variant == "raw+16us" else 0.0, gil_held_setup=variant == "raw-gil")
    run_workload = py_bench.run_bulk if workload == "bulk" else py_bench.run_handshake
    print(run_workload(contestant, opts)["value"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=VARIANTS, default="handshake")
    parser.add_argument("--row", choices=handshake_rows(), default=DEFAULT_ROW,
                        help=f"the handshake row (default {DEFAULT_ROW}); bulk has one")
    parser.add_argument("--rounds", type=at_least(1), default=5)
    parser.add_argument("--seconds", type=positive_seconds, default=1.0)
    parser.add_argument("--child", choices=VARIANTS["handshake"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload == "bulk" and args.row != DEFAULT_ROW:
        parser.error("--row picks a handshake row; the bulk workload has one (64 KiB writes)")
    if args.child:
        child(args.workload, args.row, args.child, args.seconds)
        return
    import run

    variants = VARIANTS[args.workload]
    if args.workload == "handshake":
        run.build_native()
        run.build_native(library=True)
    samples: dict[str, list[float]] = {variant: [] for variant in variants}
    for round_index in range(args.rounds):
        for variant in run.rotated(variants, round_index):
            samples[variant].append(measure(args.workload, args.row, variant, args.seconds))
    medians = {variant: statistics.median(values) for variant, values in samples.items()}
    unit = "mb_per_s" if args.workload == "bulk" else "hs_per_s"
    report = {variant: {unit: round(median), "ratio_to_raw": round(median / medians["raw"], 3)}
              for variant, median in medians.items()}
    if "native" in medians:
        for variant, median in medians.items():
            report[variant]["ratio_to_native"] = round(median / medians["native"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
