"""``s2npy connect`` against ``s2npy serve`` and ``openssl s_server``; curl against ``s2npy serve``."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
from loopback import free_port


def need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is not installed: apt-get install {tool}"
    return path


def test_connect_echo_with_client_certificate(serve, run_cli, pki_files, tmp_path):
    server = serve("--mode", "echo", "--cert", str(pki_files["server"]), "--key", str(pki_files["server_key"]),
                   "--trust", str(pki_files["ca"]), "--cert-auth", "required", "--keylog", str(tmp_path / "keys"),
                   "--pcap", str(tmp_path / "pcaps"))
    result = run_cli("connect", f"127.0.0.1:{server.port}", "--sni", "localhost", "--trust", str(pki_files["ca"]),
                     "--cert", str(pki_files["client"]), "--key", str(pki_files["client_key"]), "--send", "ping")
    assert result.returncode == 0, result.stderr
    assert "protocol:        TLSv1.3" in result.stdout
    assert "client cert sent: True" in result.stdout
    assert "C ------> S  ClientHello" in result.stdout  # the client's trace
    assert result.stdout.rstrip().endswith("ping")
    server.wait_for("echo: 4 bytes")
    assert "client_cert=sent" in server.wait_for(" OK ")
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in (tmp_path / "keys").read_text()
    assert (tmp_path / "pcaps" / "conn-1.pcap").stat().st_size > 0


def test_connect_failure_exits_non_zero_with_the_diagnosis(serve, run_cli):
    """With TLS 1.3 the client finishes first; the server's refusal shows when the client reads."""
    server = serve("--cert-auth", "required")
    result = run_cli("connect", f"127.0.0.1:{server.port}", "--trust", server.ca, "--trace", "none", "--send", "x")
    assert result.returncode == 1
    assert "after the handshake" in result.stderr, result
    line = server.wait_for("FAILED")
    assert "S2N_ERR_MISSING_CLIENT_CERT" in line
    assert "diagnosis:" in server.wait_for("diagnosis:")


def test_connect_untrusted_server_fails_and_insecure_connects(serve, run_cli):
    server = serve("--mode", "https")
    refused = run_cli("connect", f"127.0.0.1:{server.port}", "--trace", "none")
    assert refused.returncode == 1
    assert "S2N_ERR_CERT_UNTRUSTED" in refused.stderr
    insecure = run_cli("connect", f"127.0.0.1:{server.port}", "--insecure", "--http-get", "/", "--alpn", "http/1.1")
    assert insecure.returncode == 0, insecure.stderr
    assert "HTTP/1.1 200 OK" in insecure.stdout and "s2npy serve" in insecure.stdout


def test_serve_prints_json_traces_and_times_out_silent_clients(serve):
    server = serve("--trace", "json", "--handshake-timeout", "0.5")
    with socket.create_connection(("127.0.0.1", server.port)):
        line = server.wait_for("FAILED", timeout=5)
    assert "S2N_ERR_IO" in line or "TIMEOUT" in line.upper()
    assert '"kind": "error"' in server.wait_for('"kind": "error"')


def test_connect_against_openssl_s_server(run_cli, pki_files, tmp_path):
    port = free_port()
    process = subprocess.Popen([need("openssl"), "s_server", "-accept", str(port), "-cert", str(pki_files["server"]),
                                "-key", str(pki_files["server_key"]), "-www", "-naccept", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path, text=True)
    try:
        while process.stdout.readline().strip() != "ACCEPT":  # printed once it listens
            assert process.poll() is None, "openssl s_server exited"
        result = run_cli("connect", f"127.0.0.1:{port}", "--sni", "localhost", "--trust", str(pki_files["ca"]),
                         "--http-get", "/", "--trace", "none")
    finally:
        process.kill()
        process.wait(timeout=5)
    assert result.returncode == 0, result.stderr
    assert "protocol:        TLSv1.3" in result.stdout
    assert "HTTP/1.0 200 ok" in result.stdout


@pytest.mark.parametrize("rule", [[], ["--cert-auth-rule", "non-browser"]])
def test_curl_against_serve_with_optional(serve, rule):
    """curl answers the CertificateRequest with an empty Certificate; the rule still asks it (no GREASE)."""
    server = serve("--mode", "https", "--cert-auth", "optional", *rule)
    result = subprocess.run([need("curl"), "-sS", "--cacert", server.ca, "--max-time", "10",
                             f"https://localhost:{server.port}/"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert "s2npy serve" in result.stdout
    line = server.wait_for(" OK ")
    assert "cert_auth=optional" in line and "client non-browser" in line and "client_cert=none" in line
    server.wait_for("GET / -> 200")


