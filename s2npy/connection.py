"""``Connection``: one TLS connection (an ``s2n_connection``), client or server.

I/O is either a file descriptor / socket handed straight to s2n (the fast
path: no Python in the data path), an :func:`~s2npy.memory_pipe` end (in C as
well), or any *transport* object with ``recv_into``/``send`` (custom I/O:
asyncio, fault injection). A traced connection on a socket, fd or memory pipe
keeps s2n's I/O in C: C callbacks do the I/O and record every chunk, which
Python collects after each s2n call (``io.NativeTap``); a traced transport
object is tapped in Python.

Blocking: on a blocking socket ``negotiate()``/``send()``/``recv()`` block (in
C, with the GIL released). On non-blocking I/O they raise
:class:`~s2npy.WantReadError` / :class:`~s2npy.WantWriteError` like ``ssl`` does;
call again when the transport is ready. ``try_negotiate()`` returns the
blocked status instead of raising.

Blinding: s2n normally sleeps 10-30 s inside the failing call after some
errors (a timing side-channel defence). s2npy uses *self-service* blinding by
default: the call fails at once and the recommended delay is in
``exc.blinding_delay`` / ``connection.blinding_delay``. A server facing
untrusted peers should wait that long before closing the socket (an asyncio
server can do so without blocking anything); pass
``blinding="built-in"`` to let s2n sleep instead.
"""

from __future__ import annotations

import functools
import inspect
import logging
import operator
import os
import socket
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import _callbacks, _datapath
from ._native import address as _address, c_string, ffi, lib
from .config import Config, alpn_array
from .enums import Blocked, CertAuth, Mode
from .errors import BlockedError, S2NError, UsageError, blocked_error, capture_error, check
from .facts import NegotiatedFacts, PeerCertChain, facts_from_struct, peer_cert_ders, read_facts
from .io import NativeTap, Transport, TransportBinding
from .memory import MemoryPipeEnd

if TYPE_CHECKING:
    from .client_hello import ClientHello
    from .trace.recorder import ConnectionTrace, Tracer

TRACE_LOGGER = logging.getLogger("s2npy.trace")
DEFAULT_RECV_SIZE = 16384
#: recv_into buffers from this size on get a read-ahead of READ_AHEAD_SIZE bytes on sockets: room
#: for two full-size records. Below it reading ahead saves little, and recv()'s default 16 KiB
#: would give every connection that calls it the 64 KiB buffer.
READ_AHEAD_MIN = 32768
READ_AHEAD_SIZE = 65536
BLINDING = {"self-service": lib.S2N_SELF_SERVICE_BLINDING, "built-in": lib.S2N_BUILT_IN_BLINDING}
#: s2npy_connection_create's failing step -> what was being done.
CREATE_STEPS = {1: "creating a connection (s2n_connection_new)", 2: "setting connection context",
                3: "setting connection config", 4: "setting verify host callback", 5: "setting blinding",
                6: "setting server name", 7: "setting the connection's file descriptor",
                8: "setting memory pipe I/O", 9: "preferring", 10: "setting cert auth",
                11: "setting security policy", 12: "setting ALPN", 13: "setting session for resumption"}
POLICY_HINT = "check the policy name (see Config.set_policy)"
SESSION_HINT = "the session bytes must come from Connection.session of a compatible config"
#: What to try when a step of s2npy_connection_create fails, where there is something to say.
CREATE_HINTS = {7: "pass an open socket or file descriptor", 11: POLICY_HINT, 13: SESSION_HINT}
#: Record preferences: name -> (s2npy_connection_create's code for it, its s2n setter).
_PREFERENCES = {"throughput": (1, lib.s2n_connection_prefer_throughput),
                "low_latency": (2, lib.s2n_connection_prefer_low_latency)}
#: The create call's (prefer, cert_auth, policy, alpn, alpn_count) when no override is given.
_NO_OVERRIDES = (0, -1, None, 0, 0)

_BURST_RECV = lib.s2npy_recv
#: Connection() parses its mode by one lookup (Mode.parse for anything else) and keeps s2n's value.
_MODES = {spelling: (mode, mode.c_value) for mode in Mode for spelling in (mode.value, mode)}
_NOT_CALLED = _datapath.NOT_CALLED
#: Byte lengths sendall can read without exporting the buffer.
_BYTE_LENGTH = {bytes: len, bytearray: len, memoryview: operator.attrgetter("nbytes")}
_orphan_errors = _callbacks.orphan_errors
_MAX_FD = 2**31 - 1  # a C int

_datapath.bind(*(_address(ffi.addressof(lib, name))
                 for name in ("s2npy_recv", "s2n_send", "s2npy_connection_create", "s2npy_negotiate",
                              "s2n_connection_wipe", "s2n_connection_free")))
_create_connection = _datapath.create_connection  # s2npy_connection_create, the GIL held unless it allocates: see _datapath.c
_CONNECTION_POINTER = ffi.typeof("struct s2n_connection *")
_BLOCKED_STATUSES = ffi.typeof("s2n_blocked_status *")
_INT_POINTER = ffi.typeof("int *")
#: The verify-host callbacks a connection installs, by address (0 keeps s2n's own check).
_PYTHON_VERIFY_HOST = _address(ffi.addressof(lib, "s2npy_verify_host_cb"))
_ACCEPT_ANY_HOST = _address(ffi.addressof(lib, "s2npy_accept_any_host"))
#: Without a Python verify-host callback, by mode: a server validates a client certificate's
#: chain, not its names (as ssl does); a client keeps s2n's own check of its server name.
_HOST_CHECKS = {lib.S2N_SERVER: (_ACCEPT_ANY_HOST, 0), lib.S2N_CLIENT: (0, 0)}


@functools.lru_cache(maxsize=256)
def _encode_server_name(name: str) -> bytes:
    """IDNA-encode a server name, cached: the codec is pure Python and clients reuse few names."""
    return name.encode("idna")


def _server_name_bytes(name: str) -> bytes:
    """A server name for s2n, after checking it is a non-empty str that IDNA can encode."""
    if not isinstance(name, str) or not name:
        raise UsageError("setting server name", message=f"server name must be a non-empty str, not {name!r}")
    try:
        return _encode_server_name(name)
    except UnicodeError as exc:
        raise UsageError("setting server name", message=f"{name[:80]!r} is not a valid host name ({exc})",
                         hint="pass a DNS name (labels of at most 63 characters) or an IP address") from exc


def _preference(prefer: str) -> tuple[int, Any]:
    """``"throughput"`` or ``"low_latency"``: (the create call's code, the s2n setter)."""
    try:
        return _PREFERENCES[prefer]
    except (KeyError, TypeError):
        raise UsageError("setting record preference", message=f"unknown preference {prefer!r}",
                         hint="use 'throughput' or 'low_latency'") from None


def _create_overrides(prefer: str | None, cert_auth: CertAuth | str | None, policy: str | None,
                      alpn: Sequence[str] | None) -> tuple[tuple, Any]:
    """The constructor's overrides as the create call takes them (see ``_NO_OVERRIDES``), each
    checked here, and what keeps the ALPN array alive until the call."""
    names, keep = alpn_array(alpn) if alpn is not None else (None, None)
    return (0 if prefer is None else _preference(prefer)[0],
            -1 if cert_auth is None else CertAuth.parse(cert_auth).c_value,
            None if policy is None else str(policy).encode(),
            0 if names is None else _address(names), 0 if keep is None else len(keep)), (names, keep)


def _session_bytes(session: Any) -> bytes:
    """A session to resume as bytes: any non-empty bytes-like object (``Connection.session`` gives bytes)."""
    if type(session) is not bytes:
        try:
            session = bytes(memoryview(session))
        except TypeError:
            raise UsageError(CREATE_STEPS[13], hint=SESSION_HINT,
                             message=f"session must be bytes, not {type(session).__name__}") from None
    if not session:  # s2n would report a stuffer out of data
        raise UsageError(CREATE_STEPS[13], hint=SESSION_HINT, message="the session is empty")
    return session


def _native_fd(io: Any) -> int | None:
    """The fd s2n reads and writes itself for ``io`` (an int, or a socket without a timeout), else None.

    The fd may be invalid (a closed socket's -1): ``set_io`` refuses it (s2n would accept -1).
    """
    if isinstance(io, int):
        return io
    if isinstance(io, socket.socket) and io.gettimeout() in (None, 0.0):
        return io.fileno()
    return None


#: S2NPY_TRACE, read once at import like Python's own PYTHON* variables: looking it up costs
#: more than the rest of a Connection's Python setup. At run time, set the logger's level instead.
_TRACE_ENV_SET = bool(os.environ.get("S2NPY_TRACE"))


class Connection(_datapath.ConnectionCore):
    """A TLS connection using ``config``; ``mode`` is ``"client"`` or ``"server"``.

    ``io``: a socket, a file descriptor, or a transport object (see module doc).
    ``server_name``: SNI and the name a client verifies in the server certificate.
    ``cert_auth``, ``policy``, ``alpn``: per-connection overrides of the config.
    ``session``: a previous connection's ``session`` bytes, to resume it.
    ``trace``: True for a trace of this connection (``connection.trace``), or a
    :class:`~s2npy.trace.Tracer` collecting traces of many connections.
    ``prefer``: ``"low_latency"`` (small records, s2n's default) or ``"throughput"``
    (16 KiB records): for bulk transfers use ``"throughput"`` on both ends (fewer
    records, so fewer headers, tags and calls per byte).
    """

    # Per-connection state starts as these class-level values (each is replaced, never mutated):
    # every Connection() saves setting them one by one.
    _ptr = None
    _handle = None  # this connection as s2n's context for Python callbacks, made when needed (_context)
    _c_address = 0  # _ptr as an int, for ConnectionCore's negotiate steps; 0 once closed
    _peer_chain: "weakref.ref[PeerCertChain] | None" = None  # the facts' shared lazy chain view
    closed = False
    _callback_error: BaseException | None = None
    _callback_where = ""
    _io_binding: "TransportBinding | NativeTap | MemoryPipeEnd | None" = None
    _tap: NativeTap | None = None  # a traced connection's C tap (its trace reads it)
    _io_object: Any = None
    _stale_io: Any = None  # a binding s2n may still point at: a set_io failed before the new one was set
    _fd = -1  # the socket s2n reads directly (fd fast path), else -1
    _reader: Any = None  # its C reader for recv bursts (made at the first recv), or the tap's; NULL: none
    _read_ahead: Any = None  # the reader's read-ahead buffer once a recv_into was large; NULL: never (no own reader)
    _recv_error: S2NError | None = None  # found after a recv burst, raised by the next recv
    _channel: Any = None  # the C data path (_datapath.DataChannel), opened at the first send/recv untraced
    _handshake_done = False
    trace: "ConnectionTrace | None" = None

    # The full constructor. After the class is made it becomes _setup and __init__ goes (below):
    # Connection(...) then runs ConnectionCore's __init__ (C), which sets the common case up without
    # Python frames (see _connection_core.c) and calls _setup for anything else. Type checkers and
    # editors see this signature as __init__'s, inspect.signature(Connection) as __signature__.
    def __init__(self, config: Config, mode: Mode | str = Mode.CLIENT, *,
                 io: socket.socket | int | Transport | None = None,
                 server_name: str | None = None,
                 cert_auth: CertAuth | str | None = None,
                 policy: str | None = None,
                 alpn: Sequence[str] | None = None,
                 session: bytes | None = None,
                 trace: "bool | Tracer | None" = None,
                 blinding: str = "self-service",
                 prefer: str | None = None) -> None:
        if not isinstance(config, Config):
            raise UsageError("creating a connection",
                             message=f"config must be an s2npy.Config, not {type(config).__name__}")
        try:
            self.mode, self._c_mode = _MODES[mode]
        except (KeyError, TypeError):  # another spelling, or no mode at all (which parse reports)
            self.mode = Mode.parse(mode)
            self._c_mode = self.mode.c_value
        # One entry per thread inside a (possibly blocking) s2n call on this connection, and the
        # pointer until it is freed: close() from another thread leaves the free to the last
        # call out (s2n would otherwise read freed memory). See _begin_call.
        self._in_calls: list[None] = []
        self._unfreed: list = []
        if blinding not in BLINDING:
            raise UsageError("setting blinding", message=f"unknown blinding {blinding!r}",
                             hint="use 'self-service' (default) or 'built-in'")
        name = None if server_name is None else _server_name_bytes(server_name)
        session_bytes = None if session is None else _session_bytes(session)
        overrides, keep_alpn = _NO_OVERRIDES, None  # keep_alpn: the ALPN names live through the create call
        if prefer is not None or cert_auth is not None or policy is not None or alpn is not None:
            overrides, keep_alpn = _create_overrides(prefer, cert_auth, policy, alpn)
        self.config = config
        if trace is None:
            # Tracing without code changes: S2NPY_TRACE=1 at start-up or the s2npy.trace logger at DEBUG.
            trace = _TRACE_ENV_SET or TRACE_LOGGER.level == logging.DEBUG
        if trace is not False:
            self._start_trace(trace)  # needs only the mode and config: decides whether s2n may own the fd
        # s2n's own I/O is set up by the create call: an fd, or a memory pipe's C end. Others
        # (and bad fds, which set_io reports) are set after it; -1 / NULL: none in the call.
        fd, mem = -1, 0
        if io is not None and self.trace is None:
            if type(io) is MemoryPipeEnd:
                mem = _address(io.native_end())
            else:
                fd = _native_fd(io)
                fd = fd if fd is not None and 0 <= fd <= _MAX_FD else -1
        # One C call: s2n_connection_new (or a wiped one to reuse), the setup every connection
        # needs and the overrides given here (build_s2n.py), with the GIL held unless it
        # allocates (see _datapath.c).
        mode = self._c_mode
        context = self._context(config)
        verify_host = self._verify_host_callback(config, context)
        config._attach()  # the config counts this connection from here until _release
        reuse = config._idle.take(mode)
        try:
            address = _create_connection(reuse[1] if reuse else 0, mode, config._address, context,
                                         *verify_host, BLINDING[blinding], name, fd, mem, *overrides, session_bytes)
        except BaseException:  # the call raised (s2n frees a connection it fails with): the taken one goes back
            if reuse:
                config._idle.give(reuse[0], mode)
            config._detach()
            raise
        if address <= 0:
            self._creation_failed(-address, server_name, prefer, policy)
        self._ptr = pointer = ffi.cast(_CONNECTION_POINTER, address)
        self._c_address = address
        self._unfreed.append(pointer)
        try:
            if fd >= 0:  # s2n already reads it
                self._io_object, self._fd = io, fd
            elif mem:  # the pipe end reports its own I/O errors
                self._io_object = self._io_binding = io
            elif io is not None:
                self.set_io(io)
        except BaseException:
            self.close()  # a half-made connection frees at once (and stops counting as the config's user)
            raise

    def _creation_failed(self, step: int, server_name: str | None = None, prefer: str | None = None,
                         policy: str | None = None) -> None:
        """The create call failed at ``step``: give the config back and raise what s2n said."""
        self.config._detach()
        self.closed = True  # nothing to free
        what = {6: f" {server_name!r}", 9: f" {prefer}", 11: f" {policy!r}"}.get(step, "")
        check(-1, CREATE_STEPS[step] + what, hint=CREATE_HINTS.get(step))

    # --- plumbing --------------------------------------------------------------------

    @property
    def ptr(self):
        """The ``struct s2n_connection *`` (for code that calls libs2n directly)."""
        if self._ptr is None:
            raise UsageError("using a connection", message="the connection is closed",
                             hint="create a new Connection")
        return self._ptr

    @property
    def _blocked(self):
        """The blocked statuses s2n calls set, in this object (ConnectionCore): [0] negotiate,
        [1] send and shutdown, [2] recv; one per direction, so that a thread receiving while
        another sends reads its own (and the C data path gets the send, recv pair)."""
        return ffi.cast(_BLOCKED_STATUSES, self._blocked_address)

    @property
    def _recv_failed(self):
        """The flag set when a recv burst's later record failed, in this object (ConnectionCore)."""
        return ffi.cast(_INT_POINTER, self._recv_failed_address)

    @property
    def _send_blocked(self):
        """The blocked status of send and shutdown calls (``_blocked[1]``)."""
        return self._blocked + 1

    @property
    def _recv_blocked(self):
        """The blocked status of recv calls (``_blocked[2]``)."""
        return self._blocked + 2

    def _call(self, result: int, operation: str, hint: str | None = None) -> int:
        """Check an s2n return code for this connection, surfacing callback exceptions."""
        if result < 0:
            error = capture_error(operation, state_of=self._ptr, hint=hint)
            self._raise_callback_error(error)
            raise error
        self._raise_callback_error(None)
        return result

    def record_callback_error(self, exc: BaseException, where: str) -> None:
        """Called from C callbacks: keep the first exception to re-raise after the C call."""
        if self._callback_error is None:
            self._callback_error = exc
            self._callback_where = where

    def _raise_callback_error(self, s2n_error: S2NError | None) -> None:
        exc = self._callback_error or _callbacks.orphan_errors.error
        if exc is None:
            return
        self._callback_error = None
        _callbacks.orphan_errors.error = None
        if s2n_error is not None:
            exc.__cause__ = s2n_error
            s2n_error.operation = f"{s2n_error.operation} (in the {self._callback_where})"
        raise exc

    def _verify_host_callback(self, config: Config, context: int) -> tuple[int, int]:
        """The (callback, data) addresses this connection needs for ``config``; 0: s2n's own check.

        ``context``: the address of this connection's handle (the Python callback's data).
        """
        if config._verify_host is not None:
            return _PYTHON_VERIFY_HOST, context
        return _HOST_CHECKS[self._c_mode]

    def _context(self, config: Config) -> int:
        """The address of this connection's handle, s2n's context for ``config``'s Python callbacks;
        0 (none) for a config without them.

        Made when first needed: only a config with such callbacks (``Config._calls_connections``)
        has s2n call back with it. The handle refers to this object (a cycle), until ``_release``.
        """
        if not config._calls_connections:
            return 0
        if self._handle is None:
            self._handle = ffi.new_handle(self)
        return _address(self._handle)

    def _start_trace(self, trace: "bool | Tracer") -> None:
        """Trace this connection: ``trace`` is True (its own trace) or a Tracer collecting many."""
        from .trace.recorder import ConnectionTrace, Tracer

        self.trace = trace.connection_trace(self) if isinstance(trace, Tracer) else ConnectionTrace(self)

    # --- settings ----------------------------------------------------------------

    def set_io(self, io: socket.socket | int | Transport) -> None:
        """Use a socket, a file descriptor, a memory pipe end or a transport object for I/O."""
        pipe_end = io.native_end() if isinstance(io, MemoryPipeEnd) else None
        fd = _native_fd(io)
        if fd is not None and not 0 <= fd <= _MAX_FD:
            raise UsageError("setting connection I/O", hint="pass an open socket or file descriptor",
                             message="the socket is closed" if isinstance(io, socket.socket)
                             else f"{fd} is not a file descriptor")
        native = fd is not None or pipe_end is not None  # s2n does the I/O itself: no Python in it
        if not native and not (hasattr(io, "recv_into") and hasattr(io, "send")):
            raise UsageError("setting connection I/O",
                             message=f"{type(io).__name__} has no recv_into/send methods",
                             hint="pass a socket, a file descriptor or an object with recv_into() and send()")
        if self._channel is not None:  # it knows the old reader: the next send/recv opens another
            self._channel.detach()
        if self._tap is not None:
            self.trace.release_tap()  # what it recorded stays in the trace, before the new I/O's
        # s2n points at the old binding (transport handle or C tap) until the new I/O is set.
        self._stale_io = self._io_binding
        self._io_object = io
        self._tap = self._io_binding = self._reader = self._read_ahead = self._channel = None
        self._fd = -1
        fd = -1 if fd is None else fd
        if native and self.trace is None:
            self._set_native_io(fd, pipe_end)
            self._fd = fd  # -1 for a memory pipe
        elif native and NativeTap.usable(self.trace):
            self._io_binding = self._tap = NativeTap(self, self.trace, fd=fd, mem=pipe_end or ffi.NULL)
            self._reader = ffi.addressof(self._tap.tap, "reader") if fd >= 0 else ffi.NULL
            self._read_ahead = ffi.NULL  # the trace records s2n's own reads
            self._fd = fd
        else:
            self._bind_transport(socket.socket(fileno=os.dup(io)) if isinstance(io, int) else io)
        self._stale_io = None

    def _set_native_io(self, fd: int, pipe_end: Any) -> None:
        """s2n reads and writes the fd, or the C memory pipe end, itself."""
        if pipe_end is not None:
            self._call(lib.s2npy_set_io(self.ptr, lib.s2npy_mem_recv, lib.s2npy_mem_send, pipe_end),
                       "setting memory pipe I/O")
            self._io_binding = self._io_object  # the pipe end reports its own I/O errors
            return
        self._call(lib.s2n_connection_set_fd(self.ptr, fd), "setting the connection's file descriptor",
                   hint="pass an open socket or file descriptor")

    def _bind_transport(self, io: Transport) -> None:
        """Custom I/O: s2n calls back into Python, which calls ``io`` (and the trace's tap)."""
        self._io_object = io
        tap = self.trace.on_wire if self.trace is not None else None
        self._io_binding = TransportBinding(self, io, tap)
        self._call(lib.s2npy_set_io(self.ptr, lib.s2npy_recv_cb, lib.s2npy_send_cb, self._io_binding.handle),
                   "setting custom I/O callbacks")

    def set_server_name(self, name: str) -> None:
        """Client: the SNI to send and the name to verify in the server certificate."""
        self._call(lib.s2n_set_server_name(self.ptr, _server_name_bytes(name)), f"setting server name {name!r}")

    def set_cert_auth(self, cert_auth: CertAuth | str) -> None:
        """Override the config's client certificate authentication for this connection."""
        parsed = CertAuth.parse(cert_auth)
        self._call(lib.s2n_connection_set_client_auth_type(self.ptr, parsed.c_value), CREATE_STEPS[10])

    @property
    def cert_auth(self) -> CertAuth:
        value = ffi.new("s2n_cert_auth_type *")
        self._call(lib.s2n_connection_get_client_auth_type(self.ptr, value), "reading cert auth")
        return CertAuth.from_c(value[0])

    def set_policy(self, name: str) -> None:
        """Override the config's security policy for this connection."""
        self._call(lib.s2n_connection_set_cipher_preferences(self.ptr, str(name).encode()),
                   f"{CREATE_STEPS[11]} {name!r}", hint=POLICY_HINT)

    def set_alpn(self, protocols: Sequence[str]) -> None:
        """Override the config's ALPN protocol list for this connection."""
        names, keep = alpn_array(protocols)
        self._call(lib.s2n_connection_set_protocol_preferences(self.ptr, names, len(keep)), CREATE_STEPS[12])

    def set_config(self, config: Config) -> None:
        """Switch to another Config (allowed until the handshake passed the ClientHello)."""
        if not isinstance(config, Config):
            raise UsageError("switching config", message=f"config must be an s2npy.Config, not {type(config).__name__}")
        config._attach()
        try:
            self._call(lib.s2n_connection_set_config(self.ptr, config.ptr), "switching config")
        except BaseException:
            config._detach()
            raise
        self.config._detach()
        self.config = config
        had_context = self._handle is not None
        context = self._context(config)
        if context and not had_context:  # the create call set none: this config is the first to need it
            self._call(lib.s2n_connection_set_ctx(self.ptr, ffi.cast("void *", context)), CREATE_STEPS[2])
        callback, data = self._verify_host_callback(config, context)
        if callback:
            self._call(lib.s2n_connection_set_verify_host_callback(
                self.ptr, ffi.cast("s2n_verify_host_fn", callback), ffi.cast("void *", data)),
                "setting verify host callback")

    def set_session(self, session: bytes) -> None:
        """Client: resume the session saved from an earlier connection's ``session``."""
        data = _session_bytes(session)
        self._call(lib.s2n_connection_set_session(self.ptr, data, len(data)), CREATE_STEPS[13], hint=SESSION_HINT)

    def set_preference(self, prefer: str) -> None:
        """``"throughput"`` (16 KiB records) or ``"low_latency"`` (small records first)."""
        setter = _preference(prefer)[1]
        self._call(setter(self.ptr), f"{CREATE_STEPS[9]} {prefer}")

    # --- handshake ------------------------------------------------------------------

    # try_negotiate() and negotiate() are ConnectionCore's (C): untraced, one negotiate step
    # there (_datapath.c's negotiate_step, call guard included), the rest by the methods below.

    def _traced_try_negotiate(self) -> Blocked:
        """``try_negotiate()`` of a traced connection."""
        return self.trace.traced_negotiate(lambda progress: self._traced_negotiate_once(ffi.NULL, progress))

    def _untraced_outcome(self, outcome: Any) -> Blocked:
        """What an untraced negotiate step's ``outcome`` means (the result of ``negotiate_step`` in
        _datapath.c: see there), raised if it failed."""
        if type(outcome) is int:  # the guard is left: the blocked status (NOT_BLOCKED: done), or closed
            if outcome > 0 and self._callback_error is None:
                return Blocked.of(outcome)
            if outcome == 0 and self._callback_error is None and _orphan_errors.error is None:
                self._handshake_done = True
                return Blocked.NOT_BLOCKED
            if outcome == _NOT_CALLED:
                return self.ptr  # raises: the connection is closed
            return self._negotiate_outcome(min(outcome, 1), None)  # a callback failed meanwhile: raised
        result, ffi.errno, address = outcome  # still inside the guard: errno is what capture_error reads
        try:
            return self._negotiate_outcome(result, ffi.cast(_CONNECTION_POINTER, address))
        finally:
            self._end_call()

    def _traced_negotiate_once(self, facts_out, progress) -> Blocked:
        """One s2n_negotiate call through cffi, recording s2n's state before and after in
        ``progress`` (a trace's ``struct s2npy_progress[2]``); fills ``facts_out`` on completion."""
        ptr = self._begin_call()
        try:
            return self._negotiate_outcome(lib.s2npy_negotiate(ptr, self._blocked, facts_out, progress), ptr)
        finally:
            self._end_call()

    def _negotiate_outcome(self, result: int, ptr) -> Blocked:
        """What a negotiate call's result (0 done, 1 blocked, -1 failed) means, raised if it failed.

        ``ptr``: the connection while still inside the call guard (a failure reads its state), else None.
        """
        if result == 0:
            self._raise_callback_error(None)
            self._handshake_done = True
            return Blocked.NOT_BLOCKED
        blocked = Blocked.of(self._blocked[0])
        if result == 1 and self._callback_error is None:
            return blocked
        # Blocked, but one of our callbacks failed meanwhile (it is raised, chained to this), or failed.
        self._fail_handshake(blocked_error("handshake", blocked) if result == 1 else
                             capture_error("handshake", blocked=blocked, state_of=ptr))

    def _begin_call(self):
        """Enter an s2n call that may block; returns the pointer, valid until ``_end_call``.

        No lock: this runs on every send and recv. ``list.append``/``pop`` are atomic,
        and the orders make it safe. A call enters, then reads the pointer; close()
        clears the pointer, then looks for calls. Either close() sees this call (which
        then frees the connection on its way out) or this call sees the cleared
        pointer (and leaves). When several see the connection is free to go,
        ``_free_once`` gives it to one of them.
        """
        self._in_calls.append(None)
        ptr = self._ptr
        if ptr is None:
            self._end_call()
            return self.ptr  # raises: the connection is closed
        return ptr

    def _end_call(self) -> None:
        """Leave an s2n call; the last one out frees the connection if it was closed meanwhile."""
        self._in_calls.pop()
        if self._ptr is None and not self._in_calls:
            self._free_once()

    def _free_once(self) -> None:
        try:
            pointer = self._unfreed.pop()
        except IndexError:
            return  # freed already, or by another thread
        self._release(pointer)

    def _attach_transport_error(self, error: S2NError) -> None:
        """Chain the transport's own exception (e.g. BrokenPipeError) and take its errno."""
        transport_error = self._io_binding.transport_error if self._io_binding is not None else None
        if transport_error is None:
            return
        self._io_binding.transport_error = None
        error.__cause__ = transport_error
        # An alert is the cause even if a write failed first (EPIPE after the peer's alert and close).
        if error.errno is None and error.alert is None and isinstance(transport_error, OSError) \
                and transport_error.errno:
            error.errno = transport_error.errno
            error.errno_text = os.strerror(transport_error.errno)

    def _fail_handshake(self, error: S2NError) -> None:
        self._attach_transport_error(error)
        from .trace.diagnosis import diagnose

        error.trace = self.trace
        error.diagnosis = diagnose(error, self.trace)
        if self.trace is not None:
            self.trace.on_error(error)
            self.trace.log_failure()
        self._raise_callback_error(error)
        raise error

    def _traced_negotiate(self) -> NegotiatedFacts:
        """``negotiate()`` of a traced connection."""
        raw = ffi.new("struct s2npy_facts *")  # filled by the call that completes: one crossing, not two
        self._raise_unless_done(self.trace.traced_negotiate(lambda progress: self._traced_negotiate_once(raw, progress)))
        return self._completed(raw)

    def _negotiate_finish(self, outcome: Any, raw) -> NegotiatedFacts:
        """An untraced ``negotiate()`` whose step ``outcome`` needs Python (blocked, failed, or a callback's exception)."""
        self._raise_unless_done(self._untraced_outcome(outcome))
        return self._completed(raw)

    def _completed(self, raw) -> NegotiatedFacts:
        """The facts of a completed handshake, from the ``struct s2npy_facts`` its last step filled."""
        chain = self._lazy_peer_chain(self._ptr)
        facts = facts_from_struct(raw, chain)
        if self.trace is not None:
            # The trace keeps these facts, so their chain is copied now, not at close(): the trace
            # then holds the chain of this handshake, and a client copies it while the server is
            # still reading its Finished (copying costs ~30 us: s2n re-encodes into locked memory).
            chain.capture()
            self.trace.on_success(facts)
        return facts

    @staticmethod
    def _raise_unless_done(blocked: Blocked) -> None:
        """``negotiate()`` on non-blocking I/O: a blocked handshake is a Want*Error."""
        if blocked is not Blocked.NOT_BLOCKED:
            raise blocked_error("handshake", blocked)

    @property
    def handshake_complete(self) -> bool:
        return self._ptr is not None and bool(lib.s2n_connection_handshake_complete(self._ptr))

    # --- application data ---------------------------------------------------------------

    def _require_handshake(self, operation: str) -> None:
        """Application data before the handshake is a caller bug (s2n reports it as a cipher error)."""
        if not self._handshake_done and not lib.s2n_connection_handshake_complete(self.ptr):
            raise UsageError(operation, message="the handshake is not complete",
                             hint="call negotiate() first (and until it stops raising Want*Error)")

    def send(self, data: Any) -> int:
        """Encrypt and send up to ``len(data)`` bytes; returns how many were taken."""
        channel = self._channel or self._open_channel()
        if channel is not None:
            sent = channel.send(data)
            if sent >= 0 and self._callback_error is None and _orphan_errors.error is None:
                return sent
            if sent != _NOT_CALLED:
                return self._after_channel_call("send", channel, sent)
        if not self._handshake_done:
            self._require_handshake("send")
        if type(data) is bytes:  # cffi passes a bytes object's own storage: nothing to export
            return self._send_from(data, len(data))
        with ffi.from_buffer(data) as view:  # released now, not by a GC that may tear the buffer first
            return self._send_from(view, len(view))

    def sendall(self, data: Any) -> None:
        """Send all of ``data`` (blocking I/O), like ``socket.sendall``.

        Usually one ``send`` (untraced, one C call: see ``_datapath``), with no
        buffer export to check it took everything (``bytes``, ``bytearray``,
        ``memoryview``); otherwise one export for the rest, and a partial send
        continues from a pointer into it (no memoryview slices): writes are
        dominated by this per-call Python cost.
        """
        sent = self.send(data)
        byte_length = _BYTE_LENGTH.get(type(data))
        if byte_length is not None and sent == byte_length(data):
            return  # all sent, and no buffer export to find out
        with ffi.from_buffer(data) as view:
            self._send_rest(view, sent)

    def _send_rest(self, view: Any, sent: int) -> None:
        """Send the exported buffer ``view`` from byte ``sent`` to its end."""
        total = len(view)
        while sent < total:
            sent += self._send_from(view + sent, total - sent)

    def _send_from(self, data: Any, size: int) -> int:
        """One s2n_send of ``size`` bytes from ``data`` (bytes or a C pointer); raises its failure."""
        ptr = self._begin_call()
        try:
            return self._io_result("send", lib.s2n_send(ptr, data, size, self._send_blocked))
        finally:
            self._end_call()

    def recv(self, bufsize: int = DEFAULT_RECV_SIZE) -> bytes:
        """Receive up to ``bufsize`` bytes of application data; b"" after the peer's close_notify."""
        buffer = bytearray(bufsize)
        count = self.recv_into(buffer)
        del buffer[count:]
        return bytes(buffer)

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        """Receive into a writable buffer without an extra copy; 0 means the peer closed.

        On a socket s2n reads directly, one call returns every record that has
        already arrived (up to the buffer size) without waiting for more: a
        large buffer then costs one call per burst, not per 16 KiB record. A
        buffer of ``READ_AHEAD_MIN`` bytes or more also lets one read take several
        large records (``_make_reader``); what it holds is never hidden from
        ``select()``. Untraced, a call is one C call (``_datapath``).
        """
        channel = self._channel or self._open_channel()
        if channel is not None and self._recv_error is None:
            count = channel.recv_into(buffer, nbytes)
            if count >= 0 and self._callback_error is None and _orphan_errors.error is None:
                return count
            if count != _NOT_CALLED:
                return self._after_channel_call("recv", channel, count)
        if not self._handshake_done:
            self._require_handshake("recv")
        if self._recv_error is not None:
            error, self._recv_error = self._recv_error, None
            raise error
        with ffi.from_buffer(buffer, require_writable=True) as target:  # released now, see send()
            size = nbytes or len(target)
            if not 0 <= size <= len(target):
                raise UsageError("recv_into", message=f"nbytes={nbytes} exceeds the buffer size {len(target)}")
            reader = self._reader
            if reader is None or (self._read_ahead is None and size >= READ_AHEAD_MIN):
                reader = self._make_reader(size)
            ptr = self._begin_call()
            try:
                return self._recv_result(_BURST_RECV(ptr, target, size, reader, self._recv_blocked,
                                                     self._recv_failed))
            finally:
                self._end_call()

    def _recv_result(self, result: int) -> int:
        """After s2npy_recv, inside its call guard: the count, or the failure raised."""
        count = self._io_result("recv", result)
        if self._recv_failed[0]:
            # A later record of the burst failed: keep the error for the next recv (bytes first).
            self._recv_error = self._io_error("recv")
        return count

    def _open_channel(self) -> Any:
        """The C data path for send/recv_into, once the handshake is done untraced; else None.

        Opened inside the call guard and checked again once published: a close()
        meanwhile either sees the channel (and detaches it) or is seen here.
        """
        if not self._handshake_done or self._tap is not None or self._ptr is None:
            return None
        ptr = self._begin_call()
        try:
            channel = _datapath.DataChannel(_address(ptr), self._in_calls, _address(self._send_blocked),
                                            self._recv_failed_address, READ_AHEAD_MIN)
            if self._reader is not None:
                channel.set_reader(_address(self._reader), self._read_ahead is not None)
            self._channel = channel
            if self._ptr is None:
                channel.detach()
            return channel
        finally:
            self._end_call()

    def _after_channel_call(self, operation: str, channel: Any, result: int) -> int:
        """A channel call whose result needs Python.

        A count (the call succeeded and left its guard): a callback's exception to raise.
        ``_datapath.CALLED`` (still inside its guard): the outcome of a failure, a later record's
        failure or a close meanwhile, handled as on the Python path.
        """
        if result >= 0:
            self._raise_callback_error(None)
            return result
        result, error_number = channel.outcome(operation == "send")
        try:
            ffi.errno = error_number  # what capture_error reads, as after a cffi call
            return self._io_result("send", result) if operation == "send" else self._recv_result(result)
        finally:
            self._end_call()

    def _make_reader(self, size: int) -> Any:
        """The C reader for recv bursts on this connection's socket (NULL without one).

        A caller of buffers of ``READ_AHEAD_MIN`` bytes or more is reading in bulk: its
        reader also gets a read-ahead buffer, so that one read takes several records
        (see s2npy_fd_read in build_s2n.py). Small readers keep exact reads, and no memory.
        """
        reader = self._reader
        if reader is None and self._fd < 0:
            reader = self._reader = self._read_ahead = ffi.NULL
        elif reader is None:
            reader = self._reader = ffi.new("struct s2npy_fd_reader *", {"fd": self._fd})
        if size >= READ_AHEAD_MIN and reader != ffi.NULL:
            self._read_ahead = ffi.new("uint8_t[]", READ_AHEAD_SIZE)
            reader.ahead, reader.capacity = self._read_ahead, READ_AHEAD_SIZE
        if self._channel is not None:
            self._channel.set_reader(_address(reader), self._read_ahead is not None)
        return reader

    def _io_call(self, operation: str, function, *args) -> int:
        """Run s2n_shutdown/shutdown_send (which may block) on this connection; raise its failure.

        ``args`` follow the connection pointer and end with the blocked-status pointer.
        """
        ptr = self._begin_call()
        try:
            return self._io_result(operation, function(ptr, *args))
        finally:
            self._end_call()

    def _io_result(self, operation: str, result: int) -> int:
        """After an s2n data call, still inside its call guard: raise its failure."""
        if result < 0:
            return self._io_failure(operation)
        if self._callback_error is not None or _orphan_errors.error is not None:
            self._raise_callback_error(None)
        return result

    def pending(self) -> int:
        """Decrypted bytes buffered in s2n, readable without I/O (like ``SSLSocket.pending``)."""
        return lib.s2n_peek(self.ptr)

    def _io_error(self, operation: str) -> S2NError:
        """The exception for the s2n data call that just failed (right after it, same thread)."""
        blocked = Blocked((self._recv_blocked if operation == "recv" else self._send_blocked)[0])
        error = capture_error(operation, blocked=blocked, state_of=self._ptr)
        self._attach_transport_error(error)
        if not isinstance(error, BlockedError):
            # TLS 1.3 verdicts (e.g. certificate_required) arrive after the handshake: explain them too.
            from .trace.diagnosis import diagnose

            error.diagnosis = diagnose(error, self.trace)
        return error

    def _io_failure(self, operation: str) -> int:
        error = self._io_error(operation)
        self._raise_callback_error(error)
        raise error

    # --- closing ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Send close_notify and wait for the peer's (a full TLS shutdown)."""
        self._io_call("shutdown", lib.s2n_shutdown, self._send_blocked)

    def shutdown_send(self) -> None:
        """Send close_notify and stop sending; reading stays possible (half close)."""
        self._io_call("shutdown_send", lib.s2n_shutdown_send, self._send_blocked)

    # close() is ConnectionCore's (C): a close with no call of another thread inside, no data
    # channel and no facts' chain view to copy clears the pointer and does _release's work there
    # (through this method only when a trace tap must go too); any other runs this method.
    # A Connection dropped while open is closed too (ConnectionCore's finalizer).
    def _close(self) -> None:
        """``close()``, whatever the state: see ``_begin_call`` for closing under a running call."""
        if self._ptr is None:
            return
        self._in_calls.append(None)  # like a call: the pointer stays valid while the chain is copied
        try:
            if self._ptr is not None:  # not closed by another thread meanwhile
                self._keep_chains()
        finally:
            self._ptr = None
            self._c_address = 0
            self.closed = True
            if self._channel is not None:
                self._channel.detach()
            self._end_call()  # frees, unless a call in another thread is still running: it will

    def _release(self, pointer) -> None:
        self.config._idle.give(pointer, self._c_mode)  # wiped for the config's next connection, or freed
        self.config._detach()
        if self._tap is not None:
            self.trace.release_tap()
            self._tap.close()
            self._tap = None
        self._io_binding = None
        self._io_object = None
        # s2n no longer calls back with this connection's context: the handle (which refers to
        # this object, a reference cycle) goes, so a closed Connection is freed when dropped
        # instead of waiting for the garbage collector.
        self._handle = None

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- facts --------------------------------------------------------------------------------

    def facts(self) -> NegotiatedFacts:
        """Everything negotiated so far (works mid-handshake and after a failure too).

        ``peer_cert_chain`` is read from s2n when first used (copying it out
        costs more than the handshake's other facts together); it stays valid
        after ``close()``.
        """
        ptr = self.ptr
        return read_facts(ptr, chain=self._lazy_peer_chain(ptr))

    # _lazy_peer_chain(ptr) is ConnectionCore's (C): the view of the peer chain facts hand out.

    def _keep_chains(self) -> None:
        """Before the s2n connection is freed: read the peer chain if facts still reference it."""
        view = self._peer_chain() if self._peer_chain is not None else None
        if view is not None:  # some facts still hold it: copy it while the connection exists
            view.capture()

    @property
    def last_message(self) -> str | None:
        return c_string(lib.s2n_connection_get_last_message_name(self.ptr))

    @property
    def handshake_type(self) -> str | None:
        return c_string(lib.s2n_connection_get_handshake_type_name(self.ptr))

    @property
    def blinding_delay(self) -> float:
        """Seconds s2n recommends waiting before closing after an error (self-service blinding)."""
        return lib.s2n_connection_get_delay(self.ptr) / 1e9

    @property
    def session(self) -> bytes | None:
        """Client: the resumable session (ticket and state) to pass as ``session=`` later."""
        length = lib.s2n_connection_get_session_length(self.ptr)
        if length <= 0:
            return None
        buffer = ffi.new("uint8_t[]", length)
        written = self._call(lib.s2n_connection_get_session(self.ptr, buffer, length), "reading session")
        return ffi.unpack(ffi.cast("char *", buffer), written)

    def wire_bytes(self) -> tuple[int, int]:
        """(bytes received, bytes sent) on the wire so far."""
        return (lib.s2n_connection_get_wire_bytes_in(self.ptr), lib.s2n_connection_get_wire_bytes_out(self.ptr))

    # --- callback entry points (called from s2npy._callbacks) -----------------------------------------

    def client_hello_done(self) -> None:
        """Resume a handshake paused by a non-blocking client hello callback (see Config)."""
        self._call(lib.s2n_client_hello_cb_done(self.ptr), "resuming after the client hello callback",
                   hint="only valid with Config.set_client_hello_callback(..., blocking=False)")

    def run_client_hello_callback(self) -> None:
        callback = self.config._client_hello_callback
        from .client_hello import ClientHello

        hello = ClientHello.from_connection(self)
        if self.trace is not None:
            self.trace.on_client_hello(hello)
        if callback is not None:
            callback(self, hello)

    def on_key_log(self, line: str) -> None:
        if self.trace is not None:
            self.trace.on_key_log(line)
        for sink in self.config._key_log_sinks:
            sink(self, line)

    def on_checkpoint(self, checkpoint) -> None:
        if self.trace is not None:
            self.trace.on_checkpoint(c_string(checkpoint.name), checkpoint.role, checkpoint.timestamp_ns)

    def on_handshake_event(self, event) -> None:
        if self.trace is not None:
            self.trace.on_handshake_event({
                "protocol": event.protocol_version,
                "cipher": c_string(event.cipher),
                "group": c_string(event.group),
                "policy": c_string(event.security_policy_label),
                "handshake_time_ns": event.handshake_time_ns,
                "duration_ns": event.handshake_end_ns - event.handshake_start_ns,
                "error_code": event.error_code,
                "error_name": c_string(lib.s2n_strerror_name(event.error_code)) if event.error_code else None,
            })

    def __repr__(self) -> str:
        state = "closed" if self._ptr is None else (self.last_message or "?")
        return f"<Connection {self.mode.value} {state}>"


Connection._setup = Connection.__init__
del Connection.__init__  # the type's __init__ slot falls back to ConnectionCore's
_SETUP_SIGNATURE = inspect.signature(Connection._setup)
Connection.__signature__ = _SETUP_SIGNATURE.replace(parameters=tuple(_SETUP_SIGNATURE.parameters.values())[1:])

# What ConnectionCore's fast paths (C) use; they take exactly the cases the Python methods above
# would handle as they do (see _connection_core.c).
_datapath.bind_core({
    "config_type": Config, "socket_type": socket.socket, "pipe_end_type": MemoryPipeEnd, "modes": _MODES,
    "client_mode": Mode.CLIENT, "encode_server_name": _encode_server_name, "trace_logger": TRACE_LOGGER,
    "ffi_cast": ffi.cast, "connection_type": _CONNECTION_POINTER,
    "orphan_errors": _orphan_errors, "blocked_members": Blocked._value2member_map_,
    "self_service": "self-service", "chain_type": PeerCertChain, "facts_type": NegotiatedFacts,
    "partial": functools.partial, "peer_cert_ders": peer_cert_ders, "facts_size": ffi.sizeof("struct s2npy_facts"),
    "debug_level": logging.DEBUG, "max_fd": _MAX_FD, "trace_env": _TRACE_ENV_SET,
    "blinding": BLINDING["self-service"], "server_mode": lib.S2N_SERVER, "accept_any_host": _ACCEPT_ANY_HOST,
})
