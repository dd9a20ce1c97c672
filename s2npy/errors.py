"""The one place where a failed s2n call becomes a Python exception.

Every s2n call that can fail goes through :func:`check` (or :func:`capture_error`
right after the failing call, on the same thread): it reads ``s2n_errno`` and the
C ``errno`` at once, copies s2n's thread-local debug strings before anything can
overwrite them, resets ``s2n_errno`` and builds the exception class that matches
``s2n_error_get_type``:

====================  ==========================  ===============================
s2n error type        exception                   typical cause
====================  ==========================  ===============================
``S2N_ERR_T_IO``      :class:`S2NIOError`         socket error (errno says which)
``S2N_ERR_T_CLOSED``  :class:`ClosedError`        peer closed the TCP connection
``S2N_ERR_T_BLOCKED`` :class:`WantReadError` ...  non-blocking I/O would block
``S2N_ERR_T_ALERT``   :class:`AlertError`         peer sent a TLS alert
``S2N_ERR_T_PROTO``   :class:`ProtocolError`      handshake/record/cert failure
``S2N_ERR_T_INTERNAL`` :class:`InternalError`     bug or resource problem in s2n
``S2N_ERR_T_USAGE``   :class:`UsageError`         API misuse, bad argument
====================  ==========================  ===============================

All of them derive from :class:`S2NError`, itself an :class:`OSError` (as
``ssl.SSLError`` is), so ``except OSError`` catches TLS failures with socket ones.
"""

from __future__ import annotations

import errno as errno_module
import os
from dataclasses import dataclass
from typing import Any

from ._native import c_string, ffi, lib
from .enums import Blocked


@dataclass(frozen=True)
class ConnectionState:
    """Where a connection was when an error happened."""

    mode: str | None = None
    last_message: str | None = None
    handshake_type: str | None = None
    alert: int | None = None
    blinding_delay: float = 0.0


class S2NError(OSError):
    """Base class of every s2npy error.

    Attributes: ``operation`` (what was being done), ``code``/``name``
    (``s2n_errno`` and its ``S2N_ERR_*`` name), ``message`` (s2n's English
    text), ``debug`` and ``source`` (s2n's source location), ``errno`` and
    ``errno_text`` (for I/O errors), ``mode``, ``last_message``,
    ``handshake_type``, ``alert``/``alert_name`` (a received alert),
    ``blinding_delay`` (seconds s2n recommends waiting before closing),
    ``diagnosis`` (a :class:`s2npy.trace.diagnosis.Diagnosis` when one was made)
    and ``trace`` (the connection's trace, when tracing was on).
    """

    def __init__(self, operation: str, *, code: int = 0, name: str | None = None,
                 message: str | None = None, debug: str | None = None, source: str | None = None,
                 errno: int | None = None, state: ConnectionState | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message or operation)
        state = state or ConnectionState()
        self.operation = operation
        self.code = code
        self.name = name
        self.message = message
        self.debug = debug
        self.source = source
        self.errno = errno
        self.errno_text = os.strerror(errno) if errno else None
        self.mode = state.mode
        self.last_message = state.last_message
        self.handshake_type = state.handshake_type
        self.alert = state.alert
        self.blinding_delay = state.blinding_delay
        self.hint = hint
        self.diagnosis: Any = None
        self.trace: Any = None

    @property
    def alert_name(self) -> str | None:
        if self.alert is None:
            return None
        from .trace.tls_names import alert_name

        return alert_name(self.alert)

    def headline(self) -> str:
        """The middle of the one-sentence message: the diagnosis if any, else s2n's text."""
        if self.diagnosis is not None:
            return self.diagnosis.headline
        text = (self.message or "").rstrip(".")
        if self.errno:
            text = f"{text}: {errno_module.errorcode.get(self.errno, self.errno)} ({self.errno_text})"
        if self.alert is not None:
            text = f"{text}: received alert {self.alert_name} ({self.alert})"
        return text[:1].lower() + text[1:] if text else "unknown error"

    def __str__(self) -> str:
        where = f" ({self.mode})" if self.mode else ""
        details = [self.name] if self.name else []
        if self.last_message:
            details.append(f"last message: {self.last_message}")
        tail = f" [{', '.join(details)}]" if details else ""
        hint = f". {self.hint}" if self.hint else ""
        return f"{self.operation} failed{where}: {self.headline()}{tail}{hint}"

    def __reduce__(self):
        return (_rebuild_error, (type(self), self.__dict__.copy()))


def _rebuild_error(cls: type, state: dict) -> "S2NError":
    error = cls.__new__(cls)
    OSError.__init__(error, state.get("message") or state.get("operation"))
    error.__dict__.update(state)
    return error


class S2NIOError(S2NError):
    """The transport failed (``S2N_ERR_T_IO``); ``errno`` tells how."""


class ClosedError(S2NError):
    """The peer closed the connection (``S2N_ERR_T_CLOSED``), with no alert."""


class BlockedError(S2NError):
    """Non-blocking I/O would block (``S2N_ERR_T_BLOCKED``); retry when ready."""

    blocked: Blocked = Blocked.NOT_BLOCKED


class WantReadError(BlockedError):
    """Retry after the transport has data to read (like ``ssl.SSLWantReadError``)."""

    blocked = Blocked.ON_READ


class WantWriteError(BlockedError):
    """Retry after the transport can take more data (like ``ssl.SSLWantWriteError``)."""

    blocked = Blocked.ON_WRITE


class WantApplicationInputError(BlockedError):
    """The handshake waits for the application (an asynchronous callback) to finish."""

    blocked = Blocked.ON_APPLICATION_INPUT


class WantEarlyDataError(BlockedError):
    """The handshake waits for the application to read early data."""

    blocked = Blocked.ON_EARLY_DATA


class AlertError(S2NError):
    """The peer sent a fatal TLS alert (``S2N_ERR_T_ALERT``); see ``alert_name``."""


class ProtocolError(S2NError):
    """The TLS exchange itself failed (``S2N_ERR_T_PROTO``): negotiation, certificates, records."""


class InternalError(S2NError):
    """s2n-tls hit an internal problem (``S2N_ERR_T_INTERNAL``)."""


class UsageError(S2NError):
    """s2n-tls was called in a way it does not allow (``S2N_ERR_T_USAGE``)."""


class ConfigError(UsageError, ValueError):
    """A configuration value was refused before it reached s2n (bad name, file, type)."""

    def __init__(self, message: str, *, operation: str = "configuring s2npy") -> None:
        super().__init__(operation, message=message)

    def __str__(self) -> str:
        return f"{self.operation} failed: {self.message}"


class ConfigInUseError(UsageError):
    """A Config was changed after a connection started using it (configs freeze on first use)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"changing {what}",
            message="this Config is already used by a connection and is frozen",
            hint="make a new Config (or Config.copy()) for a different setting",
        )


_TYPE_CLASSES = {
    lib.S2N_ERR_T_IO: S2NIOError,
    lib.S2N_ERR_T_CLOSED: ClosedError,
    lib.S2N_ERR_T_ALERT: AlertError,
    lib.S2N_ERR_T_PROTO: ProtocolError,
    lib.S2N_ERR_T_INTERNAL: InternalError,
    lib.S2N_ERR_T_USAGE: UsageError,
}

_BLOCKED_CLASSES = {
    Blocked.ON_READ: WantReadError,
    Blocked.ON_WRITE: WantWriteError,
    Blocked.ON_APPLICATION_INPUT: WantApplicationInputError,
    Blocked.ON_EARLY_DATA: WantEarlyDataError,
}


def blocked_error(operation: str, blocked: Blocked, state: ConnectionState | None = None) -> BlockedError:
    """The exception for "this call would block on ``blocked``"."""
    cls = _BLOCKED_CLASSES.get(blocked, BlockedError)
    return cls(operation, name="S2N_ERR_IO_BLOCKED", message=f"would block ({blocked.name.lower()})",
               state=state)


def capture_error(operation: str, *, blocked: Blocked = Blocked.NOT_BLOCKED,
                  state_of: Any = None, hint: str | None = None) -> S2NError:
    """Build the exception for the s2n call that just failed on this thread.

    Must be called right after the failing call, before any other s2n call:
    ``s2n_errno``, ``errno`` and s2n's debug strings are thread-local and the
    next error overwrites them. ``state_of`` is an ``s2n_connection *`` whose
    mode, last message, handshake type and alert are recorded.
    """
    saved_errno = ffi.errno
    location = lib.s2n_errno_location()
    code = location[0]
    location[0] = 0
    error_type = lib.s2n_error_get_type(code)
    details = dict(
        code=code,
        name=c_string(lib.s2n_strerror_name(code)),
        message=c_string(lib.s2n_strerror(code, b"EN")),
        debug=c_string(lib.s2n_strerror_debug(code, b"EN")),
        source=c_string(lib.s2n_strerror_source(code)),
        hint=hint,
    )
    state = connection_state(state_of, alert=error_type == lib.S2N_ERR_T_ALERT)
    if error_type == lib.S2N_ERR_T_BLOCKED:
        error = _BLOCKED_CLASSES.get(blocked, BlockedError)(operation, **details, state=state)
    else:
        cls = _TYPE_CLASSES.get(error_type, InternalError)
        io_errno = saved_errno if error_type == lib.S2N_ERR_T_IO else None
        error = cls(operation, **details, errno=io_errno or None, state=state)
    return error


def connection_state(conn_ptr: Any, *, alert: bool = False) -> ConnectionState:
    """Snapshot of an ``s2n_connection *`` for error context (empty for NULL)."""
    if conn_ptr is None or conn_ptr == ffi.NULL:
        return ConnectionState()
    mode = "server" if lib.s2n_connection_get_mode(conn_ptr) == lib.S2N_SERVER else "client"
    alert_code = lib.s2n_connection_get_alert(conn_ptr) if alert else -1
    state = ConnectionState(
        mode=mode,
        last_message=c_string(lib.s2n_connection_get_last_message_name(conn_ptr)),
        handshake_type=c_string(lib.s2n_connection_get_handshake_type_name(conn_ptr)),
        alert=alert_code if alert_code >= 0 else None,
        blinding_delay=lib.s2n_connection_get_delay(conn_ptr) / 1e9,
    )
    clear_error()  # the getters above must not leave an error behind for the next capture
    return state


def clear_error() -> None:
    """Forget an s2n error that was expected (a getter that found nothing), so no later capture sees it."""
    lib.s2n_errno_location()[0] = 0


def check(result: int, operation: str, *, state_of: Any = None, hint: str | None = None) -> int:
    """Raise the matching :class:`S2NError` if an s2n call returned failure (< 0)."""
    if result < 0:
        raise capture_error(operation, state_of=state_of, hint=hint)
    return result
