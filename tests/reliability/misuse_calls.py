"""Wrong types and sizes passed to every public function; run in a child process.

``python -c "import misuse_calls; misuse_calls.main()"`` prints one JSON line:
label -> the exception class name raised (or "returned"). The test in
test_misuse.py checks each is a clear exception; running in a child means a
segfault fails that test instead of killing pytest.
"""

from __future__ import annotations

import json

import s2npy
from s2npy import Config, Connection, memory_pipe
from s2npy.pki import make_pki

from reliability_tools import make_pair, negotiate_pair


def calls() -> dict:
    """label -> a zero-argument callable that misuses the API."""
    pki = make_pki("ecdsa")

    server = Config(certificates=[(pki.server.cert, pki.server.key)])
    client = Config(trust=pki.ca.cert, system_trust=False)
    connection = Connection(client.copy(), "client", io=memory_pipe()[0])
    pair = negotiate_pair(make_pair(server, client))  # data calls on a connected client
    assert pair.ok, pair.errors
    connected = pair.client
    config = Config()
    return {
        "Connection(config=str)": lambda: Connection("config"),
        "Connection(config=None)": lambda: Connection(None),
        "Connection(mode=7)": lambda: Connection(Config(), 7),
        "Connection(mode='bogus')": lambda: Connection(Config(), "bogus"),
        "Connection(blinding=3)": lambda: Connection(Config(), blinding=3),
        "Connection(prefer=1)": lambda: Connection(Config(), prefer=1),
        "Connection(io=object())": lambda: Connection(Config(), io=object()),
        "Connection(io=2**40)": lambda: Connection(Config(), io=2 ** 40),
        "Connection(session=10**12)": lambda: Connection(Config(), session=10 ** 12),
        "set_server_name(123)": lambda: connection.set_server_name(123),
        "set_server_name('')": lambda: connection.set_server_name(""),
        "set_server_name(300 chars)": lambda: connection.set_server_name("a" * 300),
        "set_policy(None)": lambda: connection.set_policy(None),
        "set_policy('nope')": lambda: connection.set_policy("nope"),
        "set_alpn(5)": lambda: connection.set_alpn(5),
        "set_alpn('h2')": lambda: connection.set_alpn("h2"),
        "set_alpn([1])": lambda: connection.set_alpn([1]),
        "set_alpn([300 chars])": lambda: connection.set_alpn(["a" * 300]),
        "set_cert_auth(5)": lambda: connection.set_cert_auth(5),
        "set_session(None)": lambda: connection.set_session(None),
        "set_session('str')": lambda: connection.set_session("str"),
        "set_session(garbage)": lambda: connection.set_session(b"\x00" * 100),
        "set_session(10**12)": lambda: connection.set_session(10 ** 12),
        "set_preference(None)": lambda: connection.set_preference(None),
        "set_config(None)": lambda: connection.set_config(None),
        "send before negotiate": lambda: connection.send(b"early"),
        "recv before negotiate": lambda: connection.recv(10),
        "send('str')": lambda: connected.send("str"),
        "send(None)": lambda: connected.send(None),
        "send(123)": lambda: connected.send(123),
        "sendall(None)": lambda: connected.sendall(None),
        "recv(-1)": lambda: connected.recv(-1),
        "recv('x')": lambda: connected.recv("x"),
        "recv_into(bytes)": lambda: connected.recv_into(b"immutable"),
        "recv_into(nbytes=-1)": lambda: connected.recv_into(bytearray(10), -1),
        "recv_into(nbytes>len)": lambda: connected.recv_into(bytearray(10), 100),
        "recv_into(None)": lambda: connected.recv_into(None),
        "Config(certificates=5)": lambda: Config(certificates=5),
        "Config(certificates=[(x, y)])": lambda: Config(certificates=[("x", "y")]),
        "Config(certificates=[(DER, key)])": lambda: Config(certificates=[(b"\x30\x82", pki.server.key)]),
        "Config(certificates=[(cert, wrong key)])": lambda: Config(certificates=[(pki.server.cert, pki.client.key)]),
        "Config(trust=5)": lambda: Config(trust=5),
        "Config(trust='/nonexistent')": lambda: Config(trust="/nonexistent"),
        "Config(trust=b'garbage')": lambda: Config(trust=b"-----BEGIN CERTIFICATE-----\ngarbage\n"),
        "Config(policy=5)": lambda: Config(policy=5),
        "Config(policy='nope')": lambda: Config(policy="nope"),
        "Config(cert_auth=3)": lambda: Config(cert_auth=3),
        "Config(max_chain_depth=-1)": lambda: Config(max_chain_depth=-1),
        "Config(max_chain_depth='x')": lambda: Config(max_chain_depth="x"),
        "Config(key_log=3)": lambda: Config(key_log=3),
        "Config(verify_host=3)": lambda: Config(verify_host=3),
        "Config(client_hello_callback=3)": lambda: Config(client_hello_callback=3),
        "Config(alpn='h2')": lambda: Config(alpn="h2"),
        "Config(alpn=[''])": lambda: Config(alpn=[""]),
        "enable_session_tickets('str')": lambda: Config().enable_session_tickets("x" * 32),
        "enable_session_tickets(100 KB)": lambda: Config().enable_session_tickets(b"x" * 100000),
        "CertificateChain(None, None)": lambda: s2npy.CertificateChain(None, None),
        "handshake(None, None)": lambda: s2npy.handshake(None, None),
        "handshake(config, 'x')": lambda: s2npy.handshake(config, "x"),
    }


def main() -> None:
    outcome = {}
    for label, call in calls().items():
        try:
            call()
            outcome[label] = "returned"
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            outcome[label] = type(exc).__name__
    print(json.dumps(outcome))
