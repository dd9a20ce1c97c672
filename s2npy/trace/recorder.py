"""Recording a connection's trace: cheap capture now, parsing and formatting later.

While the handshake runs, a :class:`ConnectionTrace` only keeps raw records:
each negotiate call's times and s2n's state before and after it (read by the
same C call), and the bytes on the wire (kept in C by a native tap until
``chunks`` is read, or appended as tuples by the Python tap). Decoding them,
parsing TLS records and rendering happen when someone asks (``calls``,
``chunks``, ``events()``, ``render_text()``, a failure diagnosis), so a traced
handshake stays cheap.

Event kinds (the ``kind`` of each :class:`TraceEvent`; the JSON lines schema
is documented in :mod:`s2npy.trace.render`):

``negotiate``   one ``s2n_negotiate`` call: duration, outcome, state before/after, wire bytes delta
``wire``        one decoded TLS record / handshake message / alert / non-TLS bytes (``s2npy.trace.wire``);
                an encrypted record carries ``s2n_messages``: the messages s2n's checkpoints say it held;
                with a key log, the TLS 1.3 handshake messages and alerts decrypted from a record follow it
``checkpoint``  s2n's own "message handled" checkpoint (unstable events.h), with its name
``handshake_event`` s2n's handshake event: cipher, group, policy, time inside negotiate, error
``client_hello`` the server's decoded view of the ClientHello, with JA3/JA4
``eof``         the peer ended its stream (TCP FIN, or a transport returning 0 bytes)
``keylog``      that a secret was logged (the label only; secrets stay in ``keylog_lines``)
``result``      the negotiated facts, or ``error`` with the exception and its diagnosis
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .._native import c_string, ffi, lib
from ..client_hello import ClientHello
from ..errors import S2NError
from ..facts import read_facts
from ..io import NativeTap, tap_chunks
from .decrypt import Tls13Decryptor
from .wire import Record, WireEvent, WireSession

if TYPE_CHECKING:
    from ..connection import Connection
    from ..facts import NegotiatedFacts

LOGGER = logging.getLogger("s2npy.trace")
#: ``S2NPY_TRACE=1`` traces every connection (text); ``S2NPY_TRACE=json`` logs JSON lines instead.
ENV_VAR = "S2NPY_TRACE"


def log_to_stderr_if_requested() -> None:
    """With ``S2NPY_TRACE`` set and no handler on ``s2npy.trace``, send traces to stderr.

    Without this an application that never configured logging would trace
    every connection and show nothing (Python's last-resort handler drops DEBUG/INFO).
    """
    if os.environ.get(ENV_VAR) and not LOGGER.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.DEBUG)


@dataclass(frozen=True)
class TraceEvent:
    """One thing that happened, ``t`` seconds after the trace started, on ``side``."""

    t: float
    side: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    wire: WireEvent | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``t_ms``, ``side``, ``kind`` (the wire event's kind for wire events), fields."""
        body = {**self.wire.to_dict(), **self.data} if self.wire is not None else dict(self.data)
        body.pop("t", None)
        return {"t_ms": round(self.t * 1000, 3), "side": self.side, "kind": self.kind, **body}


@dataclass
class NegotiateCall:
    """One ``s2n_negotiate`` call as seen from Python."""

    start: float
    duration: float
    outcome: str
    before: str | None
    after: str | None
    handshake_type: str | None
    bytes_in: int
    bytes_out: int


def _negotiate_call(start: float, duration: float, blocked: Any, progress: Any) -> NegotiateCall:
    """A recorded call: ``blocked`` is its Blocked result (None: it raised), ``progress`` s2n's state."""
    before, after = progress[0], progress[1]
    outcome = "error" if blocked is None else "done" if blocked == 0 else f"blocked_{blocked.name.lower()}"
    return NegotiateCall(start=start, duration=duration, outcome=outcome, before=c_string(before.last_message),
                         after=c_string(after.last_message), handshake_type=c_string(after.handshake_type),
                         bytes_in=after.wire_bytes_in - before.wire_bytes_in,
                         bytes_out=after.wire_bytes_out - before.wire_bytes_out)


class ConnectionTrace:
    """Everything recorded about one connection; see the module doc for the event kinds."""

    def __init__(self, connection: "Connection", *, clock: Callable[[], float] = time.perf_counter,
                 origin: float | None = None) -> None:
        self.side = connection.mode.value
        log_to_stderr_if_requested()
        self.clock = clock
        self.origin = clock() if origin is None else origin
        #: Wall-clock time (``time.time()``) of ``t == 0``, for pcap timestamps and log readers.
        self.wall_origin = time.time() - (clock() - self.origin)
        # Weak: the connection holds its trace, and a Tracer holds every trace it made.
        self._connection = weakref.ref(connection)
        #: The config's security policy name (diagnosis quotes it when nothing was shared).
        self.policy: str | None = connection.config.policy
        self._chunks: list[tuple[float, str, bytes]] = []
        self._tap: NativeTap | None = None  # a C tap recording this connection's I/O, read on demand
        self._tap_batches: list[tuple[bytes, bytes]] = []  # taken from it, decoded when chunks are read
        self._lock = threading.Lock()  # readers decoding chunks or calls (recording takes no lock)
        self._calls: list[NegotiateCall] = []
        self._raw_calls: list[tuple[float, float, Any, Any]] = []  # as recorded; calls decodes them in order
        self.checkpoints: list[tuple[float, str, int]] = []
        self.handshake_events: list[dict[str, Any]] = []
        self.client_hello: ClientHello | None = None
        self._client_hello_t: float | None = None
        self.keylog_lines: list[str] = []
        self._keylog_times: list[float] = []
        self.facts: NegotiatedFacts | None = None
        self.error: S2NError | None = None
        self.finished_t: float | None = None

    # --- capture (called by Connection, keep cheap) ---------------------------------------

    def _open_connection(self) -> "Connection | None":
        """The traced connection while it is alive and open, else None."""
        connection = self._connection()
        return connection if connection is not None and connection._ptr is not None else None

    def now(self) -> float:
        """Seconds since this trace's origin (shared by the traces of one Tracer)."""
        return self.clock() - self.origin

    def traced_negotiate(self, negotiate_once: Callable[[Any], Any]) -> Any:
        """Run one ``s2n_negotiate`` call and record it (decoded when ``calls`` is read).

        ``negotiate_once(progress)`` makes the call and fills ``progress``, a
        ``struct s2npy_progress[2]``, with s2n's state before and after it.
        """
        self._connection().ptr  # noqa: B018 - a closed connection raises here, before anything is recorded
        progress = ffi.new("struct s2npy_progress[2]")
        start = self.now()
        blocked = None
        try:
            blocked = negotiate_once(progress)
            return blocked
        finally:
            self._raw_calls.append((start, self.now() - start, blocked, progress))

    @property
    def calls(self) -> list[NegotiateCall]:
        """Every ``s2n_negotiate`` call, in order."""
        if len(self._calls) < len(self._raw_calls):  # a call recorded meanwhile is decoded next time
            with self._lock:
                for raw in self._raw_calls[len(self._calls):]:
                    self._calls.append(_negotiate_call(*raw))
        return self._calls

    def on_wire(self, direction: str, data: bytes) -> None:
        """Tap: ``direction`` is "in" (received) or "out" (sent) from this side's view."""
        self.chunks.append((self.now(), self._stream_direction(direction), data))

    def follow_tap(self, tap: NativeTap) -> None:
        """Record the chunks of a C tap from now on (read from it when ``chunks`` is)."""
        self._collect_tap()  # what an earlier tap recorded comes first
        self._tap = tap

    def release_tap(self) -> None:
        """The connection lets go of its C tap: take what it still holds (decoded when read)."""
        with self._lock:
            self._take_tap_batch()
            self._tap = None

    @property
    def chunks(self) -> list[tuple[float, str, bytes]]:
        """The bytes on the wire, in order: ``(t, "c2s" or "s2c", data)``; empty data is an EOF.

        A C tap's chunks (:class:`~s2npy.io.NativeTap`) are copied out and
        decoded here, when first read, not after every s2n call.
        """
        if self._tap is not None or self._tap_batches:
            self._collect_tap()
        return self._chunks

    @chunks.setter
    def chunks(self, chunks: list[tuple[float, str, bytes]]) -> None:
        self._collect_tap()
        self._chunks = chunks

    def _collect_tap(self) -> None:
        with self._lock:
            self._take_tap_batch()
            directions = (self._stream_direction("in"), self._stream_direction("out"))
            for headers, data in self._tap_batches:
                self._chunks.extend(tap_chunks(headers, data, self.origin, directions))
            self._tap_batches = []

    def _take_tap_batch(self) -> None:
        """(With the lock held.) Keep what the C tap recorded since its last take, undecoded."""
        batch = self._tap.take() if self._tap is not None else None
        if batch is not None:
            self._tap_batches.append(batch)

    def on_checkpoint(self, name: str | None, role: int, timestamp_ns: int) -> None:
        """s2n handled message ``name``; stamped with our clock (not s2n's) to share the wire's timeline."""
        self.checkpoints.append((self.now(), name or "?", role))

    def on_handshake_event(self, event: dict[str, Any]) -> None:
        """s2n's end-of-handshake summary (cipher, group, policy, time in negotiate, error)."""
        self.handshake_events.append({"t": self.now(), **event})

    def on_client_hello(self, hello: "ClientHello") -> None:
        """The server's view of the ClientHello (from the client hello callback)."""
        self.client_hello, self._client_hello_t = hello, self.now()

    def on_key_log(self, line: str) -> None:
        """A key log line (kept for ``write_pcap``; only its label appears in events)."""
        self.keylog_lines.append(line)
        self._keylog_times.append(self.now())

    def _capture_client_hello(self) -> None:
        """A traced server without a client hello callback still records the ClientHello.

        s2n keeps the parsed ClientHello until the connection is freed, so it is
        read once the handshake ends (only for traced connections: untraced ones
        pay nothing). Its time is when the client's first bytes arrived.
        """
        connection = self._open_connection()
        if self.side != "server" or self.client_hello is not None or connection is None:
            return
        try:
            self.client_hello = ClientHello.from_connection(connection)
        except S2NError:
            return  # no ClientHello was received (e.g. the peer spoke plaintext HTTP)

    @property
    def client_hello_t(self) -> float | None:
        """When the ClientHello arrived: the client's first bytes (else when it was read), if one was."""
        if self._client_hello_t is None and self.client_hello is not None:
            first_in = next((t for t, direction, data in self.chunks if direction == "c2s" and data), None)
            self._client_hello_t = first_in if first_in is not None else self.finished_t
        return self._client_hello_t

    def on_success(self, facts: "NegotiatedFacts") -> None:
        """The handshake finished: keep the facts and log the trace (DEBUG, rendered only if emitted)."""
        self.facts, self.finished_t = facts, self.now()
        self._capture_client_hello()
        LOGGER.debug("%s handshake ok\n%s", self.side, _Lazy(self._render_for_log))

    def on_error(self, error: "S2NError") -> None:
        """The handshake failed: keep the error and what had been negotiated so far."""
        self.error, self.finished_t = error, self.now()
        connection = self._open_connection()
        if connection is not None:
            self.facts = read_facts(connection._ptr, chain=[])  # clears s2n_errno itself
        self._capture_client_hello()

    def log_failure(self) -> None:
        """Send the rendered trace of a failed handshake to the ``s2npy.trace`` logger (INFO)."""
        LOGGER.info("%s handshake failed: %s\n%s", self.side, self.error, _Lazy(self._render_for_log))

    def _render_for_log(self) -> str:
        """The text ladder, or JSON lines when ``S2NPY_TRACE=json``."""
        return self.to_jsonl() if os.environ.get(ENV_VAR) == "json" else self.render_text()

    def _stream_direction(self, direction: str) -> str:
        outgoing = direction == "out"
        client = self.side == "client"
        return "c2s" if outgoing == client else "s2c"

    # --- views (lazy) --------------------------------------------------------------------------

    def wire_events(self) -> list[WireEvent]:
        """The byte streams decoded into records, handshake messages and alerts.

        With key log lines (the config logs keys), the TLS 1.3 handshake records are
        decrypted (``s2npy.trace.decrypt``): each one opened is followed by the
        messages and alerts inside it, flagged ``decrypted=True``.
        """
        session = WireSession(Tls13Decryptor(self.keylog_lines) if self.keylog_lines else None)
        events: list[WireEvent] = []
        for t, direction, data in self.chunks:
            events.extend(session.feed(direction, data, t))
        return events

    def events(self) -> list[TraceEvent]:
        """Every recorded event in time order."""
        side = self.side
        wire = self.wire_events()
        names = s2n_messages_by_record(side, wire, self.checkpoints)
        events = [TraceEvent(event.t, side, "wire", {"s2n_messages": names[index]} if index in names else {},
                             wire=event) for index, event in enumerate(wire)]
        events += [TraceEvent(call.start, side, "negotiate", {
            "call": number, "duration_ms": round(call.duration * 1000, 3), "outcome": call.outcome,
            "before": call.before, "after": call.after, "handshake_type": call.handshake_type,
            "bytes_in": call.bytes_in, "bytes_out": call.bytes_out}) for number, call in enumerate(self.calls, 1)]
        events += [TraceEvent(t, side, "eof", {"direction": direction}) for t, direction, data in self.chunks
                   if not data]
        events += [TraceEvent(t, side, "checkpoint", {"message": name, "role": "client" if role else "server"})
                   for t, name, role in self.checkpoints]
        events += [TraceEvent(event["t"], side, "handshake_event",
                              {k: v for k, v in event.items() if k != "t"}) for event in self.handshake_events]
        if self.client_hello is not None:
            events.append(TraceEvent(self.client_hello_t, side, "client_hello", self.client_hello.to_dict()))
        events += [TraceEvent(t, side, "keylog", {"label": line.split(" ", 1)[0]})
                   for t, line in zip(self._keylog_times, self.keylog_lines)]
        if self.finished_t is not None:
            events.append(self._result_event())
        events.sort(key=lambda event: event.t)
        return events

    # --- output (formatting lives in render.py and pcap.py) -------------------------------------

    def render_text(self) -> str:
        """The trace as a ladder diagram (see :func:`s2npy.trace.render.render_text`)."""
        from .render import render_text

        return render_text(self)

    def to_jsonl(self) -> str:
        """The trace as JSON lines, one event per line (schema in :mod:`s2npy.trace.render`)."""
        from .render import render_jsonl

        return render_jsonl(self)

    def write_pcap(self, path: str, keylog_path: str | None = None) -> int:
        """Write the traced byte streams as a pcap (and the key log, to decrypt it in Wireshark).

        Timestamps are wall-clock; the teardown (FIN or RST, by whom) follows the
        trace. Returns the number of packets written.
        """
        from .pcap import write_keylog, write_pcap

        chunks = [(self.wall_origin + t, direction, data) for t, direction, data in self.chunks]
        closer = next(("client" if direction == "c2s" else "server" for _, direction, data in self.chunks
                       if not data), None)
        reset = self.error is not None and self.error.errno == errno.ECONNRESET
        count = write_pcap(path, chunks, closed_by="server" if reset and closer is None else closer, reset=reset)
        if keylog_path is not None:
            write_keylog(keylog_path, self.keylog_lines)
        return count

    def _result_event(self) -> TraceEvent:
        if self.error is None:
            return TraceEvent(self.finished_t, self.side, "result", {"ok": True, **self.facts.to_dict()})
        error = self.error
        data = {"ok": False, "error_class": type(error).__name__, "error": error.name, "message": str(error),
                "errno": error.errno, "alert": error.alert, "alert_name": error.alert_name,
                "last_message": error.last_message, "handshake_type": error.handshake_type}
        if error.diagnosis is not None:
            data["diagnosis"] = error.diagnosis.to_dict()
        return TraceEvent(self.finished_t, self.side, "error", data)


#: s2n state machine message names of the server's messages that do not start with SERVER_.
_SERVER_MESSAGES = {"ENCRYPTED_EXTENSIONS", "HELLO_RETRY_MSG"}
#: ... and of the client's.
_CLIENT_MESSAGES = {"END_OF_EARLY_DATA"}


def message_sender(name: str) -> str | None:
    """Who sends the s2n state machine message ``name`` ("client"/"server"), None if not a message."""
    if name.startswith("SERVER_") or name in _SERVER_MESSAGES:
        return "server"
    if name.startswith("CLIENT_") or name in _CLIENT_MESSAGES:
        return "client"
    return None


def s2n_messages_by_record(side: str, wire: list[WireEvent],
                           checkpoints: list[tuple[float, str, int]]) -> dict[int, list[str]]:
    """Name the messages inside records, from s2n's checkpoints: {index in ``wire``: [names]}.

    Encrypted TLS 1.3 handshake records are opaque on the wire, but s2n checkpoints
    every message it handles. A message this side writes is checkpointed just
    before its record goes out; a received one just after its record came in
    (s2n reads one record at a time). So our messages go to the next outgoing
    record, the peer's to the latest incoming one.
    """
    outgoing = "c2s" if side == "client" else "s2c"
    timeline = sorted([(event.t, 0, index, None) for index, event in enumerate(wire) if isinstance(event, Record)]
                      + [(t, 1, -1, name) for t, name, _ in checkpoints], key=lambda item: (item[0], item[1]))
    named: dict[int, list[str]] = {}
    pending_ours: list[str] = []
    last_in: int | None = None
    for _, _, index, name in timeline:
        if name is None and wire[index].direction == outgoing:
            if pending_ours:
                named[index], pending_ours = pending_ours, []
        elif name is None:
            last_in = index
        elif message_sender(name) == side:
            pending_ours.append(name)
        elif message_sender(name) is not None and last_in is not None:
            named.setdefault(last_in, []).append(name)
    return named


class _Lazy:
    """Formats only if a log handler actually emits the record."""

    def __init__(self, render: Callable[[], str]) -> None:
        self.render = render

    def __str__(self) -> str:
        return self.render()


class Tracer:
    """Collects the traces of many connections (e.g. every connection a server accepts).

    ``on_finish(trace)`` is called when a traced handshake succeeds or fails.
    """

    def __init__(self, on_finish: Callable[[ConnectionTrace], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.traces: list[ConnectionTrace] = []
        self.on_finish = on_finish
        self.clock = clock
        self.origin = clock()

    def connection_trace(self, connection: "Connection") -> ConnectionTrace:
        trace = _NotifyingTrace(self, connection)
        self.traces.append(trace)
        return trace


class _NotifyingTrace(ConnectionTrace):
    """A trace that tells its Tracer when the handshake finished; times share the Tracer's origin."""

    def __init__(self, tracer: Tracer, connection: "Connection") -> None:
        super().__init__(connection, clock=tracer.clock, origin=tracer.origin)
        self._tracer = tracer

    def on_success(self, facts: "NegotiatedFacts") -> None:
        super().on_success(facts)
        if self._tracer.on_finish is not None:
            self._tracer.on_finish(self)

    def on_error(self, error: "S2NError") -> None:
        super().on_error(error)
        if self._tracer.on_finish is not None:
            self._tracer.on_finish(self)
