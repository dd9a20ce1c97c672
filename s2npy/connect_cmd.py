"""``s2npy connect HOST:PORT``: a TLS client like s2nc, printing the negotiated facts and the trace.

Exit status 0 when the handshake (and any --send/--http-get exchange)
worked; 1 with the error and its diagnosis on stderr when it failed.
"""

from __future__ import annotations

import argparse
import socket
import sys

from .cliargs import add_tls_arguments, address, certificate_pairs, is_ip, positive_float
from .config import Config
from .connection import Connection
from .errors import S2NError
from .facts import NegotiatedFacts

EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", type=address, help="HOST:PORT of the server")
    add_tls_arguments(parser, side="client")
    parser.add_argument("--sni", help="server name to send and verify (default: HOST unless it is an IP)")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    request = parser.add_mutually_exclusive_group()
    request.add_argument("--send", metavar="DATA", help="send DATA after the handshake and print the reply")
    request.add_argument("--http-get", metavar="PATH", help="send an HTTP/1.1 GET for PATH and print the reply")
    parser.add_argument("--timeout", type=positive_float, default=10.0, help="seconds (default: %(default)s)")


def client_config(args: argparse.Namespace, host: str) -> Config:
    """Trust --trust (else the system store), optionally present --cert, or verify nothing."""
    verify_host = (lambda name: name == host) if is_ip(host) and not args.sni else None
    return Config(certificates=certificate_pairs(args), trust=args.trust, system_trust=not args.trust,
                  policy=args.policy, alpn=args.alpn, verify_peer=not args.insecure, verify_host=verify_host,
                  key_log=args.keylog or None)


def format_facts(facts: NegotiatedFacts) -> str:
    chain = "; ".join(cert.subject.rfc4514_string() for cert in facts.peer_cert_chain) or "-"
    return "\n".join([
        f"protocol:        {facts.protocol}", f"cipher:          {facts.cipher}",
        f"group:           {facts.group}", f"signature:       {facts.signature_scheme}",
        f"alpn:            {facts.alpn or '-'}", f"server name:     {facts.server_name or '-'}",
        f"handshake:       {facts.handshake_type}", f"client cert sent: {facts.client_cert_sent}",
        f"server chain:    {chain}"])


def exchange(connection: Connection, request: bytes, half_close: bool) -> bytes:
    """Send the request (then close_notify if ``half_close``: an echo server waits for it); read until closed."""
    connection.sendall(request)
    if half_close:
        connection.shutdown_send()
    reply = b""
    while data := connection.recv():
        reply += data
    return reply


def run(args: argparse.Namespace) -> int:
    host, port = args.address
    config = client_config(args, host)
    server_name = args.sni or (None if is_ip(host) else host)
    with socket.create_connection((host, port), timeout=args.timeout) as sock, \
            Connection(config, "client", io=sock, server_name=server_name, trace=True) as connection:
        try:
            facts = connection.negotiate()
        except S2NError as exc:
            show_trace(args, connection)
            print(f"handshake FAILED: {exc}\ndiagnosis: {exc.diagnosis}", file=sys.stderr)
            return EXIT_FAILED
        show_trace(args, connection)
        print(format_facts(facts))
        request = args.send.encode() if args.send is not None else None
        if args.http_get:
            request = f"GET {args.http_get} HTTP/1.1\r\nHost: {server_name or host}\r\nConnection: close\r\n\r\n"
            request = request.encode()
        if request is not None:
            try:
                reply = exchange(connection, request, half_close=not args.http_get)
            except (S2NError, OSError) as exc:
                print(f"after the handshake: {exc}", file=sys.stderr)
                return EXIT_FAILED
            print(f"--- reply ({len(reply)} bytes) ---")
            sys.stdout.write(reply.decode("utf-8", "replace"))
            sys.stdout.flush()
    return 0


def show_trace(args: argparse.Namespace, connection: Connection) -> None:
    if args.trace != "none":
        trace = connection.trace
        print(trace.render_text() if args.trace == "text" else trace.to_jsonl())
