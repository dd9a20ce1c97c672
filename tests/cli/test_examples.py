"""Each example script runs and prints what its docstring promises."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

import s2npy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("name, expected", [
    ("blocking_server_client.py", "echo: hello over s2n"),
    ("mutual_tls.py", "without a certificate: S2N_ERR_MISSING_CLIENT_CERT"),
    ("config_experiment.py", "cert auth optional client hangs up: True  -> S2N_ERR_CLOSED"),
    ("read_trace.py", "cause: closed_after_certificate_request"),
])
def test_example_prints_its_result(name, expected):
    assert expected in run_example(name)


def test_wss_server_example_echoes_for_an_api_client(pki):
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Message, Request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(EXAMPLES / "wss_server.py"), str(port), "--once"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert "listening on" in server.stdout.readline()
        client = s2npy.Config(system_trust=False, verify_peer=False)
        ws = WSConnection(ConnectionType.CLIENT)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
                s2npy.Connection(client, "client", io=sock) as tls:
            tls.negotiate()
            received = []
            for outgoing, awaited in ((Request(host="localhost", target="/"), AcceptConnection),
                                      (Message(data="ping"), Message)):
                tls.sendall(ws.send(outgoing))
                while not any(isinstance(event, awaited) for event in received):
                    ws.receive_data(tls.recv())
                    received += list(ws.events())
            tls.sendall(ws.send(CloseConnection(code=1000)))
        assert isinstance(received[0], AcceptConnection)
        assert [event.data for event in received if isinstance(event, Message)] == ["ping"]
        output, _ = server.communicate(timeout=10)
    finally:
        server.kill()
        server.wait(timeout=5)
    assert "TLS ok: TLSv1.3, client certificate sent: False" in output
