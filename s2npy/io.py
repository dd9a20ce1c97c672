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
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

from ._callbacks import io_errno
from ._native import ffi, lib

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


#: One ``struct s2npy_tap_chunk``: t_ns, offset, length, direction (0 in, 1 out).
_TAP_CHUNK = struct.Struct("qQIi")


class NativeTap:
    """Tracing with the I/O in C (``s2npy_tap_recv``/``send`` in build_s2n.py).

    For a socket or fd, or a memory pipe end (``mem``, a C ``s2npy_mem_end``).
    s2n reads and writes through C callbacks that record every chunk
    (timestamp, direction, bytes) in a C buffer. The trace copies them out
    with :meth:`take` when its ``chunks`` are read and when the connection
    lets go of the tap, and decodes them (:func:`tap_chunks`) only when read:
    no Python runs per record, nor per s2n call. The chunks are those the
    Python tap records (EOF is an empty "in" chunk). Only for traces on
    ``time.perf_counter`` (CLOCK_MONOTONIC, the C clock).
    """

    def __init__(self, connection: Any, trace: Any, fd: int = -1, mem: Any = ffi.NULL) -> None:
        tap = lib.s2npy_tap_new(fd, mem)
        if tap == ffi.NULL:
            raise MemoryError("allocating the trace tap")
        self.tap = ffi.gc(tap, lib.s2npy_tap_free)
        connection._call(lib.s2npy_set_io(connection.ptr, lib.s2npy_tap_recv, lib.s2npy_tap_send, self.tap),
                         "setting traced I/O callbacks")
        trace.follow_tap(self)

    @staticmethod
    def usable(trace: Any) -> bool:
        """C timestamps match the trace's clock only for time.perf_counter on CLOCK_MONOTONIC."""
        return trace.clock is time.perf_counter and _PERF_COUNTER_IS_MONOTONIC

    def take(self) -> tuple[bytes, bytes] | None:
        """The chunks recorded since the last take, undecoded: (headers, data); None if none."""
        tap = self.tap
        if not tap.count:
            return None
        lib.s2npy_tap_lock(tap)
        try:
            headers = ffi.buffer(tap.chunks, tap.count * _TAP_CHUNK.size)[:]
            data = ffi.buffer(tap.data, tap.used)[:] if tap.used else b""
            tap.count = tap.used = 0
        finally:
            lib.s2npy_tap_unlock(tap)
        return headers, data

    @property
    def transport_error(self) -> BaseException | None:
        """The failed read/write's error (like a socket's), for the S2NError's ``__cause__``."""
        code = self.tap.io_errno
        return OSError(code, os.strerror(code)) if code else None

    @transport_error.setter
    def transport_error(self, value: None) -> None:
        self.tap.io_errno = 0

    def close(self) -> None:
        """Free the C buffers (after s2n_connection_free: s2n no longer calls the callbacks)."""
        ffi.release(self.tap)


def tap_chunks(headers: bytes, data: bytes, origin: float,
               directions: tuple[str, str]) -> list[tuple[float, str, bytes]]:
    """A :meth:`NativeTap.take` batch as trace chunks: (seconds after ``origin``, direction, bytes).

    ``directions``: the stream direction of an "in" and of an "out" chunk ("c2s"/"s2c").
    """
    return [(t_ns / 1e9 - origin, directions[direction], data[offset:offset + length])
            for t_ns, offset, length, direction in _TAP_CHUNK.iter_unpack(headers)]


_PERF_COUNTER_IS_MONOTONIC = time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"
