"""Reading a handshake trace programmatically: events, the wire, the error and its diagnosis.

Run: python examples/read_trace.py
"""

import json

import s2npy
from s2npy.pki import make_pki

pki = make_pki()
server = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], system_trust=False, cert_auth="optional")
client = s2npy.Config(trust=pki.ca.cert, system_trust=False)
# The Chromium case: the client hangs up when asked for its certificate.
result = s2npy.handshake(server, client, server_name="localhost", client=s2npy.Behaviour(abort_at="CLIENT_CERT"),
                         trace=True)
trace = result.server.trace

# Every event has a time, a side and a kind; "wire" events carry the decoded TLS record or message.
for event in trace.events():
    if event.kind == "wire":
        print(f"{event.t * 1000:7.2f} ms  {event.wire.summary()}")

# The exception names the s2n error and where it broke; the diagnosis says why.
error = result.server.error
print("error:", error.name, "at", error.last_message)
print("cause:", error.diagnosis.cause)
print("next step:", error.diagnosis.next_step)

# The same trace as JSON lines, for tools: one object per event.
kinds = [json.loads(line)["kind"] for line in trace.to_jsonl().splitlines()]
print("event kinds:", sorted(set(kinds)))
