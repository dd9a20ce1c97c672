"""The C-to-Python callbacks (``@ffi.def_extern``) that libs2n calls.

Rule for every callback: an exception must never turn into success in C. A
raising callback would return 0 by default, and 0 is ``S2N_SUCCESS``; so each
callback catches everything, records the exception on the Python object the
callback belongs to (``Connection.record_callback_error``), and returns the
failure value. The connection re-raises it, chained, when the C call returns.

``onerror`` handlers are the last line of defence, for failures before the
exception could be attributed (e.g. a stale handle): they return the failure
value and keep the exception in :data:`orphan_errors` for the next check.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import TYPE_CHECKING, Callable

from ._native import HAS_EVENTS, ffi, lib

if TYPE_CHECKING:
    from .connection import Connection



class _OrphanErrors(threading.local):
    """Per thread: the exception of a callback that could not be attributed (None if none)."""

    error: BaseException | None = None


orphan_errors = _OrphanErrors()


def _remember_orphan(exc_type, exc_value, traceback) -> None:
    orphan_errors.error = exc_value


def _fail_int(exc_type, exc_value, traceback) -> int:
    _remember_orphan(exc_type, exc_value, traceback)
    return -1


def _fail_zero(exc_type, exc_value, traceback) -> int:
    _remember_orphan(exc_type, exc_value, traceback)
    return 0


def _fail_void(exc_type, exc_value, traceback) -> None:
    _remember_orphan(exc_type, exc_value, traceback)


def connection_of(conn_ptr) -> "Connection":
    """The Python Connection that owns an ``s2n_connection *``."""
    return ffi.from_handle(lib.s2n_connection_get_ctx(conn_ptr))


# --- I/O --------------------------------------------------------------------------


@ffi.def_extern(onerror=_fail_int)
def s2npy_recv_cb(io_context, buf, length):
    return ffi.from_handle(io_context).recv_into_c(buf, length)


@ffi.def_extern(onerror=_fail_int)
def s2npy_send_cb(io_context, buf, length):
    return ffi.from_handle(io_context).send_from_c(buf, length)


# --- certificate names ----------------------------------------------------------------


@ffi.def_extern(onerror=_fail_zero)
def s2npy_verify_host_cb(host_name, length, data):
    connection = ffi.from_handle(data)
    name = ffi.unpack(host_name, length).decode("utf-8", "replace")
    try:
        return 1 if connection.config._verify_host(name) else 0
    except BaseException as exc:  # noqa: BLE001 - re-raised by the connection
        connection.record_callback_error(exc, "verify host callback")
        return 0


# --- connection hooks: client hello, key log -------------------------------------------


def _call_hook(conn_ptr, where: str, hook: Callable[["Connection"], None]) -> bool:
    """Run ``hook(connection)``; on exception record it on the connection and report failure."""
    connection = connection_of(conn_ptr)
    try:
        hook(connection)
        return True
    except BaseException as exc:  # noqa: BLE001 - re-raised by the connection
        connection.record_callback_error(exc, where)
        return False


@ffi.def_extern(onerror=_fail_int)
def s2npy_client_hello_cb(conn_ptr, ctx):
    return 0 if _call_hook(conn_ptr, "client hello callback", lambda c: c.run_client_hello_callback()) else -1


@ffi.def_extern(onerror=_fail_int)
def s2npy_key_log_cb(ctx, conn_ptr, logline, length):
    line = ffi.unpack(ffi.cast("char *", logline), length).decode("ascii", "replace")
    return 0 if _call_hook(conn_ptr, "key log callback", lambda c: c.on_key_log(line)) else -1


class KeyLogFile:
    """Append NSS key log lines to a file kept at mode 0600 (secrets!).

    A file that already exists with wider permissions is narrowed to 0600
    before the first secret is written to it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()

    def __call__(self, connection: "Connection", line: str) -> None:
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, line.encode("ascii") + b"\n")
            finally:
                os.close(fd)

    def __repr__(self) -> str:
        return f"KeyLogFile({self.path!r})"


# --- unstable events.h ------------------------------------------------------------------

if HAS_EVENTS:

    @ffi.def_extern(onerror=_fail_void)
    def s2npy_handshake_event_cb(conn_ptr, subscriber, event):
        _call_hook(conn_ptr, "handshake event callback", lambda c: c.on_handshake_event(event))

    @ffi.def_extern(onerror=_fail_void)
    def s2npy_checkpoint_cb(conn_ptr, subscriber, checkpoint):
        _call_hook(conn_ptr, "timing checkpoint callback", lambda c: c.on_checkpoint(checkpoint))


def io_errno(exc: BaseException) -> int:
    """The errno to hand s2n for a transport exception (EIO when it has none)."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    return errno.EIO
