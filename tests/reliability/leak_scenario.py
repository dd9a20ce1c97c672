"""A handshake-and-close workload for the leak checks, run in a child process.

``python -c "import leak_scenario; leak_scenario.main(CYCLES, WARMUP)"`` with
``S2NPY_PKI_DIR`` naming a directory written by ``TestPKI.write``. Each cycle
is one in-memory handshake (both connections closed), mixing successes,
certificate failures, hostile bytes, traced handshakes, a raising
callback and a close() from another thread during negotiate, so the error paths are checked for leaks too. Prints one JSON line
with the RSS before and after the measured cycles.
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path

import s2npy
from reliability_tools import close_during_negotiate


def rss_kib() -> int:
    """This process's resident set size in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _refuse(connection, hello):
    raise LookupError("refused by the client hello callback")


def make_cycle(pem_dir: Path):
    """A function running cycle number ``i`` of the mixed workload."""
    server = s2npy.Config(certificates=[(pem_dir / "server.pem", pem_dir / "server.key")])
    refusing = s2npy.Config(certificates=[(pem_dir / "server.pem", pem_dir / "server.key")],
                            client_hello_callback=_refuse)
    client = s2npy.Config(trust=pem_dir / "ca.pem", system_trust=False)
    garbage = os.urandom(300)

    def cycle(i: int) -> None:
        kind = i % 10
        if kind == 0:
            assert not s2npy.handshake(server, None, client=s2npy.Behaviour(raw=garbage)).ok
        elif kind == 1:
            assert not s2npy.handshake(server, client, server_name="wrong.example").ok
        elif kind == 2:
            assert s2npy.handshake(server, client, server_name="localhost", trace=True).ok
        elif kind == 3:
            result = s2npy.handshake(refusing, client, server_name="localhost")
            assert isinstance(result.server.error, LookupError), result.server.error
        elif kind == 4:
            assert isinstance(close_during_negotiate(server, garbage), s2npy.S2NError)
        else:
            assert s2npy.handshake(server, client, server_name="localhost").ok
    return cycle


def main(cycles: int, warmup: int) -> None:
    cycle = make_cycle(Path(os.environ["S2NPY_PKI_DIR"]))
    for i in range(warmup):
        cycle(i)
    gc.collect()
    before, start = rss_kib(), time.monotonic()
    for i in range(cycles):
        cycle(i)
    gc.collect()
    print(json.dumps({"cycles": cycles, "rss_before_kib": before, "rss_after_kib": rss_kib(),
                      "growth_kib": rss_kib() - before, "seconds": round(time.monotonic() - start, 1)}))
