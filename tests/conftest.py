"""Shared fixtures: a throwaway PKI (ECDSA and RSA) and ready-made configs.

Generated once per test session with ``cryptography`` (s2npy.pki); tests that
need files use ``pki_files`` (a directory with every PEM).
"""

from __future__ import annotations

import pytest

import s2npy
from s2npy.pki import TestPKI, make_pki


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    """ECDSA P-256 CA, server (localhost, 127.0.0.1), client, expired server, untrusted CA + client."""
    return make_pki("ecdsa")


@pytest.fixture(scope="session")
def rsa_pki() -> TestPKI:
    """The same PKI with RSA-2048 keys."""
    return make_pki("rsa")


@pytest.fixture(scope="session")
def pki_files(pki, tmp_path_factory):
    """``pki`` written as files: a dict name -> Path (ca, ca_key, server, server_key, ...)."""
    return pki.write(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server_config(pki):
    """A server with the ECDSA server certificate, trusting the test CA for client certs."""
    def make(**kwargs) -> s2npy.Config:
        return s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], trust=pki.ca.cert,
                            system_trust=False, **kwargs)
    return make


@pytest.fixture
def client_config(pki):
    """A client trusting only the test CA; pass with_cert=True to present the client certificate."""
    def make(with_cert: bool = False, **kwargs) -> s2npy.Config:
        certificates = [(pki.client.cert, pki.client.key)] if with_cert else []
        return s2npy.Config(certificates=certificates, trust=pki.ca.cert, system_trust=False, **kwargs)
    return make


class ServeProcess:
    """A running ``python -m s2npy serve`` whose stdout is collected line by line."""

    def __init__(self, args: list[str], cwd) -> None:
        import subprocess
        import sys
        import threading

        self.process = subprocess.Popen([sys.executable, "-m", "s2npy", "serve", "127.0.0.1:0", *args], cwd=cwd,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        banner = self.wait_for("listening on", timeout=20)
        self.port = int(banner.rsplit(":", 1)[1].split()[0])
        self.ca = next((line.split("CA: ", 1)[1] for line in self.lines if "CA: " in line), None)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 10.0, count: int = 1) -> str:
        """The ``count``-th output line containing ``text``; fails with the whole log after ``timeout``."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if text in line]
            if len(found) >= count:
                return found[count - 1]
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"server never printed {text!r} x{count}; its output:\n" + self.output)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except Exception:  # noqa: BLE001 - a hung server is killed
            self.process.kill()
            self.process.wait(timeout=5)
        self._reader.join(timeout=5)


@pytest.fixture
def serve(tmp_path):
    """Start ``s2npy serve`` with the given options on a free port; stopped at teardown."""
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        server = ServeProcess(list(args), tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def run_cli(tmp_path):
    """Run ``python -m s2npy ARGS`` with a timeout; returns the CompletedProcess (text)."""
    import subprocess
    import sys

    def run(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "s2npy", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=timeout)

    return run
