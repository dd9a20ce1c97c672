"""Interop harness: run s2npy and real TLS peers against each other over loopback.

* :class:`S2nServer` serves s2npy connections from a
  thread on ``127.0.0.1:<free port>``; :class:`PeerServer` runs a peer server
  (``openssl s_server``, ``gnutls-serv``) as a subprocess and polls
  ``/proc/net/tcp`` until it listens (no sleeping, no probe connection that a
  one-shot server would swallow); :func:`run_peer_client` runs a peer client
  subprocess with stdin held open (so it waits for the server instead of
  quitting at end of input) and a bounded timeout. Every wait is bounded by
  :data:`TIMEOUT`.
* **The matrix.** Tests describe their cell with the ``matrix`` fixture; the
  hooks at the bottom collect each cell with its real outcome and write
  ``tests/interop/results.json`` and ``tests/interop/MATRIX.md`` (via
  ``report.py``) at the end of the session.

A missing peer program is a failure that says what to install, never a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

import s2npy
from loopback import free_port
from s2npy.trace.tls_names import alert_name

TIMEOUT = 10.0
HERE = Path(__file__).parent
REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\nConnection: close\r\n\r\nhello from s2npy\n"
REPLY_MARK = "hello from s2npy"

#: How to get each peer program (Debian package names, as in .ci/run).
INSTALL = {
    "openssl": "apt-get install -y openssl",
    "gnutls-cli": "apt-get install -y gnutls-bin",
    "gnutls-serv": "apt-get install -y gnutls-bin",
    "curl": "apt-get install -y curl",
}


def require(program: str) -> str:
    """The path of a peer program, or a failure naming the package to install."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"interop peer {program!r} is not installed: run `{INSTALL[program]}`", pytrace=False)
    return path


# --- alerts as peers report them --------------------------------------------------------

_ALERT_NUMBER = re.compile(r"alert number (\d+)|Received alert \[(\d+)\]|alert_(?:description|number)=(\d+)")
_ALERT_WORDS = re.compile(r"(?:tlsv13|tlsv1|sslv3) alert ([a-z ]+?)(?=[:\n\]')]|$)|ALERT_([A-Z_]+)", re.M)


def alert_from_text(text: str) -> str | None:
    """The alert a peer says it received, as an s2npy alert name (``unknown_ca``), or None.

    Understands ``SSL alert number 48`` (OpenSSL, curl), ``Received alert
    [48]`` (GnuTLS), ``tlsv1 alert unknown ca`` and ``TLSV1_ALERT_UNKNOWN_CA``
    (OpenSSL error strings, Python's ``ssl``).
    """
    number = _ALERT_NUMBER.search(text)
    if number:
        return alert_name(int(next(group for group in number.groups() if group)))
    words = _ALERT_WORDS.search(text)
    if words:
        return (words.group(1) or words.group(2)).strip().lower().replace(" ", "_")
    return None


@dataclass
class PeerResult:
    """What a peer client did: ``ok`` if it received the server's reply, its output, the alert it saw."""

    ok: bool
    output: str
    returncode: int | None = None

    @property
    def alert(self) -> str | None:
        return alert_from_text(self.output)

    def summary(self) -> str:
        """For the matrix: ``reply``, ``alert <name>`` or ``closed, no alert``."""
        return "reply" if self.ok else f"alert {self.alert}" if self.alert else "closed, no alert"


def run_peer_client(argv: list[str], *, timeout: float = TIMEOUT) -> PeerResult:
    """Run a peer client to completion; stdin stays open (no EOF) until it exits."""
    require(argv[0])
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(argv, stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        os.close(read_end)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            pytest.fail(f"{argv[0]} did not finish in {timeout}s: {' '.join(argv)}\n{out.decode(errors='replace')}")
    finally:
        os.close(write_end)
    text = out.decode(errors="replace")
    return PeerResult(ok=REPLY_MARK in text, output=text, returncode=proc.returncode)


# --- s2npy as the server ------------------------------------------------------------------

@dataclass
class ServerOutcome:
    """One s2npy server connection: the facts if the handshake worked, else the exception."""

    facts: s2npy.NegotiatedFacts | None = None
    error: s2npy.S2NError | None = None
    request: bytes = b""


class S2nServer:
    """An s2npy server on 127.0.0.1 serving ``connections`` connections from a thread.

    Each connection: handshake; on success send :data:`REPLY`, close_notify,
    then read what the peer sends until it closes. ``outcomes`` has one
    :class:`ServerOutcome` per connection once the context exits.
    """

    def __init__(self, config: s2npy.Config, *, connections: int = 1) -> None:
        self.config = config
        self.connections = connections
        self.outcomes: list[ServerOutcome] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.crash: BaseException | None = None

    def __enter__(self) -> "S2nServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.thread.join(TIMEOUT)
        self.listener.close()
        if self.thread.is_alive():
            pytest.fail("the s2npy server thread did not finish")
        if self.crash is not None:
            raise self.crash

    @property
    def outcome(self) -> ServerOutcome:
        """The first connection's outcome (joins the server thread first)."""
        self.thread.join(TIMEOUT)
        assert self.outcomes, f"no connection reached the s2npy server on port {self.port}"
        return self.outcomes[0]

    def _serve(self) -> None:
        try:
            for _ in range(self.connections):
                sock, _ = self.listener.accept()
                sock.settimeout(TIMEOUT)
                with sock, s2npy.Connection(self.config, "server", io=sock) as conn:
                    self.outcomes.append(self._handle(conn))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread by __exit__
            self.crash = exc

    @staticmethod
    def _handle(conn: s2npy.Connection) -> ServerOutcome:
        try:
            facts = conn.negotiate()
        except s2npy.S2NError as error:
            return ServerOutcome(error=error)
        outcome = ServerOutcome(facts=facts)
        try:
            conn.sendall(REPLY)
            conn.shutdown_send()
            while chunk := conn.recv():
                outcome.request += chunk
        except s2npy.S2NError:
            pass  # peers may hang up without close_notify once they have the reply
        # Re-read: TLS 1.3 client certificates and resumption are final only now.
        outcome.facts = conn.facts()
        return outcome


# --- peers as the server ------------------------------------------------------------------

def listening(port: int) -> bool:
    """True once some socket listens on ``port`` (reads /proc/net/tcp{,6}; connects nothing)."""
    suffix, listen_state = f":{port:04X}", "0A"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = [line.split() for line in Path(table).read_text().splitlines()[1:]]
        except OSError:
            continue
        if any(row[1].endswith(suffix) and row[3] == listen_state for row in rows):
            return True
    return False


class PeerServer:
    """A peer server subprocess; ``argv`` may contain ``{port}``. Output in ``output`` after exit.

    If the peer exits before listening (the free port was taken meanwhile),
    it is started again on another port, up to three times.
    """

    def __init__(self, argv: list[str]) -> None:
        self.template = argv
        self.output = ""

    def __enter__(self) -> "PeerServer":
        require(self.template[0])
        for _ in range(3):
            self.port = free_port()
            self.argv = [part.format(port=self.port) for part in self.template]
            if self._start():
                return self
        pytest.fail(f"peer server did not start listening: {' '.join(self.argv)}\n{self.output}")

    def _start(self) -> bool:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT
        while not listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                return False
            time.sleep(0.005)  # a poll interval: the loop ends as soon as the peer listens
        return True

    def __exit__(self, *exc_info: object) -> None:
        self.proc.kill()
        out, _ = self.proc.communicate(timeout=TIMEOUT)
        self.output = out.decode(errors="replace")


@dataclass
class ClientOutcome:
    """One s2npy client connection to a peer: facts, the response, or the exception (and when)."""

    facts: s2npy.NegotiatedFacts | None = None
    response: bytes = b""
    error: s2npy.S2NError | None = None
    failed_in: str | None = None
    session: bytes | None = None


def s2npy_client(config: s2npy.Config, port: int, *, server_name: str = "localhost",
                 request: bytes = b"GET / HTTP/1.0\r\n\r\n", **connection_args) -> ClientOutcome:
    """Connect an s2npy client to 127.0.0.1:``port``, send ``request``, read the response to EOF.

    TLS 1.3 puts client-certificate verdicts and session tickets after the
    handshake, so the exchange is part of the attempt: ``failed_in`` says
    whether it failed in ``"handshake"`` or ``"exchange"``.
    """
    outcome = ClientOutcome()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock, \
            s2npy.Connection(config, "client", io=sock, server_name=server_name, **connection_args) as conn:
        step = "handshake"
        try:
            outcome.facts = conn.negotiate()
            step = "exchange"
            conn.sendall(request)
            while chunk := conn.recv():
                outcome.response += chunk
        except s2npy.S2NError as error:
            outcome.error, outcome.failed_in = error, step
        outcome.session = conn.session
        if outcome.facts is not None:
            outcome.facts = conn.facts()
    return outcome


# --- expectations ------------------------------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """How a cell must fail on the s2npy side, and why.

    ``exception`` and ``name`` are the s2npy exception class and s2n error
    name; ``alert`` the alert s2npy received (None: none); ``cause`` the
    :class:`~s2npy.trace.diagnosis.Diagnosis` cause the
    exception must carry; ``peer_alert`` the alert the peer must report
    receiving (None: the peer must report no alert).
    """

    exception: type
    name: str
    cause: str
    reason: str
    peer_alert: str | None = None
    alert: str | None = None

    def check(self, error: s2npy.S2NError | None) -> None:
        """Assert ``error`` is this failure, with a diagnosis naming the cause."""
        assert error is not None, f"expected {self.name} ({self.reason}), but it succeeded"
        assert isinstance(error, self.exception) and error.name == self.name, \
            f"expected {self.exception.__name__} {self.name}, got {type(error).__name__} {error.name}: {error}"
        assert error.alert_name == self.alert, f"s2npy received alert {error.alert_name}, expected {self.alert}"
        assert error.diagnosis is not None, f"{error.name} carries no diagnosis: {error}"
        assert error.diagnosis.cause == self.cause, \
            f"diagnosis {error.diagnosis.cause!r} ({error.diagnosis.headline}), expected cause {self.cause!r}"

    def summary(self) -> str:
        received = f", alert {self.alert}" if self.alert else ""
        alert = f"; peer sees alert {self.peer_alert}" if self.peer_alert else ""
        return f"fails: {self.exception.__name__} {self.name} ({self.cause}{received}){alert}"


def describe(error: s2npy.S2NError | None, ok: str = "ok") -> str:
    """A short observed-outcome text for the matrix: ``ok`` or class, s2n name and diagnosis cause."""
    if error is None:
        return ok
    cause = error.diagnosis.cause if error.diagnosis is not None else "no diagnosis"
    alert = f", alert {error.alert_name}" if error.alert is not None else ""
    return f"{type(error).__name__} {error.name} ({cause}{alert})"


# --- peer clients ----------------------------------------------------------------------------
# Every peer client takes (port, files, *, version, cert, alpn, server_name): ``files`` is a
# ``TestPKI.write()`` dict, ``cert`` the name of the client identity in it ("client",
# "untrusted_client") or None, ``version`` "1.2" or "1.3".

def openssl_client(port: int, files: dict, *, version: str, cert: str | None = None,
                   alpn: str | None = None, server_name: str = "localhost", extra: tuple = ()) -> PeerResult:
    """``openssl s_client`` verifying the server against the test CA."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", server_name,
            "-CAfile", str(files["ca"]), "-verify_return_error", f"-tls{version.replace('.', '_')}", *extra]
    if cert:
        argv += ["-cert", str(files[cert]), "-key", str(files[f"{cert}_key"])]
    if alpn:
        argv += ["-alpn", alpn]
    return run_peer_client(argv)


def gnutls_client(port: int, files: dict, *, version: str, cert: str | None = None,
                  alpn: str | None = None, server_name: str = "localhost") -> PeerResult:
    """``gnutls-cli`` limited to one TLS version, verifying against the test CA."""
    argv = ["gnutls-cli", "-p", str(port), "127.0.0.1", "--sni-hostname", server_name, "--verify-hostname", server_name,
            "--x509cafile", str(files["ca"]), "--priority", f"NORMAL:-VERS-ALL:+VERS-TLS{version}"]
    if cert:
        argv += ["--x509certfile", str(files[cert]), "--x509keyfile", str(files[f"{cert}_key"])]
    if alpn:
        argv += ["--alpn", alpn]
    return run_peer_client(argv)


def _in_process(attempt, errors: tuple) -> PeerResult:
    """Run an in-process client attempt returning the bytes received; errors become output."""
    try:
        data = attempt()
    except errors as exc:
        return PeerResult(ok=False, output=f"{type(exc).__name__}: {exc}")
    text = data.decode(errors="replace")
    return PeerResult(ok=REPLY_MARK in text, output=text)


def _read_to_eof(read) -> bytes:
    data = b""
    while chunk := read():
        data += chunk
    return data


def python_ssl_client(port: int, files: dict, *, version: str, cert: str | None = None,
                      alpn: str | None = None, server_name: str = "localhost") -> PeerResult:
    """Python's ``ssl`` (OpenSSL underneath, but its own API and defaults), in this process."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(files["ca"])
    context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, f"TLSv{version.replace('.', '_')}")
    if cert:
        context.load_cert_chain(files[cert], files[f"{cert}_key"])
    if alpn:
        context.set_alpn_protocols(alpn.split(","))

    def attempt() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock, \
                context.wrap_socket(sock, server_hostname=server_name) as tls:
            return _read_to_eof(tls.recv)
    return _in_process(attempt, (ssl.SSLError, OSError))


def tlslite_client(port: int, files: dict, *, version: str, cert: str | None = None,
                   alpn: str | None = None, server_name: str = "localhost") -> PeerResult:
    """tlslite-ng, a pure-Python TLS stack (it does not verify the server certificate)."""
    with warnings.catch_warnings():  # tlslite.api imports the deprecated asyncore
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from tlslite.api import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey
            from tlslite.errors import TLSError, TLSRemoteAlert
        except ImportError:
            pytest.fail("interop peer tlslite-ng is not installed: run `pip install -e '.[test]'`", pytrace=False)

    settings = HandshakeSettings()
    settings.minVersion = settings.maxVersion = {"1.1": (3, 2), "1.2": (3, 3), "1.3": (3, 4)}[version]
    # tlslite-ng 0.8.2 decides whether to compress its TLS 1.3 client Certificate from its own
    # ClientHello (which offers compression) instead of the server's CertificateRequest, so it
    # sends a CompressedCertificate s2n never asked for (S2N_ERR_BAD_MESSAGE). Do not compress.
    settings.certificate_compression_send = []
    chain = key = None
    if cert:
        chain = X509CertChain()
        chain.parsePemList(Path(files[cert]).read_text())
        key = parsePEMKey(Path(files[f"{cert}_key"]).read_text(), private=True)

    def attempt() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            tls = TLSConnection(sock)
            try:
                tls.handshakeClientCert(chain, key, settings=settings, serverName=server_name,
                                        alpn=[p.encode() for p in alpn.split(",")] if alpn else None)
                return _read_to_eof(tls.read)
            except TLSRemoteAlert as exc:
                raise OSError(f"{exc!r} Received alert [{exc.description}]") from exc
            except TLSError as exc:  # including TLSLocalAlert: an alert tlslite sent, not one it received
                raise OSError(repr(exc)) from exc
    return _in_process(attempt, (OSError,))


def curl_client(port: int, files: dict, *, version: str, cert: str | None = None,
                alpn: str | None = None, server_name: str = "localhost") -> PeerResult:
    """``curl -v`` limited to one TLS version; ``alpn`` "h2" or "http/1.1" picks the HTTP version."""
    http = {"h2": "2", "http/1.1": "1.1", None: "1.1"}[alpn]
    argv = ["curl", "-sS", "-v", "--max-time", str(int(TIMEOUT)), "--cacert", str(files["ca"]),
            f"--tlsv{version}", "--tls-max", version, f"--http{http}",
            "--resolve", f"{server_name}:{port}:127.0.0.1", f"https://{server_name}:{port}/"]
    if cert:
        argv += ["--cert", str(files[cert]), "--key", str(files[f"{cert}_key"])]
    return run_peer_client(argv)


PEER_CLIENTS = {
    "openssl": openssl_client,
    "gnutls": gnutls_client,
    "python-ssl": python_ssl_client,
    "tlslite-ng": tlslite_client,
    "curl": curl_client,
}


# --- peer servers ----------------------------------------------------------------------------
# client_auth: "none" (no CertificateRequest), "request" (ask, accept none), "require".

_OPENSSL_CLIENT_AUTH = {"none": [], "request": ["-verify", "1"], "require": ["-Verify", "1"]}
_GNUTLS_CLIENT_AUTH = {"none": ["--disable-client-cert"], "request": [], "require": ["--require-client-cert"]}


def openssl_server(files: dict, *, version: str | None = None, client_auth: str = "none",
                   cert: str = "server", extra: tuple = ()) -> PeerServer:
    """``openssl s_server -www`` (answers GET with a status page, then closes)."""
    argv = ["openssl", "s_server", "-accept", "127.0.0.1:{port}", "-cert", str(files[cert]),
            "-key", str(files[f"{cert}_key"]), "-CAfile", str(files["ca"]), "-www",
            *_OPENSSL_CLIENT_AUTH[client_auth], *extra]
    if version:
        argv.append(f"-tls{version.replace('.', '_')}")
    return PeerServer(argv)


def gnutls_server(files: dict, *, version: str | None = None, client_auth: str = "none",
                  cert: str = "server", extra: tuple = ()) -> PeerServer:
    """``gnutls-serv --http`` (answers GET with a status page)."""
    priority = f"NORMAL:-VERS-ALL:+VERS-TLS{version}" if version else "NORMAL"
    argv = ["gnutls-serv", "-p", "{port}", "--http", "--x509certfile", str(files[cert]),
            "--x509keyfile", str(files[f"{cert}_key"]), "--x509cafile", str(files["ca"]),
            "--priority", priority, *_GNUTLS_CLIENT_AUTH[client_auth], *extra]
    return PeerServer(argv)


PEER_SERVERS = {"openssl": openssl_server, "gnutls": gnutls_server}
