"""Safe defaults: verification on unless disabled, no TLS 1.0 by default, key logs only when asked (0600)."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import threading
import warnings

import pytest
from reliability_tools import make_pair, negotiate_pair

import s2npy
from s2npy import ProtocolError, handshake


def _server(pki, identity=None, **kwargs):
    identity = identity or pki.server
    return s2npy.Config(certificates=[(identity.cert, identity.key)], **kwargs)


def _client_error(server_config, client_config, server_name="localhost"):
    result = handshake(server_config, client_config, server_name=server_name)
    assert not result.ok
    assert isinstance(result.client.error, ProtocolError), result.client.error
    return result.client.error.name


def test_client_verifies_chain_by_default(pki):
    """A default client (system trust only) refuses a certificate from an unknown CA."""
    assert _client_error(_server(pki), s2npy.Config()) == "S2N_ERR_CERT_UNTRUSTED"


def test_client_verifies_hostname_by_default(pki):
    """A wrong server name, or none at all, fails; the right one (any case) and the IP SAN pass."""
    client = s2npy.Config(trust=pki.ca.cert, system_trust=False)
    for name in ("wrong.example", "localhost.evil.example", None):
        assert _client_error(_server(pki), client, name) == "S2N_ERR_CERT_INVALID_HOSTNAME"
    for name in ("localhost", "LOCALHOST", "127.0.0.1"):
        assert handshake(_server(pki), client, server_name=name).ok


def test_client_refuses_expired_certificate(pki):
    """An expired server certificate is refused."""
    client = s2npy.Config(trust=pki.ca.cert, system_trust=False)
    assert _client_error(_server(pki, pki.expired_server), client) == "S2N_ERR_CERT_EXPIRED"


def test_verification_off_only_when_asked(pki):
    """verify_peer=False (explicit, documented as insecure) accepts an untrusted, misnamed certificate."""
    client = s2npy.Config(verify_peer=False)
    assert not client.verify_peer
    assert handshake(_server(pki), client, server_name="wrong.example").ok
    assert s2npy.Config().verify_peer


def _tls10_client_against(server_config) -> tuple[str | None, BaseException | None, BaseException | None]:
    """Python's ssl client limited to TLS 1.0 (security level 0) against an s2npy server on a socketpair."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    server_sock, client_sock = socket.socketpair()
    server_sock.settimeout(10)
    outcome: dict = {}

    def serve():
        try:
            with s2npy.Connection(server_config, "server", io=server_sock) as connection:
                outcome["facts"] = connection.negotiate()
        except Exception as exc:  # noqa: BLE001 - checked by the caller
            outcome["server"] = exc
        finally:
            server_sock.close()

    thread = threading.Thread(target=serve)
    thread.start()
    version = client_error = None
    try:
        with context.wrap_socket(client_sock, server_hostname="localhost") as tls:
            version = tls.version()
    except (ssl.SSLError, OSError) as exc:
        client_error = exc
    thread.join(15)
    assert not thread.is_alive()
    return version, client_error, outcome.get("server")


def test_default_policy_refuses_tls10(pki):
    """A TLS 1.0-only client is refused by the default policy, though a permissive policy would accept it."""
    version, _, server_error = _tls10_client_against(_server(pki, policy="test_all"))
    assert version == "TLSv1", "control: this OpenSSL can still speak TLS 1.0 at security level 0"
    assert server_error is None
    version, client_error, server_error = _tls10_client_against(_server(pki))
    assert version is None and client_error is not None
    assert isinstance(server_error, ProtocolError), server_error
    assert server_error.name == "S2N_ERR_PROTOCOL_VERSION_UNSUPPORTED", server_error.name
    assert server_error.diagnosis is not None


def test_no_key_log_unless_asked(configs, tmp_path, monkeypatch):
    """Without key_log and without SSLKEYLOGFILE, no secrets are written anywhere we can see."""
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    server_config, client_config = configs
    assert negotiate_pair(make_pair(server_config, client_config)).ok
    assert list(tmp_path.iterdir()) == []
    assert server_config._key_log_sinks == [] and client_config._key_log_sinks == []


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_key_log_file_is_private(pki, tmp_path, monkeypatch, how):
    """Asked for (argument or SSLKEYLOGFILE), the key log is created with mode 0600 even under umask 0."""
    path = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path)) if how == "environment" else \
        monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    client = s2npy.Config(trust=pki.ca.cert, system_trust=False,
                          **({"key_log": path} if how == "argument" else {}))
    old_umask = os.umask(0)
    try:
        assert handshake(_server(pki), client, server_name="localhost").ok
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert any(line.startswith("CLIENT_HANDSHAKE_TRAFFIC_SECRET ") for line in lines)
