"""In-memory byte pipes: ``memory_pipe()`` returns two connected, non-blocking ends.

The bytes live in C (``s2npy_mem_*`` in build_s2n.py): a :class:`~s2npy.Connection`
on a pipe end has s2n read and write them directly, with no Python callback per
record (an in-memory handshake makes about 30 reads and writes), and a traced one
records them in C too. From Python an end behaves like one end of a non-blocking
``socket.socketpair()``: ``recv_into``/``send``, ``BlockingIOError`` when nothing
is buffered, 0 (end of stream) once the peer closed and its bytes were read.

A subclass that overrides ``recv_into`` or ``send`` (to drop, delay or inspect
bytes) is honoured: s2n then goes through those Python methods like any other
transport object.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from ._native import address, ffi, lib

#: What each errno from the C pipe means here (the exception class follows from the errno).
_ERRORS = {
    errno.EAGAIN: "no data buffered",
    errno.ECONNRESET: "connection reset by peer",
    errno.EBADF: "this end of the pipe was closed",
    errno.EPIPE: "the pipe is closed",
    errno.ENOMEM: "out of memory buffering the pipe's data",
}


def _pipe_error(code: int) -> OSError:
    """``OSError(code, ...)`` is already the right subclass (BlockingIOError, BrokenPipeError, ...)."""
    return OSError(code, _ERRORS.get(code, os.strerror(code)))


class MemoryPipeEnd:
    """One end of an in-memory pipe (see the module doc); make pairs with :func:`memory_pipe`."""

    def __init__(self, pipe: Any, index: int) -> None:
        self._pipe = pipe  # keeps the C pipe alive as long as either end is
        self.index = index
        self._end = lib.s2npy_mem_pipe_end(pipe, index)
        self._end_address = address(self._end)  # the C end for ConnectionCore's set-up (exact type only)

    def recv_into(self, buffer: Any) -> int:
        """Copy buffered bytes into ``buffer``; 0 once the peer closed and all was read."""
        with ffi.from_buffer(buffer, require_writable=True) as view:
            count = lib.s2npy_mem_read(self._end, view, len(view))
        if count < 0:
            raise _pipe_error(ffi.errno)
        return count

    def send(self, data: Any) -> int:
        """Append all of ``data`` to the peer's buffer (never blocks); returns its length."""
        with ffi.from_buffer(data) as view:
            count = lib.s2npy_mem_write(self._end, view, len(view))
        if count < 0:
            raise _pipe_error(ffi.errno)
        return count

    def read_buffered(self) -> bytes:
        """Everything buffered for this end, removed from the pipe (b"" if nothing is)."""
        buffer = bytearray(self.buffered)
        try:
            count = self.recv_into(buffer) if buffer else 0
        except BlockingIOError:
            count = 0
        return bytes(buffer[:count])

    def close(self) -> None:
        """Close this end like a TCP FIN: the peer reads what was sent, then end of stream."""
        lib.s2npy_mem_close(self._end, 0)

    def reset(self) -> None:
        """Close this end like a TCP RST: the peer's reads fail with ConnectionResetError."""
        lib.s2npy_mem_close(self._end, 1)

    @property
    def closed(self) -> bool:
        return bool(self._end.closed)

    @property
    def sent(self) -> int:
        """Bytes written to this end so far."""
        return self._end.sent

    @property
    def buffered(self) -> int:
        """Bytes waiting to be read from this end."""
        return lib.s2npy_mem_buffered(self._end)

    def native_end(self) -> Any:
        """The C end for s2n to use directly, or None when a subclass overrides the I/O methods."""
        own_io = type(self).recv_into is MemoryPipeEnd.recv_into and type(self).send is MemoryPipeEnd.send
        return self._end if own_io else None

    @property
    def transport_error(self) -> OSError | None:
        """The last failed read/write's error other than would-block (for an S2NError's ``__cause__``)."""
        code = self._end.io_errno
        return _pipe_error(code) if code else None

    @transport_error.setter
    def transport_error(self, value: None) -> None:
        self._end.io_errno = 0


def memory_pipe() -> tuple[MemoryPipeEnd, MemoryPipeEnd]:
    """Two connected pipe ends (like ``socket.socketpair()``, in memory and non-blocking)."""
    pointer = lib.s2npy_mem_pipe_new()
    if pointer == ffi.NULL:
        raise MemoryError("allocating a memory pipe")
    pipe = ffi.gc(pointer, lib.s2npy_mem_pipe_free)
    return MemoryPipeEnd(pipe, 0), MemoryPipeEnd(pipe, 1)
