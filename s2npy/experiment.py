"""In-memory handshakes: both sides in one thread, for tests and experiments.

``handshake(server_config, client_config)`` connects a server and a client
through a memory pipe and drives both until they finish or one fails, then
returns a :class:`HandshakeResult` with each side's facts or exception and
trace. The ``client``/``server`` behaviour arguments simulate misbehaving
peers: one that closes without an alert when its handshake reaches a given
message (``abort_at="CLIENT_CERT"``: "hang up instead of sending my
Certificate", which is what Chromium does for a cross-origin wss://), or a
raw peer that just sends given bytes (plaintext HTTP, garbage, ...).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import Config
from .connection import Connection
from .enums import Blocked, Mode
from .errors import BlockedError, S2NError
from .facts import NegotiatedFacts
from .memory import MemoryPipeEnd, memory_pipe

if TYPE_CHECKING:  # the trace package is imported only when a handshake is traced
    from .trace.recorder import ConnectionTrace

MAX_ROUNDS = 1000


@dataclass(frozen=True)
class Behaviour:
    """How a simulated peer misbehaves.

    ``abort_at``: close the transport (no alert) as soon as this side's s2n
    state machine reaches the named message (s2n names such as
    ``CLIENT_CERT``, ``SERVER_CERT``, ``CLIENT_FINISHED``). ``reset`` makes
    that close a TCP reset. ``raw``: instead of TLS, send these bytes then
    close (``then="close"``), stay silent (``then="silent"``) or reset.
    """

    abort_at: str | None = None
    reset: bool = False
    raw: bytes | None = None
    then: str = "close"


class _AbortingEnd(MemoryPipeEnd):
    """A pipe end that hangs up when its connection reaches ``abort_at``.

    It overrides ``send``, so s2n writes through it in Python: the check runs
    before every write, also in the middle of one negotiate call.
    """

    def __init__(self, end: MemoryPipeEnd, behaviour: Behaviour) -> None:
        super().__init__(end._pipe, end.index)
        self.behaviour = behaviour
        self.connection: Connection | None = None
        self.aborted = False

    def check_abort(self) -> bool:
        if not self.aborted and self.connection is not None and \
                self.connection.last_message == self.behaviour.abort_at:
            self.aborted = True
            self.reset() if self.behaviour.reset else self.close()
        return self.aborted

    def send(self, data: Any) -> int:
        if self.check_abort():
            raise BrokenPipeError(errno.EPIPE, f"simulated peer hung up at {self.behaviour.abort_at}")
        return super().send(data)


@dataclass
class SideResult:
    """One side of an in-memory handshake."""

    mode: str
    facts: NegotiatedFacts | None = None
    error: BaseException | None = None
    trace: ConnectionTrace | None = None
    aborted: bool = False
    session: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.facts is not None and not self.aborted


@dataclass
class HandshakeResult:
    """What happened to both sides. ``ok`` is True when both finished the handshake."""

    server: SideResult
    client: SideResult
    rounds: int = 0
    traces: list[ConnectionTrace] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.server.ok and self.client.ok

    @property
    def error(self) -> BaseException | None:
        """The first failure that is not the simulated peer's own hang-up."""
        for side in (self.server, self.client):
            if side.error is not None and not side.aborted:
                return side.error
        return None


def _with_behaviour(end: MemoryPipeEnd, behaviour: Behaviour | None) -> MemoryPipeEnd:
    return _AbortingEnd(end, behaviour) if behaviour is not None and behaviour.abort_at else end


def handshake(server_config: Config, client_config: Config | None, *,
              server_name: str | None = None,
              client: Behaviour | None = None,
              server: Behaviour | None = None,
              client_session: bytes | None = None,
              trace: bool = False,
              max_rounds: int = MAX_ROUNDS) -> HandshakeResult:
    """Run a server and a client handshake in memory; never raises for TLS failures.

    ``client_config`` may be None when ``client=Behaviour(raw=...)`` replaces
    the client with raw bytes. ``trace=True`` records both sides (shared clock).
    ``client_session`` resumes an earlier ``result.client.session``.
    """
    server_end, client_end = memory_pipe()
    server_end, client_end = _with_behaviour(server_end, server), _with_behaviour(client_end, client)
    tracer = None
    if trace:
        from .trace.recorder import Tracer

        tracer = Tracer()
    server_result, client_result = SideResult("server"), SideResult("client")
    sides = []
    server_conn = _open_side(server_config, Mode.SERVER, server_end, server, tracer, {}, server_result, sides)
    client_conn = _open_side(client_config, Mode.CLIENT, client_end, client, tracer,
                             {"server_name": server_name, "session": client_session}, client_result, sides)
    rounds = _drive(sides, max_rounds)
    if client_conn is not None and client_result.ok and server_result.ok:
        client_result.session = _collect_session(client_conn)
    for connection in (server_conn, client_conn):
        if connection is not None:
            connection.close()
    return HandshakeResult(server_result, client_result, rounds, tracer.traces if tracer else [])


def _open_side(config, mode, end, behaviour, tracer, options, result, sides) -> Connection | None:
    if behaviour is not None and behaviour.raw is not None:
        end.send(behaviour.raw)
        {"close": end.close, "reset": end.reset, "silent": lambda: None}[behaviour.then]()
        result.aborted = True
        return None
    connection = Connection(config, mode, io=end, trace=tracer if tracer is not None else False, **options)
    if isinstance(end, _AbortingEnd):
        end.connection = connection
    result.trace = connection.trace
    sides.append((connection, end, result))
    return connection


def _collect_session(client: Connection) -> bytes | None:
    """Read post-handshake messages (TLS 1.3 NewSessionTicket), then the resumable session."""
    try:
        client.recv(1)
    except BlockedError:
        pass  # the normal case: every post-handshake message has been read
    return client.session


def _drive(sides: list, max_rounds: int) -> int:
    """Alternate negotiate calls until every side is done, failed or stuck."""
    for rounds in range(1, max_rounds + 1):
        progressed = False
        for connection, end, result in sides:
            if result.facts is not None or result.error is not None:
                continue
            progressed |= _step(connection, end, result)
        if all(r.facts is not None or r.error is not None for _, _, r in sides):
            return rounds
        if not progressed:
            _stalled(sides)
            return rounds
    _stalled(sides)
    return max_rounds


def _step(connection: Connection, end: MemoryPipeEnd, result: SideResult) -> bool:
    """One negotiate call; True if it moved data or finished."""
    before = (end.sent, end.buffered)
    try:
        if isinstance(end, _AbortingEnd) and end.check_abort():
            raise BrokenPipeError(errno.EPIPE, "simulated peer hung up")
        blocked = connection.try_negotiate()
    except Exception as exc:  # noqa: BLE001 - TLS errors and callback exceptions are results here
        result.error = exc
        result.aborted = isinstance(end, _AbortingEnd) and end.aborted
        result.facts = None
        if result.aborted and isinstance(exc, S2NError):
            exc.diagnosis = _simulated_abort(exc, end.behaviour)
        _hang_up(connection, end)
        return True
    if blocked is Blocked.NOT_BLOCKED:
        result.facts = connection.facts()
        if connection.trace is not None:
            connection.trace.on_success(result.facts)
        return True
    return (end.sent, end.buffered) != before


def _simulated_abort(error: S2NError, behaviour: Behaviour):
    """The aborting side's own failure is the simulation doing its job, not a peer's fault."""
    from .trace.diagnosis import Diagnosis

    how = "reset" if behaviour.reset else "closed without an alert"
    original = error.diagnosis
    return Diagnosis(
        cause="simulated_abort", side=error.mode, step=error.last_message,
        headline=f"this {error.mode} {how} at {behaviour.abort_at}, as Behaviour(abort_at=...) asked",
        explanation="The simulated peer hung up on purpose; the other side's error is the one to read.",
        next_step="look at the other side's exception and diagnosis",
        last_sent=original.last_sent if original else None,
        last_received=original.last_received if original else None)


def _hang_up(connection: Connection, end: MemoryPipeEnd) -> None:
    """What a real application does after a failed handshake: send the alert s2n queued, close."""
    if not end.closed:
        try:
            connection.shutdown_send()
        except S2NError:
            pass  # the alert could not be sent (e.g. the peer already left); closing is all that is left
        end.close()


def _stalled(sides: list) -> None:
    """Both sides wait for input that will never come: the silent-peer case."""
    from .errors import S2NIOError, connection_state

    for connection, _, result in sides:
        if result.facts is None and result.error is None:
            stalled = S2NIOError("handshake", name="S2NPY_STALLED", errno=errno.ETIMEDOUT,
                                 message="the peer went silent: no data arrived and none can",
                                 state=connection_state(connection.ptr))
            try:
                connection._fail_handshake(stalled)  # diagnose, attach the trace, log
            except S2NError as error:
                result.error = error
