"""Mutual TLS: the server requires a client certificate and reads who the client is.

Run: python examples/mutual_tls.py
"""

import s2npy
from s2npy.pki import make_pki

pki = make_pki()
server = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)],
                      trust=pki.ca.cert, system_trust=False,  # trust only our CA for client certificates
                      cert_auth="required")
client = s2npy.Config(certificates=[(pki.client.cert, pki.client.key)],  # the client presents this
                      trust=pki.ca.cert, system_trust=False)

result = s2npy.handshake(server, client, server_name="localhost")
facts = result.server.facts
print("handshake:", "ok" if result.ok else result.error)
print("client certificate sent:", facts.client_cert_sent)
print("client subject:", facts.client_cert_chain[0].subject.rfc4514_string())

# A client without a certificate is refused, and the error says so.
anonymous = s2npy.Config(trust=pki.ca.cert, system_trust=False)
refused = s2npy.handshake(server.copy(), anonymous, server_name="localhost")
print("without a certificate:", refused.error.name)
