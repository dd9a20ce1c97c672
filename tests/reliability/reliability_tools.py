"""Shared tools for the reliability tests: faulty transports, drivers and checks.

``FaultyTransport`` wraps one end of an in-memory pipe and lets a *plan*
decide, call by call, what the I/O layer does: pass, shorten the read/write,
raise (``InterruptedError``, ``BlockingIOError``, ``ConnectionResetError``,
``BrokenPipeError``), or hang up. ``negotiate_pair`` and ``transfer`` drive a
server and a client connection over such transports with a bounded number of
rounds, so a hang becomes a test failure, not a stuck test run.
"""

from __future__ import annotations

import errno
import hashlib
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import s2npy
from s2npy import (AlertError, Behaviour, BlockedError, ClosedError, Connection, InternalError, ProtocolError, S2NError,
                   S2NIOError, handshake, memory_pipe)

#: What a misbehaving peer may legitimately cause: never InternalError, UsageError or a bare exception.
PEER_FAILURES = (ProtocolError, ClosedError, AlertError, S2NIOError)
#: s2n classifies a few failures caused by malformed input as internal (S2N_ERR_T_INTERNAL):
#: found by these tests (a missing key_share gives S2N_ERR_NULL, a lying length field
#: S2N_ERR_STUFFER_OUT_OF_DATA or S2N_ERR_INTEGER_OVERFLOW, a supported_versions extension
#: listing no version s2n knows S2N_ERR_UNKNOWN_PROTOCOL_VERSION). s2npy keeps s2n's classification.
PEER_CAUSED_INTERNAL = {"S2N_ERR_INTEGER_OVERFLOW", "S2N_ERR_SAFETY", "S2N_ERR_INVALID_SUPPORTED_GROUP_STATE",
                        "S2N_ERR_NULL", "S2N_ERR_STUFFER_OUT_OF_DATA", "S2N_ERR_UNKNOWN_PROTOCOL_VERSION"}
#: Upper bound for one in-memory handshake against a hostile peer (it normally takes ~1 ms).
HANDSHAKE_BOUND_SECONDS = 2.0
MAX_ROUNDS = 20000

HANGUP = "hangup"

Plan = Callable[["FaultyTransport", str], Any]


def assert_clean_failure(error: BaseException | None, classes: tuple = PEER_FAILURES) -> S2NError:
    """``error`` is an s2npy exception of an expected class that renders and carries a diagnosis."""
    assert error is not None, "the handshake should have failed"
    peer_caused_internal = isinstance(error, InternalError) and error.name in PEER_CAUSED_INTERNAL
    assert isinstance(error, classes) or peer_caused_internal, f"unexpected {type(error).__name__}: {error}"
    assert not isinstance(error, BlockedError), f"a failure reported as blocked: {error}"
    assert error.diagnosis is not None and error.diagnosis.cause, f"no diagnosis for {error!r}"
    assert str(error) and error.name, f"an error without a name: {error!r}"
    return error


def feed_server(server_config: s2npy.Config, data: bytes, then: str = "close") -> S2NError:
    """Send ``data`` as the whole client side, then hang up; return the server's (clean) error."""
    start = time.monotonic()
    result = handshake(server_config, None, client=Behaviour(raw=data, then=then))
    elapsed = time.monotonic() - start
    assert elapsed < HANDSHAKE_BOUND_SECONDS, f"server took {elapsed:.1f}s on {data[:40]!r}"
    assert not result.server.ok
    return assert_clean_failure(result.server.error)


def plan_pass(transport: "FaultyTransport", op: str) -> None:
    """The plan of a well-behaved transport."""
    return None


class FaultyTransport:
    """A transport wrapper whose ``plan(transport, op)`` decides each call's fate.

    The plan returns None (pass through), an int (shorten the read/write to
    that many bytes), an exception (raise it) or ``HANGUP`` (close the pipe end,
    like a process that dies, and raise ``BrokenPipeError``). ``flip`` =
    (byte offset, bit) inverts one bit of the outgoing stream. Every byte that
    was really sent is kept in ``sent``.
    """

    def __init__(self, inner: Any, plan: Plan = plan_pass, flip: tuple[int, int] | None = None) -> None:
        self.inner = inner
        self.plan = plan
        self.flip = flip
        self.calls = {"recv": 0, "send": 0}
        self.sent = bytearray()

    def _action(self, op: str, size: int) -> int:
        self.calls[op] += 1
        action = self.plan(self, op)
        if isinstance(action, BaseException):
            raise action
        if action == HANGUP:
            self.inner.close()
            raise BrokenPipeError(errno.EPIPE, "simulated peer hung up")
        return size if action is None else max(0, min(size, action))

    def recv_into(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        return self.inner.recv_into(view[:self._action("recv", len(view))])

    def send(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        chunk = bytearray(view[:self._action("send", len(view))])
        if self.flip is not None and len(self.sent) <= self.flip[0] < len(self.sent) + len(chunk):
            chunk[self.flip[0] - len(self.sent)] ^= 1 << self.flip[1]
        count = self.inner.send(bytes(chunk))
        self.sent += chunk[:count]
        return count


@dataclass
class Pair:
    """A server and a client connection over (faulty) transports, and what happened to them."""

    server: Connection
    client: Connection
    server_io: FaultyTransport
    client_io: FaultyTransport
    errors: dict[str, BaseException] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    stalled: bool = False

    def sides(self):
        return (("server", self.server, self.server_io), ("client", self.client, self.client_io))

    @property
    def ok(self) -> bool:
        return self.done == {"server", "client"}

    def progress(self) -> tuple[int, int]:
        """Bytes moved so far (only changes when some data went somewhere)."""
        return len(self.server_io.sent), len(self.client_io.sent)

    def close(self) -> None:
        self.server.close()
        self.client.close()


def make_pair(server_config: s2npy.Config, client_config: s2npy.Config, *,
              server_plan: Plan = plan_pass, client_plan: Plan = plan_pass,
              server_flip: tuple[int, int] | None = None, client_flip: tuple[int, int] | None = None,
              server_name: str = "localhost", **client_kwargs: Any) -> Pair:
    """Connect a server and a client through a memory pipe wrapped in ``FaultyTransport``s."""
    server_end, client_end = memory_pipe()
    server_io = FaultyTransport(server_end, server_plan, server_flip)
    client_io = FaultyTransport(client_end, client_plan, client_flip)
    server = Connection(server_config, "server", io=server_io)
    client = Connection(client_config, "client", io=client_io, server_name=server_name, **client_kwargs)
    return Pair(server, client, server_io, client_io)


def _hang_up(transport: FaultyTransport) -> None:
    """What a real process does after a failure: close its socket (the peer sees EOF)."""
    if not transport.inner.closed:
        transport.inner.close()


STALL_ROUNDS = 50


def negotiate_pair(pair: Pair, max_rounds: int = MAX_ROUNDS) -> Pair:
    """Drive both handshakes until each finished or failed; a side that fails hangs up.

    If no byte moves for ``STALL_ROUNDS`` rounds both sides wait for each other
    (what a TCP peer would end with a timeout): ``pair.stalled`` is set.
    """
    last, quiet = None, 0
    for _ in range(max_rounds):
        quiet = quiet + 1 if pair.progress() == last else 0
        last = pair.progress()
        if quiet >= STALL_ROUNDS:
            pair.stalled = True
            return pair
        for name, connection, transport in pair.sides():
            if name in pair.done or name in pair.errors:
                continue
            try:
                if connection.try_negotiate() is s2npy.Blocked.NOT_BLOCKED:
                    pair.done.add(name)
            except Exception as exc:  # noqa: BLE001 - recorded and checked by the test
                pair.errors[name] = exc
                _hang_up(transport)
        if len(pair.done) + len(pair.errors) == 2:
            return pair
    raise AssertionError(f"handshake did not finish in {max_rounds} rounds: a hang")


def transfer(sender: Connection, receiver: Connection, data: bytes, *,
             max_rounds: int = MAX_ROUNDS) -> tuple[bytes, BaseException | None, BaseException | None]:
    """Send ``data`` one way with retries on would-block; return (received, sender error, receiver error).

    A would-block on send is retried with the *same* remaining bytes (s2n's
    rule), so anything lost or duplicated shows in the received bytes.
    """
    view = memoryview(data)
    sent, received, idle = 0, bytearray(), 0
    sender_error = receiver_error = None
    buffer = bytearray(65536)
    for _ in range(max_rounds):
        if sent < len(view) and sender_error is None:
            try:
                sent += sender.send(view[sent:])
            except BlockedError:
                pass
            except Exception as exc:  # noqa: BLE001 - returned to the test
                sender_error = exc
        try:
            count = receiver.recv_into(buffer)
        except BlockedError:
            idle += 1
        except Exception as exc:  # noqa: BLE001 - returned to the test
            return bytes(received), sender_error, exc
        else:
            if count == 0:
                break
            idle = 0
            received += buffer[:count]
        if len(received) == len(data) or (sender_error is not None and idle >= STALL_ROUNDS):
            break
    else:
        raise AssertionError(f"transfer did not finish in {max_rounds} rounds: a hang")
    return bytes(received), sender_error, receiver_error


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def records(stream: bytes) -> list[tuple[int, int, int]]:
    """TLS records of a byte stream as (offset, content type, length)."""
    found, offset = [], 0
    while offset + 5 <= len(stream):
        length = int.from_bytes(stream[offset + 3:offset + 5], "big")
        found.append((offset, stream[offset], length))
        offset += 5 + length
    return found


def ssl_client_hello(server_name: str = "localhost") -> bytes:
    """The first flight of Python's ``ssl`` (OpenSSL) client: one ClientHello record."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def s2npy_client_hello(client_config: s2npy.Config, server_name: str = "localhost") -> bytes:
    """The first flight of an s2npy client: one ClientHello record."""
    mine, theirs = memory_pipe()
    with Connection(client_config, "client", io=mine, server_name=server_name) as client:
        assert client.try_negotiate() is s2npy.Blocked.ON_READ
    return theirs.read_buffered()


def run_python(code: str, *, timeout: float = 120, env: dict[str, str] | None = None,
               prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (so a segfault fails the test instead of killing pytest)."""
    full_env = {**os.environ, **(env or {})}
    command = [*(prefix or []), sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env)


def assert_survived(process: subprocess.CompletedProcess) -> None:
    """The child exited normally: a negative return code is a signal (a crash)."""
    assert process.returncode == 0, (f"child exited with {process.returncode}\n"
                                     f"stdout:\n{process.stdout[-3000:]}\nstderr:\n{process.stderr[-3000:]}")


class GatedTransport:
    """A transport whose first read parks the calling thread (inside s2n) until ``proceed`` is set."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.entered = threading.Event()
        self.proceed = threading.Event()

    def recv_into(self, buffer: Any) -> int:
        self.entered.set()
        self.proceed.wait(10)
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self.data))
        view[:count], self.data = self.data[:count], self.data[count:]
        return count

    def send(self, data: Any) -> int:
        return len(data)


def close_during_negotiate(server_config: s2npy.Config, data: bytes,
                           while_parked: Callable[[], None] = lambda: None) -> BaseException | None:
    """close() a connection while another thread is inside its s2n_negotiate; return that thread's outcome.

    ``while_parked()`` runs after the close, while that thread is still inside s2n.
    """
    transport = GatedTransport(data)
    connection = Connection(server_config, "server", io=transport, trace=False)
    outcome: list = []

    def negotiate():
        try:
            connection.negotiate()
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - returned to the caller
            outcome.append(exc)

    thread = threading.Thread(target=negotiate)
    thread.start()
    assert transport.entered.wait(10), "the negotiating thread never reached the transport"
    connection.close()  # the other thread is inside s2n_negotiate right now
    assert connection.closed
    try:
        while_parked()
    finally:
        transport.proceed.set()
    thread.join(10)
    assert not thread.is_alive(), "negotiate hung after a concurrent close"
    assert not connection._unfreed, "the connection was never freed"
    return outcome[0]
