"""The founding case's WSS server: WebSocket echo over s2n, client certificates only from non-browsers.

Cert auth ``optional`` for every client breaks Chromium's cross-origin wss:// (it hangs up
when asked for a certificate). This server asks per connection in the client hello
callback: browsers (GREASE etc., see s2npy.rules) get no CertificateRequest, API
clients do. Run: python examples/wss_server.py 8443   (add --once to serve one client)
"""

import socket
import sys
import threading

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request

import s2npy
from s2npy.pki import make_pki
from s2npy.rules import cert_auth_rule

pki = make_pki()
config = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], trust=pki.ca.cert, system_trust=False,
                      client_hello_callback=cert_auth_rule("non-browser", "optional"))


def handle(sock: socket.socket) -> None:
    """TLS handshake, then the WebSocket handshake and an echo loop (wsproto does the framing)."""
    with sock, s2npy.Connection(config, "server", io=sock) as tls:
        try:
            facts = tls.negotiate()
        except s2npy.S2NError as exc:
            print("handshake failed:", exc.name, "-", exc.diagnosis, flush=True)
            return
        print(f"TLS ok: {facts.protocol}, client certificate sent: {facts.client_cert_sent}", flush=True)
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            data = tls.recv()
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, Request):
                    tls.sendall(ws.send(AcceptConnection()))
                elif isinstance(event, Message):
                    tls.sendall(ws.send(Message(data=event.data)))
                elif isinstance(event, CloseConnection):
                    tls.sendall(ws.send(event.response()))
                    return
            if not data:
                return


listener = socket.create_server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8443))
print("listening on", listener.getsockname(), flush=True)
while True:
    client, _ = listener.accept()
    if "--once" in sys.argv:
        handle(client)
        break
    threading.Thread(target=handle, args=(client,), daemon=True).start()
