"""Small enumerations of the public API (cert auth, mode, blocked status)."""

from __future__ import annotations

import enum
import functools

from ._native import lib


@functools.cache
def _members_by_value(cls: type[enum.Enum]) -> dict[object, enum.Enum]:
    return {member.value: member for member in cls}


def _parse(cls: type[enum.Enum], value: object, what: str):
    """A member from itself or its value as a case-insensitive string; ConfigError otherwise.

    A dict lookup, not ``cls(value)``: every Connection parses its mode.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        member = _members_by_value(cls).get(value) or _members_by_value(cls).get(value.strip().lower())
        if member is not None:
            return member
    from .errors import ConfigError

    choices = ", ".join(member.value for member in cls)
    raise ConfigError(f"unknown {what} {value!r}: use one of {choices}")


class CertAuth(enum.Enum):
    """Client certificate authentication: whether a server sends CertificateRequest.

    ``NONE``: never asks. ``OPTIONAL``: asks; a client may send an empty
    Certificate, but a certificate that is sent must validate. ``REQUIRED``:
    asks and fails the handshake without a valid client certificate.
    """

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"

    @classmethod
    def parse(cls, value: "CertAuth | str") -> "CertAuth":
        return _parse(cls, value, "cert auth")

    @property
    def c_value(self) -> int:
        return {
            CertAuth.NONE: lib.S2N_CERT_AUTH_NONE,
            CertAuth.OPTIONAL: lib.S2N_CERT_AUTH_OPTIONAL,
            CertAuth.REQUIRED: lib.S2N_CERT_AUTH_REQUIRED,
        }[self]

    @classmethod
    def from_c(cls, value: int) -> "CertAuth":
        return next(member for member in cls if member.c_value == value)


class Mode(enum.Enum):
    """Which end of the connection this is."""

    SERVER = "server"
    CLIENT = "client"

    @classmethod
    def parse(cls, value: "Mode | str") -> "Mode":
        return _parse(cls, value, "mode")

    @property
    def c_value(self) -> int:
        return lib.S2N_SERVER if self is Mode.SERVER else lib.S2N_CLIENT


class Blocked(enum.IntEnum):
    """Why an s2n call could not finish (``s2n_blocked_status``)."""

    NOT_BLOCKED = 0
    ON_READ = 1
    ON_WRITE = 2
    ON_APPLICATION_INPUT = 3
    ON_EARLY_DATA = 4

    @classmethod
    def of(cls, value: int) -> "Blocked":
        """The member for an ``s2n_blocked_status`` (a dict lookup: each blocked negotiate makes one)."""
        return _members_by_value(cls)[value]


#: s2n protocol constant -> the name Python's ``ssl.SSLSocket.version()`` uses.
PROTOCOL_NAMES = {
    lib.S2N_SSLv2: "SSLv2",
    lib.S2N_SSLv3: "SSLv3",
    lib.S2N_TLS10: "TLSv1",
    lib.S2N_TLS11: "TLSv1.1",
    lib.S2N_TLS12: "TLSv1.2",
    lib.S2N_TLS13: "TLSv1.3",
}
