"""Concurrency: many threads sharing one Config; fork after initialisation."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from reliability_tools import assert_survived, run_python

from s2npy import handshake

HERE = Path(__file__).parent


def _threaded_handshakes(server_config, client_config, threads: int, per_thread: int) -> float:
    """``threads`` threads each run ``per_thread`` in-memory handshakes on the shared configs."""
    failures: list = []
    start_line = threading.Barrier(threads)

    def worker():
        start_line.wait()
        for _ in range(per_thread):
            result = handshake(server_config, client_config, server_name="localhost")
            if not result.ok:
                failures.append(result.error)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.monotonic()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(300)
    assert not any(thread.is_alive() for thread in workers), "a handshake thread hung"
    assert failures == [], failures[:3]
    return time.monotonic() - start


def test_threads_share_one_config(configs):
    """8 threads x 60 handshakes on one server and one client Config."""
    _threaded_handshakes(*configs, threads=8, per_thread=60)


@pytest.mark.slow
def test_threads_share_one_config_long(configs):
    """8 threads x 500 handshakes on one server and one client Config."""
    _threaded_handshakes(*configs, threads=8, per_thread=500)


FORK_SCRIPT = """
import json, os, threading
import s2npy
from s2npy.pki import make_pki
from reliability_tools import s2npy_client_hello

pki = make_pki("ecdsa")
server = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)])
client = s2npy.Config(trust=pki.ca.cert, system_trust=False)

def client_random():
    return s2npy_client_hello(client)[11:43].hex()

assert s2npy.handshake(server, client, server_name="localhost").ok
worker = threading.Thread(target=lambda: s2npy.handshake(server, client, server_name="localhost"))
worker.start(); worker.join()
client_random()
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        # The same calls as the parent makes right after the fork: with a shared DRBG state the
        # two sequences would be equal.
        report = {"randoms": [client_random() for _ in range(3)],
                  "ok": all(s2npy.handshake(server, client, server_name="localhost").ok for _ in range(5))}
        os.write(write_end, json.dumps(report).encode())
    finally:
        os._exit(0)
os.close(write_end)
child = json.loads(os.fdopen(read_end).read())
_, status = os.waitpid(pid, 0)
print(json.dumps({"child": child, "status": status, "parent_randoms": [client_random() for _ in range(3)],
                  "parent_ok": s2npy.handshake(server, client, server_name="localhost").ok}))
"""


def test_fork_after_init():
    """A forked child makes connections, and its randomness differs from the parent's."""
    process = run_python(FORK_SCRIPT, env={"PYTHONPATH": str(HERE)})
    assert_survived(process)
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert report["status"] == 0 and report["child"]["ok"] and report["parent_ok"]
    child, parent = set(report["child"]["randoms"]), set(report["parent_randoms"])
    assert len(child) == 3 and len(parent) == 3
    assert not child & parent, "the child repeats the parent's random bytes after fork"
