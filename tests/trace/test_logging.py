"""The s2npy.trace logger, S2NPY_TRACE (no code changes), and lazy formatting."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import s2npy
from s2npy.trace import ConnectionTrace

#: A program that knows nothing about tracing: one in-memory handshake, clean exit.
PROGRAM = """
import s2npy
from s2npy.pki import make_pki
pki = make_pki("ecdsa")
server = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], system_trust=False)
client = s2npy.Config(trust=pki.ca.cert, system_trust=False)
end_s, end_c = s2npy.memory_pipe()
connections = [s2npy.Connection(client, "client", io=end_c, server_name="localhost"),
               s2npy.Connection(server, "server", io=end_s)]
while not all([c.try_negotiate() == s2npy.Blocked.NOT_BLOCKED for c in connections]):
    pass
for connection in connections:
    connection.negotiate()
    print(connection.trace is not None)
"""


def run_program(trace_env: str | None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "S2NPY_TRACE"}
    if trace_env is not None:
        env["S2NPY_TRACE"] = trace_env
    return subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60,
                          check=True)


def test_env_var_traces_every_connection_to_stderr():
    done = run_program("1")
    assert done.stdout.split() == ["True", "True"]
    assert "s2npy.trace: client handshake ok" in done.stderr
    assert "s2npy trace of the server side" in done.stderr and "ClientHello" in done.stderr


def test_env_var_json_logs_json_lines():
    done = run_program("json")
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert records and all(record["schema"] == 2 for record in records)
    assert {record["side"] for record in records} == {"client", "server"}


def test_without_env_var_nothing_is_traced_or_printed():
    done = run_program(None)
    assert done.stdout.split() == ["False", "False"] and done.stderr == ""


def test_failure_is_logged_at_info_with_the_ladder(server_config, caplog):
    with caplog.at_level(logging.INFO, logger="s2npy.trace"):
        s2npy.handshake(server_config(), None, client=s2npy.Behaviour(raw=b"GET / HTTP/1.1\r\n\r\n"), trace=True)
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert "server handshake failed" in record.getMessage() and "NOT TLS (http)" in record.getMessage()


def test_debug_level_turns_tracing_on(client_config, caplog):
    with caplog.at_level(logging.DEBUG, logger="s2npy.trace"):
        assert s2npy.Connection(client_config(), "client").trace is not None


def test_formatting_is_lazy(server_config, client_config, monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(ConnectionTrace, "render_text", lambda self: calls.append(self) or "")
    with caplog.at_level(logging.WARNING, logger="s2npy.trace"):
        result = s2npy.handshake(server_config(), client_config(), server_name="localhost", trace=True)
        s2npy.handshake(server_config(), None, client=s2npy.Behaviour(raw=b"GET /\r\n"), trace=True)
    assert result.ok and calls == []
    with caplog.at_level(logging.DEBUG, logger="s2npy.trace"):
        s2npy.handshake(server_config(), client_config(), server_name="localhost", trace=True)
    assert calls  # rendered once a handler emits the record
