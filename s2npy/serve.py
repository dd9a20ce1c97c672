"""``s2npy serve HOST:PORT``: an s2n TLS server that says what happened to every handshake.

Modes (``--mode``): ``echo`` sends back what it receives; ``https`` answers
with a small page (which, given ``--ws-url``, opens that ``wss://`` URL from
its own origin); ``websocket`` is a WebSocket echo over TLS (plain requests
get the page). Every connection logs one outcome line; a failed handshake
adds its diagnosis, and ``--trace`` prints each trace. ``--cert-auth-rule``
decides cert auth per connection from the ClientHello (see s2npy.rules).
One thread per connection, on blocking sockets with timeouts.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path

from .cliargs import CLIError, add_tls_arguments, address, certificate_pairs, positive_float
from .config import Config
from .connection import Connection
from .errors import S2NError
from .pki import make_pki
from .rules import RULES, browser_signals, cert_auth_rule
from .webapp import APPS

IDLE_TIMEOUT = 300.0
#: Seconds to wait for the peer's close_notify (closing with unread data would reset the connection).
CLOSE_TIMEOUT = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", type=address, help="HOST:PORT to listen on (port 0: any free port)")
    parser.add_argument("--mode", choices=tuple(APPS), default="echo", help="default: %(default)s")
    add_tls_arguments(parser, side="server")
    parser.add_argument("--cert-auth", choices=("none", "optional", "required"), default="none",
                        help="ask clients for a certificate (default: %(default)s)")
    parser.add_argument("--cert-auth-rule", metavar="RULE",
                        help=f"decide per connection from the ClientHello: {' or '.join(RULES)}; matching "
                        "clients get --cert-auth (optional if that is none), the others none")
    parser.add_argument("--ws-url", help="https/websocket page: open this wss:// URL from the page")
    parser.add_argument("--pcap", type=Path, help="write one capture per connection into this directory")
    parser.add_argument("--max-connections", type=int, help="exit after this many connections")
    parser.add_argument("--handshake-timeout", type=positive_float, default=10.0,
                        help="seconds a handshake may take (default: %(default)s)")


def server_config(args: argparse.Namespace) -> Config:
    """The Config from the options; without --cert, a generated test PKI (its CA is printed)."""
    certificates = certificate_pairs(args)
    trust = list(args.trust or [])
    if not certificates:
        host = args.address[0]
        names = list(dict.fromkeys([name for name in (host, "localhost", "127.0.0.1") if name != "0.0.0.0"]))
        files = make_pki("ecdsa", names).write(tempfile.mkdtemp(prefix="s2npy-serve-"))
        certificates = [(files["server"], files["server_key"])]
        trust = trust or [files["ca"]]
        print(f"generated a test certificate for {', '.join(names)}; CA: {files['ca']}", flush=True)
    rule = None
    if args.cert_auth_rule:
        rule = cert_auth_rule(args.cert_auth_rule, "required" if args.cert_auth == "required" else "optional")
    return Config(certificates=certificates, trust=trust, system_trust=False, cert_auth=args.cert_auth,
                  policy=args.policy, alpn=args.alpn, key_log=args.keylog or None,
                  client_hello_callback=rule or (lambda connection, hello: None), events=True)


class Server:
    """Accepts connections and runs each in a thread; ``log`` gets one line per event."""

    def __init__(self, args: argparse.Namespace, config: Config) -> None:
        self.args = args
        self.config = config
        self.app = APPS[args.mode]
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def log(self, text: str) -> None:
        with self.lock:
            print(text, flush=True)

    def listen(self) -> socket.socket:
        host, port = self.args.address
        try:
            listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as exc:
            raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        return listener

    def serve(self, listener: socket.socket) -> None:
        host, port = listener.getsockname()[:2]
        rule = f", rule {self.args.cert_auth_rule}" if self.args.cert_auth_rule else ""
        self.log(f"listening on {host}:{port} (mode {self.args.mode}, cert auth {self.args.cert_auth}{rule}, "
                 f"policy {self.args.policy})")
        limit = self.args.max_connections
        for number in itertools.count(1) if limit is None else range(1, limit + 1):
            sock, peer = listener.accept()
            thread = threading.Thread(target=self.handle, args=(number, sock, peer), daemon=True)
            thread.start()
            self.threads.append(thread)
        for thread in self.threads:
            thread.join(self.args.handshake_timeout + IDLE_TIMEOUT)

    def handle(self, number: int, sock: socket.socket, peer: tuple) -> None:
        tag = f"#{number} {peer[0]}:{peer[1]}"
        sock.settimeout(self.args.handshake_timeout)
        with sock, Connection(self.config, "server", io=sock, trace=True) as connection:
            try:
                facts = connection.negotiate()
            except S2NError as exc:
                self.log(f"{tag} FAILED {exc.name} at {exc.last_message} ({self.hello_summary(connection)})\n"
                         f"    diagnosis: {exc.diagnosis}")
                self.finish(number, connection)
                return
            self.log(f"{tag} OK {facts.protocol} {facts.cipher} alpn={facts.alpn or '-'} "
                     f"sni={facts.server_name or '-'} client_cert={'sent' if facts.client_cert_sent else 'none'} "
                     f"({self.hello_summary(connection)})")
            sock.settimeout(IDLE_TIMEOUT)
            try:
                self.log(f"{tag} {self.app(connection, self.args.ws_url)}")
                sock.settimeout(CLOSE_TIMEOUT)
                connection.shutdown()
            except (OSError, RuntimeError) as exc:
                self.log(f"{tag} after handshake: {type(exc).__name__}: {' '.join(str(exc).split())}")
            self.finish(number, connection)

    @staticmethod
    def hello_summary(connection: Connection) -> str:
        """Cert auth used and what the ClientHello looked like (browser signals, JA4)."""
        hello = connection.trace.client_hello
        if hello is None:
            return f"cert_auth={connection.cert_auth.value}, no ClientHello"
        signals = browser_signals(hello)
        kind = f"browser ({', '.join(signals)})" if signals else "non-browser"
        return f"cert_auth={connection.cert_auth.value}, client {kind}, ja4={hello.ja4 or '-'}"

    def finish(self, number: int, connection: Connection) -> None:
        """Print the trace and write the capture, as the options ask."""
        trace = connection.trace
        if self.args.trace != "none":
            self.log(trace.render_text() if self.args.trace == "text" else trace.to_jsonl())
        if self.args.pcap:
            self.args.pcap.mkdir(parents=True, exist_ok=True)
            trace.write_pcap(str(self.args.pcap / f"conn-{number}.pcap"))


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (SIGINT/SIGTERM) or --max-connections were handled."""
    server = Server(args, server_config(args))
    listener = server.listen()
    signal.signal(signal.SIGTERM, _stop)
    with listener:
        try:
            server.serve(listener)
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0
