"""Every subcommand as a subprocess: output, exit status, and one-line errors for bad input."""

from __future__ import annotations

import json
import socket

import pytest

SUBCOMMANDS = ("demo", "serve", "connect", "certs", "matrix", "version")


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 or lines[0].startswith("usage:"), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_each_subcommand_has_help(run_cli, command):
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert f"usage: s2npy {command}" in result.stdout


def test_version_names_s2n_and_libcrypto(run_cli):
    result = run_cli("version")
    assert result.returncode == 0
    assert "s2npy: 0.1.0" in result.stdout
    assert "s2n_source: awscrt" in result.stdout
    assert "libcrypto: AWS-LC" in result.stdout


def test_demo_reproduces_the_founding_case(run_cli):
    result = run_cli("demo", timeout=30)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ClosedError" in out and "S2N_ERR_CLOSED" in out
    assert "diagnosis: peer closed the connection without an alert after the server sent CertificateRequest" in out
    table = out[out.index("server    client"):].splitlines()
    outcomes = [(line.split()[0], "FAILED" in line) for line in table[1:7]]
    assert outcomes == [("optional", False), ("optional", True), ("none", False), ("none", False),
                        ("rule", False), ("rule", False)]
    assert "closed_after_certificate_request" in table[2]
    assert ": SERVER_CERT_REQ" in out  # the ladder names the CertificateRequest record
    assert "secrets are logged for the traces only" in out  # and says why it can decrypt it:
    assert "C <------ S  [decrypted] CertificateRequest" in out
    assert "C ------> S  [decrypted] Certificate 4 B EMPTY (no certificate)" in out  # curl's answer


def test_certs_writes_a_usable_pki(run_cli, tmp_path):
    result = run_cli("certs", str(tmp_path / "pki"), "--key-type", "rsa", "--san", "example.test")
    assert result.returncode == 0, result.stderr
    for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key", "untrusted_client.pem"):
        assert (tmp_path / "pki" / name).exists()
    from cryptography import x509

    server = x509.load_pem_x509_certificate((tmp_path / "pki" / "server.pem").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "example.test" in names.get_values_for_type(x509.DNSName)
    assert "s2npy serve" in result.stdout


def test_matrix_from_flags_prints_the_table_and_json(run_cli, tmp_path):
    out_json = tmp_path / "rows.json"
    result = run_cli("matrix", "--cert-auth", "optional,required", "--client-cert", "none,valid",
                     "--behaviour", "normal,abort", "--json", str(out_json))
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.strip().splitlines()
    assert header.split() == ["cert_auth", "client_cert", "policy", "behaviour", "outcome", "error",
                              "last_message", "protocol", "cipher"]
    assert len(lines) == 8
    rows = json.loads(out_json.read_text())
    by_cell = {(r["cert_auth"], r["client_cert"], r["behaviour"]): r for r in rows}
    assert by_cell[("optional", "none", "normal")]["outcome"] == "ok"
    assert by_cell[("optional", "none", "abort")]["error"] == "S2N_ERR_CLOSED"
    assert by_cell[("required", "none", "normal")]["error"] == "S2N_ERR_MISSING_CLIENT_CERT"
    assert by_cell[("required", "valid", "normal")]["protocol"] == "TLSv1.3"


def test_matrix_from_a_toml_file(run_cli, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('cert_auth = ["optional"]\nclient_cert = ["untrusted"]\npolicy = ["20190801"]\n'
                    'behaviour = "normal"\n')
    result = run_cli("matrix", "--grid", str(grid), "--json", "-")
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert (row["policy"], row["outcome"], row["error"]) == ("20190801", "FAILED", "S2N_ERR_CERT_UNTRUSTED")


def test_matrix_rejects_an_unknown_grid_key(run_cli, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text('{"cert_auht": ["none"]}')
    assert_one_line_error(run_cli("matrix", "--grid", str(grid)), "unknown keys", "cert_auht")


def test_missing_certificate_file_is_one_line(run_cli):
    assert_one_line_error(run_cli("serve", "127.0.0.1:0", "--cert", "nope.pem", "--key", "nope.key"),
                          "no such file or directory: 'nope.pem'")


def test_unknown_policy_is_one_line(run_cli):
    assert_one_line_error(run_cli("serve", "127.0.0.1:0", "--policy", "no_such_policy"),
                          "no_such_policy", "default_tls13")


def test_port_in_use_is_one_line(run_cli):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_one_line_error(run_cli("serve", f"127.0.0.1:{port}"), "cannot listen on", "Address already in use")


def test_connection_refused_is_one_line(run_cli):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert_one_line_error(run_cli("connect", f"127.0.0.1:{port}", "--timeout", "2"), "Connection refused")


def test_bad_address_is_a_usage_error(run_cli):
    assert_one_line_error(run_cli("connect", "localhost"), "expected HOST:PORT")
