"""Coexistence: ssl (system OpenSSL), cryptography and s2npy (static aws-lc) in one process.

Each library does real handshakes or crypto in the same process, in both
import orders, and s2npy talks TLS to the ssl module across a socketpair. A
symbol clash between the static libcrypto and the system one would crash or
corrupt these; the check runs in a child so a crash fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reliability_tools import assert_survived, run_python

HERE = Path(__file__).parent

SCRIPT = """
import json, socket, ssl, sys, tempfile, threading
IMPORTS
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from s2npy.pki import make_pki

pki = make_pki("ecdsa")
files = pki.write(tempfile.mkdtemp())
report = {}

# cryptography: sign, verify, parse, encrypt
key = ec.generate_private_key(ec.SECP256R1())
signature = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
key.public_key().verify(signature, b"data", ec.ECDSA(hashes.SHA256()))
x509.load_pem_x509_certificate(pki.server.cert)
aes = AESGCM(AESGCM.generate_key(128))
assert aes.decrypt(b"0" * 12, aes.encrypt(b"0" * 12, b"x", None), None) == b"x"
report["cryptography"] = True

# ssl to ssl in memory
server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain(files["server"], files["server_key"])
client_ctx = ssl.create_default_context(cafile=str(files["ca"]))
s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
srv = server_ctx.wrap_bio(s_in, s_out, server_side=True)
cli = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
for _ in range(10):
    for side in (cli, srv):
        try:
            side.do_handshake()
        except ssl.SSLWantReadError:
            pass
    s_in.write(c_out.read()); c_in.write(s_out.read())
report["ssl_ssl"] = cli.version()

# s2npy to s2npy in memory
server = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)])
client = s2npy.Config(trust=pki.ca.cert, system_trust=False)
report["s2npy_s2npy"] = all(s2npy.handshake(server, client, server_name="localhost").ok for _ in range(20))

# s2npy server <-> ssl client over a socketpair, both libcrypto copies busy at once
a, b = socket.socketpair()
def serve():
    with s2npy.Connection(server, "server", io=a) as conn:
        conn.negotiate()
        conn.sendall(conn.recv(100).upper())
thread = threading.Thread(target=serve); thread.start()
with client_ctx.wrap_socket(b, server_hostname="localhost") as tls:
    tls.sendall(b"ping")
    report["s2npy_ssl"] = [tls.version(), tls.recv(100).decode()]
thread.join()
report["libcrypto"] = [ssl.OPENSSL_VERSION, s2npy.versions()["libcrypto"]]
print(json.dumps(report))
"""

ORDERS = {"s2npy first": "import s2npy; import cryptography.hazmat.bindings._rust",
          "ssl and cryptography first": "import cryptography.hazmat.bindings._rust; import s2npy"}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_ssl_cryptography_and_s2npy_in_one_process(order):
    """Handshakes with each library (and s2npy against ssl) in one child process, either import order."""
    process = run_python(SCRIPT.replace("IMPORTS", ORDERS[order]), env={"PYTHONPATH": str(HERE)})
    assert_survived(process)
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert report["cryptography"] and report["s2npy_s2npy"]
    assert report["ssl_ssl"] == "TLSv1.3"
    assert report["s2npy_ssl"] == ["TLSv1.3", "PING"]
    system, bundled = report["libcrypto"]
    assert "OpenSSL" in system and system != bundled
