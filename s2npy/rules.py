"""Per-connection client certificate rules, decided from the ClientHello.

A server with cert auth ``optional`` sends a CertificateRequest to everyone.
Browsers may answer it by hanging up (Chromium does for a cross-origin
``wss://``), so a server that wants certificates from API clients but not from
browsers decides per connection, in the client hello callback::

    config = Config(..., client_hello_callback=cert_auth_rule("non-browser", "optional"))

The ``non-browser`` heuristic (:func:`looks_like_browser`) calls a ClientHello
a browser's when it shows either of:

* GREASE (RFC 8701) values among cipher suites, extensions or groups -
  Chromium, Edge, Opera and Safari send them on every connection; curl,
  OpenSSL, Python, Go and Java clients do not;
* an extension only browsers send: ``compress_certificate``,
  ``application_settings`` (ALPS), ``encrypted_client_hello``,
  ``delegated_credentials`` or ``record_size_limit`` (Firefox sends the
  last two and no GREASE).

ALPN alone is not used: curl offers ``h2,http/1.1`` just like a browser, and
a browser's ``wss://`` offers only ``http/1.1``. The JA4 fingerprint is
shown in logs to refine the rule, not used by it: it changes with every
browser release. A client misclassified as a browser is simply not asked for
a certificate, which is the safe side for an ``optional`` server.

The ``server-name:NAME`` rule asks only connections whose SNI is ``NAME``
(e.g. ``api.example.com``), for deployments that give API clients their own
host name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .enums import CertAuth
from .errors import ConfigError

if TYPE_CHECKING:
    from .client_hello import ClientHello
    from .connection import Connection

BROWSER_ONLY_EXTENSIONS = frozenset({"compress_certificate", "application_settings", "application_settings_old",
                                     "encrypted_client_hello", "delegated_credentials", "record_size_limit"})

#: Rules accepted by :func:`cert_auth_rule` (and ``s2npy serve --cert-auth-rule``).
RULES = ("non-browser", "server-name:NAME")


def browser_signals(hello: "ClientHello") -> list[str]:
    """The reasons this ClientHello looks like a browser's (empty: it does not)."""
    signals = []
    offered = hello.cipher_suites + hello.extensions + hello.groups
    if any(name.startswith("GREASE") for name in offered):
        signals.append("GREASE")
    signals += sorted(BROWSER_ONLY_EXTENSIONS.intersection(hello.extensions))
    return signals


def looks_like_browser(hello: "ClientHello") -> bool:
    """True when the ClientHello shows a browser signal (see the module doc)."""
    return bool(browser_signals(hello))


def cert_auth_rule(rule: str, cert_auth: CertAuth | str = CertAuth.OPTIONAL
                   ) -> Callable[["Connection", "ClientHello"], None]:
    """A client hello callback giving matching clients ``cert_auth`` and the others ``none``."""
    kind, _, name = rule.partition(":")
    if rule == "non-browser":
        wants_certificate: Callable[["ClientHello"], bool] = lambda hello: not looks_like_browser(hello)
    elif kind == "server-name" and name:
        wants_certificate = lambda hello: hello.server_name == name  # noqa: E731
    else:
        raise ConfigError(f"unknown cert auth rule {rule!r}: use one of {', '.join(RULES)}")
    wanted = CertAuth.parse(cert_auth)

    def decide(connection: "Connection", hello: "ClientHello") -> None:
        connection.set_cert_auth(wanted if wants_certificate(hello) else CertAuth.NONE)

    return decide
