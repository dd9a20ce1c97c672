"""Recording a connection's trace: cheap capture now, parsing and formatting later.

While the handshake runs, a :class:`ConnectionTrace` only appends tuples
(timestamps, raw byte chunks, s2n's state names). Decoding TLS records and
rendering happen when someone asks (``events()``, ``render_text()``, a
failure diagnosis), so a traced handshake stays cheap.

Event kinds (the ``kind`` of each :class:`TraceEvent`; the JSON lines schema
is documented in :mod:`s2npy.trace.render`):

``negotiate``   one ``s2n_negotiate`` call: duration, outcome, state before/after, wire bytes delta
``wire``        one decoded TLS record / handshake message / alert / non-TLS bytes (``s2npy.trace.wire``)
``checkpoint``  s2n's own "message handled" checkpoint (unstable events.h), with its name
``handshake``   s2n's handshake event: cipher, group, policy, time inside negotiate, error
``client_hello`` the server's decoded view of the ClientHello, with JA3/JA4
``keylog``      that a secret was logged (the label only; secrets stay in ``keylog_lines``)
``result``      the negotiated facts, or ``error`` with the exception and its diagnosis
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .wire import WireEvent, WireSession

if TYPE_CHECKING:
    from ..client_hello import ClientHello
    from ..connection import Connection
    from ..errors import S2NError
    from ..facts import NegotiatedFacts

LOGGER = logging.getLogger("s2npy.trace")


@dataclass(frozen=True)
class TraceEvent:
    """One thing that happened, ``t`` seconds after the trace started, on ``side``."""

    t: float
    side: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    wire: WireEvent | None = None

    def to_dict(self) -> dict[str, Any]:
        body = self.wire.to_dict() if self.wire is not None else dict(self.data)
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


class ConnectionTrace:
    """Everything recorded about one connection; see the module doc for the event kinds."""

    def __init__(self, connection: "Connection", *, clock: Callable[[], float] = time.perf_counter,
                 origin: float | None = None) -> None:
        self.side = connection.mode.value
        self.clock = clock
        self.origin = clock() if origin is None else origin
        self._connection = connection
        self.chunks: list[tuple[float, str, bytes]] = []
        self.calls: list[NegotiateCall] = []
        self.checkpoints: list[tuple[float, str, int]] = []
        self.handshake_events: list[dict[str, Any]] = []
        self.client_hello: ClientHello | None = None
        self.client_hello_t: float | None = None
        self.keylog_lines: list[str] = []
        self._keylog_times: list[float] = []
        self.facts: NegotiatedFacts | None = None
        self.error: S2NError | None = None
        self.finished_t: float | None = None
        self._checkpoint_origin_ns: int | None = None

    # --- capture (called by Connection, keep cheap) ---------------------------------------

    def now(self) -> float:
        return self.clock() - self.origin

    def traced_negotiate(self, negotiate_once: Callable[[], Any]) -> Any:
        """Run one ``s2n_negotiate`` call and record it."""
        ptr = self._connection.ptr
        from .._native import c_string, lib

        before = c_string(lib.s2n_connection_get_last_message_name(ptr))
        bytes_in, bytes_out = lib.s2n_connection_get_wire_bytes_in(ptr), lib.s2n_connection_get_wire_bytes_out(ptr)
        start = self.now()
        outcome = "error"
        try:
            blocked = negotiate_once()
            outcome = "done" if blocked == 0 else f"blocked_{blocked.name.lower()}"
            return blocked
        finally:
            self.calls.append(NegotiateCall(
                start=start, duration=self.now() - start, outcome=outcome, before=before,
                after=c_string(lib.s2n_connection_get_last_message_name(ptr)),
                handshake_type=c_string(lib.s2n_connection_get_handshake_type_name(ptr)),
                bytes_in=lib.s2n_connection_get_wire_bytes_in(ptr) - bytes_in,
                bytes_out=lib.s2n_connection_get_wire_bytes_out(ptr) - bytes_out))

    def on_wire(self, direction: str, data: bytes) -> None:
        """Tap: ``direction`` is "in" (received) or "out" (sent) from this side's view."""
        self.chunks.append((self.now(), self._stream_direction(direction), data))

    def on_checkpoint(self, name: str | None, role: int, timestamp_ns: int) -> None:
        self.checkpoints.append((self.now(), name or "?", role))

    def on_handshake_event(self, event: dict[str, Any]) -> None:
        self.handshake_events.append({"t": self.now(), **event})

    def on_client_hello(self, hello: "ClientHello") -> None:
        self.client_hello, self.client_hello_t = hello, self.now()

    def on_key_log(self, line: str) -> None:
        self.keylog_lines.append(line)
        self._keylog_times.append(self.now())

    def on_success(self, facts: "NegotiatedFacts") -> None:
        self.facts, self.finished_t = facts, self.now()
        LOGGER.debug("%s handshake ok\n%s", self.side, _Lazy(self.render_text))

    def on_error(self, error: "S2NError") -> None:
        self.error, self.finished_t = error, self.now()
        from .._native import lib
        from ..facts import read_facts

        if self._connection._ptr is not None:
            self.facts = read_facts(self._connection._ptr, include_chain=False)
        lib.s2n_errno_location()[0] = 0

    def log_failure(self) -> None:
        """Send the rendered trace of a failed handshake to the ``s2npy.trace`` logger (INFO)."""
        LOGGER.info("%s handshake failed: %s\n%s", self.side, self.error, _Lazy(self.render_text))

    def _stream_direction(self, direction: str) -> str:
        outgoing = direction == "out"
        client = self.side == "client"
        return "c2s" if outgoing == client else "s2c"

    # --- views (lazy) --------------------------------------------------------------------------

    def wire_events(self) -> list[WireEvent]:
        """The byte streams decoded into records, handshake messages and alerts."""
        session = WireSession()
        events: list[WireEvent] = []
        for t, direction, data in self.chunks:
            events.extend(session.feed(direction, data, t))
        return events

    def events(self) -> list[TraceEvent]:
        """Every recorded event in time order."""
        side = self.side
        events = [TraceEvent(event.t, side, "wire", wire=event) for event in self.wire_events()]
        events += [TraceEvent(call.start, side, "negotiate", {
            "duration_ms": round(call.duration * 1000, 3), "outcome": call.outcome, "before": call.before,
            "after": call.after, "handshake_type": call.handshake_type,
            "bytes_in": call.bytes_in, "bytes_out": call.bytes_out}) for call in self.calls]
        events += [TraceEvent(t, side, "checkpoint", {"message": name, "role": "client" if role else "server"})
                   for t, name, role in self.checkpoints]
        events += [TraceEvent(event["t"], side, "handshake",
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

    def write_pcap(self, path: str, keylog_path: str | None = None) -> None:
        """Write the traced byte streams as a pcap (and the key log, to decrypt it in Wireshark)."""
        from .pcap import write_keylog, write_pcap

        write_pcap(path, self.chunks, closed_by=None)
        if keylog_path is not None:
            write_keylog(keylog_path, self.keylog_lines)

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
