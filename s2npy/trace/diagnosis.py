"""Diagnosis: from a failed handshake to "what happened and what to try".

:func:`diagnose` looks at the exception (s2n error name, errno, alert, the state
machine's last message and handshake type) and, when the connection was traced,
at the decoded wire (what each side last sent and received, non-TLS bytes, the
ClientHello). Rules are tried in order; the first that matches names the cause.
Each rule's ``cause`` identifier is stable (tools may switch on it):

==================================  ==============================================================
cause                               when
==================================  ==============================================================
``not_tls``                         the peer sent plaintext HTTP (or other non-TLS bytes)
``peer_silent``                     nothing arrived in time (socket timeout, S2NPY_STALLED)
``peer_reset``                      the peer reset the TCP connection (ECONNRESET)
``closed_after_certificate_request`` a server's peer hung up without an alert after CertificateRequest
``peer_closed``                     the peer closed (or we wrote to a closed connection), no alert
``alert_received``                  the peer sent a fatal alert (with what that alert usually means)
``no_shared_version``               no protocol version both policies allow
``no_shared_cipher``                no cipher suite both sides allow (for the certificate's key)
``no_shared_group``                 no key exchange group in common
``no_shared_signature_algorithm``   no signature scheme in common, or the certificate is not allowed
``certificate_untrusted``           the peer's chain does not lead to a trusted CA
``certificate_expired``             the peer's certificate is expired or not yet valid
``hostname_mismatch``               the server certificate does not cover the requested name
``client_certificate_missing``      the server requires a client certificate and got none
``malformed_message``               the peer sent a record or handshake message that does not decode
``unknown``                         none of the above (s2n's own text is reported)
==================================  ==============================================================
"""

from __future__ import annotations

import errno as errno_module
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .wire import Alert, ChangeCipherSpec, HandshakeMessage, Malformed, NonTLS, Record

if TYPE_CHECKING:
    from ..errors import S2NError
    from .recorder import ConnectionTrace, TraceEvent

# s2n state machine names of the messages a server sends after asking for a certificate.
_AFTER_CERT_REQUEST = {"SERVER_CERT_REQ", "SERVER_HELLO_DONE", "SERVER_CERT", "SERVER_CERT_VERIFY",
                       "SERVER_FINISHED", "CLIENT_CERT", "SERVER_CHANGE_CIPHER_SPEC"}

#: What common alerts usually mean, in the words of someone debugging a handshake.
ALERT_MEANINGS: dict[int, str] = {
    0: "close_notify: the peer ended the connection cleanly",
    10: "the peer got a message it did not expect at this point (state machine mismatch or a bug)",
    20: "a record failed to decrypt or authenticate (wrong keys, corruption, or a middlebox)",
    40: "the peer found no acceptable set of parameters (cipher suite, group, signature algorithm)",
    42: "the peer rejected our certificate",
    43: "the peer does not support our certificate's type or key",
    44: "the peer says our certificate was revoked",
    45: "the peer says our certificate has expired or is not yet valid",
    46: "the peer could not validate our certificate (often: unknown issuer, wrong usage)",
    47: "the peer found a field out of range (often a policy or extension mismatch)",
    48: "the peer does not trust the CA that issued our certificate",
    50: "the peer could not decode a message",
    51: "a signature or Finished check failed on the peer (wrong key, or bytes altered on the way)",
    70: "the peer does not support any protocol version we offered",
    71: "the peer requires stronger ciphers than we offered",
    80: "the peer hit an internal error unrelated to the protocol",
    86: "the peer saw an inappropriate downgrade",
    90: "the peer cancelled the handshake",
    109: "the peer requires an extension we did not send",
    110: "we sent an extension the peer did not offer or understand",
    112: "the peer has no certificate for the server name (SNI) we asked for",
    116: "the server requires a client certificate and we sent none",
    120: "the peer supports none of the ALPN protocols we offered",
}

#: Alerts that name one of the negotiation or certificate causes directly.
_ALERT_CAUSES = {70: "no_shared_version", 71: "no_shared_cipher", 48: "certificate_untrusted",
                 45: "certificate_expired", 116: "client_certificate_missing"}


def alert_meaning(code: int) -> str | None:
    """What alert ``code`` usually means, or None for an uncommon one."""
    return ALERT_MEANINGS.get(code)


def message_title(name: str) -> str:
    """``client_hello`` -> ``ClientHello``: the RFC's spelling of a handshake message name."""
    return "".join(part.capitalize() for part in name.split("_"))


@dataclass(frozen=True)
class Diagnosis:
    """Why a handshake failed: ``cause`` is a stable identifier, the rest is for people.

    ``side`` is the side that reported the failure ("client"/"server"), ``step`` the
    s2n message it was at, ``last_sent``/``last_received`` what the wire trace shows
    it last sent and received (None without a trace).
    """

    cause: str
    side: str | None
    step: str | None
    headline: str
    explanation: str
    next_step: str
    last_sent: str | None = None
    last_received: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        seen = ""
        if self.last_sent or self.last_received:
            seen = f" Last sent: {self.last_sent or 'nothing'}; last received: {self.last_received or 'nothing'}."
        return f"{self.headline}. {self.explanation}{seen} Next step: {self.next_step}"


@dataclass(frozen=True)
class _Evidence:
    """What the rules look at: the error's facts and, if traced, the wire's."""

    error: "S2NError"
    name: str
    peer: str
    last_sent: str | None
    last_received: str | None
    non_tls: NonTLS | None
    malformed: str | None
    sent_certificate_request: bool
    client_hello: dict[str, Any]
    policy: str | None

    @property
    def errno(self) -> int | None:
        return self.error.errno

    def diagnosis(self, cause: str, headline: str, explanation: str, next_step: str) -> Diagnosis:
        return Diagnosis(cause, self.error.mode, self.error.last_message, headline, explanation, next_step,
                         self.last_sent, self.last_received)


def diagnose(error: "S2NError", trace: "ConnectionTrace | None" = None) -> Diagnosis:
    """Explain a handshake failure (always returns a Diagnosis, ``unknown`` at worst)."""
    evidence = _gather(error, trace)
    for rule in _RULES:
        found = rule(evidence)
        if found is not None:
            return found
    return _unknown(evidence)


# --- evidence ------------------------------------------------------------------------------------


def _gather(error: "S2NError", trace: "ConnectionTrace | None") -> _Evidence:
    side = error.mode or (trace.side if trace is not None else None)
    events = trace.events() if trace is not None else []
    outgoing = "c2s" if side == "client" else "s2c"
    sent = [event for event in events if event.wire is not None and event.wire.direction == outgoing]
    received = [event for event in events if event.wire is not None and event.wire.direction != outgoing]
    hello = next((event.wire.details for event in events if isinstance(event.wire, HandshakeMessage)
                  and event.wire.name == "client_hello"), {})
    return _Evidence(
        error=error, name=error.name or "", peer="client" if side == "server" else "server",
        last_sent=_last_message(sent), last_received=_last_message(received),
        non_tls=next((event.wire for event in received if isinstance(event.wire, NonTLS)), None),
        malformed=next(filter(None, map(_malformation, received)), None),
        sent_certificate_request=_sent_certificate_request(error, sent),
        client_hello=hello, policy=_policy(trace))


def _last_message(events: list["TraceEvent"]) -> str | None:
    described = [text for text in map(_message_text, events) if text is not None]
    return described[-1] if described else None


def _message_text(event: "TraceEvent") -> str | None:
    """A short name for what a wire event carried (None for a plaintext record header)."""
    wire = event.wire
    if isinstance(wire, HandshakeMessage):
        return message_title(wire.name) + (" (empty)" if wire.details.get("empty") else "")
    if isinstance(wire, Alert):
        return f"alert {wire.description_name}"
    if isinstance(wire, ChangeCipherSpec):
        return "ChangeCipherSpec"
    if isinstance(wire, NonTLS):
        return f"non-TLS bytes ({wire.what})"
    if isinstance(wire, Record) and wire.encrypted:
        messages = event.data.get("s2n_messages")
        return f"encrypted record ({', '.join(messages)})" if messages else "encrypted record"
    return None


def _malformation(event: "TraceEvent") -> str | None:
    """What is wrong with a received wire event, or None if it decoded."""
    wire = event.wire
    if isinstance(wire, Malformed):
        return f"{wire.reason} (stream offset {wire.offset})"
    if isinstance(wire, HandshakeMessage) and "decode_error" in wire.details:
        return f"{message_title(wire.name)} of {wire.length} B: {wire.details['decode_error']}"
    return None


def _sent_certificate_request(error: "S2NError", sent: list["TraceEvent"]) -> bool:
    """A server asked for a certificate: seen on the wire, in s2n's checkpoints, or from its state."""
    for event in sent:
        if isinstance(event.wire, HandshakeMessage) and event.wire.name == "certificate_request":
            return True
        if "SERVER_CERT_REQ" in event.data.get("s2n_messages", []):
            return True
    return error.mode == "server" and "CLIENT_AUTH" in (error.handshake_type or "") \
        and (error.last_message or "") in _AFTER_CERT_REQUEST


def _policy(trace: "ConnectionTrace | None") -> str | None:
    """The security policy this side used, from s2n's handshake event or the connection's config."""
    if trace is None:
        return None
    for event in trace.handshake_events:
        if event.get("policy"):
            return event["policy"]
    return trace.policy


def _offered(evidence: _Evidence, key: str) -> str:
    values = evidence.client_hello.get(key)
    return ", ".join(values) if isinstance(values, list) else str(values or "unknown (trace to see)")


# --- rules ------------------------------------------------------------------------------------------


def _not_tls(evidence: _Evidence) -> Diagnosis | None:
    if evidence.non_tls is None:
        return None
    what = evidence.non_tls
    if what.what == "http":
        return evidence.diagnosis(
            "not_tls", f"the {evidence.peer} spoke plaintext HTTP to a TLS port",
            f"It sent {what.preview!r} instead of a TLS ClientHello: an http:// URL or a client "
            "without TLS pointed at this port.",
            "use https:// (or enable TLS in the client), or serve plain HTTP on another port")
    return evidence.diagnosis(
        "not_tls", f"the {evidence.peer} does not speak TLS ({what.what})",
        f"The first bytes received were {what.preview!r}, which is not a TLS record.",
        "check that both ends use TLS on this port (and no proxy expects another protocol)")


def _peer_silent(evidence: _Evidence) -> Diagnosis | None:
    if evidence.name != "S2NPY_STALLED" and evidence.errno != errno_module.ETIMEDOUT:
        return None
    return evidence.diagnosis(
        "peer_silent", f"the {evidence.peer} went silent (timeout) while the handshake waited at "
                       f"{evidence.error.last_message}",
        f"Nothing arrived from the {evidence.peer} after we sent {evidence.last_sent or 'our last flight'}. "
        "The peer may have "
        "failed without telling (s2n sends no alert while blinding), be stuck, or a firewall drops packets.",
        f"look at the {evidence.peer}'s logs and trace it; check the network path and the timeout")


def _peer_reset(evidence: _Evidence) -> Diagnosis | None:
    if evidence.errno != errno_module.ECONNRESET:
        return None
    return evidence.diagnosis(
        "peer_reset", f"the {evidence.peer} reset the connection at {evidence.error.last_message}",
        f"A TCP RST ended the connection: the {evidence.peer} process aborted, closed with unread data, "
        "or a load balancer/firewall cut the connection.",
        f"check the {evidence.peer}'s logs and any proxy in between at the time of the reset")


def _closed_without_alert(evidence: _Evidence) -> bool:
    return evidence.name == "S2N_ERR_CLOSED" or evidence.errno == errno_module.EPIPE


def _closed_after_certificate_request(evidence: _Evidence) -> Diagnosis | None:
    if not (_closed_without_alert(evidence) and evidence.error.mode == "server"
            and evidence.sent_certificate_request):
        return None
    return evidence.diagnosis(
        "closed_after_certificate_request",
        "peer closed the connection without an alert after the server sent CertificateRequest",
        "The client got a request for a client certificate and hung up instead of answering. Browsers "
        "do this when certificate selection is cancelled (Chromium for a cross-origin wss://, and for "
        "the first connections of a page load before retrying); curl answers with an empty Certificate.",
        "use cert auth 'none' for browser clients, or decide per connection in a client hello callback "
        "(connection.set_cert_auth: ask only API clients for a certificate)")


def _peer_closed(evidence: _Evidence) -> Diagnosis | None:
    if not _closed_without_alert(evidence):
        return None
    after = evidence.last_received or "nothing"
    return evidence.diagnosis(
        "peer_closed", f"the {evidence.peer} closed the connection without an alert",
        f"The {evidence.peer} ended the TCP connection in the middle of the handshake without saying why; "
        f"we had last sent {evidence.last_sent or evidence.error.last_message} and received {after}. "
        "An s2n peer does this when its own handshake failed (it sends no alert while blinding).",
        f"check the {evidence.peer}'s logs (or trace it) for its own error at that message")


def _alert_received(evidence: _Evidence) -> Diagnosis | None:
    code = evidence.error.alert
    if code is None:
        return None
    name = evidence.error.alert_name
    meaning = alert_meaning(code) or "an uncommon alert: the peer's logs say why it sent it"
    return evidence.diagnosis(
        _ALERT_CAUSES.get(code, "alert_received"), f"the {evidence.peer} sent alert {name} ({code}): {meaning}",
        f"The {evidence.peer} refused the handshake at {evidence.error.last_message} and said why with a "
        f"fatal TLS alert ({name}).",
        f"compare what we sent ({evidence.last_sent or 'trace to see'}) with what the {evidence.peer} accepts; "
        "its logs name the exact reason")


_NEGOTIATION_ERRORS: dict[str, tuple[str, str]] = {
    "S2N_ERR_PROTOCOL_VERSION_UNSUPPORTED": ("no_shared_version", "protocol version"),
    "S2N_ERR_CIPHER_NOT_SUPPORTED": ("no_shared_cipher", "cipher suite"),
    "S2N_ERR_ECDHE_UNSUPPORTED_CURVE": ("no_shared_group", "key exchange group"),
    "S2N_ERR_KEM_UNSUPPORTED_PARAMS": ("no_shared_group", "key exchange group"),
    # What s2n reports when a TLS 1.3 ClientHello offers no group it supports.
    "S2N_ERR_INVALID_SUPPORTED_GROUP_STATE": ("no_shared_group", "key exchange group"),
    "S2N_ERR_NO_VALID_SIGNATURE_SCHEME": ("no_shared_signature_algorithm", "signature algorithm"),
    "S2N_ERR_INVALID_SIGNATURE_SCHEME": ("no_shared_signature_algorithm", "signature algorithm"),
    "S2N_ERR_SECURITY_POLICY_INCOMPATIBLE_CERT": ("no_shared_signature_algorithm",
                                                  "certificate key or signature algorithm"),
}
_OFFER_KEYS = {"no_shared_version": "supported_versions", "no_shared_cipher": "cipher_suites",
               "no_shared_group": "groups", "no_shared_signature_algorithm": "signature_algorithms"}


def _no_shared_parameters(evidence: _Evidence) -> Diagnosis | None:
    if evidence.name not in _NEGOTIATION_ERRORS:
        return None
    cause, what = _NEGOTIATION_ERRORS[evidence.name]
    offered = _offered(evidence, _OFFER_KEYS[cause])
    if cause == "no_shared_version" and "supported_versions" not in evidence.client_hello:
        offered = evidence.client_hello.get("legacy_version", offered)
    policy = f"'{evidence.policy}'" if evidence.policy else "this side's policy"
    return evidence.diagnosis(
        cause, f"no {what} in common between client and server",
        f"The client offered {what}s: {offered}; the {evidence.error.mode}'s security policy {policy} "
        f"allows none of them{' for its certificate' if 'certificate' in what else ''}.",
        "choose security policies that overlap (s2n policy names such as 'default_tls13', '20190801'), "
        "or update the peer that only supports old (or only new) parameters")


_CERTIFICATE_ERRORS: dict[str, tuple[str, str, str]] = {
    "S2N_ERR_CERT_UNTRUSTED": (
        "certificate_untrusted", "does not chain to a trusted CA",
        "trust the issuing CA (Config(trust=ca_pem)), or have the {peer} send its intermediate certificates"),
    "S2N_ERR_CERT_EXPIRED": (
        "certificate_expired", "has expired",
        "renew the {peer}'s certificate (and check both machines' clocks)"),
    "S2N_ERR_CERT_NOT_YET_VALID": (
        "certificate_expired", "is not yet valid",
        "check both machines' clocks, or wait until the certificate's notBefore"),
    "S2N_ERR_CERT_INVALID_HOSTNAME": (
        "hostname_mismatch", "does not cover the requested server name",
        "connect with a name listed in the certificate's subjectAltName, or reissue it with this name"),
}


def _certificate_problem(evidence: _Evidence) -> Diagnosis | None:
    if evidence.name not in _CERTIFICATE_ERRORS:
        return None
    cause, problem, next_step = _CERTIFICATE_ERRORS[evidence.name]
    name = evidence.client_hello.get("server_name")
    asked = f" (server name {name!r})" if cause == "hostname_mismatch" and name else ""
    return evidence.diagnosis(
        cause, f"the {evidence.peer}'s certificate {problem}{asked}",
        f"The {evidence.error.mode} validated the certificate the {evidence.peer} sent and refused it: "
        f"s2n reports {evidence.name} ({evidence.error.message}).",
        next_step.format(peer=evidence.peer))


def _client_certificate_missing(evidence: _Evidence) -> Diagnosis | None:
    if evidence.name != "S2N_ERR_MISSING_CLIENT_CERT":
        return None
    return evidence.diagnosis(
        "client_certificate_missing", "the client sent no certificate but the server requires one",
        "The server's cert auth is 'required'; the client answered the CertificateRequest with an empty "
        "Certificate (it has none configured, or none matching the requested CAs/signature algorithms).",
        "give the client a certificate from a CA the server trusts, or use cert auth 'optional' on the server")


def _malformed_message(evidence: _Evidence) -> Diagnosis | None:
    if evidence.malformed is None:
        return None
    return evidence.diagnosis(
        "malformed_message", f"the {evidence.peer} sent a malformed TLS message",
        f"What arrived does not decode: {evidence.malformed}; s2n reports {evidence.name}. A broken or "
        "fuzzing client, a truncating middlebox, or a bug in the peer's TLS stack.",
        f"capture the exchange (trace.write_pcap) and check the {evidence.peer}'s TLS library and any proxy")


def _unknown(evidence: _Evidence) -> Diagnosis:
    error = evidence.error
    return evidence.diagnosis(
        "unknown", (error.message or evidence.name or "handshake failed").rstrip(".").lower(),
        f"s2n reported {evidence.name or 'an error'} ({error.debug or 'no detail'}).",
        "trace the handshake (trace=True or S2NPY_TRACE=1) to see the messages exchanged")


_RULES: list[Callable[[_Evidence], Diagnosis | None]] = [
    _not_tls, _peer_silent, _peer_reset, _closed_after_certificate_request, _peer_closed,
    _alert_received, _no_shared_parameters, _certificate_problem, _client_certificate_missing,
    _malformed_message,
]
