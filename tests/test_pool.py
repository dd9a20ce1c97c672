"""Connection reuse (s2npy/pool.py): a closed connection is wiped and set up again by the
next Connection on the same Config. Nothing of the previous connection may survive it."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import threading
import textwrap

import pytest

import s2npy

WAIT = 10


def _address(connection) -> int:
    return int(s2npy.ffi.cast("uintptr_t", connection.ptr))


def _handshake(server_config, client_config, server_kwargs=None, client_kwargs=None, trace=False,
               addresses=None):
    """One handshake over a socketpair; returns (server facts, client facts), both ends closed.

    ``addresses`` (a list) gets the two s2n connections' addresses, to see reuse."""
    server_sock, client_sock = socket.socketpair()
    server = s2npy.Connection(server_config, "server", io=server_sock, trace=trace, **(server_kwargs or {}))
    client = s2npy.Connection(client_config, "client", io=client_sock, trace=trace,
                              **{"server_name": "localhost", **(client_kwargs or {})})
    if addresses is not None:
        addresses += [_address(server), _address(client)]
    outcome: dict = {}

    def serve():
        try:
            outcome["facts"] = server.negotiate()
        except s2npy.S2NError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client_facts = client.negotiate()
    finally:
        client.close(), client_sock.close()  # a failed client's server then reads EOF and stops too
        thread.join(WAIT)
        server.close(), server_sock.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["facts"], client_facts


def test_a_closed_connection_is_set_up_again_by_the_next_one_of_its_mode_and_config(client_config):
    config, other = client_config(), client_config()
    first = s2npy.Connection(config, "client", server_name="localhost")
    address = _address(first)
    first.close()
    assert len(config._idle) == 1
    server_mode = s2npy.Connection(config, "server")  # another mode: a new one
    other_config = s2npy.Connection(other, "client")  # another config: a new one
    again = s2npy.Connection(config, "client")
    assert _address(again) == address and len(config._idle) == 0
    for connection in (server_mode, other_config, again):
        connection.close()


def test_nothing_of_the_previous_connection_survives_reuse(server_config, client_config):
    """Overrides of ALPN, client auth and policy set on one connection are gone on the next."""
    servers = server_config(alpn=["h2", "http/1.1"])
    clients = client_config(with_cert=True, alpn=["h2", "http/1.1"])
    first, second = [], []
    first_server, _ = _handshake(
        servers, clients, server_kwargs={"cert_auth": "required", "policy": "20240501", "alpn": ["http/1.1"]},
        client_kwargs={"alpn": ["http/1.1"], "policy": "20240501"}, addresses=first)
    assert (first_server.protocol, first_server.alpn, first_server.client_cert_sent) == ("TLSv1.2", "http/1.1", True)
    second_server, second_client = _handshake(servers, clients, addresses=second)
    assert second == first  # the same two s2n connections, wiped and set up again
    assert second_server.protocol == second_client.protocol == "TLSv1.3"
    assert second_server.alpn == "h2"  # the config's list, not the first connection's override
    assert second_server.client_cert_sent is False  # cert auth "required" was that connection's
    assert not second_client.session_resumed


def test_a_failed_handshake_leaves_a_connection_that_works_when_reused(server_config, client_config, pki):
    servers, strict = server_config(), s2npy.Config(trust=pki.other_ca.cert, system_trust=False)
    with pytest.raises(s2npy.S2NError):
        _handshake(servers, strict)
    assert len(servers._idle) == 1 and len(strict._idle) == 1
    server_facts, client_facts = _handshake(servers, client_config())
    assert server_facts.handshake_complete and client_facts.protocol == "TLSv1.3"


def test_traced_and_untraced_connections_share_the_idle_ones(server_config, client_config):
    servers, clients = server_config(), client_config()
    _handshake(servers, clients, trace=True)
    server_facts, _ = _handshake(servers, clients)
    assert server_facts.handshake_complete
    _, client_facts = _handshake(servers, clients, trace=True)
    assert client_facts.handshake_complete


def test_at_most_reuse_connections_are_kept_per_mode(client_config):
    config = client_config(reuse_connections=3)
    connections = [s2npy.Connection(config, "client") for _ in range(5)]
    for connection in connections:
        connection.close()
    assert len(config._idle) == 3
    off = client_config(reuse_connections=0)
    s2npy.Connection(off, "client").close()
    assert len(off._idle) == 0


@pytest.mark.parametrize("value", [-1, 1.5, "8", True, None])
def test_a_bad_reuse_count_is_refused(value):
    with pytest.raises(s2npy.UsageError, match="reuse_connections"):
        s2npy.Config(reuse_connections=value)


def test_closing_the_config_frees_its_idle_connections(client_config):
    config = client_config()
    s2npy.Connection(config, "client").close()
    assert len(config._idle) == 1
    config.close()
    assert len(config._idle) == 0


def test_configs_dropped_with_idle_connections_free_them_first():
    """The idle connections point at their s2n config: dropping the Config (refcount, cycle GC, or
    interpreter exit) frees them before it (their IdleConnections holds the config's pointer).
    Run in a child under glibc's malloc checks, so that a double or bad free aborts it."""
    code = textwrap.dedent("""
        import gc, s2npy
        for _ in range(50):
            config = s2npy.Config()
            for mode in ("client", "server"):
                s2npy.Connection(config, mode).close()
            config.loop = config  # a cycle: only the GC frees it
            del config
        gc.collect()
        kept = s2npy.Config()
        s2npy.Connection(kept, "client").close()  # freed at interpreter exit
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"MALLOC_CHECK_": "3", "MALLOC_PERTURB_": "165", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_threads_sharing_a_config_each_get_their_own_connection(server_config, client_config):
    servers, clients = server_config(), client_config()
    failures: list = []

    def run():
        try:
            for _ in range(15):
                _handshake(servers, clients)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert len(servers._idle) <= servers._idle.capacity + 4
