"""Config: loading certificates and trust, settings, validation errors, the freezing rule."""

from __future__ import annotations

import os
import stat

import pytest

import s2npy
from s2npy import CertAuth


def test_certificates_from_bytes_str_and_path(pki, pki_files):
    s2npy.Config(certificates=[(pki.server.cert, pki.server.key)])
    s2npy.Config(certificates=[(pki.server.cert.decode(), pki.server.key.decode())])
    s2npy.Config(certificates=[(pki_files["server"], str(pki_files["server_key"]))])


def test_rsa_and_ecdsa_chains_on_one_config(pki, rsa_pki):
    config = s2npy.Config(certificates=[(pki.server.cert, pki.server.key),
                                        (rsa_pki.server.cert, rsa_pki.server.key)])
    assert "certificates=2" in repr(config)


def test_bad_pem_is_a_config_error():
    with pytest.raises(s2npy.ConfigError, match="not PEM"):
        s2npy.Config(certificates=[(b"garbage", b"more garbage")])


def test_corrupt_pem_body_names_the_step(pki):
    truncated = pki.server.cert[:120] + b"\n-----END CERTIFICATE-----\n"
    with pytest.raises(s2npy.S2NError, match="loading certificate chain and private key"):
        s2npy.Config(certificates=[(truncated, pki.server.key)])


def test_key_not_matching_certificate(pki):
    with pytest.raises(s2npy.S2NError) as info:
        s2npy.Config(certificates=[(pki.server.cert, pki.client.key)])
    assert "loading certificate chain and private key" in str(info.value)
    assert info.value.name and info.value.name.startswith("S2N_ERR_")


def test_missing_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(s2npy.ConfigError, match="nope.pem"):
        s2npy.Config(trust=missing)


def test_wrong_type_is_a_config_error():
    with pytest.raises(s2npy.ConfigError, match="must be PEM bytes"):
        s2npy.Config(trust=12345)


def test_trust_from_file_and_directory(pki_files, tmp_path, pki):
    s2npy.Config(trust=pki_files["ca"], system_trust=False)
    directory = tmp_path / "cadir"
    directory.mkdir()
    (directory / "ca.pem").write_bytes(pki.ca.cert)
    os.system(f"openssl rehash {directory} >/dev/null 2>&1")
    s2npy.Config(trust=directory, system_trust=False)


def test_unknown_policy_names_it():
    with pytest.raises(s2npy.UsageError) as info:
        s2npy.Config(policy="no_such_policy_42")
    assert "no_such_policy_42" in str(info.value)
    assert info.value.name == "S2N_ERR_INVALID_SECURITY_POLICY"


@pytest.mark.parametrize("value,expected", [("none", CertAuth.NONE), ("OPTIONAL", CertAuth.OPTIONAL),
                                            (CertAuth.REQUIRED, CertAuth.REQUIRED)])
def test_cert_auth_accepts_enum_and_strings(value, expected):
    assert s2npy.Config(cert_auth=value).cert_auth is expected


def test_unknown_cert_auth_is_rejected():
    with pytest.raises(s2npy.ConfigError, match="unknown cert auth 'sometimes'"):
        s2npy.Config(cert_auth="sometimes")


@pytest.mark.parametrize("alpn", ["h2", [""], ["x" * 256]])
def test_bad_alpn_is_rejected(alpn):
    with pytest.raises(s2npy.ConfigError):
        s2npy.Config(alpn=alpn)


def test_max_chain_depth_validation():
    s2npy.Config(max_chain_depth=3)
    with pytest.raises(s2npy.ConfigError):
        s2npy.Config(max_chain_depth=0)


def test_config_freezes_on_first_connection(server_config):
    config = server_config()
    config.set_policy("default")
    connection = s2npy.Connection(config, "server")
    assert config.frozen
    with pytest.raises(s2npy.ConfigInUseError, match="frozen"):
        config.set_cert_auth("required")
    with pytest.raises(s2npy.ConfigInUseError):
        config.add_trust(b"-----BEGIN CERTIFICATE-----")
    connection.close()


def test_copy_replays_settings_unfrozen(server_config, client_config):
    config = server_config(cert_auth="required", policy="default")
    s2npy.Connection(config, "server").close()
    clone = config.copy()
    assert not clone.frozen
    assert clone.cert_auth is CertAuth.REQUIRED and clone.policy == "default"
    clone.set_cert_auth("none")
    result = s2npy.handshake(clone, client_config(), server_name="localhost")
    assert result.ok, result.error


def test_close_refuses_while_connections_live(server_config):
    config = server_config()
    connection = s2npy.Connection(config, "server")
    with pytest.raises(s2npy.UsageError, match="connections still use"):
        config.close()
    connection.close()
    config.close()
    with pytest.raises(s2npy.UsageError, match="closed"):
        s2npy.Connection(config, "server")


def test_a_connection_that_failed_to_start_leaves_its_config_free_to_close(client_config):
    config = client_config()
    with pytest.raises(s2npy.S2NError, match="server name"):
        s2npy.Connection(config, "client", server_name=".".join(["a" * 63] * 5))  # s2n refuses > 255 bytes
    config.close()


def test_a_connection_switched_to_another_config_no_longer_holds_the_first(client_config):
    first, second = client_config(), client_config()
    connection = s2npy.Connection(first, "client")
    connection.set_config(second)
    first.close()  # its s2n config is no longer used by the connection
    with pytest.raises(s2npy.UsageError, match="connections still use"):
        second.close()
    connection.close()
    second.close()


def test_key_log_file_only_when_asked_and_private(server_config, client_config, tmp_path, monkeypatch):
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    path = tmp_path / "keys.log"
    result = s2npy.handshake(server_config(), client_config(), server_name="localhost")
    assert result.ok and not path.exists()
    result = s2npy.handshake(server_config(), client_config(key_log=path), server_name="localhost")
    assert result.ok
    lines = path.read_text().splitlines()
    assert any(line.startswith("CLIENT_HANDSHAKE_TRAFFIC_SECRET ") for line in lines)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sslkeylogfile_is_honoured(server_config, client_config, tmp_path, monkeypatch):
    path = tmp_path / "env-keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))
    assert s2npy.handshake(server_config(), client_config(), server_name="localhost").ok
    assert "SERVER_TRAFFIC_SECRET_0" in path.read_text()


def test_existing_key_log_file_is_narrowed_to_0600(server_config, client_config, tmp_path, monkeypatch):
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    path = tmp_path / "shared.log"
    path.write_text("")
    path.chmod(0o644)
    assert s2npy.handshake(server_config(), client_config(key_log=path), server_name="localhost").ok
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in path.read_text()
