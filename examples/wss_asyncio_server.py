"""WebSocket-over-TLS (wss://) echo server on s2npy's asyncio front end: the founding case.

A server with cert auth ``optional`` sends every client a CertificateRequest.
curl answers with an empty Certificate; Chromium, for a cross-origin wss://,
cancels certificate selection and hangs up, so ``s2n_negotiate`` fails with
S2N_ERR_CLOSED. Run it three ways and watch the log::

    python examples/wss_asyncio_server.py --cert-auth optional      # browsers' wss:// fail
    python examples/wss_asyncio_server.py --cert-auth none          # everything works
    python examples/wss_asyncio_server.py --cert-auth optional --rule non-browser
                                        # per connection: API clients asked, browsers not

``GET /`` serves a page that opens ``wss://`` back to this server and shows
the echo; an Upgrade request gets a WebSocket echo (RFC 6455, via wsproto).
Without ``--cert``/``--key`` a throwaway test PKI is made and its CA written
to ``--ca-out`` for clients (``curl --cacert``). Failed handshakes are logged
with s2npy's diagnosis (``--trace`` adds the full handshake trace).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request

import s2npy
from s2npy import aio
from s2npy.pki import make_pki
from s2npy.rules import RULES, cert_auth_rule

LOG = logging.getLogger("wss_asyncio_server")
PAGE = """<!doctype html><title>s2npy wss echo</title>
<p>TLS: {version} {cipher}; client certificate sent: {client_cert}</p>
<p>WebSocket: <span id="ws">connecting</span></p>
<script>
const ws = new WebSocket("wss://" + location.host + "/echo");
ws.onopen = () => ws.send("hello over wss");
ws.onmessage = (e) => {{ document.getElementById("ws").textContent = "echoed: " + e.data; ws.close(); }};
ws.onerror = () => {{ document.getElementById("ws").textContent = "failed"; }};
</script>
"""


def make_config(args: argparse.Namespace) -> s2npy.Config:
    """The server Config: certificate, trust for client certificates, cert auth or a per-connection rule."""
    if args.cert and args.key:
        certificate, key, trust = args.cert, args.key, args.ca
    else:
        pki = make_pki(server_names=["localhost", "127.0.0.1"])
        Path(args.ca_out).write_bytes(pki.ca.cert)
        LOG.info("test PKI made; CA written to %s", args.ca_out)
        certificate, key, trust = pki.server.cert, pki.server.key, pki.ca.cert
    hello_rule = cert_auth_rule(args.rule, args.cert_auth) if args.rule else None
    return s2npy.Config(certificates=[(certificate, key)], trust=trust, cert_auth=args.cert_auth,
                        client_hello_callback=hello_rule)


async def handle_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One TLS connection: a WebSocket echo for Upgrade requests, the page otherwise."""
    facts: s2npy.NegotiatedFacts = writer.get_extra_info("facts")
    LOG.info("handshake ok with %s: %s, client certificate sent: %s",
             writer.get_extra_info("peername"), facts.protocol, facts.client_cert_sent)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        if b"upgrade: websocket" in head.lower():
            await websocket_echo(head, reader, writer)
        else:
            send_page(writer, facts)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        LOG.info("client went away: %r", exc)
    finally:
        writer.close()


def send_page(writer: asyncio.StreamWriter, facts: s2npy.NegotiatedFacts) -> None:
    body = PAGE.format(version=facts.protocol, cipher=facts.cipher, client_cert=facts.client_cert_sent).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


async def websocket_echo(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 6455 echo until the client closes."""
    ws = WSConnection(ConnectionType.SERVER)
    data = head
    while data:
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, Request):
                writer.write(ws.send(AcceptConnection()))
            elif isinstance(event, Message):
                writer.write(ws.send(Message(data=event.data, message_finished=event.message_finished)))
            elif isinstance(event, Ping):
                writer.write(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                writer.write(ws.send(event.response()))
                return
        await writer.drain()
        data = await reader.read(65536)


async def serve(args: argparse.Namespace) -> asyncio.Server:
    """Start the server (not yet waiting on it): returns the asyncio.Server."""
    return await aio.start_server(handle_client, args.host, args.port, config=make_config(args),
                                  handshake_timeout=args.handshake_timeout, trace=args.trace or None)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cert", help="server certificate chain (PEM); default: a throwaway test PKI")
    parser.add_argument("--key", help="server private key (PEM)")
    parser.add_argument("--ca", help="CA certificates trusted for client certificates (PEM)")
    parser.add_argument("--ca-out", default="wss-test-ca.pem", help="where to write the test PKI's CA")
    parser.add_argument("--cert-auth", choices=["none", "optional", "required"], default="optional",
                        help="client certificate authentication (for matching clients, with --rule)")
    parser.add_argument("--rule", help=f"per-connection cert auth from the ClientHello: {', '.join(RULES)}; "
                                       "other clients get 'none'")
    parser.add_argument("--handshake-timeout", type=float, default=30.0)
    parser.add_argument("--trace", action="store_true", help="trace every handshake (shown when one fails)")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    server = await serve(args)
    LOG.info("serving wss:// and https:// on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
