"""``s2npy demo``: the founding case, reproduced in memory in a few seconds.

A server asks for a client certificate (cert auth ``optional``). A client
that answers with an empty Certificate - as curl does - gets through. A
client that hangs up without an alert when asked - as Chromium does for a
``wss://`` opened from a page of another origin - makes ``s2n_negotiate``
fail with ``S2N_ERR_CLOSED``. The same two clients then meet a server with
cert auth ``none`` (no CertificateRequest: both work) and one that decides
per connection in its client hello callback (both work).

Every config logs its TLS secrets, to the traces only (``key_log=True``): the
ladders then show the encrypted TLS 1.3 handshake decrypted - the
CertificateRequest the browser hangs up on, curl's empty Certificate.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from . import __version__
from .config import Config
from .experiment import Behaviour, HandshakeResult, handshake
from .matrix import format_table, outcome_row
from .pki import TestPKI, make_pki
from .rules import cert_auth_rule
from .trace.render import render_pair

#: The simulated Chromium: closes the TCP connection when its handshake reaches its own Certificate.
CHROMIUM_WSS = Behaviour(abort_at="CLIENT_CERT")
CLIENTS = {"curl-like (empty Certificate)": None, "chromium-like wss:// (hangs up)": CHROMIUM_WSS}
API_NAME = "api.localhost"
#: What every demo config shares: the test CA only, s2n's checkpoints, secrets logged to the traces.
TRACED = dict(system_trust=False, events=True, key_log=True)
SERVERS = {
    "optional": "cert auth optional: CertificateRequest to every client",
    "none": "cert auth none: no CertificateRequest",
    "rule": f"client hello callback: ask only clients of {API_NAME} (rule server-name:{API_NAME})",
}


@dataclass
class Scenario:
    """One server setting met by one client."""

    server: str
    client: str
    result: HandshakeResult


def server_config(pki: TestPKI, setting: str) -> Config:
    """The demo server for ``setting`` (a key of SERVERS)."""
    common = dict(certificates=[(pki.server.cert, pki.server.key)], trust=pki.ca.cert, **TRACED)
    if setting == "rule":
        return Config(**common, client_hello_callback=cert_auth_rule(f"server-name:{API_NAME}", "optional"))
    return Config(**common, cert_auth=setting)


def run_scenarios(pki: TestPKI) -> list[Scenario]:
    """Every server setting against both clients; the rule's curl-like client is the API client."""
    scenarios = []
    for setting in SERVERS:
        for client, behaviour in CLIENTS.items():
            name = API_NAME if setting == "rule" and behaviour is None else "localhost"
            client_config = Config(trust=pki.ca.cert, **TRACED)
            result = handshake(server_config(pki, setting), client_config, server_name=name, client=behaviour,
                               trace=True)
            scenarios.append(Scenario(setting, f"{client}, SNI {name}", result))
    return scenarios


def describe(number: int, scenario: Scenario) -> str:
    """One scenario: heading, both sides' ladder, and the outcome or exception with its diagnosis."""
    result = scenario.result
    lines = [f"=== {number}. {SERVERS[scenario.server]}; client: {scenario.client} ===",
             render_pair(result.server.trace, result.client.trace)]
    if result.ok:
        facts = result.server.facts
        lines.append(f"--> handshake OK: {facts.protocol} {facts.cipher}, handshake {facts.handshake_type}")
    else:
        error = result.error
        lines.append(f"--> {type(error).__name__}: {error}")
        lines.append(f"    diagnosis: {error.diagnosis}")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print only the summary table")


def run(args: argparse.Namespace) -> int:
    """Print every scenario and the summary; exit 0 when the outcomes match the founding case."""
    pki = make_pki("ecdsa", ["localhost", API_NAME, "127.0.0.1"])
    scenarios = run_scenarios(pki)
    print(f"s2npy {__version__} demo: a server asking for a client certificate, met by curl and Chromium "
          "(in memory)")
    print("TLS secrets are logged for the traces only (Config(key_log=True)), so the encrypted TLS 1.3 "
          "handshake is shown [decrypted].\n")
    if not args.quiet:
        for number, scenario in enumerate(scenarios, 1):
            print(describe(number, scenario))
    rows = [{"server": scenario.server, "client": scenario.client, **outcome_row(scenario.result)}
            for scenario in scenarios]
    print(format_table(rows, ("server", "client", "outcome", "error", "side", "last_message", "protocol",
                              "diagnosis")))
    failed = [row for row in rows if row["outcome"] != "ok"]
    expected = len(failed) == 1 and failed[0]["server"] == "optional" and failed[0]["error"] == "S2N_ERR_CLOSED"
    print("\nOnly cert auth optional + a client that hangs up fails: that is the Chromium wss:// case."
          if expected else "\nUNEXPECTED: the outcomes differ from the founding case (see above).")
    return 0 if expected else 1
