"""Types of s2npy._datapath, the C extension (_datapath.c, _connection_core.c): for type checkers and editors."""

from typing import Any

from .enums import Blocked
from .facts import NegotiatedFacts, PeerCertChain

NOT_CALLED: int
CALLED: int

def bind(recv: int, send: int, create: int, negotiate: int) -> None: ...
def bind_core(namespace: dict[str, Any]) -> None: ...
def create_connection(reuse: int, mode: int, config: int, context: int, verify_host: int, verify_data: int,
                      blinding: int, server_name: bytes | None, fd: int, mem: int, prefer: int, cert_auth: int,
                      policy: bytes | None, alpn: int, alpn_count: int, session: bytes | None) -> int: ...

class DataChannel:
    def __init__(self, conn: int, in_calls: list[None], blocked: int, failed: int, ahead_min: int) -> None: ...
    def recv_into(self, buffer: Any, nbytes: int = 0) -> int: ...
    def send(self, data: Any) -> int: ...
    def outcome(self, sending: bool) -> tuple[int, int]: ...
    def set_reader(self, address: int, final: bool) -> None: ...
    def detach(self) -> None: ...

class ConnectionCore:
    """Connection's base: its common construction, untraced handshake steps and close in C."""

    _blocked_address: int
    _recv_failed_address: int
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def negotiate(self) -> NegotiatedFacts:
        """Do the TLS handshake; return the negotiated facts."""
    def try_negotiate(self) -> Blocked:
        """Run the handshake as far as the I/O allows; ``NOT_BLOCKED`` means done."""
    def close(self) -> None:
        """Free the s2n connection (the socket/transport is not closed). Idempotent."""
    def _lazy_peer_chain(self, ptr: Any) -> PeerCertChain: ...
