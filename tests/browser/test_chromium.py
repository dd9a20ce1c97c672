"""The founding case with a real browser: Debian's headless Chromium against ``s2npy serve``.

Observed on this machine (Chromium from Debian's ``chromium`` package, headless, loopback):

* A page from ``https://127.0.0.1:A`` opens ``wss://127.0.0.1:B`` to a WebSocket server
  with cert auth ``optional``: Chromium receives the CertificateRequest, then closes the TCP
  connection without an alert and without retrying; the server logs one
  ``FAILED S2N_ERR_CLOSED at CLIENT_CERT`` with the diagnosis naming the CertificateRequest,
  and the page sees the WebSocket's ``error``.
* With cert auth ``none``, and with ``--cert-auth-rule non-browser`` (Chromium's ClientHello
  carries GREASE, compress_certificate, encrypted_client_hello), the WebSocket echoes.
* Loading a page from a server with ``optional``: Chromium aborted three connections the same
  way (``S2N_ERR_CLOSED`` at ``CLIENT_CERT``), then the fourth answered with an empty
  Certificate and the page loaded.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--ignore-certificate-errors", "--remote-debugging-port=0"]


@pytest.fixture
def chromium(tmp_path):
    """``open(url)``: a headless Chromium with a fresh profile showing ``url``; killed at teardown.

    ``--dump-dom`` with ``--virtual-time-budget`` proved racy here (virtual time ran out
    before the WebSocket settled), so the page reports its WebSocket's fate to its own
    server and the tests read the server logs.
    """
    binary = shutil.which("chromium")
    assert binary, "Chromium is missing: apt-get install chromium"
    browsers: list[subprocess.Popen] = []

    def open_url(url: str) -> None:
        profile = tmp_path / f"profile-{len(browsers)}"
        profile.mkdir()
        browsers.append(subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    yield open_url
    for browser in browsers:
        browser.kill()
        browser.wait(timeout=10)


def cross_origin_websocket(serve, chromium, *ws_options: str):
    """A page on one origin opening wss:// to a WebSocket server on another; (page's report, ws server)."""
    ws_server = serve("--mode", "websocket", "--trace", "text", *ws_options)
    page_server = serve("--mode", "https", "--ws-url", f"wss://127.0.0.1:{ws_server.port}/")
    chromium(f"https://127.0.0.1:{page_server.port}/")
    report = page_server.wait_for("GET /report?ws=", timeout=30)
    return re.search(r"ws=(.*) -> ", report).group(1), ws_server


def test_wss_with_cert_auth_optional_fails_like_the_founding_case(serve, chromium):
    state, ws_server = cross_origin_websocket(serve, chromium, "--cert-auth", "optional")
    assert state in ("ws-error", "ws-closed:1006"), state
    failure = ws_server.wait_for("FAILED")
    assert "S2N_ERR_CLOSED at CLIENT_CERT" in failure and "client browser (GREASE" in failure
    diagnosis = ws_server.wait_for("diagnosis:")
    assert "after the server sent CertificateRequest" in diagnosis
    log = ws_server.output
    # the server's trace: CertificateRequest and Finished went out, then the peer's EOF, no alert
    finished = log.index("SERVER_FINISHED", log.index("SERVER_CERT_REQ"))
    assert "EOF: the client closed" in log[finished:]
    assert "alert" not in log[finished:log.index("HANDSHAKE FAILED", finished)].lower()
    assert " OK " not in log


@pytest.mark.parametrize("options", [["--cert-auth", "none"], ["--cert-auth", "optional",
                                                                 "--cert-auth-rule", "non-browser"]])
def test_wss_echoes_without_a_certificate_request(serve, chromium, options):
    state, ws_server = cross_origin_websocket(serve, chromium, *options)
    assert state == "ws-echo:hello from the page"
    assert "cert_auth=none, client browser" in ws_server.wait_for(" OK ")
    ws_server.wait_for("websocket: echoed 1 message(s)")
    assert "FAILED" not in ws_server.output


def test_page_load_with_optional_succeeds_after_aborted_attempts(serve, chromium):
    server = serve("--mode", "https", "--cert-auth", "optional")
    chromium(f"https://127.0.0.1:{server.port}/")
    ok = server.wait_for("GET / -> 200", timeout=30)
    before = server.output[:server.output.index(ok)]
    aborted = [line for line in before.splitlines() if "FAILED S2N_ERR_CLOSED at CLIENT_CERT" in line]
    assert len(aborted) >= 1, server.output
    assert "client_cert=none" in server.wait_for(" OK ")


def test_curl_against_the_same_optional_server(serve):
    server = serve("--mode", "websocket", "--cert-auth", "optional")
    result = subprocess.run(["curl", "-sS", "--cacert", server.ca, "--max-time", "10",
                             f"https://localhost:{server.port}/"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert "client_cert=none" in server.wait_for(" OK ")
