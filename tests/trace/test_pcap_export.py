"""A traced handshake exported as pcap + key log opens decrypted in tshark, matching the trace."""

from __future__ import annotations

import subprocess
import time

import s2npy
from s2npy.trace.wire import HandshakeMessage, Record

#: TLS handshake message type of each s2n state machine message name (TLS 1.3 full handshake).
HANDSHAKE_TYPES = {"CLIENT_HELLO": 1, "SERVER_HELLO": 2, "ENCRYPTED_EXTENSIONS": 8, "SERVER_CERT_REQ": 13,
                   "SERVER_CERT": 11, "SERVER_CERT_VERIFY": 15, "SERVER_FINISHED": 20, "CLIENT_CERT": 11,
                   "CLIENT_CERT_VERIFY": 15, "CLIENT_FINISHED": 20}
SERVER_PORT = 443


def tshark_fields(pcap, keylog, *fields: str) -> list[list[str]]:
    """One row per packet that has the first field, ``tshark -T fields`` with the key log applied."""
    argv = ["tshark", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}", "-T", "fields",
            "-E", "occurrence=a", "-E", "aggregator=,", "-Y", fields[0]]
    for field in fields:
        argv += ["-e", field]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in done.stdout.splitlines()]


def trace_sequence(trace) -> tuple[list[tuple[str, int]], list[int], list[int]]:
    """(direction, length) of every record, and every handshake message type, as the trace has them.

    The types twice: as decoded (plaintext, and decrypted with the key log), and as
    s2n's checkpoints name the messages inside the encrypted records.
    """
    records, types, checkpointed = [], [], []
    for event in trace.events():
        if isinstance(event.wire, Record):
            records.append((event.wire.direction, event.wire.length))
            checkpointed += [HANDSHAKE_TYPES[name] for name in event.data.get("s2n_messages", [])
                             if name in HANDSHAKE_TYPES and event.wire.encrypted]
        elif isinstance(event.wire, HandshakeMessage):
            types.append(event.wire.msg_type)
            checkpointed += [] if event.wire.decrypted else [event.wire.msg_type]
    return records, types, checkpointed


def test_tshark_decrypts_and_agrees_with_the_trace(server_config, client_config, tmp_path):
    result = s2npy.handshake(server_config(cert_auth="optional"),
                             client_config(with_cert=True, events=True, key_log=True),
                             server_name="localhost", trace=True)
    assert result.ok, result.error
    trace = result.client.trace
    pcap, keylog = tmp_path / "handshake.pcap", tmp_path / "keys.txt"
    assert trace.write_pcap(str(pcap), str(keylog)) > 0

    records, types, checkpointed = trace_sequence(trace)
    rows = tshark_fields(pcap, keylog, "tls.record.length", "tcp.srcport", "tls.handshake.type", "frame.time_epoch")
    seen_records = [("s2c" if int(port) == SERVER_PORT else "c2s", int(length))
                    for lengths, port, _, _ in rows for length in lengths.split(",")]
    seen_types = [int(code) for _, _, codes, _ in rows for code in codes.split(",") if code]
    assert seen_records == records
    assert seen_types == types == checkpointed == [1, 2, 8, 13, 11, 15, 20, 11, 15, 20]
    assert abs(float(rows[0][3]) - time.time()) < 600  # wall-clock timestamps, not 1970


def test_pcap_of_a_reset_ends_with_rst(server_config, client_config, tmp_path):
    result = s2npy.handshake(server_config(), client_config(), server_name="localhost", trace=True,
                             client=s2npy.Behaviour(abort_at="CLIENT_FINISHED", reset=True))
    pcap = tmp_path / "reset.pcap"
    result.server.trace.write_pcap(str(pcap))
    rows = tshark_fields(pcap, tmp_path / "none", "tcp.flags.reset")
    assert rows[-1][0] in ("1", "True")
