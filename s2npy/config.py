"""``Config``: the settings shared by many connections (an ``s2n_config``).

Freezing rule: a Config can be changed until the first :class:`~s2npy.Connection`
uses it; from then on every setter raises :class:`~s2npy.ConfigInUseError`.
s2n reads its config during handshakes with the GIL released, so changing it
under a live connection could tear a handshake apart; freezing makes that
impossible instead of merely unlikely. ``copy()`` gives a new, unfrozen
Config with the same settings, for the "same, but with X" experiment.

Lifetime: connections hold a reference to their Config, so it is freed only
after the last of them; ``close()`` on a Config in use raises.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from . import _callbacks
from ._native import HAS_EVENTS, address, ffi, lib
from .enums import CertAuth
from .pool import IdleConnections
from .errors import ConfigError, ConfigInUseError, UsageError, check

if TYPE_CHECKING:
    import socket

    from .client_hello import ClientHello
    from .connection import Connection
    from .socket import TLSSocket

PemSource = Union[bytes, str, os.PathLike]
DEFAULT_POLICY = "default_tls13"

#: A few policy names from s2n-tls's security policy table, for error hints.
WELL_KNOWN_POLICIES = ("default", "default_tls13", "default_pq", "20240501", "20240503",
                       "20230317", "20190801", "rfc9151", "test_all", "test_all_tls12")


def read_pem(source: PemSource, what: str) -> bytes:
    """PEM bytes from bytes, a PEM string, or a path; a clear error otherwise."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, str) and "-----BEGIN" in source:
        data = source.encode("ascii", "replace")
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {what} file {str(path)!r}: {exc.strerror}",
                              operation=f"loading {what}") from exc
    else:
        raise ConfigError(f"{what} must be PEM bytes, a PEM string or a path, not {type(source).__name__}",
                          operation=f"loading {what}")
    if b"-----BEGIN" not in data:
        raise ConfigError(f"{what} is not PEM (no '-----BEGIN' line); convert DER with "
                          "`openssl x509 -inform der` or pass the PEM text", operation=f"loading {what}")
    return data


class CertificateChain:
    """A certificate chain and its private key, loaded into s2n (``s2n_cert_chain_and_key``)."""

    def __init__(self, chain: PemSource, key: PemSource) -> None:
        chain_pem = read_pem(chain, "certificate chain")
        key_pem = read_pem(key, "private key")
        pointer = lib.s2n_cert_chain_and_key_new()
        check(-1 if pointer == ffi.NULL else 0, "allocating a certificate chain")
        self._ptr = ffi.gc(pointer, lib.s2n_cert_chain_and_key_free)
        check(lib.s2n_cert_chain_and_key_load_pem_bytes(
            self._ptr, chain_pem, len(chain_pem), key_pem, len(key_pem)),
            "loading certificate chain and private key",
            hint="check both are PEM, the key is unencrypted and belongs to the first certificate")
        self.chain_pem = chain_pem

    def free(self) -> None:
        ffi.release(self._ptr)


class Config:
    """Settings for TLS connections: certificates, trust, client auth, policy, ALPN, callbacks.

    Every keyword maps to one setter below; see each for details::

        server = Config(certificates=[(cert_pem, key_pem)], cert_auth="optional",
                        trust=ca_pem)
        client = Config(trust=ca_pem, alpn=["h2", "http/1.1"])

    ``reuse_connections`` is the exception: up to that many closed connections
    per mode (client, server) are kept wiped by ``s2n_connection_wipe`` and set up
    again by the next ``Connection`` on this config, which saves s2n's allocation
    and freeing (~30 us per connection; ~44 KiB of locked memory each while kept,
    so at most ~700 KiB per config by default). 0 turns it off. See ``s2npy/pool.py``.
    """

    def __init__(self, *,
                 certificates: Iterable[tuple[PemSource, PemSource]] = (),
                 trust: PemSource | Iterable[PemSource] | None = None,
                 system_trust: bool = True,
                 cert_auth: CertAuth | str | None = None,
                 policy: str = DEFAULT_POLICY,
                 alpn: Sequence[str] = (),
                 verify_host: Callable[[str], bool] | None = None,
                 verify_peer: bool = True,
                 session_tickets: bool = False,
                 max_chain_depth: int | None = None,
                 key_log: Callable[["Connection", str], None] | str | os.PathLike | bool | None = None,
                 client_hello_callback: Callable[["Connection", "ClientHello"], None] | None = None,
                 events: bool = False,
                 max_blinding_delay: int | None = None,
                 reuse_connections: int = 8) -> None:
        pointer = lib.s2n_config_new()
        check(-1 if pointer == ffi.NULL else 0, "creating a config (s2n_config_new)")
        self._ptr = ffi.gc(pointer, lib.s2n_config_free)
        self._address = address(pointer)  # for create_connection (see Connection)
        self._idle = IdleConnections(self._ptr, reuse_connections)
        self._handle = ffi.new_handle(self)
        self._frozen = False
        # One entry per connection whose s2n connection points at this config (list append/pop
        # are atomic): close() refuses while any is left. Counted until the s2n connection is
        # given back, not only until Connection.close(), which may leave the free to a call
        # still running in another thread.
        self._users: list[None] = []
        self._recipe: list[tuple[str, tuple, dict]] = []
        self._chains: list[CertificateChain] = []
        self.cert_auth: CertAuth | None = None
        self.policy = DEFAULT_POLICY
        self.alpn: tuple[str, ...] = ()
        self.verify_peer = True
        self.events = False
        self._verify_host: Callable[[str], bool] | None = None
        self._client_hello_callback = None
        self._key_log_sinks: list[Callable[["Connection", str], None]] = []
        # s2n calls Python with a connection's context (verify host, client hello, key log, events):
        # only then does a Connection make the handle that context is (see Connection._context).
        self._calls_connections = False
        for chain, key in certificates:
            self.add_certificate(chain, key)
        if not system_trust:
            self.wipe_trust()
        if trust is not None:
            for source in (trust if isinstance(trust, (list, tuple)) else [trust]):
                self.add_trust(source)
        if cert_auth is not None:
            self.set_cert_auth(cert_auth)
        self.set_policy(policy)
        if alpn:
            self.set_alpn(alpn)
        if verify_host is not None:
            self.set_verify_host(verify_host)
        if not verify_peer:
            self.disable_verification()
        if session_tickets:
            self.enable_session_tickets()
        if max_chain_depth is not None:
            self.set_max_chain_depth(max_chain_depth)
        if key_log is None and os.environ.get("SSLKEYLOGFILE"):
            key_log = os.environ["SSLKEYLOGFILE"]
        if key_log not in (None, False):
            self.set_key_log(key_log)
        if client_hello_callback is not None:
            self.set_client_hello_callback(client_hello_callback)
        if events:
            self.enable_events()
        if max_blinding_delay is not None:
            self.set_max_blinding_delay(max_blinding_delay)

    # --- bookkeeping -------------------------------------------------------------

    def _change(self, what: str, method: str, *args: Any, **kwargs: Any) -> None:
        """Refuse changes once frozen; remember the change so copy() can replay it."""
        if self._frozen:
            raise ConfigInUseError(what)
        self._recipe.append((method, args, kwargs))

    @property
    def frozen(self) -> bool:
        """True once a connection has used this Config; setters then raise."""
        return self._frozen

    def _attach(self) -> None:
        """A connection starts using this config (it is frozen from now on)."""
        if self._ptr is None:
            raise UsageError("creating a connection", message="this Config was closed")
        self._frozen = True
        self._users.append(None)

    def _detach(self) -> None:
        """A connection stopped using this config (its s2n connection was given back or switched)."""
        self._users.pop()

    def copy(self) -> "Config":
        """A new, unfrozen Config with every setting of this one replayed."""
        clone = Config.__new__(Config)
        Config.__init__(clone, system_trust=True)
        clone._recipe = []
        for method, args, kwargs in self._recipe:
            getattr(clone, method)(*args, **kwargs)
        return clone

    @property
    def ptr(self):
        """The ``struct s2n_config *`` (for code that calls libs2n directly)."""
        if self._ptr is None:
            raise UsageError("using a config", message="this Config was closed")
        return self._ptr

    def close(self) -> None:
        """Free the s2n config now.

        Raises UsageError while a connection still uses it: one not closed, or one closed while
        another thread's call on it is still running (its s2n connection is freed when that call
        returns). A connection switched away by ``set_config`` no longer counts.
        """
        if self._ptr is None:
            return
        if self._users:
            raise UsageError("closing a config", message="connections still use this Config",
                             hint="close those connections first")
        self._idle.clear()  # they point at the s2n config
        ffi.release(self._ptr)
        self._ptr = None
        for chain in self._chains:
            chain.free()
        self._chains.clear()

    def __enter__(self) -> "Config":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- certificates and trust ---------------------------------------------------

    def add_certificate(self, chain: PemSource, key: PemSource) -> None:
        """Add a certificate chain and key (several allowed: RSA and ECDSA, or per-SNI)."""
        self._change("certificates", "add_certificate", chain, key)
        loaded = CertificateChain(chain, key)
        check(lib.s2n_config_add_cert_chain_and_key_to_store(self.ptr, loaded._ptr),
              "adding certificate chain to config",
              hint="a config can hold one chain per key type and name; remove duplicates")
        self._chains.append(loaded)

    def add_trust(self, source: PemSource) -> None:
        """Trust CA certificates: PEM bytes/str, a PEM file, or a directory (c_rehash layout)."""
        self._change("trust store", "add_trust", source)
        if isinstance(source, (str, os.PathLike)) and "-----BEGIN" not in str(source):
            path = Path(source)
            if path.is_dir():
                check(lib.s2n_config_set_verification_ca_location(self.ptr, ffi.NULL, os.fsencode(path)),
                      f"loading trust directory {str(path)!r}",
                      hint="the directory needs OpenSSL hash links (run `openssl rehash DIR`)")
                return
        pem = read_pem(source, "trust store certificates")
        check(lib.s2n_config_add_pem_to_trust_store(self.ptr, pem), "adding PEM to trust store",
              hint="pass CA certificates in PEM form")

    def wipe_trust(self) -> None:
        """Forget every trusted CA, including the system ones s2n loads by default."""
        self._change("trust store", "wipe_trust")
        check(lib.s2n_config_wipe_trust_store(self.ptr), "wiping trust store")

    def load_system_trust(self) -> None:
        """Trust the system's CA bundle (s2n loads it by default; this reloads after a wipe)."""
        self._change("trust store", "load_system_trust")
        check(lib.s2n_config_load_system_certs(self.ptr), "loading system trust store")

    def disable_verification(self) -> None:
        """INSECURE: accept any peer certificate. Only for experiments against known peers."""
        self._change("verification", "disable_verification")
        check(lib.s2n_config_disable_x509_verification(self.ptr), "disabling certificate verification")
        self.verify_peer = False

    def set_verify_host(self, callback: Callable[[str], bool]) -> None:
        """Decide which certificate names to accept: ``callback(name) -> bool``.

        Called for each DNS name / CN in the peer's leaf certificate; the
        certificate is accepted if any call returns True. Without it, a client
        accepts the name it set as ``server_name`` (RFC 6125 rules) and a server
        accepts any name on a client certificate that chains to its trust store.
        """
        self._change("verify host callback", "set_verify_host", callback)
        if not callable(callback):
            raise ConfigError(f"verify_host must be callable, not {type(callback).__name__}")
        self._verify_host = callback
        self._calls_connections = True

    def set_max_chain_depth(self, depth: int) -> None:
        """Refuse peer chains longer than ``depth`` certificates."""
        self._change("max chain depth", "set_max_chain_depth", depth)
        if not isinstance(depth, int) or not 1 <= depth <= 65535:
            raise ConfigError(f"max chain depth must be an int in 1..65535, not {depth!r}")
        check(lib.s2n_config_set_max_cert_chain_depth(self.ptr, depth), "setting max chain depth")

    # --- negotiation -------------------------------------------------------------

    def set_cert_auth(self, cert_auth: CertAuth | str) -> None:
        """Client certificate authentication: ``none``, ``optional`` or ``required``.

        Servers: whether to send a CertificateRequest, and whether a missing
        client certificate fails the handshake. Clients (s2n's default is
        optional): ``none`` aborts if the server asks for a certificate,
        ``optional`` sends one if configured (else an empty Certificate),
        ``required`` fails unless the server asks and one is configured.
        Left unset, servers do not ask and clients behave as ``optional``.
        """
        self._change("cert auth", "set_cert_auth", cert_auth)
        parsed = CertAuth.parse(cert_auth)
        check(lib.s2n_config_set_client_auth_type(self.ptr, parsed.c_value), "setting cert auth")
        self.cert_auth = parsed

    def set_policy(self, name: str) -> None:
        """Security policy by s2n name (versions, ciphers, groups, signature algorithms)."""
        self._change("security policy", "set_policy", name)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"security policy must be a non-empty name, not {name!r}")
        check(lib.s2n_config_set_cipher_preferences(self.ptr, name.encode()),
              f"setting security policy {name!r}",
              hint=f"unknown policy {name!r}? known names include {', '.join(WELL_KNOWN_POLICIES)}")
        self.policy = name

    def set_alpn(self, protocols: Sequence[str]) -> None:
        """ALPN protocols in preference order, e.g. ``["h2", "http/1.1"]``."""
        self._change("ALPN", "set_alpn", tuple(protocols))
        names, keep = alpn_array(protocols)
        check(lib.s2n_config_set_protocol_preferences(self.ptr, names, len(keep)), "setting ALPN protocols")
        self.alpn = tuple(protocols)

    def enable_session_tickets(self, key: bytes | None = None) -> None:
        """Resumption with session tickets; servers get a random ticket key unless given one.

        The random key and key name come from ``os.urandom``, which is what ``secrets`` uses
        (``secrets`` itself is not imported: with ``hmac`` and ``hashlib`` it was ~3 ms of
        ``import s2npy``).
        """
        key = key if key is not None else os.urandom(32)
        self._change("session tickets", "enable_session_tickets", key)
        check(lib.s2n_config_set_session_tickets_onoff(self.ptr, 1), "enabling session tickets")
        name = b"s2npy-" + os.urandom(4).hex().encode()
        check(lib.s2n_config_add_ticket_crypto_key(self.ptr, name, len(name), key, len(key), 0),
              "adding session ticket key", hint="the key must be 16 to 64 random bytes")

    def set_max_blinding_delay(self, seconds: int) -> None:
        """Cap s2n's blinding delay after errors (default 30 s). Lowering it weakens a defence.

        With self-service blinding (s2npy's default) nothing sleeps, but s2n
        refuses ``shutdown()`` - and so sending the alert that tells the peer
        why the handshake failed - until the delay has passed. Experiments and
        test servers may set 0 to send alerts at once; production servers facing
        untrusted peers should keep the default (see s2n-tls's usage guide).
        """
        self._change("max blinding delay", "set_max_blinding_delay", seconds)
        if not isinstance(seconds, int) or not 0 <= seconds <= 2**32 - 1:
            raise ConfigError(f"max blinding delay must be a number of seconds >= 0, not {seconds!r}")
        check(lib.s2n_config_set_max_blinding_delay(self.ptr, seconds), "setting max blinding delay")

    # --- callbacks -----------------------------------------------------------------

    def set_client_hello_callback(self, callback: Callable[["Connection", "ClientHello"], None], *,
                                  blocking: bool = True) -> None:
        """Servers: ``callback(connection, hello)`` runs once the ClientHello is parsed.

        It may change that connection's cert auth, policy or config (e.g. ask API
        clients for a certificate but not browsers). Raising rejects the
        handshake; the exception reaches the caller of ``negotiate()``.

        ``blocking=False`` is for decisions that take time (a lookup, another
        service): after the callback returns, the handshake pauses -
        ``negotiate()`` raises :class:`~s2npy.WantApplicationInputError` and
        ``try_negotiate()`` returns ``Blocked.ON_APPLICATION_INPUT`` - until
        someone calls ``connection.client_hello_done()`` (from the callback or
        later, from any thread); then negotiate again.
        """
        self._change("client hello callback", "set_client_hello_callback", callback, blocking=blocking)
        if not callable(callback):
            raise ConfigError(f"client hello callback must be callable, not {type(callback).__name__}")
        self._client_hello_callback = callback
        self._calls_connections = True
        check(lib.s2n_config_set_client_hello_cb(self.ptr, lib.s2npy_client_hello_cb, self._handle),
              "setting client hello callback")
        mode = lib.S2N_CLIENT_HELLO_CB_BLOCKING if blocking else lib.S2N_CLIENT_HELLO_CB_NONBLOCKING
        check(lib.s2n_config_set_client_hello_cb_mode(self.ptr, mode), "setting client hello callback mode")

    def set_key_log(self, target: Callable[["Connection", str], None] | str | os.PathLike | bool) -> None:
        """Log TLS secrets (NSS key log format) - for debugging and decrypting captures ONLY.

        ``target``: a callable ``(connection, line)``, a file path (appended to,
        created with mode 0600) or True (secrets go only to connection traces).
        """
        self._change("key log", "set_key_log", target)
        if isinstance(target, (str, os.PathLike)):
            self._key_log_sinks.append(_callbacks.KeyLogFile(target))
        elif callable(target):
            self._key_log_sinks.append(target)
        elif target is not True:
            raise ConfigError(f"key log target must be a path, a callable or True, not {target!r}")
        self._calls_connections = True
        check(lib.s2n_config_set_key_log_cb(self.ptr, lib.s2npy_key_log_cb, self._handle),
              "setting key log callback")

    def enable_events(self) -> None:
        """Report s2n's per-message timing checkpoints and handshake event to connection traces."""
        self._change("events", "enable_events")
        if not HAS_EVENTS:
            raise UsageError("enabling events", message="this s2n-tls build has no api/unstable/events.h "
                             "timing checkpoints", hint="build s2npy against a newer s2n-tls")
        self._calls_connections = True
        check(lib.s2n_config_set_subscriber(self.ptr, self._handle), "setting event subscriber")
        check(lib.s2n_config_set_handshake_event(self.ptr, lib.s2npy_handshake_event_cb),
              "setting handshake event callback")
        check(lib.s2n_config_set_timing_checkpoint_cb(self.ptr, lib.s2npy_checkpoint_cb),
              "setting timing checkpoint callback")
        self.events = True

    def wrap_socket(self, sock: socket.socket, **options: Any) -> TLSSocket:
        """Wrap a socket in TLS with this config (see :func:`s2npy.socket.wrap_socket`)."""
        from .socket import wrap_socket

        return wrap_socket(self, sock, **options)

    def __repr__(self) -> str:
        cert_auth = self.cert_auth.value if self.cert_auth else "default"
        return (f"<Config cert_auth={cert_auth} policy={self.policy!r} "
                f"certificates={len(self._chains)} alpn={list(self.alpn)} frozen={self._frozen}>")


def alpn_array(protocols: Sequence[str]) -> tuple[Any, list]:
    """A ``const char *[]`` for s2n plus the cdata list that keeps its strings alive."""
    if isinstance(protocols, (str, bytes)):
        raise ConfigError("ALPN protocols must be a list of names, e.g. ['h2', 'http/1.1']")
    keep = []
    for name in protocols:
        encoded = name.encode() if isinstance(name, str) else name
        if not isinstance(encoded, bytes) or not 0 < len(encoded) < 256:
            raise ConfigError(f"ALPN protocol {name!r} must be 1..255 bytes")
        keep.append(ffi.new("char[]", encoded))
    return ffi.new("const char *[]", keep), keep
