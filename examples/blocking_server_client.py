"""A blocking TLS echo server and client over real sockets (one thread each).

Run: python examples/blocking_server_client.py
"""

import socket
import threading

import s2npy
from s2npy.pki import make_pki

pki = make_pki()
server_config = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)])
client_config = s2npy.Config(trust=pki.ca.cert, system_trust=False)
listener = socket.create_server(("127.0.0.1", 0))


def serve_one() -> None:
    """Accept one client, echo one message, close."""
    sock, _ = listener.accept()
    with sock, s2npy.Connection(server_config, "server", io=sock) as tls:
        tls.negotiate()
        tls.sendall(tls.recv())
        tls.shutdown()  # close_notify both ways


thread = threading.Thread(target=serve_one)
thread.start()
with socket.create_connection(listener.getsockname()) as sock, \
        s2npy.Connection(client_config, "client", io=sock, server_name="localhost") as tls:
    facts = tls.negotiate()
    print("negotiated:", facts.protocol, facts.cipher)
    tls.sendall(b"hello over s2n")
    print("echo:", tls.recv().decode())
    tls.shutdown()
thread.join()
listener.close()
