"""ConnectionCore: Connection()'s common case and untraced negotiate() in C (s2npy/_connection_core.c).

The C set-up must take exactly the calls the Python constructor (``Connection._setup``) would
handle as it does, and hand every other call to it: each case here checks which path ran and
that the connection behaves as the Python path makes it behave.
"""

from __future__ import annotations

import inspect
import logging
import socket
import threading

import pytest

import s2npy
from s2npy import Blocked, Mode, UsageError
from s2npy.connection import Connection


@pytest.fixture
def python_setups(monkeypatch):
    """The calls that reached the Python constructor, as (args, kwargs)."""
    calls = []
    setup = Connection._setup

    def spy(self, *args, **kwargs):
        calls.append((args, kwargs))
        return setup(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "_setup", spy)
    return calls


def _handshake(server_config, client_config, server_kwargs=None, client_kwargs=None):
    """A socketpair handshake; returns (server facts, client facts, client connection)."""
    server_sock, client_sock = socket.socketpair()
    box = {}

    def serve():
        with Connection(server_config, "server", io=server_sock, **(server_kwargs or {})) as server:
            box["facts"] = server.negotiate()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = Connection(client_config, "client", io=client_sock, server_name="localhost", **(client_kwargs or {}))
    facts = client.negotiate()
    thread.join(10)
    return box["facts"], facts, client


def test_common_connections_are_set_up_in_c(server_config, client_config, python_setups):
    server_facts, client_facts, client = _handshake(server_config(), client_config(),
                                                    client_kwargs={"trace": False})
    assert python_setups == []
    assert client_facts.protocol == server_facts.protocol == "TLSv1.3"
    assert client.mode is Mode.CLIENT and client_facts.peer_cert_chain[0].subject.rfc4514_string().startswith("CN=localhost")
    client.close()
    assert client.closed


@pytest.mark.parametrize("mode", [Mode.SERVER, "server"])
def test_modes_and_fds_in_c(server_config, mode, python_setups):
    left, right = socket.socketpair()
    with Connection(server_config(), mode, io=left.fileno()) as connection:
        assert connection.mode is Mode.SERVER and connection._fd == left.fileno()
    assert python_setups == []


def test_memory_pipes_in_c_and_try_negotiate(server_config, client_config, python_setups):
    server_end, client_end = s2npy.memory_pipe()
    server = Connection(server_config(), "server", io=server_end)
    client = Connection(client_config(), "client", io=client_end, server_name="localhost")
    assert client.try_negotiate() is Blocked.ON_READ
    steps = 0
    while not (client.handshake_complete and server.handshake_complete):
        for side in (server, client):
            assert side.try_negotiate() in (Blocked.NOT_BLOCKED, Blocked.ON_READ)
        steps += 1
        assert steps < 10
    assert client.try_negotiate() is Blocked.NOT_BLOCKED
    assert python_setups == []


@pytest.mark.parametrize("kwargs", [
    {"blinding": "built-in"},
    {"prefer": "throughput"},
    {"trace": True},
    {"session": bytearray(b"not a session")},
])
def test_other_calls_go_to_the_python_constructor(server_config, client_config, python_setups, kwargs):
    left, right = socket.socketpair()
    if "session" in kwargs:
        with pytest.raises(UsageError, match="session"):
            Connection(client_config(), "client", io=left, server_name="localhost", **kwargs)
    else:
        Connection(client_config(), "client", io=left, server_name="localhost", **kwargs).close()
    assert len(python_setups) == 1 and python_setups[0][1]["io"] is left


def test_tracing_turned_on_by_the_logger_is_honoured(server_config, client_config, python_setups):
    logger = logging.getLogger("s2npy.trace")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        _, _, client = _handshake(server_config(), client_config())
    finally:
        logger.setLevel(level)
    assert client.trace is not None and client.trace.events
    assert len(python_setups) == 2


def test_configs_that_call_python_back_go_to_the_python_constructor(server_config, client_config, python_setups):
    names = []
    config = client_config()
    config.set_verify_host(lambda name: names.append(name) or name == "localhost")
    _handshake(server_config(), config)
    assert names and len(python_setups) == 1


@pytest.mark.parametrize("bad, message", [
    ({"io": socket.socket()}, "not a file descriptor|socket"),
    ({"server_name": ""}, "non-empty"),
    ({"session": b""}, "empty"),
    ({"session": b"\x01not a session"}, "session"),
])
def test_bad_arguments_raise_as_before(client_config, bad, message):
    kwargs = {"io": socket.socketpair()[0], "server_name": "localhost", **bad}
    if kwargs["io"].fileno() >= 0 and "io" in bad:
        kwargs["io"].close()
    with pytest.raises(UsageError, match=message):
        Connection(client_config(), "client", **kwargs)


def test_a_closed_config_is_refused(client_config):
    config = client_config()
    config.close()
    with pytest.raises(UsageError, match="closed"):
        Connection(config, "client", io=socket.socketpair()[0])


def test_signature_is_the_constructors():
    parameters = inspect.signature(Connection).parameters
    assert list(parameters)[:2] == ["config", "mode"] and "session" in parameters and "self" not in parameters


def test_failed_set_up_gives_the_config_back(client_config):
    config = client_config()
    with pytest.raises(UsageError):
        Connection(config, "client", io=socket.socketpair()[0], server_name="localhost", session=b"\x01garbage")
    config.close()  # refused while a connection still counted as its user


def test_close_paths(server_config, client_config, monkeypatch):
    """A plain close frees in C (no _close); one whose facts still hold the chain view runs
    _close, which copies the chain first; either way the config gets its connection back."""
    full_closes = []
    full_close = Connection._close
    monkeypatch.setattr(Connection, "_close", lambda self: full_closes.append(self) or full_close(self))
    server_end, client_end = s2npy.memory_pipe()
    configs = server_config(), client_config()
    server = Connection(configs[0], "server", io=server_end)
    client = Connection(configs[1], "client", io=client_end, server_name="localhost")
    while not (client.handshake_complete and server.handshake_complete):
        client.try_negotiate()
        server.try_negotiate()
    facts = client.negotiate()  # complete already: the facts and their chain view
    server.close()
    assert full_closes == [] and server.closed
    client.close()
    assert full_closes == [client] and client.closed
    assert facts.peer_cert_chain[0].subject.rfc4514_string().startswith("CN=localhost")
    client.close()  # idempotent
    assert full_closes == [client]
    for config in configs:
        config.close()  # refused while a connection still counts as its user


def test_a_dropped_open_connection_is_closed(client_config):
    config = client_config()
    left, right = socket.socketpair()
    Connection(config, "client", io=left, server_name="localhost")  # dropped at once, open
    config.close()  # refused while a connection still counts as its user


@pytest.mark.parametrize("io_kind", ["socket", "memory pipe"])
def test_both_paths_make_the_same_state(client_config, python_setups, io_kind):
    """The C set-up must leave what Connection._setup leaves: the same attributes, of the same
    types and values (a change to one path and not the other fails here). Built-in blinding,
    which leaves no state of its own, sends the second connection down the Python path."""
    config = client_config()
    if io_kind == "socket":
        fast_io, slow_io = socket.socketpair()
    else:
        fast_io, slow_io = s2npy.memory_pipe()
    fast = Connection(config, "client", io=fast_io, server_name="localhost", session=None)
    assert python_setups == []
    slow = Connection(config, "client", io=slow_io, server_name="localhost", session=None, blinding="built-in")
    assert len(python_setups) == 1
    fast_state, slow_state = vars(fast), vars(slow)
    assert sorted(fast_state) == sorted(slow_state)
    for name, value in fast_state.items():
        other = slow_state[name]
        if name in ("_ptr", "_c_address", "_unfreed", "_io_object", "_io_binding", "_fd"):
            assert type(value) is type(other) and (name != "_unfreed" or len(value) == len(other) == 1), name
        else:
            assert value == other and type(value) is type(other), name
    for connection in (fast, slow):
        connection.close()
    config.close()
