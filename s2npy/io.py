"""Custom I/O: lets s2n read and write through any Python transport object.

A *transport* is anything with ``recv_into(buffer) -> int`` (0 means end of
stream) and ``send(buffer) -> int`` that raises ``BlockingIOError`` when it
would block - which is exactly what a Python socket is. s2n calls our C
callbacks, which call the transport; a would-block becomes ``errno=EAGAIN``
and -1, which s2n reports as "blocked" (so non-blocking and asyncio use
work), and a tap sees every byte for tracing.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any, Protocol

from ._callbacks import io_errno
from ._native import ffi

Tap = Callable[[str, bytes], None]


class Transport(Protocol):
    """What a custom I/O object must provide (a socket already does)."""

    def recv_into(self, buffer: Any, /) -> int: ...

    def send(self, data: Any, /) -> int: ...


class TransportBinding:
    """The C-facing side of a transport: byte counting, tapping, error capture."""

    def __init__(self, owner: Any, transport: Transport, tap: Tap | None = None) -> None:
        self.owner = owner
        self.transport = transport
        self.tap = tap
        self.handle = ffi.new_handle(self)
        self.transport_error: BaseException | None = None

    def _fail(self, exc: BaseException) -> int:
        if isinstance(exc, BlockingIOError):
            ffi.errno = errno.EAGAIN
            return -1
        if isinstance(exc, InterruptedError):
            ffi.errno = errno.EINTR  # s2n retries at once; not a failure to report later
            return -1
        if isinstance(exc, OSError):
            self.transport_error = exc
            ffi.errno = errno.ETIMEDOUT if isinstance(exc, socket.timeout) else io_errno(exc)
            return -1
        self.owner.record_callback_error(exc, "transport")
        ffi.errno = errno.EIO
        return -1

    def recv_into_c(self, buf, length: int) -> int:
        try:
            count = self.transport.recv_into(ffi.buffer(buf, length))
        except BaseException as exc:  # noqa: BLE001 - handed back through s2n, re-raised
            return self._fail(exc)
        if self.tap is not None:
            # An empty chunk tells the trace that the peer ended its stream (EOF).
            self.tap("in", ffi.buffer(buf, count)[:])
        return count

    def send_from_c(self, buf, length: int) -> int:
        try:
            count = self.transport.send(ffi.buffer(buf, length))
        except BaseException as exc:  # noqa: BLE001 - handed back through s2n, re-raised
            return self._fail(exc)
        if count and self.tap is not None:
            self.tap("out", ffi.buffer(buf, count)[:])
        return count
