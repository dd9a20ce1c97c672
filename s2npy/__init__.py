"""s2npy: Python bindings to s2n-tls, with handshake tracing and failure diagnosis.

The public API::

    Config, Connection, CertAuth, Mode, Blocked  - configure and run TLS connections
    NegotiatedFacts, ClientHello                 - what was negotiated / offered
    handshake, Behaviour                         - in-memory experiments
    memory_pipe, MemoryPipeEnd                   - in-memory transport (C buffers)
    S2NError and subclasses                      - readable, catchable failures
    versions()                                   - what s2n-tls and libcrypto this is
"""

from __future__ import annotations

from ._native import BUILD_INFO, c_string, ffi, lib
from .client_hello import ClientHello
from .config import CertificateChain, Config
from .connection import Connection
from .enums import Blocked, CertAuth, Mode
from .errors import (AlertError, BlockedError, ClosedError, ConfigError, ConfigInUseError, InternalError,
                     ProtocolError, S2NError, S2NIOError, UsageError, WantApplicationInputError,
                     WantEarlyDataError, WantReadError, WantWriteError)
from .experiment import Behaviour, HandshakeResult, handshake
from .facts import NegotiatedFacts
from .memory import MemoryPipeEnd, memory_pipe

__version__ = "0.1.0"


def versions() -> dict[str, object]:
    """s2npy's version, the s2n-tls source it was built from, and the libcrypto in use."""
    return {
        "s2npy": __version__,
        **{key: value for key, value in BUILD_INFO.items() if key != "features"},
        "libcrypto": c_string(lib.OpenSSL_version(0)),
        "libcrypto_version_number": hex(lib.s2n_get_openssl_version()),
        "features": BUILD_INFO["features"],
    }


__all__ = [
    "AlertError", "Behaviour", "BlockedError", "Blocked", "CertAuth", "CertificateChain", "ClientHello",
    "ClosedError", "Config", "ConfigError", "ConfigInUseError", "Connection", "HandshakeResult",
    "InternalError", "MemoryPipeEnd", "Mode", "NegotiatedFacts", "ProtocolError", "S2NError", "S2NIOError",
    "UsageError", "WantApplicationInputError", "WantEarlyDataError", "WantReadError", "WantWriteError", "ffi",
    "handshake", "lib", "memory_pipe", "versions",
]
