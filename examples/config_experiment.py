"""A configuration experiment in a dozen lines: does cert auth X work with client Y?

Run: python examples/config_experiment.py
"""

import s2npy
from s2npy.pki import make_pki

pki = make_pki()  # throwaway CA, server and client certificates (PEM bytes)
for cert_auth in ("none", "optional", "required"):
    for hangs_up in (False, True):  # True: the client closes when asked for a certificate (Chromium wss://)
        server = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], trust=pki.ca.cert,
                              system_trust=False, cert_auth=cert_auth)
        client = s2npy.Config(trust=pki.ca.cert, system_trust=False)
        behaviour = s2npy.Behaviour(abort_at="CLIENT_CERT") if hangs_up else None
        result = s2npy.handshake(server, client, server_name="localhost", client=behaviour)
        outcome = "ok" if result.ok else f"{result.error.name} ({result.error.diagnosis.cause})"
        print(f"cert auth {cert_auth:8} client hangs up: {hangs_up!s:5} -> {outcome}")
