"""Where a socketpair handshake's time goes, phase by phase, per contestant. A diagnostic.

    python benchmarks/handshake_phases.py [--rounds N] [--count HANDSHAKES] [--variants a,b,...] [--row ROW]

The handshake is one of ``py_bench.py``'s socket rows (``--row``: TLS 1.3 ECDSA by default,
``hs_tls13_rsa`` or ``hs_tls12_ecdsa``): the client makes a
socketpair, hands the server end to a server thread, sets up its connection and
negotiates, waits for the server's acknowledgement, and closes; the server sets
up, negotiates, closes and acknowledges. Each step is time-stamped in both
threads, and each phase is the mean time between two stamps over ``count``
handshakes (the first tenth is a warm-up). Variants, each in a fresh process,
alternating over the rounds:

- ``native``: ``native_bench handshake_phases`` (C, pthreads, pipes);
- ``s2npy`` and ``ssl``: ``py_bench.py``'s contestants, whose ``start`` and
  ``negotiate`` steps are what their ``server``/``client`` run in the benchmark
  (``Connection()`` then ``negotiate()``; ``wrap_socket(do_handshake_on_connect=False)``
  then ``do_handshake()``);
- ``raw-gil``: ``binding_floor.py``'s raw calls with Connection's one set-up call
  (a binding whose connections cost no Python);
- ``c-class``: ``binding_floor.py``'s connection type written in C (``native_class.c``) in
  ``Connection``'s place: where the time goes for a binding with no Python frames at all.

The phases name the same stamps in C (native_bench.c's ``PHASES``). The handshake
rates are lower than the benchmark table's (the stamps cost a little): compare
phases between variants, not with the table. A phase from one thread's stamp to
the other's (the server's wake, "done after the client") can be negative for one
handshake, when a thread is preempted between its step and its stamp: use a
count large enough for the mean to absorb that. See BENCHMARKS.md ("Where the socket
rows' time goes").
"""

from __future__ import annotations

import argparse
import json
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import run
from bench_args import at_least

VARIANTS = ("native", "s2npy", "raw-gil", "ssl", "c-class")
#: (phase, from stamp, to stamp), the same as native_bench.c's PHASES.
PHASES = (
    ("client socketpair", "c_start", "c_socketpair"),
    ("client hands over the server end", "c_socketpair", "c_handed_over"),
    ("client set-up", "c_handed_over", "c_set_up"),
    ("client negotiate", "c_set_up", "c_negotiated"),
    ("client waits for the server", "c_negotiated", "c_acked"),
    ("client close", "c_acked", "c_closed"),
    ("server wakes (from the hand-over)", "c_handed_over", "s_woken"),
    ("server set-up", "s_woken", "s_set_up"),
    ("server negotiate", "s_set_up", "s_negotiated"),
    ("server done after the client", "c_negotiated", "s_negotiated"),
    ("server close", "s_negotiated", "s_closed"),
    ("client wakes (from the server's close)", "s_closed", "c_acked"),
)


def timed_handshakes(steps: Any, count: int) -> list[dict[str, int]]:
    """``count`` handshakes of one client/server pair (py_bench's Pair), each step stamped."""
    clock = time.perf_counter_ns
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    acks: queue.SimpleQueue = queue.SimpleQueue()
    stamps = [{} for _ in range(count)]

    def serve() -> None:
        for index in range(count):
            sock = inbox.get()
            stamp = stamps[index]
            stamp["s_woken"] = clock()
            connection = steps.start("server", sock)
            stamp["s_set_up"] = clock()
            steps.negotiate(connection)
            stamp["s_negotiated"] = clock()
            steps.close(connection, sock)
            stamp["s_closed"] = clock()
            acks.put(True)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    for stamp in stamps:
        stamp["c_start"] = clock()
        server_sock, client_sock = socket.socketpair()
        stamp["c_socketpair"] = clock()
        inbox.put(server_sock)
        stamp["c_handed_over"] = clock()
        connection = steps.start("client", client_sock)
        stamp["c_set_up"] = clock()
        steps.negotiate(connection)
        stamp["c_negotiated"] = clock()
        acks.get()
        stamp["c_acked"] = clock()
        steps.close(connection, client_sock)
        stamp["c_closed"] = clock()
    server.join()
    return stamps


def summary(stamps: list[dict[str, int]]) -> dict[str, Any]:
    """Microseconds per handshake and per phase (means), after the first tenth (the warm-up)."""
    measured = stamps[len(stamps) // 10:]
    phases = {name: statistics.fmean(stamp[to] - stamp[start] for stamp in measured) / 1e3
              for name, start, to in PHASES}
    return {"value": (measured[-1]["c_closed"] - measured[0]["c_start"]) / len(measured) / 1e3, "phases": phases}


class ClassSteps:
    """binding_floor's c-class variant as steps, so that its set-up and negotiate are stamped apart."""

    def __init__(self, opts: dict[str, str]) -> None:
        import binding_floor

        self.sides = binding_floor.CClass(opts)

    def start(self, side: str, sock: socket.socket) -> Any:
        names = {"server_name": "localhost"} if side == "client" else {}
        return self.sides.connection_class(None, side, io=sock, **names)

    @staticmethod
    def negotiate(connection: Any) -> None:
        connection.negotiate()

    def close(self, connection: Any, sock: socket.socket) -> None:
        self.sides.close(connection, sock)


def rows() -> list[str]:
    """The rows whose handshakes every variant can time: binding_floor's, less the resumed one
    (whose ticket this harness does not prime)."""
    import binding_floor

    return [key for key, row in binding_floor.handshake_rows().items() if "resume" not in row.params]


def child(variant: str, count: int, row: str) -> None:
    import binding_floor

    opts = binding_floor.options("handshake", row, 1.0)
    if variant == "native":
        command = [str(run.build_native()), "handshake_phases", *[f"{k}={v}" for k, v in opts.items()],
                   f"count={count}"]
        print(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        return
    import py_bench

    if variant == "c-class":
        steps = ClassSteps(opts)
    elif variant in py_bench.CONTESTANTS:
        steps = py_bench.CONTESTANTS[variant](opts)
    else:
        steps = binding_floor.raw_contestant(opts, 0.0, gil_held_setup=True)
    print(json.dumps(summary(timed_handshakes(steps, count))))


def measure(variant: str, count: int, row: str) -> dict[str, Any]:
    output = subprocess.run([sys.executable, __file__, "--child", variant, "--count", str(count), "--row", row],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def table(samples: dict[str, list[dict[str, Any]]]) -> str:
    """Medians over the rounds of each phase's mean, in us, a column per variant."""
    variants = list(samples)
    lines = ["| phase (us) | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
    rows = [("per handshake", lambda result: result["value"])]
    rows += [(name, lambda result, name=name: result["phases"][name]) for name, _, _ in PHASES]
    for name, read in rows:
        cells = (f"{statistics.median(read(result) for result in samples[variant]):.1f}" for variant in variants)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--count", type=at_least(20), default=3000,
                        help="handshakes per variant and round (a tenth of them warm up)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--row", choices=rows(), default="hs_tls13_ecdsa",
                        help="the handshake row (default %(default)s)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.count, args.row)
        return
    variants = tuple(args.variants.split(","))
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}: choose from {', '.join(VARIANTS)}")
    if "c-class" in variants:
        run.build_native(library=True)  # its children load it, and must not race to build it
    samples: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}
    for round_index in range(args.rounds):
        for variant in run.rotated(variants, round_index):
            samples[variant].append(measure(variant, args.count, args.row))
    print(table(samples))


if __name__ == "__main__":
    main()
