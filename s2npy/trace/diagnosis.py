"""Diagnosis: from a failed handshake to "what happened and what to try".

:func:`diagnose` looks at the exception (s2n error name, errno, alert, the
state machine's last message and handshake type) and, when the connection
was traced, at the decoded wire (what each side last sent and received).
Rules are tried in order; the first that matches names the cause.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..errors import S2NError
    from .recorder import ConnectionTrace

# s2n state machine names of the messages a server sends after asking for a certificate.
_AFTER_CERT_REQUEST = {"SERVER_CERT_REQ", "SERVER_HELLO_DONE", "SERVER_CERT", "SERVER_CERT_VERIFY",
                       "SERVER_FINISHED", "CLIENT_CERT", "SERVER_CHANGE_CIPHER_SPEC"}


@dataclass(frozen=True)
class Diagnosis:
    """Why a handshake failed: ``cause`` is a stable identifier, the rest is for people."""

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
        return f"{self.headline}. {self.explanation} Next step: {self.next_step}"


def diagnose(error: "S2NError", trace: "ConnectionTrace | None" = None) -> Diagnosis:
    """Explain a handshake failure (always returns a Diagnosis, "unknown" at worst)."""
    context = dict(side=error.mode, step=error.last_message)
    name = error.name or ""
    sent_cert_request = error.mode == "server" and "CLIENT_AUTH" in (error.handshake_type or "") \
        and (error.last_message or "") in _AFTER_CERT_REQUEST
    if name == "S2N_ERR_CLOSED" and sent_cert_request:
        return Diagnosis(
            cause="closed_after_certificate_request", **context,
            headline="peer closed the connection without an alert after the server sent CertificateRequest",
            explanation=("The client got a request for a client certificate and hung up instead of "
                         "answering. Browsers do this when certificate selection is cancelled "
                         "(Chromium for wss:// from another origin); curl answers with an empty "
                         "Certificate instead."),
            next_step=("use cert auth 'none' for browser clients, or decide per connection in a "
                       "client hello callback (ask only API clients for a certificate)"))
    if name == "S2N_ERR_CLOSED":
        return Diagnosis(
            cause="peer_closed", **context,
            headline="peer closed the connection without an alert",
            explanation="The peer ended the TCP connection in the middle of the handshake without saying why.",
            next_step="check the peer's logs; trace the handshake to see the last message it received")
    if error.alert is not None:
        return Diagnosis(
            cause="alert_received", **context,
            headline=f"peer sent alert {error.alert_name} ({error.alert})",
            explanation="The peer refused the handshake and said why with a TLS alert.",
            next_step="look up what the peer disliked: its logs name the reason for that alert")
    return Diagnosis(
        cause="unknown", **context,
        headline=(error.message or name or "handshake failed").rstrip(".").lower(),
        explanation=f"s2n reported {name or 'an error'} ({error.debug or 'no detail'}).",
        next_step="trace the handshake (trace=True) to see the messages exchanged")
