"""What a trace records, how it names encrypted records, and that tracing off stays off the data path."""

from __future__ import annotations

import socket
import time

import s2npy
from s2npy.trace import ConnectionTrace, Tracer
from s2npy.trace.recorder import message_sender, s2n_messages_by_record
from s2npy.trace.wire import Record


def test_message_sender_from_s2n_names():
    assert message_sender("SERVER_CERT_REQ") == message_sender("ENCRYPTED_EXTENSIONS") == "server"
    assert message_sender("CLIENT_FINISHED") == message_sender("END_OF_EARLY_DATA") == "client"
    assert message_sender("RECORD_READ") is None and message_sender("NEGOTIATE_START") is None


def test_checkpoints_name_our_next_record_and_the_peers_last_one():
    wire = [Record("s2c", 1.0, 23, "application_data", 0x303, 30, True),   # the server's, received
            Record("c2s", 3.0, 23, "application_data", 0x303, 40, True)]   # ours, sent
    checkpoints = [(1.1, "RECORD_READ", 1), (1.2, "ENCRYPTED_EXTENSIONS", 1), (2.0, "CLIENT_FINISHED", 1),
                   (3.1, "RECORD_WRITE", 1)]
    assert s2n_messages_by_record("client", wire, checkpoints) == {0: ["ENCRYPTED_EXTENSIONS"],
                                                                   1: ["CLIENT_FINISHED"]}


def test_negotiate_calls_and_wire_bytes_agree(server_config, client_config):
    result = s2npy.handshake(server_config(), client_config(), server_name="localhost", trace=True)
    for side in (result.server, result.client):
        trace = side.trace
        assert trace.calls[-1].outcome == "done" and trace.calls[-1].after == "APPLICATION_DATA"
        assert sum(call.bytes_out for call in trace.calls) == sum(len(d) for _, direction, d in trace.chunks
                                                                if (direction == "c2s") == (trace.side == "client"))
        assert trace.facts is side.facts


def test_each_call_records_its_outcome_and_a_failure_keeps_its_error(server_config, client_config, pki):
    """Blocked calls, and the failed one: its states are read after it without losing s2n's error."""
    server_end, client_end = s2npy.memory_pipe()
    server = s2npy.Connection(server_config(), "server", io=server_end, trace=True)
    client = s2npy.Connection(s2npy.Config(trust=pki.other_ca.cert, system_trust=False), "client",
                              io=client_end, server_name="localhost", trace=True)
    assert client.try_negotiate() is s2npy.Blocked.ON_READ and server.try_negotiate() is s2npy.Blocked.ON_READ
    try:
        client.try_negotiate()
    except s2npy.S2NError as error:
        failure = error
    assert failure.name == "S2N_ERR_CERT_UNTRUSTED" and failure.diagnosis is not None
    first, last = client.trace.calls
    assert (first.outcome, first.before, first.after, first.bytes_in) == \
        ("blocked_on_read", "CLIENT_HELLO", "SERVER_HELLO", 0) and first.bytes_out > 0
    assert (last.outcome, last.before) == ("error", "SERVER_HELLO") and last.bytes_in > 0
    assert last.after and last.handshake_type and last.start > first.start
    assert server.trace.calls[0].outcome == "blocked_on_read" and server.trace.calls[0].bytes_in == first.bytes_out
    client.close(), server.close()


def test_tracer_shares_one_clock_and_reports_finished_traces(server_config, client_config):
    finished: list[ConnectionTrace] = []
    tracer = Tracer(on_finish=finished.append)
    server_end, client_end = s2npy.memory_pipe()
    server = s2npy.Connection(server_config(), "server", io=server_end, trace=tracer)
    client = s2npy.Connection(client_config(), "client", io=client_end, server_name="localhost", trace=tracer)
    for _ in range(10):
        done = [conn.try_negotiate() == s2npy.Blocked.NOT_BLOCKED for conn in (client, server)]
        if all(done):
            break
    client.negotiate(), server.negotiate()
    assert tracer.traces == [server.trace, client.trace] and set(finished) == set(tracer.traces)
    assert server.trace.origin == client.trace.origin
    assert abs(server.trace.wall_origin - time.time()) < 60


def test_tracing_off_keeps_python_off_the_data_path(client_config):
    left, right = socket.socketpair()
    with left, right:
        plain = s2npy.Connection(client_config(), "client", io=left, trace=False)
        assert plain.trace is None and plain._io_binding is None  # s2n reads the fd itself
        traced = s2npy.Connection(client_config(), "client", io=right, trace=True)
        assert isinstance(traced.trace, ConnectionTrace) and traced._io_binding is not None


def test_eof_is_an_event(server_config):
    result = s2npy.handshake(server_config(), None, client=s2npy.Behaviour(raw=b"\x16\x03\x01"), trace=True)
    kinds = [event.kind for event in result.server.trace.events()]
    assert "eof" in kinds and kinds[-1] == "error"


def test_traced_server_records_client_hello_without_a_callback(server_config, client_config):
    """No client hello callback on the config: the trace still has the server's view of the ClientHello."""
    result = s2npy.handshake(server_config(), client_config(alpn=["h2"]), server_name="localhost", trace=True)
    hello = result.server.trace.client_hello
    assert hello is not None and hello.server_name == "localhost" and hello.alpn == ["h2"]
    assert hello.ja4 and hello.ja4.startswith("t13")
    kinds = [event.kind for event in result.server.trace.events()]
    assert "client_hello" in kinds
