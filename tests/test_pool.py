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
from s2npy import _datapath
from s2npy._native import address

WAIT = 10


def _address(connection) -> int:
    return address(connection.ptr)


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


class _Pool:
    """An IdleConnections stand-in whose ``_closed`` answers from ``states``, one per read."""

    def __init__(self, *states: bool, capacity: int = 8) -> None:
        self._idle = ([], [])
        self.capacity = capacity
        self._states = iter(states)

    @property
    def _closed(self) -> bool:
        return next(self._states)


def _new_connection(mode: int):
    pointer = s2npy.lib.s2n_connection_new(mode)
    assert pointer != s2npy.ffi.NULL
    return pointer, address(pointer)


def test_a_create_call_that_raises_gives_the_taken_connection_back(client_config, monkeypatch):
    """The Python set-up (overrides, here prefer) takes an idle connection before its create call;
    if that call raises before s2n runs, the connection goes back to the pool, not astray."""
    config = client_config()
    first = s2npy.Connection(config, "client", server_name="localhost")
    kept = _address(first)
    first.close()

    def refuse(*args):
        raise MemoryError("no memory for the create call's arguments")

    monkeypatch.setattr(s2npy.connection, "_create_connection", refuse)
    with pytest.raises(MemoryError):
        s2npy.Connection(config, "client", server_name="localhost", prefer="throughput")
    assert [address for _, address in config._idle._idle[s2npy.lib.S2N_CLIENT]] == [kept]
    assert config._users == []
    monkeypatch.undo()
    again = s2npy.Connection(config, "client", server_name="localhost", prefer="throughput")
    assert _address(again) == kept
    again.close()
    config.close()


def test_give_back_keeps_a_wiped_connection_as_pointer_and_address():
    pool = _Pool(False, False)
    pointer, address = _new_connection(s2npy.lib.S2N_CLIENT)
    _datapath.give_back(pool, pointer, address, s2npy.lib.S2N_CLIENT)
    assert pool._idle[s2npy.lib.S2N_SERVER] == []
    [(kept, kept_address)] = pool._idle[s2npy.lib.S2N_CLIENT]
    assert kept is pointer and kept_address == address
    s2npy.lib.s2n_connection_free(kept)


def test_give_back_frees_what_a_pool_closed_during_the_wipe_cannot_keep():
    """Config.close() may clear the pool while the GIL is released for the wipe: the state read
    again after it decides, so nothing is kept in a closed pool (where nothing would free it)."""
    for pool in (_Pool(False, True), _Pool(True), _Pool(False, capacity=0)):
        pointer, address = _new_connection(s2npy.lib.S2N_SERVER)
        _datapath.give_back(pool, pointer, address, s2npy.lib.S2N_SERVER)
        assert pool._idle == ([], [])
        with pytest.raises(StopIteration):
            pool._closed  # read exactly as often as expected: before the wipe, and after it if wiped  # noqa: B018


def test_give_back_refuses_bad_arguments_and_still_frees():
    with pytest.raises(ValueError, match="mode"):
        _datapath.give_back(_Pool(False, False), s2npy.ffi.NULL, 1, 2)
    broken = _Pool(False, False)
    broken._idle = (None, None)
    pointer, address = _new_connection(s2npy.lib.S2N_CLIENT)
    with pytest.raises(TypeError, match="lists"):
        _datapath.give_back(broken, pointer, address, s2npy.lib.S2N_CLIENT)  # freed all the same (ASan run)


def test_both_close_paths_give_the_connection_back_alike(server_config, client_config, monkeypatch):
    """close() in C (a plain close) and Connection._close with _release (Python) leave the same
    connection state, give their s2n connections to the pool and stop counting as the config's users."""
    server_end, client_end = s2npy.memory_pipe()
    config = client_config()
    plain = s2npy.Connection(config, "client", io=client_end, server_name="localhost")
    full = s2npy.Connection(config, "client", io=server_end, server_name="localhost")
    addresses = {_address(plain), _address(full)}
    assert len(config._users) == 2
    plain.close()
    s2npy.Connection._close(full)
    assert vars(plain).keys() == vars(full).keys()
    for name, value in vars(plain).items():
        assert type(value) is type(vars(full)[name]), name
    assert plain._io_object is plain._io_binding is plain._handle is None and plain._ptr is None
    assert {address for _, address in config._idle._idle[s2npy.lib.S2N_CLIENT]} == addresses
    assert config._users == []
    config.close()
