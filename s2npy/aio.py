"""asyncio front end: ``open_connection`` and ``start_server`` over s2n.

They return / hand out standard :class:`asyncio.StreamReader` and
:class:`asyncio.StreamWriter` pairs, so code written for
``asyncio.open_connection(..., ssl=...)`` works unchanged.

How it works: :class:`TLSProtocol` is the (buffered) protocol of the TCP
connection. The loop reads straight into its :class:`InboundBuffer`, which
s2n reads through custom I/O (``recv_into`` raises ``BlockingIOError`` when it
is empty, which s2n reports as blocked-on-read); records s2n writes go to the
TCP transport.
The handshake is driven by non-blocking ``negotiate()`` calls as data
arrives; once it is done the application protocol (a
``StreamReaderProtocol``) gets a :class:`TLSTransport`, which encrypts what
it writes and feeds it what s2n decrypts.

- Handshake timeout: ``handshake_timeout`` seconds (default 60) or the
  connection is aborted with ``TimeoutError``.
- Closing the writer sends close_notify, then closes TCP once it is flushed
  (without waiting for the peer's close_notify, as asyncio's ssl does for up
  to ``ssl_shutdown_timeout``). A close_notify from the peer, or a TCP EOF
  without one, is end of stream for the reader.
- Backpressure: the TCP transport's pause/resume_writing reach the stream
  (``drain()`` waits); a full StreamReader pauses reading from the socket.
- Failed server handshakes are logged and aborted; ``blinding=True`` waits
  s2n's recommended delay first.
- Unlike asyncio's ssl, ``server_hostname`` (default: ``host``) is sent as SNI
  even when it is an IP address (s2n uses one name for SNI and verification).
- Tracing: ``trace=True`` (or a :class:`s2npy.trace.Tracer`) records each
  connection; the :class:`s2npy.Connection` is
  ``writer.get_extra_info("s2n_connection")`` and failed handshakes raise
  (clients) or log (servers, logger ``s2npy.aio``) an error carrying the trace.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .config import Config
from .connection import DEFAULT_RECV_SIZE, Connection
from .enums import Mode
from .errors import BlockedError, ClosedError, S2NError
from .facts import NegotiatedFacts
from .socket import cipher_tuple, peer_certificate

if TYPE_CHECKING:
    from .trace.recorder import Tracer

LOGGER = logging.getLogger("s2npy.aio")
DEFAULT_HANDSHAKE_TIMEOUT = 60.0
DEFAULT_LIMIT = 2 ** 16
INBOUND_SIZE = 2 ** 16
MIN_READ = 2 ** 14

ClientConnectedCallback = Callable[[asyncio.StreamReader, asyncio.StreamWriter], "Awaitable[None] | None"]
ConnectionFactory = Callable[["TLSProtocol"], Connection]


class InboundBuffer:
    """TCP bytes waiting for s2n, in one reusable buffer the transport reads into.

    As an ``asyncio.BufferedProtocol`` the TCP side needs no new bytes object
    per read (asyncio's plain protocols allocate up to 256 KiB for each).
    """

    def __init__(self, size: int = INBOUND_SIZE) -> None:
        self._buffer = bytearray(size)
        self._view = memoryview(self._buffer)
        self._start = self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def space(self) -> memoryview:
        """Free space at the tail, after moving unread bytes to the front or growing if needed."""
        if len(self._buffer) - self._end < MIN_READ:
            unread = len(self)
            if len(self._buffer) - unread < MIN_READ:
                self._buffer = bytearray(2 * len(self._buffer))  # a new object: the old view may be exported
                self._buffer[:unread] = self._view[self._start:self._end]
                self._view = memoryview(self._buffer)
            else:
                self._view[:unread] = self._view[self._start:self._end]
            self._start, self._end = 0, unread
        return self._view[self._end:]

    def filled(self, count: int) -> None:
        self._end += count

    def read_into(self, target: Any) -> int:
        count = min(len(target), len(self))
        target[:count] = self._view[self._start:self._start + count]
        self._start += count
        if self._start == self._end:
            self._start = self._end = 0
        return count


class TLSProtocol(asyncio.BufferedProtocol):
    """The TCP-side protocol: runs s2n over the TCP transport for one application protocol.

    ``make_connection(io)`` builds the :class:`Connection` using this protocol
    as its custom I/O. ``waiter`` (clients) gets the handshake's outcome.
    ``blinding``: after a failed handshake, close only after s2n's recommended
    delay (``Connection.blinding_delay``, 10-30 s) instead of at once.
    """

    def __init__(self, make_connection: ConnectionFactory, app_protocol: asyncio.Protocol, *,
                 handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                 waiter: asyncio.Future | None = None, blinding: bool = False) -> None:
        self._make_connection = make_connection
        self._blinding = blinding
        self._app = app_protocol
        self._handshake_timeout = handshake_timeout
        self._waiter = waiter
        self._loop = asyncio.get_running_loop()
        self._inbound = InboundBuffer()
        self._eof = False
        self._reading_paused = False
        self._recv_buffer = bytearray(DEFAULT_RECV_SIZE)
        self._timer: asyncio.TimerHandle | None = None
        self._error: BaseException | None = None
        self._tcp: asyncio.Transport | None = None
        self.connection: Connection | None = None
        self.app_transport: TLSTransport | None = None
        self.facts: NegotiatedFacts | None = None

    # --- custom I/O for s2n ------------------------------------------------------------------

    def recv_into(self, buffer: Any) -> int:
        """Hand s2n buffered TCP bytes; would-block when empty, 0 after the TCP EOF."""
        if not self._inbound:
            if self._eof:
                return 0
            raise BlockingIOError(errno.EAGAIN, "no TLS data buffered")
        return self._inbound.read_into(buffer)

    def send(self, data: Any) -> int:
        """Queue s2n's records on the TCP transport (copied: s2n reuses its buffer)."""
        self._tcp.write(bytes(data))
        return len(data)

    # --- TCP events ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tcp = transport
        try:
            self.connection = self._make_connection(self)
        except Exception as exc:  # noqa: BLE001 - reported like any handshake failure
            self._fail_handshake(exc)
            return
        self._timer = self._loop.call_later(self._handshake_timeout, self._handshake_timed_out)
        self._advance_handshake()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._inbound.space()

    def buffer_updated(self, nbytes: int) -> None:
        self._inbound.filled(nbytes)
        self._advance()

    def eof_received(self) -> bool:
        self._eof = True
        self._advance()
        return False  # TLS has no half-close: let the TCP transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if self.app_transport is not None:
            self._app.connection_lost(exc or self._error)
        elif self._error is None:
            self._fail_handshake(exc or ConnectionResetError(errno.ECONNRESET, "connection lost during handshake"))
        if self.connection is not None:
            self.connection.close()

    def pause_writing(self) -> None:
        if self.app_transport is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self.app_transport is not None:
            self._app.resume_writing()

    # --- handshake ------------------------------------------------------------------------------

    def _advance(self) -> None:
        if self.app_transport is None:
            self._advance_handshake()
        else:
            self._deliver()

    def _advance_handshake(self) -> None:
        if self._error is not None or self._tcp.is_closing():
            return
        try:
            self.facts = self.connection.negotiate()
        except BlockedError:
            return
        except Exception as exc:  # noqa: BLE001 - S2NError or a callback's exception
            self._fail_handshake(exc)
            return
        self._handshake_done()

    def _handshake_done(self) -> None:
        self._timer.cancel()
        self.app_transport = TLSTransport(self)
        self._app.connection_made(self.app_transport)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(self.app_transport)
        self._deliver()

    def _handshake_timed_out(self) -> None:
        self._fail_handshake(TimeoutError(f"TLS handshake timed out after {self._handshake_timeout} s"))

    def _fail_handshake(self, exc: BaseException) -> None:
        self._error = exc
        if self._timer is not None:
            self._timer.cancel()
        if self._waiter is None:
            LOGGER.warning("TLS handshake with %s failed: %s", self._tcp.get_extra_info("peername"), exc)
        elif not self._waiter.done():
            self._waiter.set_exception(exc)
        delay = self.connection.blinding_delay if self._blinding and self.connection is not None else 0
        if delay > 0:
            self._loop.call_later(delay, self._tcp.abort)
        else:
            self._tcp.abort()

    # --- application data --------------------------------------------------------------------------

    def _deliver(self) -> None:
        """Decrypt what s2n can and pass it up, until blocked, paused or closed."""
        view = memoryview(self._recv_buffer)
        while not self._reading_paused and not self.connection.closed and self._readable():
            try:
                count = self.connection.recv_into(self._recv_buffer)
            except BlockedError:
                return
            except ClosedError:
                count = 0  # TCP EOF without close_notify: end of stream, as asyncio's ssl treats it
            except S2NError as exc:
                self.fatal(exc)
                return
            if count == 0:
                self._peer_closed()
                return
            self._app.data_received(bytes(view[:count]))

    def _readable(self) -> bool:
        """Could s2n_recv make progress? Skipping calls that would only block saves an exception each."""
        return len(self._inbound) > 0 or self._eof or self.connection.pending() > 0

    def _peer_closed(self) -> None:
        """close_notify (or TCP EOF): end of stream; close too unless the app keeps the half-open stream."""
        keep_open = self._app.eof_received()
        if not keep_open:
            self.app_transport.close()

    def pause_reading(self) -> None:
        self._reading_paused = True
        self._tcp.pause_reading()

    def resume_reading(self) -> None:
        self._reading_paused = False
        self._tcp.resume_reading()
        self._loop.call_soon(self._deliver)

    def write(self, data: Any) -> None:
        """Encrypt and queue ``data`` (the TCP transport buffers, so s2n never blocks here)."""
        view = memoryview(data).cast("B")
        sent = 0
        try:
            while sent < len(view):
                sent += self.connection.send(view[sent:])
        except S2NError as exc:
            self.fatal(exc)

    def close(self) -> None:
        """Send close_notify, then close TCP once its buffer is flushed."""
        try:
            self.connection.shutdown_send()
        except S2NError as exc:
            LOGGER.debug("no close_notify sent: %s", exc)
        self._tcp.close()

    def fatal(self, exc: BaseException) -> None:
        """A TLS failure after the handshake: abort; the application's connection_lost gets ``exc``."""
        self._error = exc
        self._tcp.abort()


class TLSTransport(asyncio.Transport):
    """The application's transport: plaintext in and out of a :class:`TLSProtocol`."""

    def __init__(self, protocol: TLSProtocol) -> None:
        super().__init__()
        self._tls = protocol
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """TCP keys (``peername``, ``sockname``, ``socket``) plus ``s2n_connection``, ``facts``,
        ``peercert``, ``cipher``, ``version`` and ``alpn_protocol`` (ssl's names where they exist)."""
        tls = self._tls
        facts = tls.facts
        values = {
            "s2n_connection": lambda: tls.connection,
            "facts": lambda: facts,
            "peercert": lambda: peer_certificate(tls.connection, facts),
            "cipher": lambda: cipher_tuple(facts),
            "version": lambda: facts.protocol,
            "alpn_protocol": lambda: facts.alpn,
        }
        if name in values:
            return values[name]()
        return tls._tcp.get_extra_info(name, default)

    def write(self, data: Any) -> None:
        if self._closing:
            return  # like asyncio's transports: writes after close() are dropped
        self._tls.write(data)

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._tls.close()

    def is_closing(self) -> bool:
        return self._closing or self._tls._tcp.is_closing()

    def abort(self) -> None:
        self._closing = True
        self._tls._tcp.abort()

    def pause_reading(self) -> None:
        self._tls.pause_reading()

    def resume_reading(self) -> None:
        self._tls.resume_reading()

    def is_reading(self) -> bool:
        return not self._tls._reading_paused

    def get_write_buffer_size(self) -> int:
        return self._tls._tcp.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._tls._tcp.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._tls._tcp.set_write_buffer_limits(high, low)


def _connection_factory(config: Config, mode: Mode, *, server_name: str | None, alpn: Sequence[str] | None,
                        trace: "bool | Tracer | None") -> ConnectionFactory:
    def make(protocol: TLSProtocol) -> Connection:
        return Connection(config, mode, io=protocol, server_name=server_name, alpn=alpn, trace=trace)
    return make


async def open_connection(host: str, port: int, *, config: Config, server_hostname: str | None = None,
                          handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT, limit: int = DEFAULT_LIMIT,
                          alpn: Sequence[str] | None = None, trace: "bool | Tracer | None" = None,
                          **connect_options: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect over TLS and return ``(reader, writer)`` once the handshake is done.

    ``server_hostname`` (default ``host``): SNI and the name verified in the
    server certificate. Raises the handshake's :class:`s2npy.S2NError` (with
    diagnosis and trace) or ``TimeoutError``. ``connect_options`` go to
    ``loop.create_connection`` (``local_addr``, ``happy_eyeballs_delay``, ...).
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    app = asyncio.StreamReaderProtocol(reader, loop=loop)
    waiter = loop.create_future()
    make = _connection_factory(config, Mode.CLIENT, server_name=server_hostname or host, alpn=alpn, trace=trace)
    tcp, _ = await loop.create_connection(
        lambda: TLSProtocol(make, app, handshake_timeout=handshake_timeout, waiter=waiter),
        host, port, **connect_options)
    try:
        transport = await waiter
    except asyncio.CancelledError:
        tcp.abort()
        raise
    return reader, asyncio.StreamWriter(transport, app, reader, loop)


async def start_server(client_connected_cb: ClientConnectedCallback, host: str | Sequence[str] | None = None,
                       port: int | None = None, *, config: Config,
                       handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT, limit: int = DEFAULT_LIMIT,
                       alpn: Sequence[str] | None = None, trace: "bool | Tracer | None" = None,
                       blinding: bool = False, **server_options: Any) -> asyncio.Server:
    """Serve TLS: ``client_connected_cb(reader, writer)`` runs after each handshake.

    Failed handshakes are logged on the ``s2npy.aio`` logger (and recorded by
    ``trace``). ``blinding=True`` keeps a failed connection open for s2n's
    recommended delay before closing it, without blocking the loop: the
    timing side-channel defence for servers facing untrusted peers (off by
    default, so a debugging server answers at once). ``server_options`` go to ``loop.create_server`` (``backlog``,
    ``reuse_port``, ``start_serving``, ...).
    """
    loop = asyncio.get_running_loop()
    make = _connection_factory(config, Mode.SERVER, server_name=None, alpn=alpn, trace=trace)

    def protocol_factory() -> TLSProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        app = asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)
        return TLSProtocol(make, app, handshake_timeout=handshake_timeout, blinding=blinding)

    return await loop.create_server(protocol_factory, host, port, **server_options)
