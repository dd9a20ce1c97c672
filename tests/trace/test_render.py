"""The text ladder and the JSON lines of real traced handshakes."""

from __future__ import annotations

import json

import s2npy
from s2npy import Behaviour
from s2npy.trace import render_jsonl, render_pair, render_text
from s2npy.trace.render import SCHEMA


def tls13_pair(server_config, client_config):
    """A successful TLS 1.3 handshake with client auth, ALPN and s2n's checkpoints."""
    result = s2npy.handshake(server_config(cert_auth="optional", events=True, alpn=["h2"]),
                             client_config(with_cert=True, events=True, alpn=["h2", "http/1.1"]),
                             server_name="localhost", trace=True)
    assert result.ok, result.error
    return result


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_ladder_shows_hello_details_and_encrypted_messages(server_config, client_config):
    text = render_text(tls13_pair(server_config, client_config).client.trace)
    hello = text.split("ClientHello", 1)[1]
    for detail in ("versions: TLSv1.3, TLSv1.2", "SNI: localhost", "ALPN: h2, http/1.1", "sig_algs: (",
                   "cipher_suites: (", "key_shares: "):
        assert detail in hello
    assert lines_with(text, "ClientHello")[0].split()[2:5] == ["C", "------>", "S"]
    assert lines_with(text, "ServerHello")[0].split()[2:5] == ["C", "<------", "S"]
    for message in ("ENCRYPTED_EXTENSIONS", "SERVER_CERT_REQ", "SERVER_CERT_VERIFY", "SERVER_FINISHED"):
        assert "C <------ S  encrypted record" in lines_with(text, f": {message}")[0]
    for message in ("CLIENT_CERT", "CLIENT_CERT_VERIFY", "CLIENT_FINISHED"):
        assert "C ------> S  encrypted record" in lines_with(text, f": {message}")[0]
    assert "HANDSHAKE OK: protocol TLSv1.3" in text and "alpn h2" in text


def test_negotiate_calls_show_outcome_states_and_bytes(server_config, client_config):
    text = render_text(tls13_pair(server_config, client_config).server.trace)
    calls = lines_with(text, "negotiate #")
    assert calls[0].split()[2:4] == ["*", "S"]
    assert "negotiate #1: blocked on read" in calls[0] and "CLIENT_HELLO -> CLIENT_HELLO" in calls[0]
    assert "done" in calls[-1] and "-> APPLICATION_DATA" in calls[-1]
    assert any("CLIENT_AUTH" in call for call in calls)
    assert all(" B, out " in call for call in calls)


def test_tls12_certificate_request_and_empty_certificate(server_config, client_config):
    result = s2npy.handshake(server_config(cert_auth="optional", policy="test_all_tls12"),
                             client_config(policy="test_all_tls12"), server_name="localhost", trace=True)
    assert result.ok, result.error
    text = render_text(result.server.trace)
    request = text.split("CertificateRequest", 1)[1].split(" ms ", 1)[0]
    assert "sig_algs: (" in request and "ecdsa_secp256r1_sha256" in request
    assert "certificate_types: " in request
    assert lines_with(text, "Certificate ")[-1].endswith("EMPTY (no certificate)")
    assert lines_with(text, "encrypted record")[0].endswith(": Finished")  # TLS 1.2, without checkpoints


def test_failure_shows_alert_error_and_diagnosis(server_config, client_config):
    result = s2npy.handshake(server_config(policy="CloudFront-TLS-1-3-2025"), client_config(policy="test_all_tls12"),
                             server_name="localhost", trace=True)
    text = render_text(result.client.trace)
    assert "Alert fatal protocol_version (70): the peer does not support any protocol version" in text
    assert "HANDSHAKE FAILED: AlertError S2N_ERR_ALERT" in text
    assert "diagnosis: the server sent alert protocol_version" in text and "next step: " in text


def test_pair_shows_each_record_once_in_order(server_config, client_config):
    result = tls13_pair(server_config, client_config)
    text = render_pair(result.server.trace, result.client.trace)
    assert len(lines_with(text, "ClientHello")) == 1 and len(lines_with(text, "ServerHello")) == 1
    order = [text.index(name) for name in ("ClientHello", "ServerHello", "SERVER_FINISHED", "CLIENT_FINISHED")]
    assert order == sorted(order)
    assert {line.split()[2:4] == ["C", "*"] for line in lines_with(text, "negotiate #")} == {True, False}
    assert len(lines_with(text, "HANDSHAKE OK")) == 2


def test_pair_with_a_raw_peer_uses_the_other_side(server_config):
    result = s2npy.handshake(server_config(), None, client=Behaviour(raw=b"GET / HTTP/1.1\r\n\r\n"), trace=True)
    text = render_pair(result.server.trace, None)
    assert "C ------> S  NOT TLS (http): b'GET / HTTP/1.1'" in text
    assert "EOF: the client closed" in text


def test_jsonl_schema(server_config, client_config):
    result = tls13_pair(server_config, client_config)
    objects = [json.loads(line) for line in render_jsonl(result.client.trace).splitlines()]
    assert all(item["schema"] == SCHEMA == 2 and item["side"] == "client" for item in objects)
    times = [item["t_ms"] for item in objects]
    assert times == sorted(times)
    by_kind: dict[str, list[dict]] = {}
    for item in objects:
        by_kind.setdefault(item["kind"], []).append(item)
    assert {"record", "handshake", "change_cipher_spec", "negotiate", "checkpoint", "handshake_event",
            "result"} <= by_kind.keys()
    assert set(by_kind["negotiate"][0]) == {"schema", "t_ms", "side", "kind", "call", "duration_ms", "outcome",
                                            "before", "after", "handshake_type", "bytes_in", "bytes_out"}
    hello = by_kind["handshake"][0]
    assert (hello["direction"], hello["name"], hello["details"]["server_name"]) == ("c2s", "client_hello",
                                                                                    "localhost")
    encrypted = [item for item in by_kind["record"] if item["encrypted"]]
    assert encrypted[0]["s2n_messages"] == ["ENCRYPTED_EXTENSIONS"]
    assert by_kind["result"][0]["ok"] is True and by_kind["result"][0]["protocol"] == "TLSv1.3"
    assert result.client.trace.to_jsonl() == render_jsonl(result.client.trace)


def test_jsonl_error_carries_the_diagnosis(server_config):
    result = s2npy.handshake(server_config(), None, client=Behaviour(raw=b"GET / HTTP/1.1\r\n\r\n"), trace=True)
    last = json.loads(render_jsonl(result.server.trace).splitlines()[-1])
    assert (last["kind"], last["ok"], last["error"]) == ("error", False, "S2N_ERR_CLOSED")
    assert last["diagnosis"]["cause"] == "not_tls"


def test_server_view_of_the_client_hello_with_fingerprints(server_config, client_config):
    result = s2npy.handshake(server_config(client_hello_callback=lambda connection, hello: None), client_config(),
                             server_name="localhost", trace=True)
    text = render_text(result.server.trace)
    (callback,) = lines_with(text, "client hello callback: SNI localhost")
    assert callback.split()[2:4] == ["*", "S"]
    assert lines_with(text, "JA3: ") and lines_with(text, "JA4: t13d")
