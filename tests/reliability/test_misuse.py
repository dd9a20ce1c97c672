"""Misuse by callers: wrong order, use after close, frozen configs, lifetimes, raising callbacks, bad arguments.

Each misuse must give a clear exception (an s2npy error naming the problem,
or TypeError/ValueError for a wrong Python type) and never a crash; the
wrong-argument sweep runs in a child process so a segfault fails the test.
"""

from __future__ import annotations

import gc
import json
import os
import weakref
from pathlib import Path

import pytest
from reliability_tools import (FaultyTransport, assert_survived, close_during_negotiate, make_pair, negotiate_pair,
                               run_python, sha256, transfer)

import s2npy
from s2npy import ConfigInUseError, S2NError, UsageError

HERE = Path(__file__).parent


def test_data_before_negotiate_is_a_usage_error(configs):
    """send/recv before the handshake: a UsageError telling to negotiate first (s2n says 'encrypt failed')."""
    pair = make_pair(*configs)
    for call in (lambda: pair.client.send(b"early"), lambda: pair.client.recv(10),
                 lambda: pair.server.recv_into(bytearray(10))):
        with pytest.raises(UsageError, match="handshake is not complete"):
            call()
    assert negotiate_pair(pair).ok  # the connection is still usable afterwards
    pair.close()


def test_use_after_close_and_double_close(configs):
    """Every method and property of a closed connection raises UsageError; close() is idempotent."""
    pair = negotiate_pair(make_pair(*configs))
    client = pair.client
    client.close()
    client.close()
    calls = {
        "send": lambda: client.send(b"x"), "sendall": lambda: client.sendall(b"x"),
        "recv": lambda: client.recv(10), "recv_into": lambda: client.recv_into(bytearray(4)),
        "negotiate": client.negotiate, "try_negotiate": client.try_negotiate, "facts": client.facts,
        "shutdown": client.shutdown, "shutdown_send": client.shutdown_send, "pending": client.pending,
        "wire_bytes": client.wire_bytes, "set_server_name": lambda: client.set_server_name("x"),
        "set_policy": lambda: client.set_policy("default"), "set_alpn": lambda: client.set_alpn(["h2"]),
        "set_io": lambda: client.set_io(FaultyTransport(None)),
        "last_message": lambda: client.last_message, "handshake_type": lambda: client.handshake_type,
        "blinding_delay": lambda: client.blinding_delay, "session": lambda: client.session,
        "cert_auth": lambda: client.cert_auth,
    }
    for name, call in calls.items():
        with pytest.raises(UsageError, match="closed"):
            call()
    assert client.handshake_complete is False
    pair.close()


def test_close_from_another_thread_during_negotiate(configs):
    """close() while another thread is inside s2n_negotiate: the free waits for that call, which fails cleanly.

    (Before the fix s2n_connection_free ran at once and the negotiating thread read freed
    memory: valgrind showed invalid reads in s2n_stuffer_skip_write.)
    """
    for data in (b"", os.urandom(500)):
        assert isinstance(close_during_negotiate(configs[0], data), S2NError)


def test_a_config_stays_open_until_a_call_on_its_closed_connection_returns(configs):
    """close() while another thread is inside s2n_negotiate leaves the free to that call; until
    then the s2n connection still points at the config, so the config refuses to close."""
    server_config = configs[0]
    refused = []

    def close_config() -> None:
        with pytest.raises(UsageError, match="connections still use"):
            server_config.close()
        refused.append(True)

    assert isinstance(close_during_negotiate(server_config, b"", while_parked=close_config), S2NError)
    assert refused
    server_config.close()


SETTERS = {
    "add_certificate": lambda c, pki: c.add_certificate(pki.server.cert, pki.server.key),
    "add_trust": lambda c, pki: c.add_trust(pki.ca.cert),
    "wipe_trust": lambda c, pki: c.wipe_trust(),
    "load_system_trust": lambda c, pki: c.load_system_trust(),
    "disable_verification": lambda c, pki: c.disable_verification(),
    "set_verify_host": lambda c, pki: c.set_verify_host(lambda name: True),
    "set_max_chain_depth": lambda c, pki: c.set_max_chain_depth(3),
    "set_cert_auth": lambda c, pki: c.set_cert_auth("required"),
    "set_policy": lambda c, pki: c.set_policy("default"),
    "set_alpn": lambda c, pki: c.set_alpn(["h2"]),
    "enable_session_tickets": lambda c, pki: c.enable_session_tickets(),
    "set_client_hello_callback": lambda c, pki: c.set_client_hello_callback(lambda conn, hello: None),
    "set_key_log": lambda c, pki: c.set_key_log(lambda conn, line: None),
    "enable_events": lambda c, pki: c.enable_events(),
}


@pytest.mark.parametrize("setter", sorted(SETTERS))
def test_config_changed_while_in_use(configs, pki, setter):
    """Every setter of a Config in use raises ConfigInUseError; copy() gives a changeable twin."""
    server_config, client_config = configs
    pair = negotiate_pair(make_pair(server_config, client_config))
    for config in (server_config, client_config):
        assert config.frozen
        with pytest.raises(ConfigInUseError):
            SETTERS[setter](config, pki)
    twin = server_config.copy()
    assert not twin.frozen
    SETTERS[setter](twin, pki)
    pair.close()


def test_config_close_while_in_use(configs):
    """Closing a Config a live connection uses raises; after the connection closes it works."""
    server_config, client_config = configs
    pair = negotiate_pair(make_pair(server_config, client_config))
    with pytest.raises(UsageError, match="still use"):
        client_config.close()
    pair.close()
    client_config.close()
    with pytest.raises(UsageError, match="closed"):
        s2npy.Connection(client_config, "client")


def test_connection_collected_while_config_alive(configs):
    """A connection dropped mid-handshake without close() is freed; its config keeps working."""
    server_config, client_config = configs
    pair = make_pair(server_config, client_config)
    pair.client.try_negotiate()
    pair.server.try_negotiate()
    gone = weakref.ref(pair.client)
    del pair
    gc.collect()
    assert gone() is None, "a dropped connection is kept alive by a reference cycle"
    second = negotiate_pair(make_pair(server_config, client_config))
    assert second.ok
    second.close()
    client_config.close()  # no live user left


def test_config_dropped_while_connection_alive(pki):
    """The caller drops its Configs: the connections keep them alive and still work end to end."""
    def connections():
        server = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)])
        client = s2npy.Config(trust=pki.ca.cert, system_trust=False)
        return make_pair(server, client), weakref.ref(server)

    pair, server_config = connections()
    gc.collect()
    assert server_config() is not None
    assert negotiate_pair(pair).ok
    data = os.urandom(100_000)
    received, *errors = transfer(pair.client, pair.server, data)
    assert errors == [None, None] and sha256(received) == sha256(data)
    pair.close()
    del pair
    gc.collect()
    assert server_config() is None, "a Config outlives all its connections"


class Boom(Exception):
    """The exception raised by a deliberately failing callback."""


def _raise(*args):
    raise Boom("from a callback")


def _callback_cases(pki):
    """Configs whose callback raises, and which side's negotiate must report it."""
    def server(**kwargs):
        return s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], **kwargs)

    def client(**kwargs):
        return s2npy.Config(trust=pki.ca.cert, system_trust=False, **kwargs)

    return {
        "client hello": (server(client_hello_callback=_raise), client(), "server", {}),
        "verify host": (server(), client(verify_host=_raise), "client", {}),
        "key log (server)": (server(key_log=_raise), client(), "server", {}),
        "key log (client)": (server(), client(key_log=_raise), "client", {}),
        "transport recv": (server(), client(), "client", {"client_plan": _fail_recv}),
        "transport send": (server(), client(), "server", {"server_plan": _fail_send}),
    }


def _fail_recv(transport, op):
    return Boom("transport recv_into") if op == "recv" and transport.calls["recv"] > 1 else None


def _fail_send(transport, op):
    return Boom("transport send") if op == "send" else None


@pytest.mark.parametrize("kind", ["client hello", "verify host", "key log (server)", "key log (client)",
                                  "transport recv", "transport send"])
def test_exception_in_callback_reaches_caller(pki, kind):
    """A raising callback fails the handshake; the caller gets the original exception, chained."""
    server_config, client_config, side, plans = _callback_cases(pki)[kind]
    pair = negotiate_pair(make_pair(server_config, client_config, **plans))
    assert not pair.ok
    error = pair.errors[side]
    assert isinstance(error, Boom), f"{kind}: got {error!r}"
    assert error.__cause__ is None or isinstance(error.__cause__, S2NError)
    other = "client" if side == "server" else "server"
    assert not isinstance(pair.errors.get(other), Boom), "the exception leaked to the other connection"
    pair.close()


ALLOWED = {"TypeError", "ValueError", "UnicodeError", "OverflowError", "BufferError"} | {
    name for name in dir(s2npy) if isinstance(getattr(s2npy, name), type)
    and issubclass(getattr(s2npy, name), S2NError)}


def test_wrong_types_and_sizes_in_a_child_process():
    """Wrong types and sizes to every public function: clear exceptions, no crash (checked in a child)."""
    process = run_python("import misuse_calls; misuse_calls.main()", env={"PYTHONPATH": str(HERE)})
    assert_survived(process)
    outcome = json.loads(process.stdout.strip().splitlines()[-1])
    assert len(outcome) > 50
    unclear = {label: result for label, result in outcome.items() if result not in ALLOWED}
    assert not unclear, f"unclear outcomes: {unclear}"
